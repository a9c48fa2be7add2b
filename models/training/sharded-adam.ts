/**
 * The optimiser step of data-parallel training, split across the pool workers (data-parallel.ts):
 * each worker takes a contiguous slice of the parameters, sums the shards' gradients for it in
 * shard order, adds the batch's dead-neuron term, and applies Adam, the projection onto pE, pI >= 0
 * and the decoupled weight decay to that slice of the weights and of Adam's moments, all in shared
 * memory. The calling thread then does no per-parameter work: with 2 workers its reduction and
 * Adam over the 468 000 parameters of 784-256-128-10 were the serial part of a step.
 *
 * The arithmetic is tfjs' Adam (AdamOptimizer.applyGradients in @tensorflow/tfjs-core 4.22: the same
 * moments, bias corrections, epsilon and order of projection and decay), computed in double and
 * rounded once to float32 where a value is stored, where tfjs rounds after every operation: the
 * bit-exact chain (a Math.fround per operation, three divisions and a square root per parameter)
 * cost a worker about twice as much (docs/RESULTS.md, "Every core, this round"). A step's weights agree with
 * tfjs' to a few float32 roundings (test: sharded-adam.test.ts). A slice's numbers do not depend on
 * where the slices are cut, so a seed and a worker count give the same weights every time.
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
 * The pool task: one slice of the parameters through reduction, Adam, projection and decay, in one
 * pass over memory. The gradient is summed exactly as DataParallelStep.reduce sums it (shard 0 +
 * shard 1 + ... in float32, then the dead term's shard sum in double, scaled, added in float32).
 */
export function updateSlice(t: UpdateInput): void {
  const { P, start, end, shards: S } = t;
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= P))
    throw new RangeError(`slice [${start}, ${end}) outside the ${P} parameters`);
  const w = new Float32Array(t.weights, 0, P);
  const m = new Float32Array(t.moments, 0, P);
  const v = new Float32Array(t.moments, P * 4, P);
  const all = new Float32Array(t.grads);
  const { beta1, oneMinusBeta1, beta2, oneMinusBeta2, epsilon, negLr } = t.adam;
  const s1 = 1 / t.adam.oneMinusAcc1;
  const s2 = 1 / t.adam.oneMinusAcc2;
  const shrink = f(t.shrink);
  const decay = shrink !== 1;
  // The slice in segments that either carry one layer's dead-neuron term (its pE or its pI) or none.
  const segments: { lo: number; hi: number; d: DeadTerm | undefined }[] = [];
  let at = start;
  const cuts = t.dead.flatMap((d) => [d.offset, d.offset + d.nIn * d.nOut].map((base) => ({ base, size: d.nIn * d.nOut, d }))).sort((p, q) => p.base - q.base);
  for (const c of cuts) {
    const lo = Math.max(at, c.base);
    const hi = Math.min(end, c.base + c.size);
    if (lo >= hi) continue;
    if (lo > at) segments.push({ lo: at, hi: lo, d: undefined });
    segments.push({ lo, hi, d: c.d });
    at = hi;
  }
  if (at < end) segments.push({ lo: at, hi: end, d: undefined });
  const o1 = 2 * P;
  for (const { lo, hi, d } of segments) {
    const nOut = d ? d.nOut : 1;
    const chosen = d ? d.chosen : undefined;
    const factor = d ? d.factor : 0;
    // Column of element lo within its [nIn, nOut] block (pE and pI blocks both start at a row).
    let col = d ? (lo - d.offset) % nOut : 0;
    for (let k = lo; k < hi; k++) {
      let gk = all[k]!;
      if (S === 2) gk = f(gk + all[o1 + k]!);
      else for (let s = 1; s < S; s++) gk = f(gk + all[s * 2 * P + k]!);
      if (chosen) {
        if (chosen[col]) {
          let sum = 0;
          for (let s = 0; s < S; s++) sum += all[s * 2 * P + P + k]!;
          gk = f(gk + factor * sum);
        }
        if (++col === nOut) col = 0;
      }
      // In double, each stored value rounded once to float32 (tfjs rounds after every operation).
      const mk = m[k]! * beta1 + gk * oneMinusBeta1;
      const vk = v[k]! * beta2 + gk * gk * oneMinusBeta2;
      m[k] = mk;
      v[k] = vk;
      let wk = f(w[k]! + (negLr * (mk * s1)) / (Math.sqrt(vk * s2) + epsilon));
      // tf.relu, then decayWeights' multiply.
      if (wk < 0) wk = 0;
      if (decay) wk = f(wk * shrink);
      w[k] = wk;
    }
  }
}
