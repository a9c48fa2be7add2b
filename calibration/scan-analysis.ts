/**
 * From scan measurements to sweep codes. A scan drives single inputs at a coarse grid of gate codes
 * (probe-plan.ts scanBlocks); this module turns its readings into a delay per code and picks the
 * codes the sweeps then measure synapse by synapse.
 *
 * PMOS codes need more care than NMOS ones. A PMOS sweep pairs each PMOS transistor with its NMOS
 * partner at a reference code, and the pair's delay over the partner's alone rises from 1 (PMOS
 * off) to silence (the pair's asymptote falls below threshold) over about one e-fold of the PMOS
 * current, some 25 codes: a single step of the coarse grid. On some dies every grid code sat either
 * below 1.1x or at silence, and the picked codes were nearly-off transistors (32-16-8 die 77: one
 * PMOS code, conductance 1/1000 of a mid NMOS one, fitted 45 % off in the median). Hence:
 *
 * - delays are taken per synapse relative to the same synapse's NMOS-alone delay at the reference
 *   code (`pairDelayRatios`), which removes the NMOS mismatch between synapses (it made the
 *   per-code medians of raw delays scatter by +-20 % around 1);
 * - the ratio is made non-increasing in the code by pooling adjacent violators (`monotoneRatios`):
 *   a higher PMOS gate code is a weaker transistor;
 * - a fine scan covers the codes between the last one that silences the pair and the first that
 *   barely slows it (`pairTransition`), and the codes come from the union of both scans.
 */

import type { LayerSamples } from './probe-run.ts';

/** Ratios at or above this count as silent when smoothing (above every pair-delay target). */
export const SILENT_RATIO = 10;

export function median(a: readonly number[]): number {
  if (!a.length) return Infinity;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/** The one switched-on input of single-input sample b, with its switch-on time, or undefined. */
function activeInput(s: LayerSamples, b: number): { j: number; t: number } | undefined {
  const nIn = s.inputs.length / s.batch;
  let found: { j: number; t: number } | undefined;
  for (let j = 0; j < nIn; j++) {
    const t = s.inputs[b * nIn + j];
    if (!Number.isFinite(t)) continue;
    if (found) return undefined;
    found = { j, t };
  }
  return found;
}

/** Median single-input delay (ticks) per grid code; `codeOf(block, neuron)` is the scan's code map. */
export function scanDelays(samples: readonly LayerSamples[], codeOf: (b: number, i: number) => number, perUnit: number): Map<number, number> {
  const by = new Map<number, number[]>();
  samples.forEach((s, q) => {
    const nIn = s.inputs.length / s.batch;
    const n = s.out.length / s.batch;
    for (let b = 0; b < s.batch; b++) {
      let tIn = Infinity;
      for (let j = 0; j < nIn; j++) tIn = Math.min(tIn, s.inputs[b * nIn + j]);
      for (let i = 0; i < n; i++) {
        const c = codeOf(q, i);
        const d = (s.out[b * n + i] - tIn) * perUnit;
        if (!by.has(c)) by.set(c, []);
        by.get(c)!.push(Number.isFinite(d) ? d : Infinity);
      }
    }
  });
  const out = new Map<number, number>();
  for (const [c, v] of by) out.set(c, median(v));
  return out;
}

/**
 * Per grid code, the median over scan samples of (pair delay) / (the same synapse's NMOS-alone delay
 * in `alone`, the NMOS sweep at the scan's reference code); a silent pair counts as Infinity.
 * Samples whose synapse was silent alone, or that drive more than one input, are skipped.
 */
export function pairDelayRatios(samples: readonly LayerSamples[], codeOf: (b: number, i: number) => number, alone: LayerSamples): Map<number, number> {
  const n = alone.out.length / alone.batch;
  // NMOS-alone delay per (input, neuron).
  const nIn = alone.inputs.length / alone.batch;
  const ref = new Float64Array(nIn * n).fill(NaN);
  for (let b = 0; b < alone.batch; b++) {
    const a = activeInput(alone, b);
    if (!a) continue;
    for (let i = 0; i < n; i++) ref[a.j * n + i] = alone.out[b * n + i] - a.t;
  }
  const by = new Map<number, number[]>();
  samples.forEach((s, q) => {
    for (let b = 0; b < s.batch; b++) {
      const a = activeInput(s, b);
      if (!a) continue;
      for (let i = 0; i < n; i++) {
        const dRef = ref[a.j * n + i];
        if (!(dRef > 0 && Number.isFinite(dRef))) continue;
        const d = s.out[b * n + i] - a.t;
        const c = codeOf(q, i);
        if (!by.has(c)) by.set(c, []);
        by.get(c)!.push(Number.isFinite(d) ? d / dRef : Infinity);
      }
    }
  });
  const out = new Map<number, number>();
  for (const [c, v] of by) out.set(c, median(v));
  return out;
}

/**
 * The ratios made non-increasing in the code (pool-adjacent-violators on log ratio, equal weights;
 * silent and very slow codes capped at SILENT_RATIO). Returns code -> smoothed ratio, codes sorted.
 */
export function monotoneRatios(ratios: ReadonlyMap<number, number>): Map<number, number> {
  const pts = [...ratios.entries()].filter(([, r]) => !Number.isNaN(r) && r > 0).sort((a, b) => a[0] - b[0]);
  // Blocks of pooled points: sum of values, count; merged while a later block exceeds an earlier one.
  const blocks: { sum: number; count: number }[] = [];
  for (const [, r] of pts) {
    blocks.push({ sum: Math.log(Math.min(r, SILENT_RATIO)), count: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1];
      const a = blocks[blocks.length - 2];
      if (b.sum / b.count <= a.sum / a.count) break;
      a.sum += b.sum;
      a.count += b.count;
      blocks.pop();
    }
  }
  const out = new Map<number, number>();
  let k = 0;
  for (const blk of blocks) {
    const v = Math.exp(blk.sum / blk.count);
    for (let m = 0; m < blk.count; m++) out.set(pts[k++][0], v);
  }
  return out;
}

/**
 * Where the pair goes from silent to barely slowed, on smoothed ratios: [the highest code at or
 * above `slow` (or the lowest code), the lowest code above it at or below `fast` (or the highest
 * code)]. Undefined when fewer than two codes lie strictly between the ends.
 */
export function pairTransition(smooth: ReadonlyMap<number, number>, slow: number, fast: number): [number, number] | undefined {
  const codes = [...smooth.keys()].sort((a, b) => a - b);
  if (codes.length === 0) return undefined;
  let lo = codes[0];
  for (const c of codes) if (smooth.get(c)! >= slow) lo = c;
  let hi = codes[codes.length - 1];
  for (const c of codes) {
    if (c > lo && smooth.get(c)! <= fast) {
      hi = c;
      break;
    }
  }
  return hi - lo >= 3 ? [lo, hi] : undefined;
}

/** `count` distinct whole codes strictly between lo and hi, evenly spread. */
export function fineGrid(lo: number, hi: number, count: number): number[] {
  const out: number[] = [];
  for (let k = 1; k <= count; k++) out.push(Math.round(lo + ((hi - lo) * k) / (count + 1)));
  return [...new Set(out)].filter((c) => c > lo && c < hi);
}
