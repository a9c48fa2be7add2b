/**
 * What the dense and the convolutional PNN layers share (layer.ts, conv-layer.ts): the trainable
 * units pE, pI (docs/MODEL.md §7, conductance-units.ts) kept >= 0 by projection, the checks of
 * their state, the grid a grid solver runs on (layerGrid: inputs shifted to the grid's start and
 * outputs shifted back), and the DSTD membrane at the horizon on that grid. A subclass says how its
 * synapses connect: its solve (dense parameters or per-bin drives) and its binDrives.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { NeuronModel } from '../neuron/layer.ts';
import { membraneAtEnd } from '../solvers/dstd.ts';
import type { LayerSpikes } from '../solvers/spike-tensors.ts';
import { conductanceFactors } from './conductance-units.ts';
import type { LayerForwardOptions, MembraneOptions } from './layer.ts';
import type { SpikeSolver } from './solver.ts';

export interface LayerGrid {
  /** Time of the grid's first edge (<= timeOffset; may be < 0). */
  start: number;
  /** Bins (or steps) of width (horizon - timeOffset) / resolution from start to the horizon. */
  bins: number;
}

/**
 * The grid a grid solver uses for a layer: `resolution` bins over [offset, horizon], extended
 * backwards by whole bins of the same width (an input before 0 counts as switched on from the
 * grid's start, as on an unshifted grid). Bin edges stay aligned on the offset, so the physics does
 * not depend on how far the extension goes; the float32 arithmetic does, since times are taken
 * from the grid's start. With a batch's `inputTimes` the grid reaches back to the batch's earliest
 * finite input (training: the fewest bins); without, down to 0, where any input can arrive, so a
 * sample's spike times are the same, bit for bit, in whatever batch it is computed (inference).
 */
export function layerGrid(offset: number, horizon: number, resolution: number, inputTimes?: ArrayLike<number>): LayerGrid {
  if (!(offset > 0)) return { start: 0, bins: resolution };
  const dt = (horizon - offset) / resolution;
  let tMin = 0;
  if (inputTimes) {
    tMin = offset;
    for (let k = 0; k < inputTimes.length; k++) {
      const t = inputTimes[k]!;
      if (t < tMin) tMin = t;
    }
    if (!(tMin < offset)) return { start: offset, bins: resolution };
  }
  // A relative tolerance keeps an input sitting on an edge (up to rounding) from adding a bin.
  const pre = Math.min(Math.ceil((offset - Math.max(tMin, 0)) / dt - 1e-6), Math.ceil(offset / dt - 1e-6));
  return { start: offset - pre * dt, bins: resolution + pre };
}

/** The state every synapse layer has. */
export interface SynapseLayerState {
  nIn: number;
  nOut: number;
  model: NeuronModel;
  ePlus: number;
  eMinus: number;
  horizon: number;
  /**
   * Where a grid solver's resolution is spent (the start of the layer's inputs' window): its M
   * bins (or steps) cover [timeOffset, horizon] instead of [0, horizon]. Inputs that arrive before
   * the offset are not moved: the grid is extended backwards in bins of the same width down to the
   * earliest input of the batch, or to 0 with `fixedGrid` (layerGrid), so the layer computes the same
   * physics as the exact solver for any input times. The membrane stays at rest until the first
   * input, so the bins left out before it change nothing. 0 = the grid starts at 0.
   */
  timeOffset: number;
  scale: number;
  /** Trainable units, >= 0 (dense: nIn x nOut row-major; conv: HWIO kernels). */
  pE: Float32Array;
  pI: Float32Array;
}

/** Throws naming the field unless the neuron physics, window and scale are valid. */
export function checkSynapsePhysics(s: SynapseLayerState): void {
  if (s.model !== 'pnn' && s.model !== 'ideal') throw new RangeError(`model must be 'pnn' or 'ideal', got '${String(s.model)}'`);
  if (!(Number.isFinite(s.ePlus) && s.ePlus > 0)) throw new RangeError(`ePlus must be finite and > 0, got ${s.ePlus}`);
  if (!(Number.isFinite(s.eMinus) && s.eMinus < 0)) throw new RangeError(`eMinus must be finite and < 0, got ${s.eMinus}`);
  if (!(Number.isFinite(s.horizon) && s.horizon > 0)) throw new RangeError(`horizon must be finite and > 0, got ${s.horizon}`);
  if (!(Number.isFinite(s.timeOffset) && s.timeOffset >= 0 && s.timeOffset < s.horizon)) {
    throw new RangeError(`timeOffset must lie in [0, horizon = ${s.horizon}), got ${s.timeOffset}`);
  }
  if (!(Number.isFinite(s.scale) && s.scale > 0)) throw new RangeError(`scale must be finite and > 0, got ${s.scale}`);
}

/** Throws naming the field unless pE and pI hold `size` finite values >= 0 (`what` names the size). */
export function checkUnits(s: SynapseLayerState, size: number, what: string): void {
  for (const [name, a] of [
    ['pE', s.pE],
    ['pI', s.pI],
  ] as const) {
    if (!(a instanceof Float32Array) || a.length !== size) throw new RangeError(`${name} must be a Float32Array of ${what} = ${size} values`);
    for (let k = 0; k < a.length; k++) {
      if (!(a[k]! >= 0 && Number.isFinite(a[k]!))) throw new RangeError(`${name}[${k}] = ${a[k]} must be finite and >= 0`);
    }
  }
}

export abstract class SynapseLayer<R extends tf.Rank> {
  readonly nIn: number;
  readonly nOut: number;
  readonly model: NeuronModel;
  readonly ePlus: number;
  readonly eMinus: number;
  readonly horizon: number;
  readonly timeOffset: number;
  /** Mutable only so that initialisation can calibrate it (init.ts); fixed during training. */
  scale: number;
  readonly pE: tf.Variable<R>;
  readonly pI: tf.Variable<R>;

  /** `o` already checked; `shape` is the units' tensor shape. */
  constructor(o: SynapseLayerState, shape: number[]) {
    this.nIn = o.nIn;
    this.nOut = o.nOut;
    this.model = o.model;
    this.ePlus = o.ePlus;
    this.eMinus = o.eMinus;
    this.horizon = o.horizon;
    this.timeOffset = o.timeOffset;
    this.scale = o.scale;
    this.pE = variableFrom<R>(o.pE, shape);
    this.pI = variableFrom<R>(o.pI, shape);
  }

  /** Conductances gE, gI (normalised units) in the units' shape, differentiable in pE, pI. */
  conductances(): { gE: tf.Tensor<R>; gI: tf.Tensor<R> } {
    const { kE, kI } = conductanceFactors(this);
    return { gE: tf.mul(this.pE, kE) as tf.Tensor<R>, gI: tf.mul(this.pI, kI) as tf.Tensor<R> };
  }

  /** Throws unless the input times are [batch, nIn]. */
  protected checkInput(inputTimes: tf.Tensor2D): void {
    if (inputTimes.rank !== 2 || inputTimes.shape[1] !== this.nIn) {
      throw new RangeError(`layer expects input times [batch, ${this.nIn}], got ${JSON.stringify(inputTimes.shape)}`);
    }
  }

  /** Spikes on [0, horizon] (times already shifted to the grid's start), `bins` grid bins or steps. */
  protected abstract solve(inputTimes: tf.Tensor2D, horizon: number, bins: number | undefined, solver: SpikeSolver, inputGrad: boolean): LayerSpikes;

  /** Per-bin drives G, A [B, bins, neurons] on [0, horizon] (times shifted to the grid's start); the ideal model has G = 0. Call inside a tidy. */
  protected abstract binDrives(inputTimes: tf.Tensor2D, bins: number, horizon: number, inputGrad: boolean): { G: tf.Tensor3D; A: tf.Tensor3D };

  /** The layer's outputs from its neurons' spikes (a pooling layer pools them). */
  protected outputSpikes(s: LayerSpikes): LayerSpikes {
    return s;
  }

  /** The layer's membrane output from its neurons' membrane at the horizon. */
  protected abstract membraneOutput(u: tf.Tensor2D): tf.Tensor2D;

  forward(inputTimes: tf.Tensor2D, solver: SpikeSolver, opts: LayerForwardOptions = {}): LayerSpikes {
    this.checkInput(inputTimes);
    const inputGrad = opts.inputGrad ?? true;
    return tf.tidy(() => {
      const grid =
        solver.resolution === undefined
          ? undefined
          : layerGrid(this.timeOffset, this.horizon, solver.resolution, opts.fixedGrid ? undefined : inputTimes.dataSync());
      const start = grid?.start ?? 0;
      const x = start !== 0 ? (tf.sub(inputTimes, start) as tf.Tensor2D) : inputTimes;
      const s = this.solve(x, this.horizon - start, grid?.bins, solver, inputGrad);
      return this.outputSpikes(start !== 0 ? { times: tf.add(s.times, start) as tf.Tensor2D, mask: s.mask } : s);
    });
  }

  horizonMembrane(inputTimes: tf.Tensor2D, opts: MembraneOptions): tf.Tensor2D {
    this.checkInput(inputTimes);
    if (!Number.isInteger(opts.bins) || opts.bins < 1) throw new RangeError(`bins must be a positive integer, got ${opts.bins}`);
    const inputGrad = opts.inputGrad ?? true;
    return tf.tidy(() => {
      // The same grid and drives as the DSTD forward pass, so a silent neuron's value is the u its
      // recursion ended on, whichever solver is training.
      const grid = layerGrid(this.timeOffset, this.horizon, opts.bins, inputTimes.dataSync());
      const x = grid.start !== 0 ? (tf.sub(inputTimes, grid.start) as tf.Tensor2D) : inputTimes;
      const span = this.horizon - grid.start;
      const { G, A } = this.binDrives(x, grid.bins, span, inputGrad);
      return this.membraneOutput(membraneAtEnd(G, A, span / grid.bins));
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

  /** The state fields every synapse layer saves (copies). */
  protected synapseState(): SynapseLayerState {
    return {
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

function variableFrom<R extends tf.Rank>(a: Float32Array, shape: number[]): tf.Variable<R> {
  const t = tf.tensor(Float32Array.from(a), shape);
  const v = tf.variable(t, true) as tf.Variable<R>;
  t.dispose();
  return v;
}
