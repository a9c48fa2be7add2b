/**
 * The keep rule on prediction vectors whose answer is known: exact sign-test tails against a direct sum of
 * binomial coefficients, and which state a run keeps when a later epoch's validation gain is noise-sized or not.
 */
import { describe, expect, it } from 'vitest';
import { beatsDeployment, chooseKept, comparePaired, correctness, KEEP_ALPHA, signTestP } from '../../../host/workflows/finetune-keep.ts';

/** P(X >= k), X ~ Binomial(n, 1/2), by summing C(n, j) in exact integers. */
function tailByCounting(k: number, n: number): number {
  let c = 1n;
  let sum = 0n;
  for (let j = 0; j <= n; j++) {
    if (j > 0) c = (c * BigInt(n - j + 1)) / BigInt(j);
    if (j >= k) sum += c;
  }
  return Number(sum) / 2 ** n;
}

/** P(X = n/2) / 2, X ~ Binomial(n, 1/2), n even, as a product of ratios (no huge intermediate). */
function halfCentralMass(n: number): number {
  let p = 1;
  for (let j = 1; j <= n / 2; j++) p *= (n / 2 + j) / j / 4;
  return p / 2;
}

/** A deployment right on the first `right` of `n` samples (in a scrambled order: positions i * 7919 mod n). */
function deployment(n: number, right: number): Uint8Array {
  const d = new Uint8Array(n);
  for (let i = 0; i < right; i++) d[(i * 7919) % n] = 1;
  return d;
}

/** A candidate that differs from `dep` on `gained` of its wrong samples (now right) and `lost` of its right ones (now wrong), from `skip` on. */
function derive(dep: Uint8Array, gained: number, lost: number, skip = 0): Uint8Array {
  const c = dep.slice();
  const wrong = [...dep.keys()].filter((i) => !dep[i]).slice(skip, skip + gained);
  const right = [...dep.keys()].filter((i) => dep[i]).slice(skip, skip + lost);
  if (wrong.length < gained || right.length < lost) throw new Error('derive: not enough samples');
  for (const i of wrong) c[i] = 1;
  for (const i of right) c[i] = 0;
  return c;
}

/** A deployment and a candidate on `n` samples: `both` right in both, `gained` / `lost` right in one only. */
function pair(n: number, both: number, gained: number, lost: number): [Uint8Array, Uint8Array] {
  const dep = deployment(n, both + lost);
  return [dep, derive(dep, gained, lost)];
}

describe('signTestP', () => {
  it('is the exact binomial tail', () => {
    expect(signTestP(8, 10)).toBeCloseTo(56 / 1024, 15);
    expect(signTestP(10, 10)).toBeCloseTo(1 / 1024, 15);
    for (const n of [1, 5, 17, 40, 60]) for (let k = 0; k <= n + 1; k++) expect(signTestP(k, n)).toBeCloseTo(tailByCounting(k, n), 12);
  });

  it('holds for thousands of discordant samples (no underflow) and matches the normal limit there', () => {
    // n = 2000, k = n/2 + 1.645 sd: the one-sided 5 % point of the normal approximation.
    const n = 2000;
    const k = Math.ceil(n / 2 + 1.645 * Math.sqrt(n / 4) + 0.5);
    const p = signTestP(k, n);
    expect(p).toBeGreaterThan(0.03);
    expect(p).toBeLessThan(0.05);
    expect(signTestP(0, 0)).toBe(1);
    // 2^-2000 is below the smallest double; the tail near n/2 is not, and is found.
    expect(signTestP(1000, 2000)).toBeCloseTo(0.5 + halfCentralMass(2000), 6);
    expect(signTestP(1100, 2000)).toBeGreaterThan(0);
    expect(signTestP(1100, 2000)).toBeLessThan(1e-5);
  });

  it('refuses counts that are not whole', () => {
    expect(() => signTestP(1.5, 3)).toThrow(/whole counts/);
    expect(() => signTestP(1, -1)).toThrow(/whole counts/);
  });
});

describe('comparePaired and beatsDeployment', () => {
  it('counts the discordant samples and tests them one-sided', () => {
    const [dep, cand] = pair(500, 380, 14, 6);
    const c = comparePaired(dep, cand);
    expect(c.gained).toBe(14);
    expect(c.lost).toBe(6);
    expect(c.p).toBeCloseTo(tailByCounting(14, 20), 12);
    const worse = comparePaired(cand, dep);
    expect(worse).toEqual({ gained: 6, lost: 14, p: 1 });
    expect(beatsDeployment(worse, 1)).toBe(false);
  });

  it("a gain the size of 317861's (+6 of 500, 1.2 points) among 40 discordant samples is not significant; +20 among 60 is", () => {
    const small = comparePaired(...pair(500, 400, 23, 17));
    expect(small.p).toBeGreaterThan(0.2);
    expect(beatsDeployment(small, KEEP_ALPHA)).toBe(false);
    // The old rule (any gain) took it.
    expect(beatsDeployment(small, 1)).toBe(true);
    const large = comparePaired(...pair(500, 380, 40, 20));
    expect(large.p).toBeLessThan(0.01);
    expect(beatsDeployment(large, KEEP_ALPHA)).toBe(true);
  });

  it('the same gain is significant only when few samples disagree', () => {
    // +10 net either way: among 14 discordant samples p = 0.0009, among 200 p = 0.27.
    expect(beatsDeployment(comparePaired(...pair(500, 400, 12, 2)), KEEP_ALPHA)).toBe(true);
    expect(beatsDeployment(comparePaired(...pair(500, 250, 105, 95)), KEEP_ALPHA)).toBe(false);
  });

  it('refuses a level outside (0, 1] and vectors of different lengths', () => {
    const c = comparePaired(...pair(100, 50, 10, 0));
    expect(() => beatsDeployment(c, 0)).toThrow(/significance level/);
    expect(() => beatsDeployment(c, 1.5)).toThrow(/significance level/);
    expect(() => comparePaired(new Uint8Array(3), new Uint8Array(4))).toThrow(/4 candidate samples against 3/);
  });
});

describe('chooseKept', () => {
  it('keeps the deployment when no epoch gains significantly, whatever the raw accuracies', () => {
    const dep = deployment(500, 417);
    const r = chooseKept([dep, derive(dep, 23, 17), derive(dep, 20, 16, 30)], KEEP_ALPHA);
    expect(r.epoch).toBe(0);
    expect(r.comparisons[0]).toBeNull();
    expect(r.comparisons.slice(1).map((c) => [c!.gained, c!.lost])).toEqual([
      [23, 17],
      [20, 16],
    ]);
  });

  it('among the epochs that pass, keeps the one with the most correct samples, the earlier on a tie', () => {
    const dep = deployment(500, 390);
    const e1 = derive(dep, 40, 10);
    const e2 = derive(dep, 50, 10, 5);
    const e3 = derive(dep, 50, 10, 7);
    expect(chooseKept([dep, e1, e2, e3], KEEP_ALPHA).epoch).toBe(2);
  });

  it('a better-validating epoch that does not pass is not kept over one that does', () => {
    const dep = deployment(2000, 1000);
    const passes = derive(dep, 40, 10); // +30 of 50 discordant: p ~ 1e-5
    const noisy = derive(dep, 260, 225, 50); // +35 of 485 discordant: p ~ 0.06
    const r = chooseKept([dep, passes, noisy], KEEP_ALPHA);
    expect(r.comparisons[2]!.p).toBeGreaterThan(KEEP_ALPHA);
    expect(r.epoch).toBe(1);
  });

  it('with alpha 1 it is the old rule: any epoch that validates better, the best of them', () => {
    const [dep, e1] = pair(500, 400, 23, 17);
    expect(chooseKept([dep, e1], 1).epoch).toBe(1);
    expect(chooseKept([dep, dep.slice()], 1).epoch).toBe(0);
  });

  it('correctness compares predictions with labels (silent = -1 is wrong)', () => {
    expect(Array.from(correctness(Int32Array.from([0, 2, -1, 1]), Uint8Array.from([0, 1, 0, 1])))).toEqual([1, 0, 0, 1]);
    expect(() => correctness([1], [1, 2])).toThrow(/1 predictions for 2 labels/);
  });
});
