import { describe, expect, it } from 'vitest';
import { solveSpd } from '../../calibration/lm.ts';
import { sparseNormalSolve } from '../../calibration/sparse-normal.ts';
import { Rng } from '../../models/datasets/rng.ts';

describe('sparse damped normal equations', () => {
  it("matches a dense Cholesky solve of (J'J + D + mu diag) x = b", () => {
    const rng = new Rng(5);
    const n = 40;
    const rows = 120;
    const rowPtr = new Int32Array(rows + 1);
    const col: number[] = [];
    const val: number[] = [];
    for (let s = 0; s < rows; s++) {
      rowPtr[s] = col.length;
      // Like the polish: a shared column (the delay) plus a few per-row columns.
      col.push(0);
      val.push(1 + rng.next());
      const k = 1 + rng.int(4);
      const used = new Set<number>([0]);
      for (let q = 0; q < k; q++) {
        const c = 1 + rng.int(n - 1);
        if (used.has(c)) continue;
        used.add(c);
        col.push(c);
        val.push(rng.next() * 4 - 2);
      }
    }
    rowPtr[rows] = col.length;
    const prior = Float64Array.from({ length: n }, (_, a) => (a === 0 ? Infinity : 0.1 + rng.next()));
    const mu = 0.03;
    const diag = new Float64Array(n);
    const A = new Float64Array(n * n);
    for (let s = 0; s < rows; s++) {
      for (let x = rowPtr[s]; x < rowPtr[s + 1]; x++) {
        diag[col[x]] += val[x] * val[x];
        for (let y = rowPtr[s]; y < rowPtr[s + 1]; y++) A[col[x] * n + col[y]] += val[x] * val[y];
      }
    }
    for (let a = 0; a < n; a++) diag[a] += 1 / prior[a] ** 2;
    for (let a = 0; a < n; a++) A[a * n + a] += 1 / prior[a] ** 2 + mu * diag[a] + 1e-12;
    const b = Float64Array.from({ length: n }, () => rng.next() * 2 - 1);
    const ref = solveSpd(A, b, n)!;
    const got = sparseNormalSolve(rowPtr, Int32Array.from(col), Float64Array.from(val), rows, diag, prior, mu, b, { tolerance: 1e-12 })!;
    for (let a = 0; a < n; a++) expect(got[a]).toBeCloseTo(ref[a], 8);
  });
});
