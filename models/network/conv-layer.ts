/**
 * A convolutional PNN layer (issue #31), optionally followed by earliest-spike pooling.
 *
 * Each output neuron (oy, ox, o) obeys eq. (1) of docs/MODEL.md §2 with its inputs being its
 * receptive field; every position shares the kernels gE, gI [kh, kw, Ci, Co] (HWIO, NHWC layout,
 * models/conv/geometry.ts). Parameters as the dense layer's (layer.ts): pE = gE ePlus / scale and
 * pI = gI |eMinus| / scale, >= 0 by projection, so scale (pE - pI) is the ideal model's kernel.
 *
 * Solvers (docs/MODEL.md §5):
 * - DSTD (any solver with fromDrives): per-bin drives are a convolution of the per-bin input
 *   fractions s(m) of eq. (4): G = conv(s, gE + gI), A = conv(s, gE E+ + gI E-), one conv2d over
 *   all bins at once, then the solver's crossing step.
 * - Exact and Euler: the convolution unrolled to its dense Toeplitz weights (convToDense), handed to
 *   the solver's dense path; the gradient of a shared weight sums over its positions. That is the
 *   layer a crossbar holds, so the exact solver's figures are the chip's; its cost grows with
 *   nIn x nOut, so it is for small layers and references.
 *
 * Pooling (pool > 1) takes the earliest spike of each pool x pool window (models/conv/min-pool.ts)
 * inside the same layer: it has no neurons and no time window of its own, so a conv layer with its
 * pool is one layer of the network's layer-wise windows (network.ts). `nOut` is the pooled width.
 */

import * as tf from '@tensorflow/tfjs-core';
import { conv2dShared } from '../conv/conv-op.ts';
import { convShape, convToDense, denseToConvGrad, pooledShape, type ConvGeometry, type ConvShape, type Padding } from '../conv/geometry.ts';
import { maxPool, minPoolSpikes } from '../conv/min-pool.ts';
import { makeLayer, type PnnLayer } from '../neuron/layer.ts';
import { binFractions, type LayerSpikes } from '../solvers/spike-tensors.ts';
import type { DenseLayerState, SpikeLayer } from './layer.ts';
import { checkSynapsePhysics, checkUnits, SynapseLayer, type SynapseLayerState } from './synapse-layer.ts';
import type { SpikeSolver } from './solver.ts';
import { conductancesOf } from './conductance-units.ts';

export interface ConvLayerState extends ConvGeometry, SynapseLayerState {
  kind: 'conv';
  /** Earliest-spike pooling window (and stride) after the convolution; 1 = none. */
  pool: number;
  /** Flat widths nIn (inH inW inC) and nOut (the pooled outH outW channels) are derived and checked; pE, pI are HWIO kernels [kernelH, kernelW, inC, channels]. */
}

/** Output sizes of a conv layer with its pool: the convolution's map and the pooled one. */
export function convLayerShape(s: ConvGeometry & { pool: number }): ConvShape & { poolH: number; poolW: number; nPooled: number } {
  const c = convShape(s);
  const p = s.pool === 1 ? { h: c.outH, w: c.outW } : pooledShape(c.outH, c.outW, s.pool);
  return { ...c, poolH: p.h, poolW: p.w, nPooled: p.h * p.w * s.channels };
}

export function checkConvState(s: ConvLayerState): void {
  const shape = convLayerShape(s);
  if (s.nIn !== shape.nIn || s.nOut !== shape.nPooled) {
    throw new RangeError(
      `conv layer sizes ${s.nIn} x ${s.nOut} do not match its geometry (${shape.nIn} x ${shape.nPooled}); rebuild the layer from its geometry`,
    );
  }
  checkSynapsePhysics(s);
  checkUnits(s, shape.kernelSize, 'kernelH*kernelW*inC*channels');
}

export class ConvSpikeLayer extends SynapseLayer<tf.Rank.R4> implements SpikeLayer {
  readonly kind = 'conv';
  readonly geometry: ConvGeometry;
  readonly pool: number;
  readonly shape: ReturnType<typeof convLayerShape>;

  constructor(o: ConvLayerState) {
    checkConvState(o);
    super(o, [o.kernelH, o.kernelW, o.inC, o.channels]);
    this.geometry = {
      inH: o.inH,
      inW: o.inW,
      inC: o.inC,
      channels: o.channels,
      kernelH: o.kernelH,
      kernelW: o.kernelW,
      stride: o.stride,
      padding: o.padding,
    };
    this.pool = o.pool;
    this.shape = convLayerShape(o);
  }

  get padding(): Padding {
    return this.geometry.padding;
  }

  /** The ideal model's kernel: drive at rest scale (pE - pI). */
  restKernel(): tf.Tensor4D {
    return tf.mul(tf.sub(this.pE, this.pI), this.scale) as tf.Tensor4D;
  }

  protected override checkInput(inputTimes: tf.Tensor2D): void {
    if (inputTimes.rank !== 2 || inputTimes.shape[1] !== this.nIn) {
      throw new RangeError(
        `conv layer expects input times [batch, ${this.nIn}] (${this.geometry.inH}x${this.geometry.inW}x${this.geometry.inC}), got ${JSON.stringify(inputTimes.shape)}`,
      );
    }
  }

  /** Earliest-spike pooling (pool > 1). */
  protected override outputSpikes(s: LayerSpikes): LayerSpikes {
    if (this.pool === 1) return s;
    return minPoolSpikes(s, this.shape.outH, this.shape.outW, this.geometry.channels, this.pool);
  }

  /** Un-pooled spikes [B, outH outW channels] on [0, horizon] (times shifted to the grid's start). */
  protected solve(x: tf.Tensor2D, horizon: number, bins: number | undefined, solver: SpikeSolver, inputGrad: boolean): LayerSpikes {
    if (solver.fromDrives && bins !== undefined) {
      const { G, A } = this.binDrives(x, bins, horizon, inputGrad);
      return solver.fromDrives(G, A, tf.ones([this.shape.nOut]), horizon);
    }
    const { gE, gI } = this.conductances();
    const p = { model: this.model, gE: this.unroll(gE as tf.Tensor4D), gI: this.unroll(gI as tf.Tensor4D), ePlus: this.ePlus, eMinus: this.eMinus, horizon };
    return solver.dense(p, x, { inputGrad, bins });
  }

  /** Dense Toeplitz weights [nIn, nConvOut] of an HWIO kernel tensor, differentiable (shared-weight gradient summed). */
  unroll(kernel: tf.Tensor4D): tf.Tensor2D {
    const g = this.geometry;
    const s = this.shape;
    const kshape = kernel.shape;
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const k = args[0] as tf.Tensor;
      return {
        value: tf.tensor2d(Float32Array.from(convToDense(k.dataSync(), g)), [s.nIn, s.nOut]),
        gradFunc: (dy: tf.Tensor) => tf.tensor(Float32Array.from(denseToConvGrad(dy.dataSync(), g)), kshape),
      };
    });
    return op(kernel) as tf.Tensor2D;
  }

  /**
   * Per-bin drives G, A [B, bins, outH outW channels] on [0, horizon] by one convolution of the
   * bin fractions over all bins (eq. (4)); the ideal model has G = 0. Call inside a tidy.
   */
  protected binDrives(x: tf.Tensor2D, bins: number, horizon: number, inputGrad: boolean): { G: tf.Tensor3D; A: tf.Tensor3D } {
    const g = this.geometry;
    const B = x.shape[0];
    const n = this.shape.nOut;
    const img = tf.reshape(x, [B, g.inH, g.inW, g.inC]);
    const S = binFractions(img, bins, horizon);
    const S4 = tf.reshape(S, [B * bins, g.inH, g.inW, g.inC]) as tf.Tensor4D;
    const wA = this.restKernel();
    if (this.model !== 'pnn') {
      const A = tf.reshape(conv2dShared(S4, wA, g.stride, g.padding, inputGrad), [B, bins, n]) as tf.Tensor3D;
      return { G: tf.zeros([B, bins, n]), A };
    }
    const { gE, gI } = this.conductances();
    const G = tf.reshape(conv2dShared(S4, tf.add(gE, gI) as tf.Tensor4D, g.stride, g.padding, inputGrad), [B, bins, n]) as tf.Tensor3D;
    const A = tf.reshape(conv2dShared(S4, wA, g.stride, g.padding, inputGrad), [B, bins, n]) as tf.Tensor3D;
    return { G, A };
  }

  /** [B, outH outW channels] to the pooled [B, nOut] by the largest value per window. */
  private poolMax(v: tf.Tensor2D): tf.Tensor2D {
    if (this.pool === 1) return v;
    const B = v.shape[0];
    const p = maxPool(tf.reshape(v, [B, this.shape.outH, this.shape.outW, this.geometry.channels]) as tf.Tensor4D, this.pool);
    return tf.reshape(p, [B, this.nOut]) as tf.Tensor2D;
  }

  restPotential(inputTimes: tf.Tensor2D): tf.Tensor2D {
    this.checkInput(inputTimes);
    const g = this.geometry;
    return tf.tidy(() => {
      const lead = tf.relu(tf.sub(this.horizon, tf.minimum(inputTimes, this.horizon)));
      const img = tf.reshape(lead, [inputTimes.shape[0], g.inH, g.inW, g.inC]) as tf.Tensor4D;
      const v = conv2dShared(img, this.restKernel(), g.stride, g.padding);
      return this.poolMax(tf.reshape(v, [inputTimes.shape[0], this.shape.nOut]) as tf.Tensor2D);
    });
  }

  /** Pooled by the largest value per window. */
  protected membraneOutput(u: tf.Tensor2D): tf.Tensor2D {
    return this.poolMax(u);
  }

  /**
   * The convolution unrolled to a dense float64 layer [nIn, outH outW channels] (before pooling):
   * what a crossbar holds, and what the exact solver runs.
   */
  toUnrolledLayer(): PnnLayer {
    const { gE, gI } = conductancesOf(this, this.pE.dataSync(), this.pI.dataSync());
    return makeLayer({
      nIn: this.nIn,
      nOut: this.shape.nOut,
      model: this.model,
      gE: convToDense(gE, this.geometry),
      gI: convToDense(gI, this.geometry),
      ePlus: this.ePlus,
      eMinus: this.eMinus,
      horizon: this.horizon,
    });
  }

  /** Why this layer has no dense form (a crossbar's), or undefined: pooling is not a synapse. */
  denseFormProblem(): string | undefined {
    if (this.pool === 1) return undefined;
    return `its ${this.pool}x${this.pool} earliest-spike pooling has no crossbar form (a crossbar holds synapses, not a minimum over neurons): use a strided conv entry instead of conv + pool`;
  }

  /** The unrolled layer; a pooled layer has no single dense form (pooling is not a synapse). */
  toPnnLayer(): PnnLayer {
    const problem = this.denseFormProblem();
    if (problem) throw new RangeError(`conv layer: ${problem}; toUnrolledLayer() gives the layer before pooling`);
    return this.toUnrolledLayer();
  }

  /**
   * The dense layer a crossbar holds (pool = 1): the Toeplitz weights in the layer's trainable
   * units (convToDense is linear), zero outside the receptive fields, same scale and physics.
   * Each position then owns its copy: what a chip realises through each synapse's own curve.
   */
  toUnrolledState(): DenseLayerState {
    const problem = this.denseFormProblem();
    if (problem) throw new RangeError(`conv layer: ${problem}`);
    const s = this.synapseState();
    return {
      ...s,
      kind: 'dense',
      nOut: this.shape.nOut,
      pE: Float32Array.from(convToDense(s.pE, this.geometry)),
      pI: Float32Array.from(convToDense(s.pI, this.geometry)),
    };
  }

  state(): ConvLayerState {
    return { kind: 'conv', ...this.geometry, pool: this.pool, ...this.synapseState() };
  }
}
