/**
 * Training with the chip in the loop (docs/MODEL.md §7, eq. (10)): the chip runs the forward pass,
 * the twin supplies the backward pass.
 *
 * Given every layer's spike times as the chip measured them (twin time units, +Infinity =
 * silent), each layer's DSTD forward is run on the MEASURED times of the layer below, and its
 * output is replaced by the measured one in the straight-through form
 *
 *     t = t_chip + m_chip * (t_twin - stopGradient(t_twin))
 *
 * whose value is exactly the chip's time (clamped at the horizon when silent, m_chip = 0) and
 * whose gradient is the twin's, evaluated at the chip's inputs. The loss and every Jacobian
 * therefore sit at the chip's state; the twin's mismatch to the chip costs accuracy only through
 * the Jacobian. A neuron the chip left silent passes no gradient (as a clamped silent spike
 * in the plain trainer); the dead-neuron term acts on the chip's silences.
 *
 * With a chip that equals the twin the result is the plain DSTD gradient (test/models/training).
 *
 * The optimiser is Adam on the layers' conductance parameters (pE, pI: conductances in fixed
 * per-layer units), in float64 typed arrays with its whole state exposed (`AdamState`), so a run
 * can be checkpointed and resumed bit for bit; projection onto pE, pI >= 0 after each step.
 */

import * as tf from '@tensorflow/tfjs-core';
import { earliestSpike, type NetworkForward, type SpikingNetwork } from '../network/network.ts';
import type { SpikeSolver } from '../network/solver.ts';
import { restoreWeights, snapshotWeights } from '../network/weights-snapshot.ts';
import type { LayerSpikes } from '../solvers/spike-tensors.ts';
import { spikesToInputs } from '../solvers/spike-tensors.ts';
import { stopGradient, type LossConfig } from './losses.ts';
import { forwardLoss, type BatchLoss, type LossTerms } from './trainer.ts';

/** Every layer's measured spike times, [batch x nOut] row-major, twin time units, +Infinity = silent. */
export type MeasuredTimes = readonly Float32Array[];

/** Clamped times and fired mask of one layer's measurement (silent or past the horizon -> horizon, 0). */
export function measuredSpikes(t: Float32Array, horizon: number): { times: Float32Array; mask: Float32Array } {
  const times = new Float32Array(t.length);
  const mask = new Float32Array(t.length);
  for (let k = 0; k < t.length; k++) {
    const fired = t[k]! <= horizon;
    times[k] = fired ? t[k]! : horizon;
    mask[k] = fired ? 1 : 0;
  }
  return { times, mask };
}

function checkMeasured(net: SpikingNetwork, batch: number, measured: MeasuredTimes): void {
  if (measured.length !== net.layers.length) {
    throw new RangeError(`measured times of ${measured.length} layers given, the network has ${net.layers.length}`);
  }
  net.layers.forEach((l, i) => {
    const m = measured[i]!;
    if (!(m instanceof Float32Array) || m.length !== batch * l.nOut) {
      throw new RangeError(`measured times of layer ${i} must be a Float32Array of batch x outputs = ${batch} x ${l.nOut}, got ${m?.length}`);
    }
  });
}

/**
 * Every layer's spikes with the chip's values and the twin's gradients (see the file comment),
 * plus each layer's input times (the chip's, silent = +Infinity). Call inside a gradient tape.
 */
export function substitutedForward(net: SpikingNetwork, inputTimes: tf.Tensor2D, measured: MeasuredTimes, solver: SpikeSolver): NetworkForward {
  const B = inputTimes.shape[0];
  checkMeasured(net, B, measured);
  const spikes: LayerSpikes[] = [];
  const inputs: tf.Tensor2D[] = [inputTimes];
  let x = inputTimes;
  for (let l = 0; l < net.layers.length; l++) {
    const layer = net.layers[l]!;
    const twin = layer.forward(x, solver, { inputGrad: l > 0 });
    const m = measuredSpikes(measured[l]!, layer.horizon);
    const chip = tf.tensor2d(m.times, [B, layer.nOut]);
    const mask = tf.tensor2d(m.mask, [B, layer.nOut]);
    const times = tf.add(chip, tf.mul(mask, tf.sub(twin.times, stopGradient(twin.times)))) as tf.Tensor2D;
    const s = { times, mask };
    spikes.push(s);
    if (l + 1 < net.layers.length) {
      x = spikesToInputs(s);
      inputs.push(x);
    }
  }
  return { spikes, inputs };
}

/** The trainer's loss (models/training/trainer.ts) on the substituted forward pass. */
export function inLoopLoss(
  net: SpikingNetwork,
  inputTimes: tf.Tensor2D,
  labels: Uint8Array,
  measured: MeasuredTimes,
  solver: SpikeSolver,
  cfg: LossConfig,
): BatchLoss {
  return forwardLoss(net, substitutedForward(net, inputTimes, measured, solver), labels, cfg, { bins: solver.resolution });
}

export interface InLoopGradients {
  loss: number;
  terms: LossTerms;
  /** Per trainable variable (net.trainableVariables() order), d loss / d variable. */
  grads: Float32Array[];
  /** Samples whose earliest chip output is the label. */
  correct: number;
  silent: number[];
}

/** Loss and gradients of one measured batch; no parameter changes. */
export function inLoopGradients(
  net: SpikingNetwork,
  x: Float32Array,
  labels: Uint8Array,
  measured: MeasuredTimes,
  solver: SpikeSolver,
  cfg: LossConfig,
): InLoopGradients {
  const n = labels.length;
  const inputTimes = net.encode(x, n);
  const vars = net.trainableVariables();
  let silent: number[] = [];
  let kept: tf.Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const r = inLoopLoss(net, inputTimes, labels, measured, solver, cfg);
    silent = r.silent;
    kept = [r.terms.ce, r.terms.window, r.terms.dead].map((t) => tf.keep(t));
    return r.loss;
  }, vars);
  const out = vars.map((v) => {
    const g = grads[v.name];
    return g ? Float32Array.from(g.dataSync() as Float32Array) : new Float32Array(v.size);
  });
  const loss = value.dataSync()[0]!;
  const terms = { ce: kept[0]!.dataSync()[0]!, window: kept[1]!.dataSync()[0]!, dead: kept[2]!.dataSync()[0]! };
  tf.dispose([value, inputTimes, ...kept, ...Object.values(grads)]);
  const last = net.layers.length - 1;
  const o = measuredSpikes(measured[last]!, net.layers[last]!.horizon);
  const pred = earliestSpike(o.times, o.mask, n, net.classes);
  let correct = 0;
  for (let b = 0; b < n; b++) if (pred[b] === labels[b]) correct++;
  return { loss, terms, grads: out, correct, silent };
}

/** Adam's state, plain arrays (checkpointable): step count and both moments per variable. */
export interface AdamState {
  step: number;
  m: Float64Array[];
  v: Float64Array[];
}

export interface AdamConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export function newAdamState(net: SpikingNetwork): AdamState {
  const sizes = net.trainableVariables().map((v) => v.size);
  return { step: 0, m: sizes.map((s) => new Float64Array(s)), v: sizes.map((s) => new Float64Array(s)) };
}

/** One Adam step on the network's variables with the given gradients, then pE, pI >= 0. */
export function adamStep(net: SpikingNetwork, state: AdamState, grads: readonly Float32Array[], cfg: AdamConfig): void {
  const { lr } = cfg;
  const b1 = cfg.beta1 ?? 0.9;
  const b2 = cfg.beta2 ?? 0.999;
  const eps = cfg.epsilon ?? 1e-7;
  if (!(lr > 0)) throw new RangeError(`lr must be > 0, got ${lr}`);
  const vars = net.trainableVariables();
  if (grads.length !== vars.length || state.m.length !== vars.length) {
    throw new RangeError(`${grads.length} gradients and ${state.m.length} moments for ${vars.length} variables`);
  }
  vars.forEach((v, i) => {
    if (grads[i]!.length !== v.size || state.m[i]!.length !== v.size)
      throw new RangeError(`variable ${i}: ${grads[i]!.length} gradients, ${state.m[i]!.length} moments, ${v.size} values`);
  });
  state.step++;
  const c1 = 1 - b1 ** state.step;
  const c2 = 1 - b2 ** state.step;
  const weights = snapshotWeights(net);
  weights.forEach((w, i) => {
    const g = grads[i]!;
    const m = state.m[i]!;
    const s = state.v[i]!;
    for (let k = 0; k < w.length; k++) {
      const gk = g[k]!;
      m[k] = b1 * m[k]! + (1 - b1) * gk;
      s[k] = b2 * s[k]! + (1 - b2) * gk * gk;
      const next = w[k]! - (lr * (m[k]! / c1)) / (Math.sqrt(s[k]! / c2) + eps);
      w[k] = next > 0 ? next : 0;
    }
  });
  restoreWeights(net, weights);
}
