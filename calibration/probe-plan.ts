/**
 * Probe design: which weight configurations and input spike patterns calibration sends, per layer.
 * Pure builders (seeded); measuring them is probe-run.ts's job.
 *
 * A layer is probed with the layers before it set as identity relays (calibration/probe-configs.ts),
 * so its input j is driven from network input j (j below every earlier width); its inputs are then
 * read back from the previous layer's measured spikes. Kinds of block:
 *
 * - `scan-n` / `scan-p`: a coarse code grid, spread over the neurons (neuron i at grid code i mod K),
 *   a few single inputs: finds where single synapses fire inside the window on this chip;
 * - `sweep-n`: every NMOS row at one code, each input alone: one spike time per synapse and code;
 * - `sweep-p`: every NMOS row at a reference code and every PMOS row at one code, each input alone
 *   (both rows of an input switch together): the PMOS conductance against a known NMOS one;
 * - `pattern`: random codes from the sweep sets (some rows off), sparse and dense staggered input
 *   patterns mixing NMOS and PMOS: separate conductance from E+, E-, threshold and kick;
 * - `heldout`: the same kind of patterns from another seed, never used by the fit; measured twice
 *   to estimate the measurement noise.
 */

import { NMOS, PMOS, type DacSpec, type LayerGeometry, type SafeRange } from '../models/chips/chip-backend.ts';
import { deriveSeed, Rng } from '../models/datasets/rng.ts';
import { allOffCodes, codeWindow } from './probe-configs.ts';
import { SILENT_TICK } from '../wire/ticks.ts';

export type BlockKind = 'scan-n' | 'scan-p' | 'sweep-n' | 'sweep-p' | 'pattern' | 'heldout';

export interface ProbeBlock {
  layer: number;
  kind: BlockKind;
  /** The probed layer's weight memory (rows x outputs). */
  codes: Uint16Array;
  /** batch x (probed layer's inputs) switch-on ticks relative to the layer's drive (SILENT_TICK = off). */
  inputTicks: Uint16Array;
  batch: number;
  /** Repeat index (held-out blocks are measured twice). */
  repeat?: number;
  /** Measure with the layer's precharge raised by this many volts (then restored). */
  restShiftVolts?: number;
}

export interface LayerProbeContext {
  layer: number;
  geometry: LayerGeometry;
  dac: DacSpec;
  safe: SafeRange;
  /** Inputs of this layer that can be driven (through relays): 0..driven-1. */
  driven: number;
  /** Ticks available for the layer's inputs to arrive and the neuron to fire. */
  windowTicks: number;
}

export interface ProbeSizes {
  scanCodes: number;
  scanInputs: number;
  sweepN: number;
  sweepP: number;
  /**
   * How many times the regular single-synapse sweeps (NMOS alone, PMOS pairs at both partners) are
   * measured. Patterns that end near threshold amplify a 0.1 % conductance error into tens of ticks,
   * and single readings leave that much from jitter (calibration/README.md).
   */
  sweepRepeats: number;
  patternConfigs: number;
  /** Excite-then-inhibit configurations (eiBlock). */
  eiConfigs: number;
  patternsPerConfig: number;
  heldOutPatterns: number;
}

export const DEFAULT_PROBE_SIZES: ProbeSizes = {
  scanCodes: 24,
  scanInputs: 6,
  sweepN: 4,
  sweepP: 3,
  sweepRepeats: 3,
  patternConfigs: 3,
  eiConfigs: 2,
  patternsPerConfig: 96,
  heldOutPatterns: 64,
};

/** A grid of `count` codes across a polarity's safe window, from off toward full drive. */
export function scanGrid(dac: DacSpec, safe: SafeRange, polarity: number, count: number): number[] {
  const [lo, hi] = codeWindow(dac, safe, polarity);
  const out: number[] = [];
  for (let k = 1; k <= count; k++) {
    const c = Math.round(lo + ((hi - lo) * k) / count);
    out.push(polarity === NMOS ? c : hi - (c - lo));
  }
  return [...new Set(out)];
}

function singleInputs(driven: number, inputs: number, count: number, at = 0): { ticks: Uint16Array; batch: number } {
  const n = Math.min(driven, count);
  const ticks = new Uint16Array(n * inputs).fill(SILENT_TICK);
  for (let b = 0; b < n; b++) ticks[b * inputs + Math.floor((b * driven) / n)] = at;
  return { ticks, batch: n };
}

/**
 * Scan blocks: grid code g[(q * outputs + i) mod K] on neuron i's rows of `polarity` in config q;
 * for PMOS scans the NMOS rows sit at `refNmos`.
 */
export function scanBlocks(
  ctx: LayerProbeContext,
  polarity: number,
  grid: readonly number[],
  scanInputs: number,
  refNmos?: number,
): { blocks: ProbeBlock[]; codeOf: (block: number, neuron: number) => number } {
  const { geometry: g, dac, safe } = ctx;
  const n = g.outputs;
  const configs = Math.max(1, Math.ceil(grid.length / n));
  const blocks: ProbeBlock[] = [];
  const codeOf = (q: number, i: number) => grid[(q * n + i) % grid.length];
  for (let q = 0; q < configs; q++) {
    const codes = allOffCodes(g, dac, safe);
    for (let r = 0; r < g.rowInput.length; r++) {
      for (let i = 0; i < n; i++) {
        if (g.rowPolarity[r] === polarity) codes[r * n + i] = codeOf(q, i);
        else if (refNmos !== undefined && g.rowPolarity[r] === NMOS) codes[r * n + i] = refNmos;
      }
    }
    const { ticks, batch } = singleInputs(ctx.driven, g.inputs, scanInputs);
    blocks.push({ layer: ctx.layer, kind: polarity === NMOS ? 'scan-n' : 'scan-p', codes, inputTicks: ticks, batch });
  }
  return { blocks, codeOf };
}

/**
 * Picks sweep codes from scan results: `times` maps code -> median single-input firing delay in
 * ticks (Infinity = silent). Returns codes whose delay is nearest each target fraction of the
 * window (interpolated on the grid in log time), distinct, ordered by the targets.
 */
export function pickCodes(times: ReadonlyMap<number, number>, windowTicks: number, targets: readonly number[]): number[] {
  const pts = [...times.entries()].filter(([, t]) => Number.isFinite(t) && t > 0).sort((a, b) => a[0] - b[0]);
  if (pts.length === 0) return [];
  const out: number[] = [];
  for (const f of targets) {
    const want = Math.log(f * windowTicks);
    let best = pts[0][0];
    let bestErr = Infinity;
    for (let k = 0; k < pts.length; k++) {
      const e = Math.abs(Math.log(pts[k][1]) - want);
      if (e < bestErr) {
        bestErr = e;
        best = pts[k][0];
      }
      // Interpolate between neighbours for a code off the grid.
      if (k + 1 < pts.length) {
        const [c0, t0] = pts[k];
        const [c1, t1] = pts[k + 1];
        const l0 = Math.log(t0);
        const l1 = Math.log(t1);
        if ((want - l0) * (want - l1) <= 0 && l0 !== l1) {
          best = Math.round(c0 + ((c1 - c0) * (want - l0)) / (l1 - l0));
          bestErr = 0;
          break;
        }
      }
    }
    if (!out.includes(best)) out.push(best);
  }
  return out;
}

/** Single-synapse sweeps: one block per code, each driven input alone. PMOS sweeps keep NMOS at `refNmos`. */
export function sweepBlocks(ctx: LayerProbeContext, polarity: number, codes: readonly number[], refNmos?: number): ProbeBlock[] {
  const { geometry: g, dac, safe } = ctx;
  return codes.map((code) => {
    const w = allOffCodes(g, dac, safe);
    const n = g.outputs;
    for (let r = 0; r < g.rowInput.length; r++) {
      if (g.rowPolarity[r] === polarity) w.fill(code, r * n, (r + 1) * n);
      else if (polarity === PMOS && refNmos !== undefined) w.fill(refNmos, r * n, (r + 1) * n);
    }
    const { ticks, batch } = singleInputs(ctx.driven, g.inputs, ctx.driven);
    return { layer: ctx.layer, kind: polarity === NMOS ? 'sweep-n' : 'sweep-p', codes: w, inputTicks: ticks, batch } as ProbeBlock;
  });
}

/**
 * A random pattern configuration: each synapse's NMOS row at one of `nCodes` (probability pN, else
 * off) and its PMOS row at one of `pCodes` (probability pP). Only driven inputs are switched on.
 */
export function patternCodes(ctx: LayerProbeContext, nCodes: readonly number[], pCodes: readonly number[], pN: number, pP: number, rng: Rng): Uint16Array {
  const { geometry: g, dac, safe } = ctx;
  const w = allOffCodes(g, dac, safe);
  const n = g.outputs;
  for (let r = 0; r < g.rowInput.length; r++) {
    if (g.rowInput[r] >= ctx.driven) continue;
    const nm = g.rowPolarity[r] === NMOS;
    const set = nm ? nCodes : pCodes;
    const p = nm ? pN : pP;
    if (set.length === 0) continue;
    for (let i = 0; i < n; i++) if (rng.next() < p) w[r * n + i] = set[rng.int(set.length)];
  }
  return w;
}

/**
 * Random input patterns: half sparse (2-6 inputs), half dense (15-50 % of the driven inputs, at most 48), switch-on
 * times uniform over the first `spread` of the window, whole ticks.
 */
export function patternInputs(ctx: LayerProbeContext, count: number, rng: Rng, spread = 0.45): Uint16Array {
  const { inputs } = ctx.geometry;
  const d = ctx.driven;
  const ticks = new Uint16Array(count * inputs).fill(SILENT_TICK);
  const idx = Array.from({ length: d }, (_, j) => j);
  const maxT = Math.max(1, Math.floor(spread * ctx.windowTicks));
  for (let b = 0; b < count; b++) {
    const dense = b % 2 === 1 && d > 6;
    // Dense patterns are capped at 48 inputs: wider ones fire within their first few inputs anyway,
    // and every active input costs fit time and memory per neuron.
    const k = dense ? Math.max(2, Math.min(48, Math.round(d * rng.uniform(0.15, 0.5)))) : Math.min(d, 2 + rng.int(5));
    rng.shuffle(idx);
    for (let m = 0; m < k; m++) ticks[b * inputs + idx[m]] = m === 0 ? 0 : rng.int(maxT + 1);
  }
  return ticks;
}

/**
 * An excite-then-inhibit configuration and its patterns: each driven input is either a pure
 * exciter (NMOS at a strong sweep code, PMOS off) or a pure inhibitor (NMOS off, PMOS at a sweep
 * code), per neuron at random. A pattern starts one or two exciters at 0 and switches one to three
 * inhibitors on later, when the membrane sits anywhere between rest and threshold. Only such E/I
 * mixtures reveal the reversal potentials: with excitation alone, conductances inferred from single
 * synapses predict every pattern exactly whatever E+ is (w = -ln(1 - u/E+) integrates to the same
 * level), so E+ and E- are pinned by how much an inhibitor slows a membrane at different depolarisations.
 */
export function eiBlock(
  ctx: LayerProbeContext,
  nCodes: readonly number[],
  pCodes: readonly number[],
  count: number,
  rng: Rng,
  kind: 'pattern' | 'heldout',
): ProbeBlock {
  const { geometry: g, dac, safe } = ctx;
  const w = allOffCodes(g, dac, safe);
  const n = g.outputs;
  const strong = [...nCodes].sort((a, b) => b - a).slice(0, 2);
  const isExciter = new Uint8Array(ctx.driven * n);
  for (let r = 0; r < g.rowInput.length; r++) {
    const j = g.rowInput[r];
    if (j >= ctx.driven) continue;
    for (let i = 0; i < n; i++) {
      if (g.rowPolarity[r] === NMOS) {
        isExciter[j * n + i] = rng.next() < 0.5 ? 1 : 0;
        if (isExciter[j * n + i]) w[r * n + i] = strong[rng.int(strong.length)];
      }
    }
  }
  for (let r = 0; r < g.rowInput.length; r++) {
    const j = g.rowInput[r];
    if (j >= ctx.driven || g.rowPolarity[r] === NMOS || pCodes.length === 0) continue;
    for (let i = 0; i < n; i++) if (!isExciter[j * n + i]) w[r * n + i] = pCodes[rng.int(pCodes.length)];
  }
  const ticks = new Uint16Array(count * g.inputs).fill(SILENT_TICK);
  const idx = Array.from({ length: ctx.driven }, (_, j) => j);
  const maxT = Math.max(1, Math.floor(0.45 * ctx.windowTicks));
  for (let b = 0; b < count; b++) {
    rng.shuffle(idx);
    const k = Math.min(ctx.driven, 2 + rng.int(4));
    for (let m = 0; m < k; m++) ticks[b * g.inputs + idx[m]] = m === 0 ? 0 : rng.int(maxT + 1);
  }
  return { layer: ctx.layer, kind, codes: w, inputTicks: ticks, batch: count };
}

/** Pattern blocks for the fit (`heldOut` false) or the held-out set (another seed stream, measured twice). */
export function patternBlocks(
  ctx: LayerProbeContext,
  nCodes: readonly number[],
  pCodes: readonly number[],
  sizes: ProbeSizes,
  seed: number,
  heldOut: boolean,
): ProbeBlock[] {
  const blocks: ProbeBlock[] = [];
  const configs = heldOut ? 1 : sizes.patternConfigs;
  for (let q = 0; q < configs; q++) {
    const rng = new Rng(deriveSeed(seed, heldOut ? 1 : 0, ctx.layer, q));
    // The last fit configuration is a weak, mostly excitatory one where dense patterns take long.
    const weak = !heldOut && q === configs - 1 && configs > 1;
    const codes = weak ? patternCodes(ctx, nCodes.slice(-1), pCodes.slice(0, 1), 0.8, 0.2, rng) : patternCodes(ctx, nCodes, pCodes, 0.75, 0.35, rng);
    const count = heldOut ? sizes.heldOutPatterns : sizes.patternsPerConfig;
    const inputTicks = patternInputs(ctx, count, rng);
    if (heldOut) {
      for (let rep = 0; rep < 2; rep++) blocks.push({ layer: ctx.layer, kind: 'heldout', codes, inputTicks, batch: count, repeat: rep });
    } else blocks.push({ layer: ctx.layer, kind: 'pattern', codes, inputTicks, batch: count });
  }
  if (!heldOut) {
    for (let q = 0; q < sizes.eiConfigs; q++) {
      blocks.push(eiBlock(ctx, nCodes, pCodes, sizes.patternsPerConfig, new Rng(deriveSeed(seed, 2, ctx.layer, q)), 'pattern'));
    }
  }
  return blocks;
}

/**
 * Candidate patterns for the adaptive round (calibrate-chip.ts): random configurations and inputs
 * drawn like the held-out set's, from a seed stream of their own (neither the fit's nor the
 * held-out set's), measured once. The fit keeps only the ones it predicts to creep up to threshold.
 */
export function candidateBlocks(
  ctx: LayerProbeContext,
  nCodes: readonly number[],
  pCodes: readonly number[],
  configs: number,
  count: number,
  seed: number,
): ProbeBlock[] {
  const blocks: ProbeBlock[] = [];
  for (let q = 0; q < configs; q++) {
    const rng = new Rng(deriveSeed(seed, 3, ctx.layer, q));
    const codes = patternCodes(ctx, nCodes, pCodes, 0.75, 0.35, rng);
    blocks.push({ layer: ctx.layer, kind: 'pattern', codes, inputTicks: patternInputs(ctx, count, rng), batch: count });
  }
  return blocks;
}

/**
 * The NMOS reference code of PMOS sweeps: the second-weakest NMOS sweep code. A weak partner makes
 * the PMOS current a large share of the pair's, so its conductance is well resolved.
 */
export function referenceNmos(nCodes: readonly number[]): number {
  const s = [...nCodes].sort((a, b) => a - b);
  return s[Math.min(1, s.length - 1)];
}
