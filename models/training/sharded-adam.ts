/**
 * The optimiser step of data-parallel training, split across the pool workers (data-parallel.ts):
 * each worker takes a contiguous slice of the parameters, sums the shards' gradients for it in
 * shard order, adds the batch's dead-neuron term, and applies Adam, the projection onto pE, pI >= 0
 * and the decoupled weight decay to that slice of the weights and of Adam's moments, all in shared
 * memory. The calling thread then does no per-parameter work: with 2 workers its reduction and
 * Adam over the 468 000 parameters of 784-256-128-10 were the serial part of a step.
 *
 * The arithmetic is tfjs' Adam (AdamOptimizer.applyGradients in @tensorflow/tfjs-core 4.22) in
 * float32, operation for operation: every product, quotient, sum and square root is rounded to
 * float32 (Math.fround of the double result is the float32 result for these operations), so a step
 * gives the numbers `optimizer.applyGradients` gives on the same gradients (test: sharded-adam.test.ts).
 * A slice's numbers do not depend on where the slices are cut, so a seed and a worker count give
 * the same weights every time.
 */

const f = Math.fround;

/** Adam's constants (tf.train.adam's defaults: beta1 0.9, beta2 0.999, epsilon 1e-7, the float32 backends' epsilon). */
export interface AdamConstants {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

export const ADAM_DEFAULTS = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

/** One step's float32 scalars, as tfjs holds them: accBeta^t kept as a float32 product step by step. */
export interface AdamScalars {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** 1 - beta1^t, 1 - beta2^t (t = this step, from 1). */
  oneMinusAcc1: number;
  oneMinusAcc2: number;
  epsilon: number;
  negLr: number;
}

/** Adam's running bias-correction products, advanced once per step (tfjs' accBeta1, accBeta2). */
export class AdamClock {
  private acc1: number;
  private acc2: number;
  constructor(readonly c: AdamConstants) {
    if (!(c.lr > 0)) throw new RangeError(`lr must be > 0, got ${c.lr}`);
    this.acc1 = f(c.beta1);
    this.acc2 = f(c.beta2);
  }
  /** The scalars of the next step at learning rate `lr`; advances the clock. */
  next(lr: number = this.c.lr): AdamScalars {
    const s: AdamScalars = {
      beta1: f(this.c.beta1),
      oneMinusBeta1: f(1 - this.c.beta1),
      beta2: f(this.c.beta2),
      oneMinusBeta2: f(1 - this.c.beta2),
      oneMinusAcc1: f(1 - this.acc1),
      oneMinusAcc2: f(1 - this.acc2),
      epsilon: f(this.c.epsilon),
      negLr: f(-lr),
    };
    this.acc1 = f(this.acc1 * s.beta1);
    this.acc2 = f(this.acc2 * s.beta2);
    return s;
  }
}

/** The batch-wide dead-neuron term of one layer, as the caller selected it from every shard's firing counts. */
export interface DeadTerm {
  /** Offset of the layer's pE in the parameter vector; pI follows at offset + nIn * nOut. */
  offset: number;
  nIn: number;
  nOut: number;
  /** deadWeight / the batch-wide denominator. */
  factor: number;
  /** 1 for the neurons (columns) the term acts on. */
  chosen: Uint8Array;
}

export interface UpdateInput {
  /** Float32 weights (P), updated in place over [start, end). */
  weights: SharedArrayBuffer;
  /** Float32 Adam moments: m (P) then v (P). */
  moments: SharedArrayBuffer;
  /** Float32, shard slots of 2 x P each (main gradient, then the unnormalised dead-neuron gradient). */
  grads: SharedArrayBuffer;
  /** Shards to sum (their slots 0 .. shards - 1). */
  shards: number;
  P: number;
  start: number;
  end: number;
  dead: DeadTerm[];
  adam: AdamScalars;
  /** Decoupled weight decay after the projection (1: none). */
  shrink: number;
}

/**
 * The pool task: one slice of the parameters through reduction, Adam, projection and decay.
 * The gradient is summed exactly as DataParallelStep.reduce sums it (shard 0 + shard 1 + ... in
 * float32, then the dead term's shard sum in double, scaled, added in float32).
 */
export function updateSlice(t: UpdateInput): void {
  const { P, start, end, shards: S, adam: a } = t;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= P))
    throw new RangeError(`slice [${start}, ${end}) outside the ${P} parameters`);
  const w = new Float32Array(t.weights, 0, P);
  const m = new Float32Array(t.moments, 0, P);
  const v = new Float32Array(t.moments, P * 4, P);
  const all = new Float32Array(t.grads);
  const g = new Float32Array(end - start);
  g.set(all.subarray(start, end));
  for (let s = 1; s < S; s++) {
    const o = s * 2 * P;
    for (let k = start; k < end; k++) g[k - start] = f(g[k - start]! + all[o + k]!);
  }
  for (const d of t.dead) {
    const size = d.nIn * d.nOut;
    for (const base of [d.offset, d.offset + size]) {
      const lo = Math.max(start, base);
      const hi = Math.min(end, base + size);
      let col = (lo - base) % d.nOut;
      for (let k = lo; k < hi; k++) {
        if (d.chosen[col]) {
          let sum = 0;
          for (let s = 0; s < S; s++) sum += all[s * 2 * P + P + k]!;
          g[k - start] = f(g[k - start]! + d.factor * sum);
        }
        if (++col === d.nOut) col = 0;
      }
    }
  }
  const shrink = f(t.shrink);
  const decay = shrink !== 1;
  for (let k = start; k < end; k++) {
    const gk = g[k - start]!;
    const mk = f(f(m[k]! * a.beta1) + f(gk * a.oneMinusBeta1));
    const vk = f(f(v[k]! * a.beta2) + f(f(gk * gk) * a.oneMinusBeta2));
    m[k] = mk;
    v[k] = vk;
    const c1 = f(mk / a.oneMinusAcc1);
    const c2 = f(vk / a.oneMinusAcc2);
    let wk = f(f(f(c1 / f(f(Math.sqrt(c2)) + a.epsilon)) * a.negLr) + w[k]!);
    // tf.relu, then decayWeights' multiply.
    if (wk < 0) wk = 0;
    if (decay) wk = f(wk * shrink);
    w[k] = wk;
  }
}
