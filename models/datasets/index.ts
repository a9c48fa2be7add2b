export type { Dataset, DatasetPart, LoadOptions, RawDataset, RawPart } from './types.ts';
export { DatasetError } from './types.ts';
export { loadDataset, parseDatasetSpec, DATASET_SPECS, type DatasetSpec } from './load.ts';
export { Rng, mulberry32, deriveSeed, fmix32, seededPermutation } from './rng.ts';
export { batches, miniBatches, epochOrder, gatherRows, gatherLabels, type Batch, type BatchOptions } from './batching.ts';
export { ttfsTimes, ttfsTicks, type TtfsOptions, type TtfsTickOptions } from './coding.ts';
export { parseIdx, readIdxFile, loadIdxDir, type IdxArray } from './idx.ts';
export { parseCifarBatch, loadCifar10Dir, CIFAR10_CLASS_NAMES } from './cifar.ts';
export { stratifiedSplit, stratifiedSubset } from './split.ts';
export { IRIS_SPLIT_SEED, IRIS_TEST_PER_CLASS, IRIS_FEATURE_NAMES } from './iris.ts';
export { FASHION_CLASS_NAMES, FASHION_ORDER_SEED, FASHION_TEST_DIVISOR } from './fashion-mnist.ts';
export { cacheRoot, datasetCacheDir } from './cache.ts';
export { loadIris } from './iris.ts';
export { loadMnist } from './mnist.ts';
export { loadFashionMnist, type FashionLoadOptions } from './fashion-mnist.ts';
export { readIrisSamples, irisFixedSplit } from './iris.ts';
export { fitMinMax, applyMinMax, type MinMax } from './scaling.ts';
export {
  loadPooledDataset,
  describePool,
  stratifiedFolds,
  foldParts,
  foldCountProblem,
  classCounts,
  CrossValidationError,
  CV_PARTS,
  type CvPart,
  type PooledDataset,
  type FoldParts,
} from './cross-validation.ts';
