/**
 * Iris: the SNN (DSTD on the PNN, `spikeloop train --dataset iris` presets) beside classical
 * reference classifiers on the same data, so its accuracy is judged against what the data allow
 * rather than against a figure from another split. Prints ONE JSON line:
 *
 *   fixed_split: { test_n, snn: { per_seed, mean }, knn1, knn3, knn5, softmax, missed_by_all_references }
 *     the package's fixed 105 / 45 split (models/datasets/iris.ts); accuracies as fractions;
 *     missed_by_all_references = test rows (indices into the test part) that every reference gets wrong.
 *   cv5: { seeds, per_seed, snn, knn5, softmax }  stratified 5-fold cross-validation over all 150 samples
 *     with the folds `spikeloop train --cv 5 --seed S` uses (scaling fitted per fold): pooled accuracy per
 *     seed (folds and initialisation both follow it) and the mean over the seeds.
 *
 * The SNN runs through the CLI (one process per run), the references in process. Environment:
 * IRIS_SEEDS (default 1,2,3,4,5), IRIS_CV_SEEDS (default 1,2,3,4,5), IRIS_SNN=0 skips the SNN runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { foldParts, loadPooledDataset, stratifiedFolds } from '../models/datasets/cross-validation.ts';
import { loadIris } from '../models/datasets/iris.ts';

/** A comma-separated list of seeds from environment variable `name` (each a whole number >= 0). */
function seedList(name: string): number[] {
  const raw = process.env[name] ?? '1,2,3,4,5';
  const parts = raw.split(',').map((x) => x.trim());
  if (!parts.every((x) => /^\d+$/.test(x))) throw new RangeError(`${name} must be comma-separated whole numbers like 1,2,3, got ${JSON.stringify(raw)}`);
  return parts.map(Number);
}
const seeds = seedList('IRIS_SEEDS');
const cvSeeds = seedList('IRIS_CV_SEEDS');
const runSnn = process.env.IRIS_SNN !== '0';
const cli = fileURLToPath(new URL('../bin/spikeloop.js', import.meta.url));

/** Row-major n x features values, labels. */
interface Part {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  n: number;
}

/** k nearest neighbours (Euclidean, majority vote, ties to the nearer class); per test row: right? */
function knn(train: Part, test: Part, F: number, k: number, classes: number): boolean[] {
  const d = new Float64Array(train.n);
  const order = new Uint32Array(train.n);
  const out: boolean[] = [];
  for (let i = 0; i < test.n; i++) {
    for (let j = 0; j < train.n; j++) {
      let s = 0;
      for (let f = 0; f < F; f++) {
        const q = test.x[i * F + f]! - train.x[j * F + f]!;
        s += q * q;
      }
      d[j] = s;
      order[j] = j;
    }
    order.sort((a, b) => d[a]! - d[b]! || a - b);
    const votes = new Float64Array(classes);
    // Nearer neighbours break ties: a vote of 1 plus a tiny share of its rank.
    for (let m = 0; m < k; m++) votes[train.y[order[m]!]!] += 1 + (k - m) * 1e-6;
    out.push(argmax(votes) === test.y[i]);
  }
  return out;
}

/** Multinomial logistic regression (softmax on the features plus a bias), full-batch gradient descent. */
function softmaxRegression(train: Part, test: Part, F: number, classes: number, iterations = 5000, lr = 0.5): boolean[] {
  const D = F + 1;
  const W = new Float64Array(classes * D);
  const G = new Float64Array(classes * D);
  const z = new Float64Array(classes);
  const scores = (x: ArrayLike<number>, i: number) => {
    for (let c = 0; c < classes; c++) {
      let s = W[c * D + F]!;
      for (let f = 0; f < F; f++) s += W[c * D + f]! * x[i * F + f]!;
      z[c] = s;
    }
  };
  for (let it = 0; it < iterations; it++) {
    G.fill(0);
    for (let i = 0; i < train.n; i++) {
      scores(train.x, i);
      const m = Math.max(...z);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += (z[c] = Math.exp(z[c]! - m));
      for (let c = 0; c < classes; c++) {
        const g = z[c]! / sum - (train.y[i] === c ? 1 : 0);
        for (let f = 0; f < F; f++) G[c * D + f] += g * train.x[i * F + f]!;
        G[c * D + F] += g;
      }
    }
    for (let k = 0; k < W.length; k++) W[k] -= (lr * G[k]!) / train.n;
  }
  const out: boolean[] = [];
  for (let i = 0; i < test.n; i++) {
    scores(test.x, i);
    out.push(argmax(z) === test.y[i]);
  }
  return out;
}

function argmax(v: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[b]!) b = i;
  return b;
}

const acc = (r: boolean[]) => r.filter(Boolean).length / r.length;
const round = (x: number) => Math.round(x * 1e4) / 1e4;

/** `spikeloop train --dataset iris ... --json` in a scratch folder; its summary line. */
function snnRun(args: string[]): { test_acc: number } {
  const dir = mkdtempSync(join(tmpdir(), 'spikeloop-iris-bench-'));
  try {
    const out = execFileSync(process.execPath, [cli, 'train', '--dataset', 'iris', '--out', join(dir, 'run'), '--json', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const last = out.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as { test_acc: number };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const iris = loadIris();
const refs = {
  knn1: knn(iris.train, iris.test, iris.features, 1, iris.classes),
  knn3: knn(iris.train, iris.test, iris.features, 3, iris.classes),
  knn5: knn(iris.train, iris.test, iris.features, 5, iris.classes),
  softmax: softmaxRegression(iris.train, iris.test, iris.features, iris.classes),
};
const missedByAll = [...Array(iris.test.n).keys()].filter((i) => Object.values(refs).every((r) => !r[i]));
const fixed: Record<string, unknown> = {
  split: iris.split,
  test_n: iris.test.n,
  ...Object.fromEntries(Object.entries(refs).map(([k, r]) => [k, round(acc(r))])),
  missed_by_all_references: missedByAll,
};
if (runSnn) {
  const perSeed = seeds.map((s) => {
    process.stderr.write(`iris SNN, fixed split, seed ${s}\n`);
    return round(snnRun(['--seed', String(s)]).test_acc);
  });
  fixed.snn = { per_seed: perSeed, mean: round(perSeed.reduce((a, b) => a + b, 0) / perSeed.length) };
}

const pool = await loadPooledDataset('iris');
const cvRows = cvSeeds.map((seed) => {
  const folds = stratifiedFolds(pool.y, pool.classes, 5, seed);
  const right = { knn5: [] as boolean[], softmax: [] as boolean[] };
  for (let f = 0; f < 5; f++) {
    const p = foldParts(pool, folds, f, seed);
    right.knn5.push(...knn(p.train, p.test, pool.features, 5, pool.classes));
    right.softmax.push(...softmaxRegression(p.train, p.test, pool.features, pool.classes));
  }
  const row: Record<string, number> = { seed, knn5: acc(right.knn5), softmax: acc(right.softmax) };
  if (runSnn) {
    process.stderr.write(`iris SNN, 5-fold cross-validation, seed ${seed}\n`);
    row.snn = snnRun(['--cv', '5', '--seed', String(seed)]).test_acc;
  }
  return row;
});
const mean = (k: string) => round(cvRows.reduce((a, r) => a + r[k]!, 0) / cvRows.length);
const cv: Record<string, unknown> = {
  seeds: cvSeeds,
  per_seed: cvRows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, k === 'seed' ? v : round(v)]))),
  knn5: mean('knn5'),
  softmax: mean('softmax'),
  ...(runSnn ? { snn: mean('snn') } : {}),
};

console.log(JSON.stringify({ fixed_split: fixed, cv5: cv }));
