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
import { matMul } from '../tf/matmul.ts';
import type { SpikeSolver } from './solver.ts';
import type { ConvLayerState } from './conv-layer.ts';
import { conductancesOf } from './conductance-units.ts';
import { checkSynapsePhysics, checkUnits, SynapseLayer, type SynapseLayerState } from './synapse-layer.ts';

/** What rebuilds any layer kind (serialize.ts, SpikingNetwork.fromStates). */
export type LayerState = DenseLayerState | ConvLayerState;

/** How a dense layer forms per-bin drives when the solver accepts drives. */
export type DriveMode = 'events' | 'solver';

export interface LayerForwardOptions {
  /** dL/d(input times) needed (false for the first layer, whose inputs are data). Default true. */
  inputGrad?: boolean;
  /**
   * A shifted grid reaches back to 0 rather than to the batch's earliest input (layerGrid): each
   * sample's times then do not depend on its batch, at a few more bins. Default false (training).
   */
  fixedGrid?: boolean;
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

export interface DenseLayerState extends SynapseLayerState {
  kind: 'dense';
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
  checkSynapsePhysics(s);
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
  checkUnits(s, nIn * nOut, 'nIn*nOut');
}

export class DenseSpikeLayer extends SynapseLayer<tf.Rank.R2> implements SpikeLayer {
  readonly kind = 'dense';
  readonly drives: DriveMode;
  /** Fixed per-neuron firing level and output delay (DenseLayerState), or undefined. */
  readonly thresholdScale?: tf.Tensor1D;
  readonly delay?: tf.Tensor1D;

  constructor(o: DenseLayerOptions) {
    checkDenseState(o);
    super(o, [o.nIn, o.nOut]);
    this.drives = o.drives ?? 'events';
    if (o.thresholdScale) this.thresholdScale = tf.keep(tf.tensor1d(Float32Array.from(o.thresholdScale)));
    if (o.delay) this.delay = tf.keep(tf.tensor1d(Float32Array.from(o.delay)));
  }

  /** Signed drive at rest gE*ePlus + gI*eMinus = scale (pE - pI): the ideal model's weight. */
  restWeights(): tf.Tensor2D {
    return tf.mul(tf.sub(this.pE, this.pI), this.scale) as tf.Tensor2D;
  }

  protected solve(inputTimes: tf.Tensor2D, horizon: number, bins: number | undefined, solver: SpikeSolver, inputGrad: boolean): LayerSpikes {
    if (solver.fromDrives && bins !== undefined && this.drives === 'events') {
      const { G, A } = this.binDrives(inputTimes, bins, horizon, inputGrad);
      return solver.fromDrives(G, A, this.thresholdScale ?? tf.ones([this.nOut]), horizon, this.delay);
    }
    const { gE, gI } = this.conductances();
    const p = { model: this.model, gE, gI, ePlus: this.ePlus, eMinus: this.eMinus, horizon, thresholdScale: this.thresholdScale, delay: this.delay };
    return solver.dense(p, inputTimes, { inputGrad, bins });
  }

  /** Drives accumulated spike by spike: G = sum of active conductances, A = their rest-weighted sum. */
  protected binDrives(inputTimes: tf.Tensor2D, bins: number, horizon: number, inputGrad: boolean): { G: tf.Tensor3D; A: tf.Tensor3D } {
    const B = inputTimes.shape[0];
    const n = this.nOut;
    const wA = this.restWeights();
    if (this.model !== 'pnn') return { G: tf.zeros([B, bins, n]), A: eventDrives(inputTimes, wA, { bins, horizon, inputGrad }) };
    const { gE, gI } = this.conductances();
    const GA = eventDrives(inputTimes, tf.concat([tf.add(gE, gI), wA], 1) as tf.Tensor2D, { bins, horizon, inputGrad });
    return { G: tf.slice(GA, [0, 0, 0], [B, bins, n]), A: tf.slice(GA, [0, 0, n], [B, bins, n]) };
  }

  /** In units of each neuron's firing level. */
  protected membraneOutput(u: tf.Tensor2D): tf.Tensor2D {
    return this.thresholdScale ? (tf.div(u, this.thresholdScale) as tf.Tensor2D) : u;
  }

  restPotential(inputTimes: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const lead = tf.relu(tf.sub(this.horizon, tf.minimum(inputTimes, this.horizon))) as tf.Tensor2D;
      return matMul(lead, this.restWeights());
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
      ...this.synapseState(),
      ...(this.thresholdScale ? { thresholdScale: Float32Array.from(this.thresholdScale.dataSync()) } : {}),
      ...(this.delay ? { delay: Float32Array.from(this.delay.dataSync()) } : {}),
    };
  }

  override dispose(): void {
    super.dispose();
    this.thresholdScale?.dispose();
    this.delay?.dispose();
  }
}
