/**
 * A spiking network: time-to-first-spike input coding followed by a stack of SpikeLayers in one
 * common time base (models/neuron/units.ts).
 *
 * Layer-wise windows, as in a synfire chain: inputs spike in [0, tIn]; layer l fires in its own
 * window [start_l, horizons[l]] with start_0 = tIn and start_l = horizons[l-1], i.e. after all
 * its inputs have arrived, so every neuron integrates its whole input before it decides. Spikes
 * after a layer's horizon are silent; the window term of the loss keeps fired spikes inside
 * [start_l, horizon_l]. The default layout is tIn = 1, horizons 2, 3, 4, ... (on a chip: layer l's
 * window ends (l + 2) input windows after the start).
 *
 * The predicted class is the earliest output spike; a sample whose outputs are all silent has no
 * prediction (-1), which counts as wrong.
 */

import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { NOMINAL_CIRCUIT } from '../chips/sky130-nominal.ts';
import { ttfsTimes } from '../datasets/coding.ts';
import type { NeuronModel, PnnLayer } from '../neuron/layer.ts';
import { reversalPotentials } from '../neuron/units.ts';
import { spikesToInputs, type LayerSpikes } from '../solvers/spike-tensors.ts';
import { architectureSchema, compileArchitecture, type Architecture } from './arch.ts';
import { ConvSpikeLayer } from './conv-layer.ts';
import { DenseSpikeLayer, type DenseLayerState, type DriveMode, type LayerState, type SpikeLayer } from './layer.ts';
import type { SpikeSolver } from './solver.ts';

/** ePlus, eMinus of the nominal sky130 circuit (models/chips/sky130-nominal.ts, the EKV fit of the card): 6.20 and -3.17. */
export const NOMINAL_REVERSAL = Object.freeze(reversalPotentials(NOMINAL_CIRCUIT));

export interface NetworkConfig {
  /** Layer widths, inputs first: [784, 256, 128, 10]. */
  sizes: number[];
  model: NeuronModel;
  ePlus: number;
  eMinus: number;
  /** Input window tIn: a value x in [0, 1] spikes at tIn (1 - x). */
  inputWindow: number;
  /** Per layer window end (strictly increasing). */
  horizons: number[];
  /** Inputs equal to 0 do not spike at all (instead of spiking at tIn). */
  silentZeros: boolean;
  /** Solve each layer on a grid starting at its inputs' window (see DenseLayerState.timeOffset). */
  shiftGrids: boolean;
  /**
   * When set, the last of the sizes[0] inputs is a reference ("bias") channel that spikes at this
   * time in every sample; the data fill the other sizes[0] - 1. Why: when every neuron fires
   * after all its inputs arrived, its spike time is 1/W + sum_j (w_j/W) t_j with coefficients
   * summing to 1, so the network cannot see the mean input time (a linear classifier on the
   * inputs loses one direction); a fixed input spike with its own weight restores it.
   */
  biasSpike?: number;
  /**
   * With biasSpike: the reference takes the place of this data feature instead of an input more,
   * so the network keeps the data's width (a chip has no spare input). For a feature the data
   * leave dark: pixel 0 of Fashion-MNIST is nonzero in 0.03 % of the training images.
   */
  biasReplaces?: number;
  /**
   * Convolutional and pooling structure (arch.ts); absent = every layer dense. When set, `sizes`
   * must be the widths it compiles to, and the layers must match it kind by kind.
   */
  arch?: Architecture;
}

export const networkConfigSchema = z
  .strictObject({
    sizes: z
      .array(
        z
          .number()
          .int()
          .min(1)
          .max(1 << 20),
      )
      .min(2),
    model: z.enum(['pnn', 'ideal']),
    ePlus: z.number().positive().finite(),
    eMinus: z.number().negative().finite(),
    inputWindow: z.number().positive().finite(),
    horizons: z.array(z.number().positive().finite()),
    silentZeros: z.boolean(),
    shiftGrids: z.boolean(),
    biasSpike: z.number().finite().nonnegative().optional(),
    biasReplaces: z.number().int().nonnegative().optional(),
    arch: architectureSchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.horizons.length !== c.sizes.length - 1) {
      ctx.addIssue({ code: 'custom', path: ['horizons'], message: `needs one entry per layer (${c.sizes.length - 1}), got ${c.horizons.length}` });
    }
    if (c.biasSpike !== undefined && !(c.biasSpike <= c.inputWindow)) {
      ctx.addIssue({ code: 'custom', path: ['biasSpike'], message: `the reference spike must come inside the input window [0, ${c.inputWindow}]` });
    }
    if (c.biasReplaces !== undefined && c.biasSpike === undefined) {
      ctx.addIssue({ code: 'custom', path: ['biasReplaces'], message: 'replaces a feature with the reference spike, so it needs biasSpike too' });
    }
    if (c.biasReplaces !== undefined && !(c.biasReplaces < c.sizes[0]!)) {
      ctx.addIssue({ code: 'custom', path: ['biasReplaces'], message: `must name one of the ${c.sizes[0]} inputs (0..${c.sizes[0]! - 1})` });
    }
    if (c.biasSpike !== undefined && c.sizes[0]! < 2) {
      ctx.addIssue({ code: 'custom', path: ['sizes', 0], message: 'with biasSpike the first size counts the reference input too: needs >= 2' });
    }
    if (c.arch !== undefined) {
      let sizes: number[] | undefined;
      try {
        sizes = compileArchitecture(c.arch).sizes;
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['arch'], message: (err as Error).message });
      }
      if (sizes && sizes.join() !== c.sizes.join()) {
        ctx.addIssue({ code: 'custom', path: ['sizes'], message: `the architecture compiles to widths ${sizes.join('-')}; set sizes to them` });
      }
      if (c.biasSpike !== undefined && c.biasReplaces === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['biasSpike'],
          message: 'an appended reference input does not fit an image input; give biasReplaces (a pixel the data leave dark) too',
        });
      }
    }
    if (c.horizons.length > 0 && !(c.horizons[0]! > c.inputWindow)) {
      ctx.addIssue({ code: 'custom', path: ['horizons', 0], message: `the first horizon must come after the input window (${c.inputWindow})` });
    }
    for (let l = 1; l < c.horizons.length; l++) {
      if (!(c.horizons[l]! > c.horizons[l - 1]!)) {
        ctx.addIssue({ code: 'custom', path: ['horizons', l], message: 'horizons must increase layer by layer (each layer fires after its inputs)' });
      }
    }
  });

/** Validates a config; throws RangeError naming the field, the value and the fix. */
export function checkConfig(c: NetworkConfig): NetworkConfig {
  const r = networkConfigSchema.safeParse(c);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const field = i.path.join('.') || '(config)';
    let value: unknown = c;
    for (const k of i.path) value = (value as Record<string | number, unknown> | undefined)?.[k as string];
    throw new RangeError(`network config ${field} = ${JSON.stringify(value)}: ${i.message}`);
  }
  return r.data;
}

/** Start of layer l's window: the end of its inputs' window. */
export function windowStart(c: NetworkConfig, l: number): number {
  return l === 0 ? c.inputWindow : c.horizons[l - 1]!;
}

/** Where layer l's time grid starts (0, or the start of its inputs' window). */
export function gridOffset(c: NetworkConfig, l: number): number {
  if (!c.shiftGrids || l === 0) return 0;
  return windowStart(c, l - 1);
}

/** The default layout: tIn = 1 and one more unit per layer (horizons 2, 3, ...). */
export function defaultConfig(sizes: number[], overrides: Partial<Omit<NetworkConfig, 'sizes'>> = {}): NetworkConfig {
  const nLayers = sizes.length - 1;
  const tIn = overrides.inputWindow ?? 1;
  return checkConfig({
    sizes: [...sizes],
    model: overrides.model ?? 'pnn',
    ePlus: overrides.ePlus ?? NOMINAL_REVERSAL.ePlus,
    eMinus: overrides.eMinus ?? NOMINAL_REVERSAL.eMinus,
    inputWindow: tIn,
    horizons: overrides.horizons ?? Array.from({ length: nLayers }, (_, l) => tIn * (l + 2)),
    silentZeros: overrides.silentZeros ?? true,
    shiftGrids: overrides.shiftGrids ?? true,
    ...(overrides.biasSpike !== undefined ? { biasSpike: overrides.biasSpike } : {}),
    ...(overrides.biasReplaces !== undefined ? { biasReplaces: overrides.biasReplaces } : {}),
    ...(overrides.arch !== undefined ? { arch: overrides.arch } : {}),
  });
}

/** The default layout for an architecture: sizes compiled from it, zeros spiking at tIn, the rest as defaultConfig. */
export function archConfig(arch: Architecture, overrides: Partial<Omit<NetworkConfig, 'sizes' | 'arch'>> = {}): NetworkConfig {
  // Zeros spike at the end of the input window: with silent zeros a conv neuron over a dark part of
  // the image has no input at all and cannot fire (half of each layer of mnist-conv on Fashion-MNIST).
  return defaultConfig(compileArchitecture(arch).sizes, { silentZeros: false, ...overrides, arch });
}

export interface NetworkForward {
  /** Every layer's output spikes. */
  spikes: LayerSpikes[];
  /** Every layer's input times (+Infinity = silent); inputs[0] is the tensor passed in. */
  inputs: tf.Tensor2D[];
}

export class SpikingNetwork {
  readonly config: NetworkConfig;
  readonly layers: SpikeLayer[];

  constructor(config: NetworkConfig, layers: SpikeLayer[]) {
    this.config = checkConfig(config);
    if (layers.length !== config.sizes.length - 1) throw new RangeError(`got ${layers.length} layers for sizes ${config.sizes.join('-')}`);
    const compiled = config.arch ? compileArchitecture(config.arch).layers : undefined;
    layers.forEach((l, i) => {
      if (l.nIn !== config.sizes[i] || l.nOut !== config.sizes[i + 1]) {
        throw new RangeError(`layer ${i} is ${l.nIn}x${l.nOut}, sizes say ${config.sizes[i]}x${config.sizes[i + 1]}`);
      }
      const want = compiled?.[i]?.kind ?? 'dense';
      if (l.kind !== want) throw new RangeError(`layer ${i} is ${l.kind}, the architecture says ${want}`);
      const spec = compiled?.[i];
      if (spec?.kind === 'conv' && l instanceof ConvSpikeLayer) {
        const g = l.geometry;
        const same = (Object.keys(spec.geometry) as (keyof typeof g)[]).every((k) => g[k] === spec.geometry[k]) && l.pool === spec.pool;
        if (!same)
          throw new RangeError(
            `layer ${i}'s geometry ${JSON.stringify({ ...g, pool: l.pool })} differs from the architecture's ${JSON.stringify({ ...spec.geometry, pool: spec.pool })}`,
          );
      }
    });
    this.layers = layers;
  }

  /** Layers from their states (pE, pI, scale, ...; dense or conv by `kind`). */
  static fromStates(config: NetworkConfig, states: LayerState[], drives: DriveMode = 'events'): SpikingNetwork {
    const layers: SpikeLayer[] = [];
    try {
      for (const s of states) layers.push(s.kind === 'conv' ? new ConvSpikeLayer(s) : new DenseSpikeLayer({ ...s, drives }));
      return new SpikingNetwork(config, layers);
    } catch (err) {
      for (const l of layers) l.dispose();
      throw err;
    }
  }

  /** Inputs of the first layer (data features plus the reference input, if any). */
  get inputs(): number {
    return this.config.sizes[0]!;
  }

  /** Values per data row: inputs without an appended reference input (config.biasSpike, biasReplaces). */
  get features(): number {
    return this.inputs - (this.config.biasSpike === undefined || this.config.biasReplaces !== undefined ? 0 : 1);
  }

  /** The input that carries the reference spike (config.biasSpike), or undefined. */
  get referenceInput(): number | undefined {
    if (this.config.biasSpike === undefined) return undefined;
    return this.config.biasReplaces ?? this.inputs - 1;
  }

  get classes(): number {
    return this.config.sizes[this.config.sizes.length - 1]!;
  }

  /** Input spike times [n, inputs] for n rows of `features` values in [0, 1] (plus the reference spike). */
  encode(x: Float32Array, n: number): tf.Tensor2D {
    const f = this.features;
    if (x.length !== n * f) throw new RangeError(`encode needs ${n} rows of ${f} values (${n * f}), got ${x.length}`);
    const t = ttfsTimes(x, { tIn: this.config.inputWindow, silentThreshold: this.config.silentZeros ? 0 : undefined });
    const bias = this.config.biasSpike;
    if (bias === undefined) return tf.tensor2d(t, [n, f]);
    const k = this.config.biasReplaces;
    if (k !== undefined) {
      for (let r = 0; r < n; r++) t[r * f + k] = bias;
      return tf.tensor2d(t, [n, f]);
    }
    const withBias = new Float32Array(n * (f + 1));
    for (let r = 0; r < n; r++) {
      withBias.set(t.subarray(r * f, (r + 1) * f), r * (f + 1));
      withBias[r * (f + 1) + f] = bias;
    }
    return tf.tensor2d(withBias, [n, f + 1]);
  }

  /**
   * Differentiable forward pass through every layer. The caller disposes (or tidies) the results.
   * `fixedGrid`: shifted grids independent of the batch (LayerForwardOptions), as `outputs` uses.
   */
  forward(inputTimes: tf.Tensor2D, solver: SpikeSolver, opts: { fixedGrid?: boolean } = {}): NetworkForward {
    const spikes: LayerSpikes[] = [];
    const inputs: tf.Tensor2D[] = [inputTimes];
    let x = inputTimes;
    for (let l = 0; l < this.layers.length; l++) {
      const s = this.layers[l]!.forward(x, solver, { inputGrad: l > 0, fixedGrid: opts.fixedGrid });
      spikes.push(s);
      if (l + 1 < this.layers.length) {
        x = spikesToInputs(s);
        inputs.push(x);
      }
    }
    return { spikes, inputs };
  }

  /**
   * Output times [n, classes] (silent = last horizon) and mask, without gradients. On grids that do
   * not depend on the batch, so a sample scores the same in any batch (and evaluations at different
   * batch sizes agree).
   */
  outputs(x: Float32Array, n: number, solver: SpikeSolver): { times: Float32Array; mask: Float32Array } {
    return tf.tidy(() => {
      const f = this.forward(this.encode(x, n), solver, { fixedGrid: true });
      const out = f.spikes[f.spikes.length - 1]!;
      return { times: out.times.dataSync() as Float32Array, mask: out.mask.dataSync() as Float32Array };
    });
  }

  /** Predicted classes in batches (earliest output spike; -1 when all outputs are silent). */
  predict(x: Float32Array, n: number, solver: SpikeSolver, batchSize = 256): Int32Array {
    const pred = new Int32Array(n);
    const f = this.features;
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const o = this.outputs(x.subarray(s * f, e * f), e - s, solver);
      pred.set(earliestSpike(o.times, o.mask, e - s, this.classes), s);
    }
    return pred;
  }

  trainableVariables(): tf.Variable[] {
    return this.layers.flatMap((l) => l.trainableVariables());
  }

  project(): void {
    for (const l of this.layers) l.project();
  }

  toPnnLayers(): PnnLayer[] {
    return this.layers.map((l) => l.toPnnLayer());
  }

  /** Every layer's state, whatever its kind. */
  layerStates(): LayerState[] {
    return this.layers.map((l) => l.state());
  }

  /**
   * Dense states (chip mapping, deployment): conv layers unrolled to the Toeplitz layers a
   * crossbar holds (ConvSpikeLayer.toUnrolledState); throws for a pooled conv layer, which has none.
   */
  states(): DenseLayerState[] {
    return this.layers.map((l, i) => {
      if (l instanceof ConvSpikeLayer) {
        const problem = l.denseFormProblem();
        if (problem) throw new RangeError(`layer ${i} (conv) has no dense form: ${problem}`);
        return l.toUnrolledState();
      }
      const s = l.state();
      if (s.kind !== 'dense') throw new RangeError(`layer ${i} is ${s.kind}: this path takes dense and conv layers only`);
      return s;
    });
  }

  /** Why the network has no dense form (a pooled conv layer), one line per layer; empty when it has one. */
  denseFormProblems(): string[] {
    return this.layers.flatMap((l, i) => {
      const p = l instanceof ConvSpikeLayer ? l.denseFormProblem() : undefined;
      return p ? [`layer ${i} (conv): ${p}`] : [];
    });
  }

  /** The same network with every conv layer unrolled to a dense one (no arch): what a chip runs. */
  unrolled(): SpikingNetwork {
    const { arch: _arch, ...config } = this.config;
    return SpikingNetwork.fromStates(config, this.states());
  }

  /**
   * A copy with another neuron model and/or reversal potentials, holding each synapse's drive at
   * rest (the ideal weight) fixed: how a network trained on one model runs on another.
   */
  withModel(change: { model?: NeuronModel; ePlus?: number; eMinus?: number; scaleFactor?: number }): SpikingNetwork {
    const config = {
      ...this.config,
      model: change.model ?? this.config.model,
      ePlus: change.ePlus ?? this.config.ePlus,
      eMinus: change.eMinus ?? this.config.eMinus,
    };
    const states = this.layerStates().map((s) => ({
      ...s,
      model: config.model,
      ePlus: config.ePlus,
      eMinus: config.eMinus,
      scale: s.scale * (change.scaleFactor ?? 1),
    }));
    return SpikingNetwork.fromStates(config, states);
  }

  /**
   * A copy whose dense layers carry these fixed firing levels and output delays (a calibrated
   * chip's, docs/MODEL.md §7); an undefined entry, or a conv layer, keeps the layer's own.
   */
  withNeuronLevels(levels: readonly (Pick<DenseLayerState, 'thresholdScale' | 'delay'> | undefined)[]): SpikingNetwork {
    const states = this.layerStates().map((s, l) => (s.kind === 'dense' && levels[l] ? { ...s, ...levels[l] } : s));
    return SpikingNetwork.fromStates(this.config, states);
  }

  dispose(): void {
    for (const l of this.layers) l.dispose();
  }
}

/** argmin over each row of times among fired outputs; -1 for rows with no output spike. */
export function earliestSpike(times: ArrayLike<number>, mask: ArrayLike<number>, n: number, classes: number): Int32Array {
  const out = new Int32Array(n);
  for (let b = 0; b < n; b++) {
    let best = -1;
    let bestT = Infinity;
    for (let c = 0; c < classes; c++) {
      const k = b * classes + c;
      if (mask[k]! > 0.5 && times[k]! < bestT) {
        bestT = times[k]!;
        best = c;
      }
    }
    out[b] = best;
  }
  return out;
}
