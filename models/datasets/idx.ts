/**
 * IDX files (the MNIST family's format) and directories holding a train/test set of them.
 *
 * An IDX file is: two zero bytes, a type code, the number of dimensions d, then d
 * big-endian uint32 sizes, then the values big-endian, row-major. Files may be gzipped
 * (as downloaded); that is detected from the content, not only the `.gz` suffix.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DatasetError, type RawDataset } from './types.ts';

export type IdxDType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDType;
  dims: number[];
  data: IdxData;
}

const TYPES: Record<number, { dtype: IdxDType; size: number }> = {
  0x08: { dtype: 'uint8', size: 1 },
  0x09: { dtype: 'int8', size: 1 },
  0x0b: { dtype: 'int16', size: 2 },
  0x0c: { dtype: 'int32', size: 4 },
  0x0d: { dtype: 'float32', size: 4 },
  0x0e: { dtype: 'float64', size: 8 },
};

/** A short description of what a file that is not IDX looks like, for error messages. */
export function describeStart(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.subarray(0, 16));
  const text = head.toString('latin1');
  if (/^\s*<(!doctype|html|\?xml)/i.test(text)) return 'it starts like an HTML/XML page (a failed download?)';
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'it is gzip data';
  if (bytes[0] === 0x80 && (bytes[1] ?? 0) <= 5) return 'it starts like a Python pickle';
  return `its first bytes are ${[...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`;
}

/**
 * Parse IDX bytes. `file` names the source in error messages.
 * Validates the magic number, the type code, the dimensions and the length.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const fix = 'use the original IDX files (e.g. train-images-idx3-ubyte) or download them again';
  if (bytes.byteLength < 4) throw new DatasetError(`${file}: ${bytes.byteLength} bytes, too short for an IDX header; ${fix}`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DatasetError(`${file}: not an IDX file (magic number must start with two zero bytes, but ${describeStart(bytes)}); ${fix}`);
  }
  const t = TYPES[bytes[2]!];
  if (!t) {
    throw new DatasetError(`${file}: unknown IDX type code 0x${bytes[2]!.toString(16).padStart(2, '0')} (valid: 08 09 0b 0c 0d 0e); ${fix}`);
  }
  const nd = bytes[3]!;
  if (nd < 1) throw new DatasetError(`${file}: IDX header declares 0 dimensions; ${fix}`);
  const headerLen = 4 + 4 * nd;
  if (bytes.byteLength < headerLen) {
    throw new DatasetError(`${file}: truncated: ${nd} dimensions need a ${headerLen}-byte header but the file has ${bytes.byteLength} bytes; ${fix}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < nd; i++) {
    const d = dv.getUint32(4 + 4 * i, false);
    if (d === 0) throw new DatasetError(`${file}: dimension ${i} is 0, the file holds no data; ${fix}`);
    dims.push(d);
    count *= d;
  }
  const expected = headerLen + count * t.size;
  if (bytes.byteLength !== expected) {
    const what = bytes.byteLength < expected ? 'truncated' : 'has trailing bytes';
    throw new DatasetError(`${file}: ${what}: dims [${dims.join(', ')}] of ${t.dtype} need ${expected} bytes but the file has ${bytes.byteLength}; ${fix}`);
  }
  let data: IdxData;
  const body = bytes.subarray(headerLen);
  switch (t.dtype) {
    case 'uint8':
      data = new Uint8Array(body); // copy: detaches from the (possibly larger) file buffer
      break;
    case 'int8':
      data = new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
      break;
    default: {
      const out =
        t.dtype === 'int16'
          ? new Int16Array(count)
          : t.dtype === 'int32'
            ? new Int32Array(count)
            : t.dtype === 'float32'
              ? new Float32Array(count)
              : new Float64Array(count);
      const get =
        t.dtype === 'int16'
          ? (o: number) => dv.getInt16(o, false)
          : t.dtype === 'int32'
            ? (o: number) => dv.getInt32(o, false)
            : t.dtype === 'float32'
              ? (o: number) => dv.getFloat32(o, false)
              : (o: number) => dv.getFloat64(o, false);
      for (let i = 0; i < count; i++) out[i] = get(headerLen + i * t.size);
      data = out;
    }
  }
  return { dtype: t.dtype, dims, data };
}

/** Read bytes, gunzipping when the content is gzip (whatever the suffix). */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = await readFile(path);
  if (raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (err) {
      throw new DatasetError(`${path}: gzip data is damaged (${(err as Error).message}); download the file again`);
    }
  }
  if (path.endsWith('.gz')) throw new DatasetError(`${path}: named .gz but is not gzip data; rename it without .gz or download it again`);
  return raw;
}

export async function readIdxFile(path: string): Promise<IdxArray> {
  return parseIdx(await readMaybeGzip(path), path);
}

/** The four files of an IDX train/test set, by role. */
const ROLES = {
  trainImages: ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'],
  trainLabels: ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'],
  testImages: ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte'],
  testLabels: ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'],
} as const;

/** Find the role's file in `dir` (also with .gz); throws listing what was expected and found. */
export function findIdxFile(dir: string, role: keyof typeof ROLES): string {
  for (const base of ROLES[role]) {
    for (const name of [base, `${base}.gz`]) {
      const p = join(dir, name);
      if (existsSync(p)) return p;
    }
  }
  let found = '(none)';
  try {
    found = readdirSync(dir).slice(0, 12).join(', ') || '(empty)';
  } catch {
    /* dir check below reports it */
  }
  throw new DatasetError(
    `idx:${dir}: missing ${ROLES[role][0]} (or .gz); found ${found}. An IDX directory needs train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte`,
  );
}

function asImages(a: IdxArray, file: string): { n: number; shape: [number, number, number] } {
  if (a.dtype !== 'uint8') throw new DatasetError(`${file}: images must be uint8 (type code 0x08), got ${a.dtype}`);
  if (a.dims.length === 3) return { n: a.dims[0]!, shape: [a.dims[1]!, a.dims[2]!, 1] };
  if (a.dims.length === 4) return { n: a.dims[0]!, shape: [a.dims[1]!, a.dims[2]!, a.dims[3]!] };
  throw new DatasetError(`${file}: images need 3 dimensions (count, rows, cols) or 4 (…, channels), got [${a.dims.join(', ')}]; is this a labels file?`);
}

function asLabels(a: IdxArray, file: string): Uint8Array {
  if (a.dtype !== 'uint8' || a.dims.length !== 1) {
    throw new DatasetError(`${file}: labels must be 1-dimensional uint8, got ${a.dtype} [${a.dims.join(', ')}]; is this an images file?`);
  }
  return a.data as Uint8Array;
}

export interface IdxDirOptions {
  name?: string;
  source?: string;
  split?: string;
  classNames?: readonly string[];
}

/**
 * Load an IDX train/test set from a directory. Validates that images and labels agree
 * in count, that train and test images have the same shape, and that every test label
 * is a class seen in training.
 */
export async function loadIdxDir(dir: string, opts: IdxDirOptions = {}): Promise<RawDataset> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DatasetError(`idx:${dir}: not a directory; pass the folder that holds the IDX files, e.g. idx:./data/mnist`);
  }
  const paths = {
    trainImages: findIdxFile(dir, 'trainImages'),
    trainLabels: findIdxFile(dir, 'trainLabels'),
    testImages: findIdxFile(dir, 'testImages'),
    testLabels: findIdxFile(dir, 'testLabels'),
  };
  const [ti, tl, si, sl] = await Promise.all([
    readIdxFile(paths.trainImages),
    readIdxFile(paths.trainLabels),
    readIdxFile(paths.testImages),
    readIdxFile(paths.testLabels),
  ]);
  const train = asImages(ti, paths.trainImages);
  const test = asImages(si, paths.testImages);
  const trainY = asLabels(tl, paths.trainLabels);
  const testY = asLabels(sl, paths.testLabels);
  if (trainY.length !== train.n) {
    throw new DatasetError(
      `${paths.trainLabels}: ${trainY.length} labels but ${basename(paths.trainImages)} has ${train.n} images; the files are from different sets`,
    );
  }
  if (testY.length !== test.n) {
    throw new DatasetError(
      `${paths.testLabels}: ${testY.length} labels but ${basename(paths.testImages)} has ${test.n} images; the files are from different sets`,
    );
  }
  if (train.shape.join('x') !== test.shape.join('x')) {
    throw new DatasetError(
      `${paths.testImages}: images are ${test.shape.join('x')} but training images are ${train.shape.join('x')}; the files are from different sets`,
    );
  }
  let classes = 0;
  for (const v of trainY) if (v + 1 > classes) classes = v + 1;
  for (let i = 0; i < testY.length; i++) {
    if (testY[i]! >= classes) {
      throw new DatasetError(
        `${paths.testLabels}: label ${testY[i]} at index ${i} is outside the training labels 0..${classes - 1}; the files are from different sets`,
      );
    }
  }
  if (opts.classNames && opts.classNames.length < classes) {
    throw new DatasetError(`${paths.trainLabels}: labels go up to ${classes - 1} but only ${opts.classNames.length} class names are known`);
  }
  const features = train.shape[0] * train.shape[1] * train.shape[2];
  return {
    name: opts.name ?? 'idx',
    source: opts.source ?? `idx:${dir}`,
    split: opts.split ?? `the files' own split: ${train.n} train / ${test.n} test`,
    features,
    classes,
    shape: train.shape,
    classNames: opts.classNames ? opts.classNames.slice(0, classes) : Array.from({ length: classes }, (_, i) => String(i)),
    train: { x: ti.data as Uint8Array, y: trainY, n: train.n },
    test: { x: si.data as Uint8Array, y: testY, n: test.n },
  };
}
