/**
 * The exact solver (models/solvers/exact.ts, float64, event-driven) as a differentiable tfjs op,
 * so a network can be trained with the exact solver's implicit-function-theorem gradients.
 *
 * Forward: copy the layer's conductances and the input times to float64, run exactForward.
 * Backward: exactBackward with dL/d(output times); gradients come back for gE, gI and the input
 * times. ePlus, eMinus, gL, thresholdScale and delay are read as constants (not trained here).
 * Cost grows as batch x N_in x N_out per layer and runs on one core: meant for small networks.
 */

import * as tf from '@tensorflow/tfjs-core';
import { makeLayer, type PnnLayer } from '../neuron/layer.ts';
import { exactBackward, exactForward } from '../solvers/exact.ts';
import type { DenseLayerTensors, LayerSpikes } from '../solvers/spike-tensors.ts';

function scalarOf(v: tf.Scalar | number): number {
  return typeof v === 'number' ? v : v.dataSync()[0]!;
}

function optionalVector(t: tf.Tensor | undefined, n: number): Float64Array | undefined {
  if (!t) return undefined;
  const d = t.dataSync();
  if (d.length === 1) return new Float64Array(n).fill(d[0]!);
  return Float64Array.from(d);
}

/** A float64 layer from tensors (values copied). */
export function tensorsToPnnLayer(p: DenseLayerTensors): PnnLayer {
  const [nIn, nOut] = p.gE.shape;
  return makeLayer({
    nIn,
    nOut,
    model: p.model ?? 'pnn',
    gE: Float64Array.from(p.gE.dataSync()),
    gI: Float64Array.from(p.gI.dataSync()),
    ePlus: scalarOf(p.ePlus),
    eMinus: scalarOf(p.eMinus),
    horizon: p.horizon,
    gL: optionalVector(p.gL, nOut),
    thresholdScale: optionalVector(p.thresholdScale, nOut),
    delay: optionalVector(p.delay, nOut),
  });
}

export function exactDenseOp(p: DenseLayerTensors, inputTimes: tf.Tensor2D, opts: { inputGrad?: boolean } = {}): LayerSpikes {
  const [batch, nIn] = inputTimes.shape;
  const nOut = p.gE.shape[1];
  if (p.gE.shape[0] !== nIn) throw new RangeError(`inputTimes has ${nIn} columns but gE has ${p.gE.shape[0]} rows`);
  const horizon = p.horizon;
  let maskData: Float32Array | null = null;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [gE, gI, x] = args as tf.Tensor[];
    const layer = tensorsToPnnLayer({ ...p, gE: gE as tf.Tensor2D, gI: gI as tf.Tensor2D });
    const x64 = Float64Array.from(x.dataSync());
    const { times } = exactForward(layer, x64, batch, { validate: false });
    const value = new Float32Array(times.length);
    const mask = new Float32Array(times.length);
    for (let k = 0; k < times.length; k++) {
      const fired = times[k]! <= horizon;
      value[k] = fired ? times[k]! : horizon;
      mask[k] = fired ? 1 : 0;
    }
    maskData = mask;
    return {
      value: tf.tensor2d(value, [batch, nOut]),
      gradFunc: (dy: tf.Tensor) => {
        const r = exactBackward(layer, x64, batch, Float64Array.from(dy.dataSync()), { validate: false });
        const dx = opts.inputGrad === false ? new Float32Array(batch * nIn) : Float32Array.from(r.grads.inputTimes);
        return [
          tf.tensor2d(Float32Array.from(r.grads.gE), [nIn, nOut]),
          tf.tensor2d(Float32Array.from(r.grads.gI), [nIn, nOut]),
          tf.tensor2d(dx, [batch, nIn]),
        ];
      },
    };
  });
  const times = op(p.gE, p.gI, inputTimes) as tf.Tensor2D;
  return { times, mask: tf.tensor2d(maskData!, [batch, nOut]) };
}
