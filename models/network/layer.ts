/**
 * Trainable spiking layers.
 *
 * `SpikeLayer` is what a network stacks. It says nothing about how inputs connect to neurons:
 * a layer turns input spike times into output spikes through a `SpikeSolver` (solver.ts), either
 * by handing the solver dense parameters or by forming per-bin drives itself (a convolutional
 * layer would form them with conv2d) and asking the solver only for the crossing. Every layer
 * works on flat [batch, features] times; a convolutional layer reshapes internally.
 *
 * `DenseSpikeLayer` is the fully connected PNN layer of eq. (1). Its trainable parameters are
 *   pE = gE * ePlus / scale,  pI = gI * |eMinus| / scale   (both >= 0, tf.Variables),
 * i.e. each synapse's drive at rest (du/dt at u = 0, the ideal model's weight) in units of a fixed
 * per-layer `scale` chosen at initialisation. Working in these units makes one Adam learning rate
 * a relative step for every layer, whatever its fan-in, and makes pE - pI the signed weight of the
 * ideal model. Non-negativity is kept by projection after each optimiser step (project()), not by
 * a softplus: a conductance must be able to reach exactly zero (a transistor switched off, the
 * bottom DAC code), the gradient is not damped near zero as softplus' would be, and the stored
 * number is the physical conductance (up to the constant factor), which the mapping to gate
 * voltages needs.
 */

import * as tf from '@tensorflow/tfjs-core';
import { makeLayer, type NeuronModel, type PnnLayer } from '../neuron/layer.ts';
import type { LayerSpikes } from '../solvers/spike-tensors.ts';
import { eventDrives } from './event-drives.ts';
import { membraneAtEnd } from '../solvers/dstd.ts';
import { matMul } from '../tf/matmul.ts';
import type { SpikeSolver } from './solver.ts';
import type { ConvLayerState } from './conv-layer.ts';
import { conductanceFactors, conductancesOf } from './conductance-units.ts';

/** What rebuilds any layer kind (serialize.ts, SpikingNetwork.fromStates). */
export type LayerState = DenseLayerState | ConvLayerState;

/** How a dense layer forms per-bin drives when the solver accepts drives. */
export type DriveMode = 'events' | 'solver';

export interface LayerForwardOptions {
  /** dL/d(input times) needed (false for the first layer, whose inputs are data). Default true. */
  inputGrad?: boolean;
}

export interface MembraneOptions {
  /** Bins over the layer's window (its grid is extended backwards as layerGrid does). */
  bins: number;
  /** Gradients with respect to the input times are needed (default true). */
  inputGrad?: boolean;
}

export interface SpikeLayer {
  readonly kind: string;
  readonly nIn: number;
  readonly nOut: number;
  readonly model: NeuronModel;
  /** Window end, normalised time: later outputs are silent. */
  readonly horizon: number;
  /** Differentiable forward pass: times [B, nOut] clamped at the horizon, mask 1 = fired. */
  forward(inputTimes: tf.Tensor2D, solver: SpikeSolver, opts?: LayerForwardOptions): LayerSpikes;
  /**
   * The ideal-limit membrane at the horizon, sum_j w_ij (horizon - t_j)+ with w the drive at rest,
   * [B, nOut]: how close each neuron came to firing, differentiable in the weights even for silent
   * neurons (whose clamped output time has no gradient). The dead-neuron term pushes it up.
   */
  restPotential(inputTimes: tf.Tensor2D): tf.Tensor2D;
  /**
   * The model's own membrane at the horizon in units of each neuron's firing level, [B, nOut],
   * on a DSTD grid of `bins` bins over the layer's window (as the trainer's grid): for a silent
   * neuron, how far below threshold it ended (< 1), differentiable in the weights (and, with
   * inputGrad, in the input times). For the PNN it is lower than restPotential, which leaves out
   * the reversal potentials; for the ideal model the two agree (up to the firing level).
   */
  horizonMembrane(inputTimes: tf.Tensor2D, opts: MembraneOptions): tf.Tensor2D;
  trainableVariables(): tf.Variable[];
  /** Restores constraints (conductances >= 0) after an optimiser step. */
  project(): void;
  /** Float64 copy in the solvers' common form (for the exact solver, chip deployment, reports). */
  toPnnLayer(): PnnLayer;
  /** Everything needed to rebuild the layer (saved by serialize.ts). */
  state(): LayerState;
  dispose(): void;
}

export interface DenseLayerState {
  kind: 'dense';
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
   * earliest input of the batch (layerGrid), so the layer computes the same physics as the exact
   * solver for any input times. The membrane stays at rest until the first input, so the bins
   * left out before it change nothing. 0 = the grid starts at 0.
   */
  timeOffset: number;
  scale: number;
  /** nIn x nOut row-major, >= 0. */
  pE: Float32Array;
  pI: Float32Array;
  /**
   * Per-neuron firing level [nOut] (> 0; absent = 1) and output delay [nOut] (absent = 0), as a
   * calibration measured them on a chip (docs/MODEL.md §9). Fixed: not trained.
   */
  thresholdScale?: Float32Array;
  delay?: Float32Array;
}

export interface DenseLayerOptions extends DenseLayerState {
  drives?: DriveMode;
}

export function checkDenseState(s: DenseLayerState): void {
  const { nIn, nOut } = s;
  if (!Number.isInteger(nIn) || nIn < 1 || !Number.isInteger(nOut) || nOut < 1) {
    throw new RangeError(`layer sizes must be positive integers, got ${nIn} x ${nOut}`);
  }
  if (s.model !== 'pnn' && s.model !== 'ideal') throw new RangeError(`model must be 'pnn' or 'ideal', got '${String(s.model)}'`);
  if (!(Number.isFinite(s.ePlus) && s.ePlus > 0)) throw new RangeError(`ePlus must be finite and > 0, got ${s.ePlus}`);
  if (!(Number.isFinite(s.eMinus) && s.eMinus < 0)) throw new RangeError(`eMinus must be finite and < 0, got ${s.eMinus}`);
  if (!(Number.isFinite(s.horizon) && s.horizon > 0)) throw new RangeError(`horizon must be finite and > 0, got ${s.horizon}`);
  if (!(Number.isFinite(s.timeOffset) && s.timeOffset >= 0 && s.timeOffset < s.horizon)) {
    throw new RangeError(`timeOffset must lie in [0, horizon = ${s.horizon}), got ${s.timeOffset}`);
  }
  if (!(Number.isFinite(s.scale) && s.scale > 0)) throw new RangeError(`scale must be finite and > 0, got ${s.scale}`);
  const perNeuron = [
    ['thresholdScale', s.thresholdScale, (v: number) => v > 0, '> 0'],
    ['delay', s.delay, (v: number) => true, 'finite'],
  ] as const;
  for (const [name, a, ok, what] of perNeuron) {
    if (a === undefined) continue;
    if (!(a instanceof Float32Array) || a.length !== nOut) throw new RangeError(`${name} must be a Float32Array of nOut = ${nOut} values`);
    for (let k = 0; k < a.length; k++) {
      if (!(Number.isFinite(a[k]!) && ok(a[k]!))) throw new RangeError(`${name}[${k}] = ${a[k]} must be ${what}`);
    }
  }
  for (const [name, a] of [
    ['pE', s.pE],
    ['pI', s.pI],
  ] as const) {
    if (!(a instanceof Float32Array) || a.length !== nIn * nOut) {
      throw new RangeError(`${name} must be a Float32Array of nIn*nOut = ${nIn * nOut} values`);
    }
    for (let k = 0; k < a.length; k++) {
      if (!(a[k]! >= 0 && Number.isFinite(a[k]!))) throw new RangeError(`${name}[${k}] = ${a[k]} must be finite and >= 0`);
    }
  }
}

function variableFrom(a: Float32Array, rows: number, cols: number): tf.Variable<tf.Rank.R2> {
  const t = tf.tensor2d(a, [rows, cols]);
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

export interface LayerGrid {
  /** Time of the grid's first edge (<= timeOffset; may be < 0). */
  start: number;
  /** Bins (or steps) of width (horizon - timeOffset) / resolution from start to the horizon. */
  bins: number;
}

/**
 * The grid a grid solver uses for one batch: `resolution` bins over [offset, horizon], extended
 * backwards by whole bins of the same width until it covers the earliest finite input time (not
 * below 0; an input before 0 counts as switched on from the grid's start, as on an unshifted grid).
 * Bin edges stay aligned on the offset, so the figures do not depend on how far the extension goes.
 */
export function layerGrid(inputTimes: ArrayLike<number>, offset: number, horizon: number, resolution: number): LayerGrid {
  if (!(offset > 0)) return { start: 0, bins: resolution };
  const dt = (horizon - offset) / resolution;
  let tMin = offset;
  for (let k = 0; k < inputTimes.length; k++) {
    const t = inputTimes[k]!;
    if (t < tMin) tMin = t;
  }
  if (!(tMin < offset)) return { start: offset, bins: resolution };
  // A relative tolerance keeps an input sitting on an edge (up to rounding) from adding a bin.
  const pre = Math.min(Math.ceil((offset - Math.max(tMin, 0)) / dt - 1e-6), Math.ceil(offset / dt - 1e-6));
  return { start: offset - pre * dt, bins: resolution + pre };
}

export class DenseSpikeLayer implements SpikeLayer {
  readonly kind = 'dense';
  readonly nIn: number;
  readonly nOut: number;
  readonly model: NeuronModel;
  readonly ePlus: number;
  readonly eMinus: number;
  readonly horizon: number;
  readonly timeOffset: number;
  /** Mutable only so that initialisation can calibrate it (init.ts); fixed during training. */
  scale: number;
  readonly drives: DriveMode;
  readonly pE: tf.Variable<tf.Rank.R2>;
  readonly pI: tf.Variable<tf.Rank.R2>;
  /** Fixed per-neuron firing level and output delay (DenseLayerState), or undefined. */
  readonly thresholdScale?: tf.Tensor1D;
  readonly delay?: tf.Tensor1D;

  constructor(o: DenseLayerOptions) {
    checkDenseState(o);
    this.nIn = o.nIn;
    this.nOut = o.nOut;
    this.model = o.model;
    this.ePlus = o.ePlus;
    this.eMinus = o.eMinus;
    this.horizon = o.horizon;
    this.timeOffset = o.timeOffset;
    this.scale = o.scale;
    this.drives = o.drives ?? 'events';
    this.pE = variableFrom(o.pE, o.nIn, o.nOut);
    this.pI = variableFrom(o.pI, o.nIn, o.nOut);
    if (o.thresholdScale) this.thresholdScale = tf.keep(tf.tensor1d(Float32Array.from(o.thresholdScale)));
    if (o.delay) this.delay = tf.keep(tf.tensor1d(Float32Array.from(o.delay)));
  }

  /** Conductances gE, gI [nIn, nOut] (normalised units), differentiable in pE, pI. */
  conductances(): { gE: tf.Tensor2D; gI: tf.Tensor2D } {
    return {
      gE: tf.mul(this.pE, conductanceFactors(this).kE) as tf.Tensor2D,
      gI: tf.mul(this.pI, conductanceFactors(this).kI) as tf.Tensor2D,
    };
  }

  /** Signed drive at rest gE*ePlus + gI*eMinus = scale (pE - pI): the ideal model's weight. */
  restWeights(): tf.Tensor2D {
    return tf.mul(tf.sub(this.pE, this.pI), this.scale) as tf.Tensor2D;
  }

  forward(inputTimes: tf.Tensor2D, solver: SpikeSolver, opts: LayerForwardOptions = {}): LayerSpikes {
    if (inputTimes.rank !== 2 || inputTimes.shape[1] !== this.nIn) {
      throw new RangeError(`layer expects input times [batch, ${this.nIn}], got ${JSON.stringify(inputTimes.shape)}`);
    }
    const inputGrad = opts.inputGrad ?? true;
    return tf.tidy(() => {
      const grid = solver.resolution === undefined ? undefined : layerGrid(inputTimes.dataSync(), this.timeOffset, this.horizon, solver.resolution);
      const start = grid?.start ?? 0;
      const x = start !== 0 ? (tf.sub(inputTimes, start) as tf.Tensor2D) : inputTimes;
      const s = this.solve(x, this.horizon - start, grid?.bins, solver, inputGrad);
      return start !== 0 ? { times: tf.add(s.times, start) as tf.Tensor2D, mask: s.mask } : s;
    });
  }

  /** Solves on [0, horizon] (times already shifted to the grid's start), `bins` grid bins or steps. */
  private solve(inputTimes: tf.Tensor2D, horizon: number, bins: number | undefined, solver: SpikeSolver, inputGrad: boolean): LayerSpikes {
    if (solver.fromDrives && bins !== undefined && this.drives === 'events') {
      const { G, A } = this.binDrives(inputTimes, bins, horizon, inputGrad);
      return solver.fromDrives(G, A, this.thresholdScale ?? tf.ones([this.nOut]), horizon, this.delay);
    }
    const { gE, gI } = this.conductances();
    const p = { model: this.model, gE, gI, ePlus: this.ePlus, eMinus: this.eMinus, horizon, thresholdScale: this.thresholdScale, delay: this.delay };
    return solver.dense(p, inputTimes, { inputGrad, bins });
  }

  /**
   * Per-bin drives [B, bins, nOut] on [0, horizon] (times already shifted to the grid's start),
   * accumulated spike by spike: G = sum of active conductances, A = their rest-weighted sum (the
   * ideal model has no G). Call inside a tidy.
   */
  private binDrives(inputTimes: tf.Tensor2D, bins: number, horizon: number, inputGrad: boolean): { G: tf.Tensor3D; A: tf.Tensor3D } {
    const B = inputTimes.shape[0];
    const n = this.nOut;
    const wA = this.restWeights();
    if (this.model !== 'pnn') return { G: tf.zeros([B, bins, n]), A: eventDrives(inputTimes, wA, { bins, horizon, inputGrad }) };
    const { gE, gI } = this.conductances();
    const GA = eventDrives(inputTimes, tf.concat([tf.add(gE, gI), wA], 1) as tf.Tensor2D, { bins, horizon, inputGrad });
    return { G: tf.slice(GA, [0, 0, 0], [B, bins, n]), A: tf.slice(GA, [0, 0, n], [B, bins, n]) };
  }

  restPotential(inputTimes: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const lead = tf.relu(tf.sub(this.horizon, tf.minimum(inputTimes, this.horizon))) as tf.Tensor2D;
      return matMul(lead, this.restWeights());
    });
  }

  horizonMembrane(inputTimes: tf.Tensor2D, opts: MembraneOptions): tf.Tensor2D {
    if (inputTimes.rank !== 2 || inputTimes.shape[1] !== this.nIn) {
      throw new RangeError(`layer expects input times [batch, ${this.nIn}], got ${JSON.stringify(inputTimes.shape)}`);
    }
    if (!Number.isInteger(opts.bins) || opts.bins < 1) throw new RangeError(`bins must be a positive integer, got ${opts.bins}`);
    const inputGrad = opts.inputGrad ?? true;
    return tf.tidy(() => {
      // The same grid and drives as the DSTD forward pass, so a silent neuron's value is the u its
      // recursion ended on, whichever solver is training.
      const grid = layerGrid(inputTimes.dataSync(), this.timeOffset, this.horizon, opts.bins);
      const x = grid.start !== 0 ? (tf.sub(inputTimes, grid.start) as tf.Tensor2D) : inputTimes;
      const span = this.horizon - grid.start;
      const { G, A } = this.binDrives(x, grid.bins, span, inputGrad);
      const u = membraneAtEnd(G, A, span / grid.bins);
      return this.thresholdScale ? (tf.div(u, this.thresholdScale) as tf.Tensor2D) : u;
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

  toPnnLayer(): PnnLayer {
    const { gE, gI } = conductancesOf(this, this.pE.dataSync(), this.pI.dataSync());
    const vec = (t?: tf.Tensor1D) => (t ? Float64Array.from(t.dataSync()) : undefined);
    return makeLayer({
      nIn: this.nIn,
      nOut: this.nOut,
      model: this.model,
      gE,
      gI,
      ePlus: this.ePlus,
      eMinus: this.eMinus,
      horizon: this.horizon,
      thresholdScale: vec(this.thresholdScale),
      delay: vec(this.delay),
    });
  }

  state(): DenseLayerState {
    return {
      kind: 'dense',
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
      ...(this.thresholdScale ? { thresholdScale: Float32Array.from(this.thresholdScale.dataSync()) } : {}),
      ...(this.delay ? { delay: Float32Array.from(this.delay.dataSync()) } : {}),
    };
  }

  dispose(): void {
    this.pE.dispose();
    this.pI.dispose();
    this.thresholdScale?.dispose();
    this.delay?.dispose();
  }
}
