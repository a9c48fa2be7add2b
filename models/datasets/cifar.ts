/**
 * CIFAR-10 binary batches (the "binary version" from the CIFAR site): each record is
 * 1 label byte (0..9) and 3072 pixel bytes, 1024 red then 1024 green then 1024 blue,
 * each plane row-major 32x32 (CHW). We convert to HWC so rows match `shape [32,32,3]`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describeStart, readMaybeGzip } from './idx.ts';
import { DatasetError, type RawDataset } from './types.ts';

export const CIFAR_SIDE = 32;
export const CIFAR_PIXELS = CIFAR_SIDE * CIFAR_SIDE * 3;
export const CIFAR_RECORD = 1 + CIFAR_PIXELS;
export const CIFAR10_CLASS_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'] as const;

/** Parse one batch file's bytes; `x` is HWC uint8, `n x 3072`. */
export function parseCifarBatch(bytes: Uint8Array, file: string): { x: Uint8Array; y: Uint8Array; n: number } {
  const fix = 'use the CIFAR-10 binary version (cifar-10-binary.tar.gz: data_batch_1.bin ... test_batch.bin)';
  if (bytes.byteLength === 0) throw new DatasetError(`${file}: empty file; ${fix}`);
  if (bytes.byteLength % CIFAR_RECORD !== 0) {
    const hint = bytes[0] === 0x80 ? ' (it looks like the Python pickle version)' : ` (${describeStart(bytes)})`;
    throw new DatasetError(
      `${file}: ${bytes.byteLength} bytes is not a whole number of ${CIFAR_RECORD}-byte records${hint}; truncated or not a CIFAR-10 binary batch; ${fix}`,
    );
  }
  const n = bytes.byteLength / CIFAR_RECORD;
  const x = new Uint8Array(n * CIFAR_PIXELS);
  const y = new Uint8Array(n);
  const plane = CIFAR_SIDE * CIFAR_SIDE;
  for (let r = 0; r < n; r++) {
    const base = r * CIFAR_RECORD;
    const label = bytes[base]!;
    if (label > 9) {
      throw new DatasetError(
        `${file}: record ${r} has label ${label}, outside 0..9 (CIFAR-100 binaries have 2 label bytes per record and are not read here); ${fix}`,
      );
    }
    y[r] = label;
    const out = r * CIFAR_PIXELS;
    for (let p = 0; p < plane; p++) {
      x[out + 3 * p] = bytes[base + 1 + p]!;
      x[out + 3 * p + 1] = bytes[base + 1 + plane + p]!;
      x[out + 3 * p + 2] = bytes[base + 1 + 2 * plane + p]!;
    }
  }
  return { x, y, n };
}

function resolveBatchDir(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new DatasetError(`cifar10:${dir}: not a directory; pass the folder holding data_batch_1.bin ... test_batch.bin`);
  }
  // The official tarball unpacks into cifar-10-batches-bin/; accept its parent too.
  const inner = join(dir, 'cifar-10-batches-bin');
  if (!existsSync(join(dir, 'test_batch.bin')) && existsSync(join(inner, 'test_batch.bin'))) return inner;
  return dir;
}

function findBatch(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) if (existsSync(join(dir, name))) return join(dir, name);
  const found = readdirSync(dir).slice(0, 12).join(', ') || '(empty)';
  const pickle = existsSync(join(dir, base.replace(/\.bin$/, '')))
    ? ' The files without .bin are the Python pickle version; download the binary version (cifar-10-binary.tar.gz).'
    : '';
  throw new DatasetError(`cifar10:${dir}: missing ${base}; found ${found}.${pickle} Expected data_batch_1.bin ... data_batch_5.bin and test_batch.bin`);
}

function readClassNames(dir: string): readonly string[] {
  const meta = join(dir, 'batches.meta.txt');
  if (!existsSync(meta)) return CIFAR10_CLASS_NAMES;
  const names = readFileSync(meta, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== 10) {
    throw new DatasetError(`${meta}: expected 10 class names (one a line), found ${names.length}; delete the file to use the standard names`);
  }
  return names;
}

/** Load data_batch_1..5.bin (train, 50000) and test_batch.bin (test, 10000). */
export async function loadCifar10Dir(dirArg: string): Promise<RawDataset> {
  const dir = resolveBatchDir(dirArg);
  const trainFiles = [1, 2, 3, 4, 5].map((i) => findBatch(dir, `data_batch_${i}.bin`));
  const testFile = findBatch(dir, 'test_batch.bin');
  const parts = await Promise.all([...trainFiles, testFile].map(async (f) => parseCifarBatch(await readMaybeGzip(f), f)));
  const test = parts.pop()!;
  const n = parts.reduce((s, p) => s + p.n, 0);
  const x = new Uint8Array(n * CIFAR_PIXELS);
  const y = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * CIFAR_PIXELS);
    y.set(p.y, at);
    at += p.n;
  }
  return {
    name: 'cifar10',
    source: `cifar10:${dirArg}`,
    split: `the official split: data_batch_1..5 = ${n} train, test_batch = ${test.n} test`,
    features: CIFAR_PIXELS,
    classes: 10,
    shape: [CIFAR_SIDE, CIFAR_SIDE, 3],
    classNames: readClassNames(dir),
    train: { x, y, n },
    test,
  };
}
