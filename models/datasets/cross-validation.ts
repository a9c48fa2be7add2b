/**
 * Stratified K-fold cross-validation: a data set's train and test parts pooled, each sample given
 * one of K folds (seeded), and per fold a training part (the other K-1 folds) and a held-out part.
 *
 * The pool is either every sample (`all`: an estimate of how well the method does on the data) or
 * the training part only (`train`: for choosing settings; the test part stays unseen, so it still
 * gives an unbiased figure for the settings chosen).
 *
 * Scaling: a data set scaled with fixed constants (pixels / 255) is pooled as loaded. Iris is
 * min-max scaled with statistics of a training part, so it is pooled from its raw samples and
 * rescaled per fold with the fold's training folds only (scaling.ts); the held-out fold never
 * shapes the scaling.
 */
import { parseDatasetSpec, loadDataset } from './load.ts';
import { irisFixedSplit, readIrisSamples } from './iris.ts';
import { deriveSeed, Rng } from './rng.ts';
import { applyMinMax, fitMinMax, type MinMax } from './scaling.ts';
import { indicesByClass } from './split.ts';
import type { DatasetPart } from './types.ts';

/** A wrong fold count for a data set (K above the smallest class's count). */
export class CrossValidationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CrossValidationError';
  }
}

/** Every sample of a data set in one pool, with how its features are to be scaled per fold. */
export interface PooledDataset {
  name: string;
  source: string;
  /** Row-major n x features: raw values when `scaling` is 'min-max-per-fold', else already in [0, 1]. */
  x: Float32Array | Float64Array;
  y: Uint8Array;
  n: number;
  features: number;
  classes: number;
  classNames: readonly string[];
  shape?: [number, number, number];
  scaling: 'fixed' | 'min-max-per-fold';
  /** Which samples were pooled (CvPart). */
  part: CvPart;
  /**
   * Sample number of each pooled row, in the data set's own numbering: iris's package order
   * (0..149), else the training part followed by the test part.
   */
  sampleIndex: Uint32Array;
}

/** What cross-validation pools: every sample, or the training part only (the test part unseen). */
export const CV_PARTS = ['all', 'train'] as const;
export type CvPart = (typeof CV_PARTS)[number];

/** Which samples a pool holds, in words (console, report). */
export function describePool(pool: Pick<PooledDataset, 'part' | 'n'>): string {
  return pool.part === 'all' ? `all ${pool.n} samples (train and test parts)` : `the ${pool.n} samples of the training part (the test part unseen)`;
}

/**
 * Pool a data set's samples for cross-validation (iris: its raw samples, in the package's order;
 * with `part` 'train' only those of the fixed split's training part).
 */
export async function loadPooledDataset(spec: string, part: CvPart = 'all'): Promise<PooledDataset> {
  if (parseDatasetSpec(spec).kind === 'iris') {
    const s = readIrisSamples();
    const keep = part === 'all' ? Uint32Array.from({ length: s.n }, (_, i) => i) : irisFixedSplit(s.y).train.slice().sort();
    const x = new Float64Array(keep.length * s.features);
    keep.forEach((i, r) => x.set(s.x.subarray(i * s.features, (i + 1) * s.features), r * s.features));
    const y = Uint8Array.from(keep, (i) => s.y[i]!);
    return {
      name: 'iris',
      source: s.source,
      x,
      y,
      n: keep.length,
      features: s.features,
      classes: s.classNames.length,
      classNames: s.classNames,
      scaling: 'min-max-per-fold',
      part,
      sampleIndex: keep,
    };
  }
  const d = await loadDataset(spec);
  const n = d.train.n + (part === 'all' ? d.test.n : 0);
  const x = new Float32Array(n * d.features);
  x.set(d.train.x.subarray(0, d.train.n * d.features));
  const y = new Uint8Array(n);
  y.set(d.train.y.subarray(0, d.train.n));
  if (part === 'all') {
    x.set(d.test.x.subarray(0, d.test.n * d.features), d.train.n * d.features);
    y.set(d.test.y.subarray(0, d.test.n), d.train.n);
  }
  const sampleIndex = Uint32Array.from({ length: n }, (_, i) => i);
  return {
    name: d.name,
    source: d.source,
    x,
    y,
    n,
    features: d.features,
    classes: d.classes,
    classNames: d.classNames,
    ...(d.shape ? { shape: d.shape } : {}),
    scaling: 'fixed',
    part,
    sampleIndex,
  };
}

/** Samples per class. */
export function classCounts(y: ArrayLike<number>, classes: number): number[] {
  return indicesByClass(y, classes).map((m) => m.length);
}

/** Undefined when `k` folds fit every class (each fold then holds every class), else why not. */
export function foldCountProblem(y: ArrayLike<number>, classes: number, classNames: readonly string[], k: number): string | undefined {
  const counts = classCounts(y, classes);
  let c = 0;
  for (let i = 1; i < classes; i++) if (counts[i]! < counts[c]!) c = i;
  if (k > counts[c]!) {
    return `--cv ${k} needs at least ${k} samples of every class, but class ${classNames[c] ?? c} has ${counts[c]}; use --cv ${Math.max(2, counts[c]!)} or fewer folds`;
  }
  return undefined;
}

/**
 * The fold (0..k-1) of every sample. Each class is shuffled with `seed` and dealt round-robin,
 * each class starting where the previous one stopped: per class, fold counts differ by at most
 * one, and so do the fold sizes.
 */
export function stratifiedFolds(y: ArrayLike<number>, classes: number, k: number, seed: number): Uint8Array {
  if (!Number.isInteger(k) || k < 2 || k > 255) throw new RangeError(`folds must be an integer in [2, 255], got ${k}`);
  const rng = new Rng(deriveSeed(seed, 0x6376));
  const fold = new Uint8Array(y.length);
  let next = 0;
  for (const members of indicesByClass(y, classes)) {
    const shuffled = rng.shuffle(members.slice());
    for (const i of shuffled) {
      fold[i] = next;
      next = (next + 1) % k;
    }
  }
  return fold;
}

export interface FoldParts {
  train: DatasetPart;
  test: DatasetPart;
  /** Pooled indices of the held-out samples, ascending. */
  testIndices: Uint32Array;
  /** The scaling fitted on the training folds (min-max pools only). */
  normalization?: MinMax;
}

/**
 * Fold `f`'s training part (every other fold, in an order shuffled with `seed`, so that no prefix
 * is one class) and held-out part (ascending), both scaled from the training part only.
 */
export function foldParts(pool: PooledDataset, folds: Uint8Array, f: number, seed: number): FoldParts {
  const trainIdx: number[] = [];
  const testIdx: number[] = [];
  for (let i = 0; i < pool.n; i++) (folds[i] === f ? testIdx : trainIdx).push(i);
  const train = new Rng(deriveSeed(seed, 0x6376, f + 1)).shuffle(Uint32Array.from(trainIdx));
  const test = Uint32Array.from(testIdx);
  const normalization = pool.scaling === 'min-max-per-fold' ? fitMinMax(pool.x, pool.features, train) : undefined;
  const part = (idx: Uint32Array, which: string): DatasetPart => {
    let x: Float32Array;
    if (normalization) x = applyMinMax(pool.x, pool.features, idx, normalization);
    else {
      x = new Float32Array(idx.length * pool.features);
      idx.forEach((i, r) => x.set(pool.x.subarray(i * pool.features, (i + 1) * pool.features), r * pool.features));
    }
    return {
      name: `${pool.name}/cv-fold-${f + 1}-${which}`,
      x,
      y: Uint8Array.from(idx, (i) => pool.y[i]!),
      n: idx.length,
      features: pool.features,
      classes: pool.classes,
      classNames: pool.classNames,
      ...(pool.shape ? { shape: pool.shape } : {}),
    };
  };
  return { train: part(train, 'train'), test: part(test, 'test'), testIndices: test, ...(normalization ? { normalization } : {}) };
}
