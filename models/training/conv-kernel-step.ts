/**
 * An optimiser step for conv kernels that is not tf.train.adam's (issue #31): a kernel's
 * cross-entropy gradient is mostly the same value on every weight (how early the whole layer
 * fires), and Adam, normalising each weight on its own, turns that into a step of about lr on
 * every weight in one direction, so the layer's gain swings while its pattern hardly moves
 * (docs/RESULTS.md, "Why the conv net underfits").
 *
 * Two switches, per output channel c of each conv layer, u_c = its units (pE and pI together):
 * - moment 'channel': Adam with one second moment per channel (the mean over u_c of g^2) instead
 *   of one per weight, so the pattern keeps its size against the uniform part; 'weight' = Adam's.
 * - norm 'frozen' | 'trained' (weight normalisation, u_c = n_c d_c with |d_c| = 1): the direction
 *   steps on the gradient with its component along u_c removed, and after the projection onto
 *   >= 0 the channel is rescaled to n_c; n_c stays at its value when the step was made ('frozen',
 *   the initialisation's calibrated scale) or takes its own Adam step on g . d_c at normRate x lr
 *   ('trained'). 'free' = no normalisation.
 * - norm 'mean': the signed kernel's sum per channel, sum(pE - pI), is held where training found it
 *   (the drive a uniform input gives): the mean of each channel's signed gradient (gE - gI) / 2 is
 *   removed from gE and added to gI, and after the projection the sum is restored by adding the
 *   same amount to every pE of the channel (or every pI), which keeps the units >= 0.
 * The weights stay ordinary pE, pI (the parameterisation lives only in this step's state), so
 * saving, deployment and fine-tuning see the same layer.
 */

import * as tf from '@tensorflow/tfjs-core';

export interface ConvStepOptions {
  moment: 'weight' | 'channel';
  norm: 'free' | 'frozen' | 'trained' | 'mean';
  /** The channel norms' rate as a fraction of lr (norm 'trained'). */
  normRate: number;
}

export interface ConvKernel {
  pE: tf.Variable;
  pI: tf.Variable;
  /** Output channels: the last (fastest) axis of the HWIO kernel. */
  channels: number;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-7;

/** Adam's moments of one kernel, float64 (state of this step only). */
interface KernelState {
  k: ConvKernel;
  m: Float64Array;
  v: Float64Array;
  /** Channel norms of u_c and their Adam moments (norm 'frozen' | 'trained'). */
  n: Float64Array;
  nm: Float64Array;
  nv: Float64Array;
  /** sum(pE - pI) per channel (norm 'mean'). */
  sums: Float64Array;
}

export class ConvKernelStep {
  private readonly states: KernelState[];
  private t = 0;

  constructor(
    kernels: ConvKernel[],
    readonly opts: ConvStepOptions,
  ) {
    if (!['weight', 'channel'].includes(opts.moment)) throw new RangeError(`moment must be 'weight' or 'channel', got '${opts.moment}'`);
    if (!['free', 'frozen', 'trained', 'mean'].includes(opts.norm))
      throw new RangeError(`norm must be 'free', 'frozen', 'trained' or 'mean', got '${opts.norm}'`);
    if (!(opts.normRate >= 0 && Number.isFinite(opts.normRate))) throw new RangeError(`normRate must be finite and >= 0, got ${opts.normRate}`);
    this.states = kernels.map((k) => {
      const size = k.pE.size;
      const C = k.channels;
      return {
        k,
        m: new Float64Array(2 * size),
        v: new Float64Array(2 * size),
        n: channelNorms(k),
        nm: new Float64Array(C),
        nv: new Float64Array(C),
        sums: signedSums(k),
      };
    });
  }

  /** Names of the variables this step updates (the optimiser gets the others). */
  get variableNames(): Set<string> {
    return new Set(this.states.flatMap((s) => [s.k.pE.name, s.k.pI.name]));
  }

  /** One step at rate `lr` with the gradients by variable name; projects onto >= 0 (and rescales). */
  apply(grads: tf.NamedTensorMap, lr: number): void {
    this.t++;
    const c1 = 1 - BETA1 ** this.t;
    const c2 = 1 - BETA2 ** this.t;
    for (const s of this.states) {
      const gE = grads[s.k.pE.name];
      const gI = grads[s.k.pI.name];
      if (!gE || !gI) throw new Error(`no gradient for conv kernel ${s.k.pE.name} / ${s.k.pI.name}`);
      const size = s.k.pE.size;
      const C = s.k.channels;
      const u = new Float64Array(2 * size);
      u.set(s.k.pE.dataSync());
      u.set(s.k.pI.dataSync(), size);
      const g = new Float64Array(2 * size);
      g.set(gE.dataSync());
      g.set(gI.dataSync(), size);
      const normed = this.opts.norm === 'frozen' || this.opts.norm === 'trained';
      const perChannel = (2 * size) / C;
      if (this.opts.norm === 'mean') {
        const mu = new Float64Array(C);
        for (let k = 0; k < size; k++) mu[k % C]! += (g[k]! - g[size + k]!) / 2 / (perChannel / 2);
        for (let k = 0; k < size; k++) {
          g[k] = g[k]! - mu[k % C]!;
          g[size + k] = g[size + k]! + mu[k % C]!;
        }
      }
      if (normed) {
        const { along, direction } = splitChannelGradient(u, g, C);
        g.set(direction);
        if (this.opts.norm === 'trained') {
          for (let c = 0; c < C; c++) {
            const a = along[c]!;
            s.nm[c] = BETA1 * s.nm[c]! + (1 - BETA1) * a;
            s.nv[c] = BETA2 * s.nv[c]! + (1 - BETA2) * a * a;
            // A relative step, as lr is for the units (models/network/layer.ts).
            s.n[c] = Math.max(0, s.n[c]! * (1 - (this.opts.normRate * lr * (s.nm[c]! / c1)) / (Math.sqrt(s.nv[c]! / c2) + EPS)));
          }
        }
      }
      for (let k = 0; k < 2 * size; k++) {
        s.m[k] = BETA1 * s.m[k]! + (1 - BETA1) * g[k]!;
        s.v[k] = BETA2 * s.v[k]! + (1 - BETA2) * g[k]! * g[k]!;
      }
      const denom = new Float64Array(2 * size);
      if (this.opts.moment === 'channel') {
        const per = new Float64Array(C);
        for (let k = 0; k < 2 * size; k++) per[k % C]! += s.v[k]!;
        const count = (2 * size) / C;
        for (let k = 0; k < 2 * size; k++) denom[k] = Math.sqrt(per[k % C]! / count / c2) + EPS;
      } else for (let k = 0; k < 2 * size; k++) denom[k] = Math.sqrt(s.v[k]! / c2) + EPS;
      for (let k = 0; k < 2 * size; k++) u[k] = Math.max(0, u[k]! - (lr * (s.m[k]! / c1)) / denom[k]!);
      if (this.opts.norm === 'mean') {
        const now = new Float64Array(C);
        for (let k = 0; k < size; k++) now[k % C]! += u[k]! - u[size + k]!;
        for (let k = 0; k < size; k++) {
          const d = (s.sums[k % C]! - now[k % C]!) / (perChannel / 2);
          if (d > 0) u[k] = u[k]! + d;
          else u[size + k] = u[size + k]! - d;
        }
      }
      if (normed) {
        const norm = sumSquaresPerChannel(u, C).map(Math.sqrt);
        for (let k = 0; k < 2 * size; k++) {
          const c = k % C;
          if (norm[c]! > 0) u[k] = (u[k]! * s.n[c]!) / norm[c]!;
        }
      }
      const shape = s.k.pE.shape;
      tf.tidy(() => {
        s.k.pE.assign(tf.tensor(Float32Array.from(u.subarray(0, size)), shape));
        s.k.pI.assign(tf.tensor(Float32Array.from(u.subarray(size)), shape));
      });
    }
  }
}

/**
 * Weight normalisation's split of a gradient g over units u (channel = index % C, u_c = n_c d_c):
 * along[c] = g_c . u_c / |u_c|, the derivative along the channel's norm n_c; direction = g with
 * that part removed (orthogonal to u_c), what the direction d_c steps on. A channel with u_c = 0
 * keeps its whole gradient as direction.
 */
export function splitChannelGradient(u: Float64Array, g: Float64Array, C: number): { along: Float64Array; direction: Float64Array } {
  const norm = sumSquaresPerChannel(u, C).map(Math.sqrt);
  const along = new Float64Array(C);
  for (let k = 0; k < u.length; k++) along[k % C]! += g[k]! * u[k]!;
  for (let c = 0; c < C; c++) along[c] = norm[c]! > 0 ? along[c]! / norm[c]! : 0;
  const direction = Float64Array.from(g);
  for (let k = 0; k < u.length; k++) {
    const c = k % C;
    if (norm[c]! > 0) direction[k] = g[k]! - (along[c]! * u[k]!) / norm[c]!;
  }
  return { along, direction };
}

function sumSquaresPerChannel(u: Float64Array, C: number): Float64Array {
  const s = new Float64Array(C);
  for (let k = 0; k < u.length; k++) s[k % C]! += u[k]! * u[k]!;
  return s;
}

/** sum(pE - pI) of each channel of a kernel. */
export function signedSums(k: ConvKernel): Float64Array {
  const e = k.pE.dataSync();
  const i = k.pI.dataSync();
  const s = new Float64Array(k.channels);
  for (let j = 0; j < e.length; j++) s[j % k.channels]! += e[j]! - i[j]!;
  return s;
}

/** |u_c| of each channel of a kernel, pE and pI together. */
export function channelNorms(k: ConvKernel): Float64Array {
  const size = k.pE.size;
  const u = new Float64Array(2 * size);
  u.set(k.pE.dataSync());
  u.set(k.pI.dataSync(), size);
  return sumSquaresPerChannel(u, k.channels).map(Math.sqrt);
}
