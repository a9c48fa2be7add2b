/**
 * Deterministic, stratified index selection: fixed train/test splits, class-balanced
 * subsets for `limitTrain`/`limitTest`, and the final raw-to-float conversion.
 */
import { gatherLabels, gatherRows } from './batching.ts';
import { deriveSeed, Rng } from './rng.ts';
import { DatasetError, type Dataset, type DatasetPart, type LoadOptions, type RawDataset, type RawPart, type UnseenTrainOptions } from './types.ts';

/** Indices of each class, in ascending order. */
export function indicesByClass(y: ArrayLike<number>, classes: number): Uint32Array[] {
  const counts = new Uint32Array(classes);
  for (let i = 0; i < y.length; i++) counts[y[i]!]!++;
  const out = Array.from(counts, (c) => new Uint32Array(c));
  const fill = new Uint32Array(classes);
  for (let i = 0; i < y.length; i++) {
    const c = y[i]!;
    out[c]![fill[c]!++] = i;
  }
  return out;
}

/**
 * Split each class at random (seeded): `testPerClass(count)` of its samples go to test.
 * Both parts are then shuffled with the same seed so classes are interleaved.
 */
export function stratifiedSplit(
  y: ArrayLike<number>,
  classes: number,
  testPerClass: (classCount: number) => number,
  seed: number,
): { train: Uint32Array; test: Uint32Array } {
  const rng = new Rng(seed);
  const train: number[] = [];
  const test: number[] = [];
  for (const members of indicesByClass(y, classes)) {
    const shuffled = rng.shuffle(members.slice());
    const k = testPerClass(shuffled.length);
    for (let i = 0; i < shuffled.length; i++) (i < k ? test : train).push(shuffled[i]!);
  }
  return { train: rng.shuffle(Uint32Array.from(train)), test: rng.shuffle(Uint32Array.from(test)) };
}

/**
 * Choose `k` of the positions 0..y.length-1 so that each class keeps its share
 * (largest-remainder rounding, ties to the lower class), taking the earliest positions
 * of each class in the given order; the result keeps that order.
 */
export function stratifiedSubset(y: ArrayLike<number>, classes: number, k: number): Uint32Array {
  const n = y.length;
  if (k >= n) return Uint32Array.from({ length: n }, (_, i) => i);
  const counts = new Float64Array(classes);
  for (let i = 0; i < n; i++) counts[y[i]!]!++;
  const quota = new Uint32Array(classes);
  const rema: [number, number][] = [];
  let given = 0;
  for (let c = 0; c < classes; c++) {
    const exact = (k * counts[c]!) / n;
    quota[c] = Math.floor(exact);
    given += quota[c]!;
    rema.push([exact - quota[c]!, c]);
  }
  rema.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let r = 0; given < k; r++, given++) quota[rema[r]![1]]!++;
  const out = new Uint32Array(k);
  let m = 0;
  for (let i = 0; i < n && m < k; i++) {
    const c = y[i]!;
    if (quota[c]! > 0) {
      quota[c]!--;
      out[m++] = i;
    }
  }
  return out;
}

/** Rows `idx` of a raw part, in that order. */
export function takeRaw(part: RawPart, features: number, idx: ArrayLike<number>): RawPart {
  const x = part.x instanceof Uint8Array ? new Uint8Array(idx.length * features) : new Float32Array(idx.length * features);
  const y = new Uint8Array(idx.length);
  for (let r = 0; r < idx.length; r++) {
    const i = idx[r]!;
    x.set(part.x.subarray(i * features, (i + 1) * features), r * features);
    y[r] = part.y[i]!;
  }
  return { x, y, n: idx.length };
}

function checkLimit(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
    throw new DatasetError(`${name} must be a non-negative integer, got ${v}; e.g. ${name}: 1000`);
  }
}

/**
 * Rows of `raw[which]` a load keeps, as positions in the raw part, in the order the load gives them: the
 * part reordered by `seed`'s permutation, then its stratified `limit` subset. Undefined when the load keeps
 * the whole part in file order.
 */
export function partIndices(raw: RawDataset, which: 'train' | 'test', limit: number | undefined, seed: number | undefined): Uint32Array | undefined {
  const part = raw[which];
  let idx: Uint32Array | undefined;
  if (seed !== undefined) idx = new Rng(deriveSeed(seed, which === 'test' ? 1 : 0)).permutation(part.n);
  if (limit !== undefined && limit < part.n) {
    const order = idx;
    const y = order ? Uint8Array.from(order, (i) => part.y[i]!) : part.y;
    const picked = stratifiedSubset(y, raw.classes, limit);
    idx = order ? Uint32Array.from(picked, (p) => order[p]!) : picked;
  }
  return idx;
}

/**
 * Positions in the raw training part of up to `u.count` samples that are neither among `taken` (this load's
 * training rows; undefined: the whole part) nor among the rows a load with `u.seenSeed` and `u.seenLimit` keeps (every row when
 * `seenLimit` is absent): a stratified choice, in `seed`'s order, of images no step of that training saw.
 */
export function unseenTrainIndices(raw: RawDataset, u: UnseenTrainOptions, taken: Uint32Array | undefined, seed: number | undefined): Uint32Array {
  const n = raw.train.n;
  const out = new Uint8Array(n);
  const mark = (idx: Uint32Array | undefined) => {
    if (idx === undefined) out.fill(1);
    else for (const i of idx) out[i] = 1;
  };
  mark(u.seenLimit === undefined ? undefined : partIndices(raw, 'train', u.seenLimit, u.seenSeed));
  mark(taken);
  const order = seed !== undefined ? new Rng(deriveSeed(seed, 0x756e73)).permutation(n) : Uint32Array.from({ length: n }, (_, i) => i);
  const free = order.filter((i) => out[i] === 0);
  const picked = stratifiedSubset(
    Array.from(free, (i) => raw.train.y[i]!),
    raw.classes,
    Math.min(u.count, free.length),
  );
  return Uint32Array.from(picked, (p) => free[p]!);
}

function finishPart(raw: RawDataset, which: 'train' | 'test', limit: number | undefined, seed: number | undefined, rows?: Uint32Array): DatasetPart {
  const idx = rows ?? partIndices(raw, which, limit, seed);
  const part = idx ? takeRaw(raw[which], raw.features, idx) : raw[which];
  let x: Float32Array;
  if (part.x instanceof Uint8Array) {
    x = new Float32Array(part.x.length);
    const src = part.x;
    for (let i = 0; i < src.length; i++) x[i] = src[i]! / 255;
  } else {
    x = part.x === raw[which].x ? part.x.slice() : part.x;
  }
  const out: DatasetPart = {
    name: `${raw.name}/${which}`,
    x,
    y: part.y === raw[which].y ? part.y.slice() : part.y,
    n: part.n,
    features: raw.features,
    classes: raw.classes,
    classNames: raw.classNames,
  };
  if (raw.shape) out.shape = [...raw.shape];
  return out;
}

/** Apply seed and limits, convert to float in [0, 1]. */
export function finishDataset(raw: RawDataset, opts: LoadOptions = {}): Dataset {
  checkLimit('limitTrain', opts.limitTrain);
  checkLimit('limitTest', opts.limitTest);
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) {
    throw new DatasetError(`seed must be an integer, got ${opts.seed}`);
  }
  const trainRows = partIndices(raw, 'train', opts.limitTrain, opts.seed);
  const train = finishPart(raw, 'train', opts.limitTrain, opts.seed, trainRows);
  const test = finishPart(raw, 'test', opts.limitTest, opts.seed);
  let split = raw.split;
  if (opts.seed !== undefined) split += `; parts reordered with seed ${opts.seed}`;
  if (train.n < raw.train.n || test.n < raw.test.n) split += `; stratified subset ${train.n}/${test.n} of ${raw.train.n}/${raw.test.n}`;
  const ds: Dataset = {
    name: raw.name,
    train,
    test,
    features: raw.features,
    classes: raw.classes,
    classNames: raw.classNames,
    source: raw.source,
    split,
    trainPartSize: raw.train.n,
  };
  if (raw.shape) ds.shape = [...raw.shape];
  if (raw.normalization) ds.normalization = raw.normalization;
  if (raw.cache) ds.cache = raw.cache;
  if (opts.unseenTrain) {
    const rows = unseenTrainIndices(raw, opts.unseenTrain, trainRows, opts.seed);
    ds.unseen = { ...finishPart(raw, 'train', undefined, undefined, rows), name: `${raw.name}/unseen`, rows };
  }
  return ds;
}

/**
 * Carve `k` samples off a part as a validation split: a seeded, stratified choice (each class keeps its
 * share), so model selection never looks at the test part. The rest keeps the part's order. Indices
 * are positions in `part`; `train` and `val` are new packed parts.
 */
export function holdOut(
  part: DatasetPart,
  k: number,
  seed: number,
): { train: DatasetPart; val: DatasetPart; trainIndices: Uint32Array; valIndices: Uint32Array } {
  if (!Number.isInteger(k) || k < 0 || k >= part.n)
    throw new DatasetError(`a validation split of ${k} samples does not fit a training part of ${part.n}: take from 0 to ${part.n - 1}`);
  // Its own sub-stream: not the order of any epoch (deriveSeed(seed, epoch)) nor of the parts (0, 1).
  const order = new Rng(deriveSeed(seed, 0x76616c)).permutation(part.n);
  const picked = stratifiedSubset(
    Array.from(order, (i) => part.y[i]!),
    part.classes,
    k,
  );
  const inVal = new Uint8Array(part.n);
  const valIndices = Uint32Array.from(picked, (p) => order[p]!);
  for (const i of valIndices) inVal[i] = 1;
  const trainIndices = new Uint32Array(part.n - k);
  for (let i = 0, m = 0; i < part.n; i++) if (!inVal[i]) trainIndices[m++] = i;
  const take = (idx: Uint32Array, which: string): DatasetPart => ({
    ...part,
    name: `${part.name}/${which}`,
    x: gatherRows(part.x, part.features, idx),
    y: gatherLabels(part.y, idx),
    n: idx.length,
    ...(part.shape ? { shape: [...part.shape] as [number, number, number] } : {}),
  });
  return { train: take(trainIndices, 'fit'), val: take(valIndices, 'validation'), trainIndices, valIndices };
}
