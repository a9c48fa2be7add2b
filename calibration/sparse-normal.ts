/**
 * Damped Gauss-Newton step on a sparse Jacobian: solves (J'J + D + mu diag(J'J + D)) x = b by
 * Jacobi-preconditioned conjugate gradients, never forming J'J. Used by the per-neuron polish of
 * wide layers, where J has a few entries per row but thousands of columns: a dense normal matrix
 * would cost columns^2 memory and columns^3 / 6 per Cholesky.
 */

export interface SparseSolveOptions {
  maxIterations?: number;
  /** Stop when the preconditioned residual norm falls below this fraction of the start's. */
  tolerance?: number;
}

/**
 * J is CSR: row s holds entries rowPtr[s]..rowPtr[s+1] of (col, val). `diag` is diag(J'J) plus the
 * prior precisions 1 / prior^2 (prior = Infinity: no prior). Returns null on a non-SPD system.
 */
export function sparseNormalSolve(
  rowPtr: Int32Array,
  col: Int32Array,
  val: Float64Array,
  rows: number,
  diag: Float64Array,
  prior: Float64Array,
  mu: number,
  b: Float64Array,
  opts: SparseSolveOptions = {},
): Float64Array | null {
  const n = b.length;
  const maxIt = opts.maxIterations ?? 200;
  const tol = opts.tolerance ?? 1e-8;
  const extra = new Float64Array(n);
  const pre = new Float64Array(n);
  for (let a = 0; a < n; a++) {
    extra[a] = 1 / (prior[a] * prior[a]) + mu * diag[a] + 1e-12;
    const dd = diag[a] + mu * diag[a] + 1e-12;
    pre[a] = dd > 0 ? 1 / dd : 0;
  }
  const Jx = new Float64Array(rows);
  const apply = (x: Float64Array, y: Float64Array): void => {
    for (let s = 0; s < rows; s++) {
      let t = 0;
      for (let q = rowPtr[s]; q < rowPtr[s + 1]; q++) t += val[q] * x[col[q]];
      Jx[s] = t;
    }
    for (let a = 0; a < n; a++) y[a] = extra[a] * x[a];
    for (let s = 0; s < rows; s++) {
      const t = Jx[s];
      if (t === 0) continue;
      for (let q = rowPtr[s]; q < rowPtr[s + 1]; q++) y[col[q]] += val[q] * t;
    }
  };
  const x = new Float64Array(n);
  const r = Float64Array.from(b);
  const z = new Float64Array(n);
  const p = new Float64Array(n);
  const Ap = new Float64Array(n);
  let rz = 0;
  for (let a = 0; a < n; a++) {
    z[a] = pre[a] * r[a];
    p[a] = z[a];
    rz += r[a] * z[a];
  }
  const rz0 = rz;
  if (!(rz0 > 0)) return rz0 === 0 ? x : null;
  for (let it = 0; it < maxIt; it++) {
    apply(p, Ap);
    let pAp = 0;
    for (let a = 0; a < n; a++) pAp += p[a] * Ap[a];
    if (!(pAp > 0)) return it === 0 ? null : x;
    const alpha = rz / pAp;
    let rzNew = 0;
    for (let a = 0; a < n; a++) {
      x[a] += alpha * p[a];
      r[a] -= alpha * Ap[a];
      z[a] = pre[a] * r[a];
      rzNew += r[a] * z[a];
    }
    if (rzNew <= tol * tol * rz0) break;
    const beta = rzNew / rz;
    rz = rzNew;
    for (let a = 0; a < n; a++) p[a] = beta * p[a] + z[a];
  }
  return x;
}
