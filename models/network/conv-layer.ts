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
import { makeLayer, type NeuronModel, type PnnLayer } from '../neuron/layer.ts';
import { membraneAtEnd } from '../solvers/dstd.ts';
import { binFractions, type LayerSpikes } from '../solvers/spike-tensors.ts';
import { layerGrid, type LayerForwardOptions, type MembraneOptions, type SpikeLayer } from './layer.ts';
import type { SpikeSolver } from './solver.ts';
import { conductanceFactors, conductancesOf } from './conductance-units.ts';

export interface ConvLayerState extends ConvGeometry {
  kind: 'conv';
  /** Earliest-spike pooling window (and stride) after the convolution; 1 = none. */
  pool: number;
  /** Flat widths: inH inW inC, and the pooled outH outW channels (derived; checked). */
  nIn: number;
  nOut: number;
  model: NeuronModel;
  ePlus: number;
  eMinus: number;
  horizon: number;
  /** As DenseLayerState.timeOffset. */
  timeOffset: number;
  scale: number;
  /** HWIO kernels [kernelH, kernelW, inC, channels], >= 0. */
  pE: Float32Array;
  pI: Float32Array;
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
  if (s.model !== 'pnn' && s.model !== 'ideal') throw new RangeError(`model must be 'pnn' or 'ideal', got '${String(s.model)}'`);
  if (!(Number.isFinite(s.ePlus) && s.ePlus > 0)) throw new RangeError(`ePlus must be finite and > 0, got ${s.ePlus}`);
  if (!(Number.isFinite(s.eMinus) && s.eMinus < 0)) throw new RangeError(`eMinus must be finite and < 0, got ${s.eMinus}`);
  if (!(Number.isFinite(s.horizon) && s.horizon > 0)) throw new RangeError(`horizon must be finite and > 0, got ${s.horizon}`);
  if (!(Number.isFinite(s.timeOffset) && s.timeOffset >= 0 && s.timeOffset < s.horizon)) {
    throw new RangeError(`timeOffset must lie in [0, horizon = ${s.horizon}), got ${s.timeOffset}`);
  }
  if (!(Number.isFinite(s.scale) && s.scale > 0)) throw new RangeError(`scale must be finite and > 0, got ${s.scale}`);
  for (const [name, a] of [
    ['pE', s.pE],
    ['pI', s.pI],
  ] as const) {
    if (!(a instanceof Float32Array) || a.length !== shape.kernelSize) {
      throw new RangeError(`${name} must be a Float32Array of kernelH*kernelW*inC*channels = ${shape.kernelSize} values`);
    }
    for (let k = 0; k < a.length; k++) {
      if (!(a[k]! >= 0 && Number.isFinite(a[k]!))) throw new RangeError(`${name}[${k}] = ${a[k]} must be finite and >= 0`);
    }
  }
}

export class ConvSpikeLayer implements SpikeLayer {
  readonly kind = 'conv';
  readonly nIn: number;
  readonly nOut: number;
  readonly model: NeuronModel;
  readonly ePlus: number;
  readonly eMinus: number;
  readonly horizon: number;
  readonly timeOffset: number;
  readonly geometry: ConvGeometry;
  readonly pool: number;
  readonly shape: ReturnType<typeof convLayerShape>;
  /** Mutable only so that initialisation can calibrate it (init.ts); fixed during training. */
  scale: number;
  /** HWIO kernels. */
  readonly pE: tf.Variable<tf.Rank.R4>;
  readonly pI: tf.Variable<tf.Rank.R4>;

  constructor(o: ConvLayerState) {
    checkConvState(o);
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
    this.nIn = o.nIn;
    this.nOut = o.nOut;
    this.model = o.model;
    this.ePlus = o.ePlus;
    this.eMinus = o.eMinus;
    this.horizon = o.horizon;
    this.timeOffset = o.timeOffset;
    this.scale = o.scale;
    const kshape: [number, number, number, number] = [o.kernelH, o.kernelW, o.inC, o.channels];
    this.pE = tf.variable(tf.tensor4d(Float32Array.from(o.pE), kshape), true);
    this.pI = tf.variable(tf.tensor4d(Float32Array.from(o.pI), kshape), true);
  }

  get padding(): Padding {
    return this.geometry.padding;
  }

  /** Kernels gE, gI (normalised conductances), differentiable in pE, pI. */
  conductances(): { gE: tf.Tensor4D; gI: tf.Tensor4D } {
    const { kE, kI } = conductanceFactors(this);
    return { gE: tf.mul(this.pE, kE) as tf.Tensor4D, gI: tf.mul(this.pI, kI) as tf.Tensor4D };
  }

  /** The ideal model's kernel: drive at rest scale (pE - pI). */
  restKernel(): tf.Tensor4D {
    return tf.mul(tf.sub(this.pE, this.pI), this.scale) as tf.Tensor4D;
  }

  private checkInput(inputTimes: tf.Tensor2D): void {
    if (inputTimes.rank !== 2 || inputTimes.shape[1] !== this.nIn) {
      throw new RangeError(
        `conv layer expects input times [batch, ${this.nIn}] (${this.geometry.inH}x${this.geometry.inW}x${this.geometry.inC}), got ${JSON.stringify(inputTimes.shape)}`,
      );
    }
  }

  forward(inputTimes: tf.Tensor2D, solver: SpikeSolver, opts: LayerForwardOptions = {}): LayerSpikes {
    this.checkInput(inputTimes);
    const inputGrad = opts.inputGrad ?? true;
    return tf.tidy(() => {
      const grid = solver.resolution === undefined ? undefined : layerGrid(inputTimes.dataSync(), this.timeOffset, this.horizon, solver.resolution);
      const start = grid?.start ?? 0;
      const x = start !== 0 ? (tf.sub(inputTimes, start) as tf.Tensor2D) : inputTimes;
      let s = this.solve(x, this.horizon - start, grid?.bins, solver, inputGrad);
      if (start !== 0) s = { times: tf.add(s.times, start) as tf.Tensor2D, mask: s.mask };
      if (this.pool === 1) return s;
      return minPoolSpikes(s, this.shape.outH, this.shape.outW, this.geometry.channels, this.pool);
    });
  }

  /** Un-pooled spikes [B, outH outW channels] on [0, horizon] (times shifted to the grid's start). */
  private solve(x: tf.Tensor2D, horizon: number, bins: number | undefined, solver: SpikeSolver, inputGrad: boolean): LayerSpikes {
    if (solver.fromDrives && bins !== undefined) {
      const { G, A } = this.binDrives(x, bins, horizon, inputGrad);
      return solver.fromDrives(G, A, tf.ones([this.shape.nOut]), horizon);
    }
    const { gE, gI } = this.conductances();
    const p = { model: this.model, gE: this.unroll(gE), gI: this.unroll(gI), ePlus: this.ePlus, eMinus: this.eMinus, horizon };
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
  private binDrives(x: tf.Tensor2D, bins: number, horizon: number, inputGrad: boolean): { G: tf.Tensor3D; A: tf.Tensor3D } {
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

  horizonMembrane(inputTimes: tf.Tensor2D, opts: MembraneOptions): tf.Tensor2D {
    this.checkInput(inputTimes);
    if (!Number.isInteger(opts.bins) || opts.bins < 1) throw new RangeError(`bins must be a positive integer, got ${opts.bins}`);
    return tf.tidy(() => {
      const grid = layerGrid(inputTimes.dataSync(), this.timeOffset, this.horizon, opts.bins);
      const x = grid.start !== 0 ? (tf.sub(inputTimes, grid.start) as tf.Tensor2D) : inputTimes;
      const span = this.horizon - grid.start;
      const { G, A } = this.binDrives(x, grid.bins, span, opts.inputGrad ?? true);
      return this.poolMax(membraneAtEnd(G, A, span / grid.bins));
    });
  }

  trainableVariables(): tf.Variable[] {
    return [this.pE, this.pI];
  }

  project(): void {
    tf.tidy(() => {
      this.pE.assign(tf.relu(this.pE));
      this.pI.assign(tf.relu(this.pI));
    });
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

  /** The unrolled layer; a pooled layer has no single dense form (pooling is not a synapse). */
  toPnnLayer(): PnnLayer {
    if (this.pool !== 1) {
      throw new RangeError(
        `conv layer with pool ${this.pool} has no dense PnnLayer form: use toUnrolledLayer() and pool its spikes; deploying pooled conv nets is not implemented`,
      );
    }
    return this.toUnrolledLayer();
  }

  state(): ConvLayerState {
    return {
      kind: 'conv',
      ...this.geometry,
      pool: this.pool,
      nIn: this.nIn,
      nOut: this.nOut,
      model: this.model,
      ePlus: this.ePlus,
      eMinus: this.eMinus,
      horizon: this.horizon,
      timeOffset: this.timeOffset,
      scale: this.scale,
      pE: Float32Array.from(this.pE.dataSync()),
      pI: Float32Array.from(this.pI.dataSync()),
    };
  }

  dispose(): void {
    this.pE.dispose();
    this.pI.dispose();
  }
}
