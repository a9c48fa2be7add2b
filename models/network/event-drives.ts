/**
 * Per-bin drives of a dense layer computed event by event: the same numbers as
 * `denseDrives(p, binFractions(times, M, horizon))` (docs/MODEL.md eq. (4) and one matrix product),
 * at a fraction of the cost.
 *
 * Why: a spike switches its synapse on once, so the bin fractions s_j(m) of eq. (4) change in at
 * most two bins per input (the bin holding the spike gets the fraction f, the next one the rest
 * 1 - f; later bins stay at 1). Accumulating those increments row by row and taking a cumulative
 * sum over bins costs O(B x N_in x C) instead of the dense product's O(B x M x N_in x C): M/2 times
 * less work, and silent inputs cost nothing. It also avoids the wasm backend's matMul gradients,
 * which run on a naive loop whenever an operand is transposed (every matMul gradient is).
 *
 * The kernels are plain typed-array loops (deterministic, backend independent) wrapped in a
 * tf.customGrad op: gradients flow to the weights and, optionally, to the input times
 * (ds_j(m)/dt_j = -1/dt in the spike's own bin, as for binFractions). The loops below are the
 * reference; by default the op runs the same loops on WebAssembly SIMD (models/kernels), 9-10x
 * faster, equal to float32 rounding.
 *
 * Shapes: times [B, N_in] (+Infinity = silent), W [N_in, C] -> drives [B, M, C] with
 * drives[b, m, :] = sum_j s_j(m) W[j, :].
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  eventDrivesBackwardSimd,
  eventDrivesForwardSimd,
  simdKernelsAvailable,
  type EventBackwardKernel,
  type EventForwardKernel,
} from '../kernels/event-drives-simd.ts';
import { tensorCopy, viewSync } from '../tf/tensor-io.ts';

/** Which loops compute the drives: 'simd' (WebAssembly SIMD, models/kernels) or 'js' (the ones below). */
export type EventKernel = 'simd' | 'js';

export interface EventDriveOptions {
  bins: number;
  horizon: number;
  /** Compute dL/d(times) in the backward pass (false for a network's fixed input layer). */
  inputGrad?: boolean;
  /** Kernel to use (default: defaultEventKernel()). */
  kernel?: EventKernel;
}

let chosenKernel: EventKernel | undefined;

/**
 * 'simd' where the engine runs WebAssembly SIMD, else 'js'; `SPIKELOOP_EVENT_KERNEL=js|simd`
 * forces one (e.g. to compare them side by side). Read once per process.
 */
export function defaultEventKernel(): EventKernel {
  if (chosenKernel === undefined) {
    const env = typeof process === 'undefined' ? undefined : process.env.SPIKELOOP_EVENT_KERNEL;
    if (env !== undefined && env !== '' && env !== 'js' && env !== 'simd') {
      throw new RangeError(`SPIKELOOP_EVENT_KERNEL is '${env}'; accepted: js, simd (or unset)`);
    }
    if (env === 'simd' && !simdKernelsAvailable()) throw new Error('SPIKELOOP_EVENT_KERNEL=simd, but this engine has no WebAssembly SIMD; unset it');
    chosenKernel = env === 'js' || env === 'simd' ? env : simdKernelsAvailable() ? 'simd' : 'js';
  }
  return chosenKernel;
}

function check(times: tf.Tensor, w: tf.Tensor, o: EventDriveOptions): void {
  if (times.rank !== 2) throw new RangeError(`times must be [batch, inputs], got shape ${JSON.stringify(times.shape)}`);
  if (w.rank !== 2 || w.shape[0] !== times.shape[1]) {
    throw new RangeError(`weights must be [${times.shape[1]}, C], got shape ${JSON.stringify(w.shape)}`);
  }
  if (!Number.isInteger(o.bins) || o.bins < 1) throw new RangeError(`bins must be a positive integer, got ${o.bins}`);
  if (!(Number.isFinite(o.horizon) && o.horizon > 0)) throw new RangeError(`horizon must be finite and > 0, got ${o.horizon}`);
  if (o.kernel !== undefined && o.kernel !== 'js' && o.kernel !== 'simd') throw new RangeError(`kernel must be 'js' or 'simd', got '${String(o.kernel)}'`);
  if (o.kernel === 'simd' && !simdKernelsAvailable()) throw new Error("kernel 'simd' needs WebAssembly SIMD, which this engine lacks; use 'js'");
}

/**
 * Where each input's step lands on the grid: `bin[k]` = index of the bin holding the spike
 * (-1: before the grid, the input is on from bin 0; M: never on inside the grid), `frac[k]` =
 * s(bin), the part of that bin after the spike.
 */
export function locateSpikes(times: Float32Array | Float64Array, bins: number, horizon: number): { bin: Int32Array; frac: Float32Array } {
  const n = times.length;
  const bin = new Int32Array(n);
  const frac = new Float32Array(n);
  const inv = bins / horizon;
  for (let k = 0; k < n; k++) {
    const t = times[k]!;
    // NaN and +Infinity are silent, like anything at or past the horizon (s = 0 in every bin).
    if (!(t < horizon)) {
      bin[k] = bins;
      continue;
    }
    const tau = t * inv;
    const m = Math.floor(tau);
    if (m < 0) {
      bin[k] = -1;
      frac[k] = 1;
      continue;
    }
    bin[k] = m;
    frac[k] = m + 1 - tau;
  }
  return { bin, frac };
}

/** Forward kernel: increments per bin, then a cumulative sum over bins. */
export const eventDrivesForward: EventForwardKernel = (bin, frac, w, batch, nIn, C, bins) => {
  const out = new Float32Array(batch * bins * C);
  for (let b = 0; b < batch; b++) {
    const base = b * bins * C;
    for (let j = 0; j < nIn; j++) {
      const k = bin[b * nIn + j]!;
      if (k >= bins) continue;
      const row = j * C;
      if (k < 0) {
        for (let c = 0; c < C; c++) out[base + c] += w[row + c]!;
        continue;
      }
      const f = frac[b * nIn + j]!;
      const o1 = base + k * C;
      if (k + 1 < bins) {
        const o2 = o1 + C;
        const g = 1 - f;
        for (let c = 0; c < C; c++) {
          const x = w[row + c]!;
          out[o1 + c] += f * x;
          out[o2 + c] += g * x;
        }
      } else {
        for (let c = 0; c < C; c++) out[o1 + c] += f * w[row + c]!;
      }
    }
    for (let m = 1; m < bins; m++) {
      const o = base + m * C;
      for (let c = 0; c < C; c++) out[o + c] += out[o - C + c]!;
    }
  }
  return out;
};

/** Backward kernel: dL/dW and (optionally) dL/d(times) from dL/d(drives). */
export const eventDrivesBackward: EventBackwardKernel = (bin, frac, w, dy, batch, nIn, C, bins, dt, inputGrad) => {
  const dW = new Float32Array(nIn * C);
  const dTimes = new Float32Array(batch * nIn);
  // Adjoint of the cumulative sum: a reverse cumulative sum, one sample at a time.
  const rc = new Float32Array(bins * C);
  for (let b = 0; b < batch; b++) {
    const base = b * bins * C;
    rc.set(dy.subarray(base + (bins - 1) * C, base + bins * C), (bins - 1) * C);
    for (let m = bins - 2; m >= 0; m--) {
      const o = m * C;
      for (let c = 0; c < C; c++) rc[o + c] = dy[base + o + c]! + rc[o + C + c]!;
    }
    for (let j = 0; j < nIn; j++) {
      const k = bin[b * nIn + j]!;
      if (k >= bins) continue;
      const row = j * C;
      if (k < 0) {
        for (let c = 0; c < C; c++) dW[row + c] += rc[c]!;
        continue;
      }
      const f = frac[b * nIn + j]!;
      const o1 = k * C;
      if (k + 1 < bins) {
        const o2 = o1 + C;
        const g = 1 - f;
        for (let c = 0; c < C; c++) dW[row + c] += f * rc[o1 + c]! + g * rc[o2 + c]!;
      } else {
        for (let c = 0; c < C; c++) dW[row + c] += f * rc[o1 + c]!;
      }
      if (inputGrad) {
        // Moving the spike later by dt takes W[j] out of bin k only (later bins stay fully on).
        let s = 0;
        const yo = base + o1;
        for (let c = 0; c < C; c++) s += dy[yo + c]! * w[row + c]!;
        dTimes[b * nIn + j] = -s / dt;
      }
    }
  }
  return { dW, dTimes };
};

/**
 * drives[b, m, :] = sum_j s_j(m) W[j, :] with s from eq. (4) on M bins over [0, horizon].
 * Differentiable with respect to W and (when `inputGrad`, the default) the input times.
 */
export function eventDrives(times: tf.Tensor2D, w: tf.Tensor2D, opts: EventDriveOptions): tf.Tensor3D {
  check(times, w, opts);
  const [batch, nIn] = times.shape;
  const C = w.shape[1];
  const { bins, horizon } = opts;
  const inputGrad = opts.inputGrad ?? true;
  const simd = (opts.kernel ?? defaultEventKernel()) === 'simd';
  const forward: EventForwardKernel = simd ? eventDrivesForwardSimd : eventDrivesForward;
  const backward: EventBackwardKernel = simd ? eventDrivesBackwardSimd : eventDrivesBackward;
  // Operands are read through views of the backend's memory and results written from the
  // kernels' own (tensor-io.ts): a step's several MB of copies would be garbage for V8 to collect.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [t, weights] = args as tf.Tensor[];
    (args[2] as tf.GradSaveFunc)([weights!]);
    const { bin, frac } = locateSpikes(viewSync(t!), bins, horizon);
    const out = forward(bin, frac, viewSync(weights!), batch, nIn, C, bins, true);
    return {
      value: tensorCopy<tf.Rank.R3>(out, [batch, bins, C]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const g = backward(bin, frac, viewSync(saved[0]!), viewSync(dy), batch, nIn, C, bins, horizon / bins, inputGrad, true);
        return [tensorCopy<tf.Rank.R2>(g.dTimes, [batch, nIn]), tensorCopy<tf.Rank.R2>(g.dW, [nIn, C])];
      },
    };
  });
  return op(times, w) as tf.Tensor3D;
}
