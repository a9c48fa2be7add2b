/**
 * Summing the shards of a data-parallel step (data-parallel.ts, shard-task.ts): the step's loss
 * figures and the batch-wide dead-neuron selection from the shards' results (`planStep`), and the
 * shards' gradients summed over a range of parameters (`reduceRange`), so that the calling thread
 * or each worker on its own slice computes the same numbers. Shards are summed in shard order.
 *
 * The shards' results also travel through shared memory as float64 records (`writeStats`,
 * `readStats`) when the workers sum the step themselves.
 */

import type { StepResult } from './trainer.ts';
import type { LossConfig } from './losses.ts';
import type { ShardResult } from './shard-task.ts';

/** Contiguous shards [start, end) of a batch of n rows (or slices of n parameters) over `workers` workers (empty ones left out). */
export function shardRanges(n: number, workers: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < workers; k++) {
    const s = Math.floor((k * n) / workers);
    const e = Math.floor(((k + 1) * n) / workers);
    if (e > s) out.push([s, e]);
  }
  return out;
}

/** A dense layer's size, all the reduction needs of it. */
export interface LayerSize {
  nIn: number;
  nOut: number;
}

/** The dead-neuron term of one layer, selected batch-wide: what the reduction adds to the shards' sums. */
export interface DeadTerm {
  /** Offset of the layer's pE in the parameter vector; pI follows at offset + nIn * nOut. */
  offset: number;
  nIn: number;
  nOut: number;
  /** deadWeight / the batch-wide denominator. */
  factor: number;
  /** 1 for the neurons (columns) the term acts on. */
  chosen: Uint8Array;
}

/** A step's loss figures and the batch-wide dead-neuron term, from the shards' results alone. */
export interface StepPlan extends StepResult {
  deadTerms: DeadTerm[];
}

/** The step's loss figures from the shards' results (in shard order); selects and normalises the dead-neuron term batch-wide. */
export function planStep(layers: readonly LayerSize[], cfg: LossConfig, results: readonly ShardResult[], B: number): StepPlan {
  let ce = 0;
  let window = 0;
  let correct = 0;
  for (const r of results) {
    ce += r.ce;
    window += r.window;
    correct += r.correct;
  }
  const L = layers.length;
  const silent: number[] = [];
  const deadTerms: DeadTerm[] = [];
  let dead = 0;
  let layerOffset = 0;
  const { fired: firedSums, pairs } = batchFiring(layers, results);
  const deadChoices = chooseDead(layers, cfg, firedSums, pairs, B);
  for (let l = 0; l < L; l++) {
    const { nIn, nOut } = layers[l]!;
    const size = nIn * nOut;
    const fired = firedSums[l]!;
    let firedAll = 0;
    for (let i = 0; i < nOut; i++) firedAll += fired[i]!;
    silent.push(1 - firedAll / (B * nOut));
    const choice = deadChoices[l];
    if (choice) {
      let value = 0;
      for (const r of results) {
        const d = r.dead[l]!;
        if (d.length === 0) continue;
        for (let i = 0; i < nOut; i++) if (choice.chosen[i]) value += d[i]!;
      }
      dead += choice.factor * value;
      deadTerms.push({ offset: layerOffset, nIn, nOut, factor: choice.factor, chosen: choice.chosen });
    }
    layerOffset += 2 * size;
  }
  return { loss: ce + window + dead, terms: { ce, window, dead }, correct, silent, deadTerms };
}

/** The shards' firing counts summed per layer and neuron, and their silent label neurons summed: the batch's. */
export function batchFiring(layers: readonly LayerSize[], results: readonly ShardResult[]): { fired: Int32Array[]; pairs: number } {
  const fired = layers.map((l) => new Int32Array(l.nOut));
  let pairs = 0;
  for (const r of results) {
    pairs += r.deadLabels;
    fired.forEach((f, l) => {
      for (let i = 0; i < f.length; i++) f[i]! += r.fired[l]![i]!;
    });
  }
  return { fired, pairs };
}

/** The neurons (columns) a layer's dead-neuron term acts on, and deadWeight / its denominator. */
export interface DeadChoice {
  chosen: Uint8Array;
  factor: number;
}

/**
 * Each layer's dead-neuron term from batch-wide counts (null: none), as deadSelection and
 * deadNeuronPenalty select and normalise on the whole batch: `fired` is how many of the batch's B
 * samples each neuron fired for, `pairs` the batch's silent label neurons.
 */
export function chooseDead(layers: readonly LayerSize[], cfg: LossConfig, fired: readonly Int32Array[], pairs: number, B: number): (DeadChoice | null)[] {
  const L = layers.length;
  return layers.map(({ nOut }, l) => {
    if (!(cfg.deadWeight > 0)) return null;
    const chosen = new Uint8Array(nOut);
    let denominator = 0;
    if (l === L - 1) {
      if (pairs > 0) {
        chosen.fill(1);
        denominator = cfg.deadMean === 1 ? B : pairs;
      }
    } else {
      let count = 0;
      for (let i = 0; i < nOut; i++) {
        if (fired[l]![i]! <= cfg.deadRate * B) {
          chosen[i] = 1;
          count++;
        }
      }
      if (count > 0) denominator = cfg.deadMean === 1 ? B * nOut : B * count;
    }
    return denominator > 0 ? { chosen, factor: cfg.deadWeight / denominator } : null;
  });
}

/**
 * Parameters [lo, hi) of the step's gradient into `total`: the S shards' main gradients summed in
 * shard order, plus the batch-wide dead-neuron term. `all` holds, per shard, its main then its
 * dead gradient, P values each.
 */
export function reduceRange(all: Float32Array, P: number, S: number, deadTerms: readonly DeadTerm[], total: Float32Array, lo: number, hi: number): void {
  total.set(all.subarray(lo, hi), lo);
  for (let s = 1; s < S; s++) {
    const base = s * 2 * P;
    for (let k = lo; k < hi; k++) total[k]! += all[base + k]!;
  }
  for (const d of deadTerms) {
    const size = d.nIn * d.nOut;
    // pE then pI, each [nIn, nOut] row-major: column i is neuron i.
    for (const start of [d.offset, d.offset + size]) {
      const a = Math.max(lo, start);
      const b = Math.min(hi, start + size);
      let column = (a - start) % d.nOut;
      for (let k = a; k < b; k++) {
        if (d.chosen[column]) {
          let sum = 0;
          for (let s = 0; s < S; s++) sum += all[s * 2 * P + P + k]!;
          total[k]! += d.factor * sum;
        }
        if (++column === d.nOut) column = 0;
      }
    }
  }
}

/** Float64 values one shard's result takes in shared memory. */
export function statsLength(layers: readonly LayerSize[]): number {
  return 4 + layers.reduce((a, l) => a + 2 * l.nOut + 1, 0);
}

/** One shard's result into `out` (statsLength values): ce, window, correct, deadLabels, each layer's firing counts, then each layer's dead flag and sums. */
export function writeStats(r: ShardResult, layers: readonly LayerSize[], out: Float64Array): void {
  out[0] = r.ce;
  out[1] = r.window;
  out[2] = r.correct;
  out[3] = r.deadLabels;
  let k = 4;
  layers.forEach((l, i) => {
    for (let j = 0; j < l.nOut; j++) out[k++] = r.fired[i]![j]!;
  });
  layers.forEach((l, i) => {
    const d = r.dead[i]!;
    out[k++] = d.length > 0 ? 1 : 0;
    for (let j = 0; j < l.nOut; j++) out[k++] = d.length > 0 ? d[j]! : 0;
  });
}

/** The result writeStats wrote. */
export function readStats(stats: Float64Array, layers: readonly LayerSize[]): ShardResult {
  let k = 4;
  const fired = layers.map((l) => {
    const a = new Int32Array(l.nOut);
    for (let j = 0; j < l.nOut; j++) a[j] = stats[k++]!;
    return a;
  });
  const dead = layers.map((l) => {
    const present = stats[k++] === 1;
    const a = present ? stats.slice(k, k + l.nOut) : new Float64Array(0);
    k += l.nOut;
    return a;
  });
  return { ce: stats[0]!, window: stats[1]!, correct: stats[2]!, deadLabels: stats[3]!, fired, dead };
}
