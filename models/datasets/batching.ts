/**
 * Mini-batches over a data set part: a seeded per-epoch order, index batches, and
 * gathers of the rows and labels into contiguous arrays.
 */
import { deriveSeed, Rng } from './rng.ts';
import type { DatasetPart } from './types.ts';

/** The visiting order of epoch `epoch` under run seed `seed` (independent of other epochs). */
export function epochOrder(n: number, seed: number, epoch: number): Uint32Array {
  return new Rng(deriveSeed(seed, epoch)).permutation(n);
}

export interface BatchOptions {
  /** Skip a final batch smaller than batchSize (default false). */
  dropLast?: boolean;
}

/** Consecutive slices of `order` (or of 0..n-1 when a count is given), `batchSize` at a time. */
export function* miniBatches(order: Uint32Array | number, batchSize: number, opts: BatchOptions = {}): Generator<Uint32Array> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const idx = typeof order === 'number' ? Uint32Array.from({ length: order }, (_, i) => i) : order;
  for (let s = 0; s < idx.length; s += batchSize) {
    const e = Math.min(idx.length, s + batchSize);
    if (e - s < batchSize && opts.dropLast) return;
    yield idx.subarray(s, e);
  }
}

/** Rows `indices` of a row-major `? x features` array, packed. */
export function gatherRows(x: Float32Array, features: number, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const o = out ?? new Float32Array(indices.length * features);
  if (o.length < indices.length * features) throw new RangeError(`gatherRows: out holds ${o.length} values, need ${indices.length * features}`);
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r]!;
    o.set(x.subarray(i * features, (i + 1) * features), r * features);
  }
  return o;
}

export function gatherLabels(y: Uint8Array, indices: ArrayLike<number>, out?: Uint8Array): Uint8Array {
  const o = out ?? new Uint8Array(indices.length);
  for (let r = 0; r < indices.length; r++) o[r] = y[indices[r]!]!;
  return o;
}

export interface Batch {
  x: Float32Array;
  y: Uint8Array;
  indices: Uint32Array;
  size: number;
}

/** One epoch of shuffled batches of a part: `for (const b of batches(ds.train, 64, { seed, epoch }))`. */
export function* batches(
  part: Pick<DatasetPart, 'x' | 'y' | 'n' | 'features'>,
  batchSize: number,
  opts: BatchOptions & { seed?: number; epoch?: number } = {},
): Generator<Batch> {
  const order = opts.seed === undefined ? part.n : epochOrder(part.n, opts.seed, opts.epoch ?? 0);
  for (const indices of miniBatches(order, batchSize, opts)) {
    yield { x: gatherRows(part.x, part.features, indices), y: gatherLabels(part.y, indices), indices, size: indices.length };
  }
}
