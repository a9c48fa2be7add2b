/** Test support: gradients of L = sum w * t from a tensor solver, checked for tensor leaks. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { makeLayer } from '../../../models/neuron/layer.ts';
import { disposeLayerTensors, layerToTensors, type DenseLayerTensors } from '../../../models/solvers/spike-tensors.ts';
import type { FdCase } from './fd-exact.ts';

export type Trainable = 'gE' | 'gI' | 'ePlus' | 'eMinus' | 'gL' | 'thresholdScale' | 'delay';
export const TRAINABLE: Trainable[] = ['gE', 'gI', 'ePlus', 'eMinus', 'gL', 'thresholdScale', 'delay'];

/** Gradients of L = sum w * t with respect to every parameter and the input times. */
export function tensorGradients(
  c: FdCase,
  solve: (p: DenseLayerTensors, x: tf.Tensor2D) => { times: tf.Tensor2D },
): Record<Trainable | 'inputTimes', Float32Array> {
  const p = layerToTensors(makeLayer(c.spec));
  const xt = tf.tensor2d(Float32Array.from(c.x), [c.batch, c.spec.nIn]);
  const wt = tf.tensor2d(Float32Array.from(c.w), [c.batch, c.spec.nOut]);
  const inputs = [...TRAINABLE.map((k) => p[k] as tf.Tensor), xt];
  const before = tf.memory().numTensors;
  const grads = tf.grads((...ts: tf.Tensor[]) => {
    const q = { ...p } as Record<string, unknown>;
    TRAINABLE.forEach((k, i) => (q[k] = ts[i]));
    return tf.sum(tf.mul(solve(q as unknown as DenseLayerTensors, ts[TRAINABLE.length] as tf.Tensor2D).times, wt)) as tf.Scalar;
  })(inputs);
  // Nothing but the returned gradients survives the pass.
  expect(tf.memory().numTensors - before).toBe(grads.length);
  const out = {} as Record<Trainable | 'inputTimes', Float32Array>;
  [...TRAINABLE, 'inputTimes' as const].forEach((k, i) => (out[k] = grads[i].dataSync() as Float32Array));
  tf.dispose([...grads, xt, wt]);
  disposeLayerTensors(p);
  return out;
}
