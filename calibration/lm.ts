/**
 * A small dense Levenberg-Marquardt least-squares solver with a finite-difference Jacobian.
 *
 * Calibration problems here have few parameters per solve (a neuron's threshold and delay, or the
 * chip's handful of global parameters) and many residuals, so a dense normal-equation step with
 * Marquardt scaling is the right tool: it converges in a few iterations where gradient descent
 * (Adam) would need hundreds, and it needs no learning rate.
 */

export interface LmOptions {
  /** Finite-difference step per parameter (absolute). */
  steps: readonly number[];
  maxIterations?: number;
  /** Stop when the relative decrease of the cost falls below this. */
  tolerance?: number;
  lower?: readonly number[];
  upper?: readonly number[];
}

export interface LmResult {
  params: Float64Array;
  cost: number;
  iterations: number;
  residuals: Float64Array;
}

function sumSq(r: Float64Array): number {
  let s = 0;
  for (let k = 0; k < r.length; k++) s += r[k] * r[k];
  return s;
}

/** One residual vector from per-neuron parts, in order (the layout a joint fit's residual function returns). */
export function concatResiduals(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, a) => s + a.length, 0));
  let o = 0;
  for (const a of parts) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

/** Solves the small symmetric positive-definite system A x = b (Cholesky); null if not SPD. */
export function solveSpd(A: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j];
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

function clampTo(p: Float64Array, o: LmOptions): void {
  for (let k = 0; k < p.length; k++) {
    if (o.lower && p[k] < o.lower[k]) p[k] = o.lower[k];
    if (o.upper && p[k] > o.upper[k]) p[k] = o.upper[k];
  }
}

/**
 * Minimises sum(residuals(p)^2). `residuals` must return a vector of fixed length for every p
 * (non-finite entries are treated as a failed step).
 */
export function levenbergMarquardt(residuals: (p: Float64Array) => Float64Array, start: ArrayLike<number>, o: LmOptions): LmResult {
  const steps = lmSteps(start, o);
  let s = steps.next();
  while (!s.done) s = steps.next(s.value.map((p) => residuals(p)));
  return s.value;
}

/**
 * levenbergMarquardt with residuals computed asynchronously: a long fit (each residual a set of
 * nested fits) can yield to the event loop between evaluations, so a signal can stop it.
 */
export async function levenbergMarquardtAsync(
  residuals: (p: Float64Array) => Promise<Float64Array>,
  start: ArrayLike<number>,
  o: LmOptions,
): Promise<LmResult> {
  const steps = lmSteps(start, o);
  let s = steps.next();
  while (!s.done) {
    const r: Float64Array[] = [];
    for (const p of s.value) r.push(await residuals(p));
    s = steps.next(r);
  }
  return s.value;
}

/**
 * levenbergMarquardtAsync with the points that do not depend on each other's residuals (the
 * Jacobian's finite-difference points of one iteration) handed over together, so they can be
 * evaluated in parallel. The same points are asked for in the same order, so the result is
 * levenbergMarquardt's.
 */
export async function levenbergMarquardtBatch(
  residuals: (points: Float64Array[]) => Promise<Float64Array[]>,
  start: ArrayLike<number>,
  o: LmOptions,
): Promise<LmResult> {
  const steps = lmSteps(start, o);
  let s = steps.next();
  while (!s.done) s = steps.next(await residuals(s.value));
  return s.value;
}

/**
 * The algorithm, once for every driver: yields the points to evaluate (several at once where they
 * are independent: a Jacobian's) and takes their residuals back in the same order.
 */
function* lmSteps(start: ArrayLike<number>, o: LmOptions): Generator<Float64Array[], LmResult, Float64Array[]> {
  const n = start.length;
  const p = Float64Array.from(start);
  clampTo(p, o);
  let [r] = yield [p];
  let cost = sumSq(r);
  let mu = 1e-3;
  const maxIt = o.maxIterations ?? 20;
  const tol = o.tolerance ?? 1e-6;
  let it = 0;
  for (; it < maxIt; it++) {
    const m = r.length;
    const J = new Float64Array(m * n);
    const hs: number[] = [];
    const qs: Float64Array[] = [];
    for (let k = 0; k < n; k++) {
      const q = Float64Array.from(p);
      let h = o.steps[k];
      if (o.upper && q[k] + h > o.upper[k]) h = -h;
      q[k] += h;
      hs.push(h);
      qs.push(q);
    }
    const rqs = yield qs;
    for (let k = 0; k < n; k++) {
      const rq = rqs[k];
      for (let s = 0; s < m; s++) J[s * n + k] = (rq[s] - r[s]) / hs[k];
    }
    const JtJ = new Float64Array(n * n);
    const Jtr = new Float64Array(n);
    for (let s = 0; s < m; s++) {
      const rs = r[s];
      if (!Number.isFinite(rs)) continue;
      // A row whose perturbed residual failed (non-finite) in any direction says nothing reliable
      // about the others either; keeping its finite entries would also leak NaN into J^T J.
      let rowOk = true;
      for (let a = 0; a < n; a++) if (!Number.isFinite(J[s * n + a])) rowOk = false;
      if (!rowOk) continue;
      for (let a = 0; a < n; a++) {
        const ja = J[s * n + a];
        Jtr[a] += ja * rs;
        for (let b = 0; b <= a; b++) JtJ[a * n + b] += ja * J[s * n + b];
      }
    }
    for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) JtJ[b * n + a] = JtJ[a * n + b];
    let improved = false;
    for (let tries = 0; tries < 8; tries++) {
      const A = Float64Array.from(JtJ);
      for (let a = 0; a < n; a++) A[a * n + a] += mu * (JtJ[a * n + a] + 1e-12);
      const neg = Jtr.map((x) => -x);
      const dx = solveSpd(A, neg, n);
      if (!dx || !dx.every(Number.isFinite)) {
        mu *= 10;
        continue;
      }
      const q = Float64Array.from(p);
      for (let a = 0; a < n; a++) q[a] += dx[a];
      clampTo(q, o);
      const [rq] = yield [q];
      const c = sumSq(rq);
      if (Number.isFinite(c) && c < cost) {
        const rel = (cost - c) / Math.max(cost, 1e-300);
        p.set(q);
        r = rq;
        cost = c;
        mu = Math.max(mu / 3, 1e-9);
        improved = true;
        if (rel < tol) return { params: p, cost, iterations: it + 1, residuals: r };
        break;
      }
      mu *= 10;
    }
    if (!improved) break;
  }
  return { params: p, cost, iterations: it, residuals: r };
}
