/**
 * Deterministic initialisation of a dense spiking network.
 *
 * Each synapse's signed weight (drive at rest, in units of the layer's scale) is drawn as
 * w = z + meanRatio with z standard normal from a per-layer seeded stream; w > 0 becomes an
 * excitatory conductance (pE = w), w < 0 an inhibitory one (pI = -w). A positive mean lets
 * neurons reach threshold; the spread breaks symmetry.
 *
 * The per-layer scale is then calibrated on a batch of real inputs, layer by layer: a bisection
 * (in log scale) sets the median output time of the layer, silent outputs counted at the horizon,
 * to start + targetFraction * (horizon - start), where [start, horizon] is the layer's window
 * (network.ts). This puts the first spikes of every layer inside its window whatever the fan-in, the
 * data and the neuron model (the reversal potentials make the response sublinear, which a fixed
 * formula would not see).
 */

import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, Rng } from '../datasets/rng.ts';
import { spikesToInputs } from '../solvers/spike-tensors.ts';
import { compileArchitecture } from './arch.ts';
import { ConvSpikeLayer, convLayerShape, type ConvLayerState } from './conv-layer.ts';
import { DenseSpikeLayer, type DenseLayerState, type DriveMode, type SpikeLayer } from './layer.ts';
import { checkConfig, gridOffset, SpikingNetwork, windowStart, type NetworkConfig } from './network.ts';
import type { SpikeSolver } from './solver.ts';

export interface InitOptions {
  seed: number;
  /** Mean of the weight distribution in units of its standard deviation (default 0.5). */
  meanRatio?: number;
  /** Where in its window each layer's median spike should land (default 0.6). */
  targetFraction?: number;
  /** The same for the output layer (default 0.25: every class neuron fires at first). */
  outputTargetFraction?: number;
  /**
   * Raise each layer's scale until this fraction of its outputs that can fire do fire on the
   * calibration batch (calibrateScale). Default 0.95 for networks with an architecture (conv
   * nets), null (median only) for dense ones, whose presets were tuned with the median alone.
   */
  fireFraction?: number | null;
  /**
   * With fireFraction: the raise stops where more than this fraction of a layer's spikes would come
   * before its window start (calibrateScale's `start`). Default EARLY_LIMIT; null = no limit (the
   * raise as before it).
   */
  earlyLimit?: number | null;
  /**
   * Take each layer's median over the outputs that can fire on the calibration batch (those that
   * fire at 14 e-folds more drive) instead of over all of them. Default true for networks with an
   * architecture (conv nets) and silent zeros, false otherwise (with zeros spiking at tIn every conv
   * position has input, and the initialisation stays as it was). Why: with silent zeros a conv neuron over a dark
   * part of the image has no input and never fires; counted at the horizon, those neurons drag the
   * median up, and the scale that puts it at its target sends most of the others' spikes before
   * the window start (52 % of the first layer's of mnist-conv-s2 on Fashion-MNIST).
   */
  medianOverFireable?: boolean;
  drives?: DriveMode;
  /**
   * Per layer, the fixed firing levels and output delays of the chip the network is for
   * (calibration/chip-mapping.ts `chipNeuronLevels`), in place before the scales are set; dense
   * layers only, undefined entries and an absent list leave the nominal ones (1 and 0).
   */
  neurons?: readonly (Pick<DenseLayerState, 'thresholdScale' | 'delay'> | undefined)[];
}

/** Random pE, pI for one layer with scale 1/sqrt(nIn) (before calibration). */
export function randomDenseState(config: NetworkConfig, layer: number, seed: number, meanRatio = 0.5): DenseLayerState {
  const nIn = config.sizes[layer]!;
  const nOut = config.sizes[layer + 1]!;
  // In a network with an architecture (conv nets) each neuron's draws are standardised (below).
  const { pE, pI } = signedUnits(nIn * nOut, seed, layer, meanRatio, config.arch ? nOut : undefined);
  return {
    kind: 'dense',
    nIn,
    nOut,
    model: config.model,
    ePlus: config.ePlus,
    eMinus: config.eMinus,
    horizon: config.horizons[layer]!,
    timeOffset: gridOffset(config, layer),
    scale: 1 / Math.sqrt(nIn),
    pE,
    pI,
  };
}

/**
 * Random HWIO kernels for conv layer `layer` of config.arch, drawn as randomDenseState draws its
 * weights, with scale 1/sqrt(fan-in) (kernelH kernelW inC) before calibration.
 */
export function randomConvState(config: NetworkConfig, layer: number, seed: number, meanRatio = 0.5): ConvLayerState {
  const spec = config.arch ? compileArchitecture(config.arch).layers[layer] : undefined;
  if (spec?.kind !== 'conv') throw new RangeError(`layer ${layer} of this config is not a conv layer`);
  const g = spec.geometry;
  const shape = convLayerShape({ ...g, pool: spec.pool });
  const { pE, pI } = signedUnits(shape.kernelSize, seed, layer, meanRatio, g.channels);
  return {
    kind: 'conv',
    ...g,
    pool: spec.pool,
    nIn: shape.nIn,
    nOut: shape.nPooled,
    model: config.model,
    ePlus: config.ePlus,
    eMinus: config.eMinus,
    horizon: config.horizons[layer]!,
    timeOffset: gridOffset(config, layer),
    scale: 1 / Math.sqrt(g.kernelH * g.kernelW * g.inC),
    pE,
    pI,
  };
}

function median(a: Float32Array): number {
  const s = Float32Array.from(a).sort();
  return s.length % 2 ? s[(s.length - 1) / 2]! : 0.5 * (s[s.length / 2 - 1]! + s[s.length / 2]!);
}

/**
 * One forward pass of `layer` at `scale`: the median output time (silent at the horizon), the
 * fraction that fired, the fraction of fired outputs before `start` (0 without it), and which
 * outputs fired. With `among`, the median is over the outputs it marks (nonzero) only.
 */
function responseAt(
  layer: SpikeLayer & { scale: number },
  inputTimes: tf.Tensor2D,
  solver: SpikeSolver,
  scale: number,
  start = -Infinity,
  among?: Uint8Array,
): { median: number; fired: number; early: number; mask: Uint8Array } {
  layer.scale = scale;
  return tf.tidy(() => {
    const s = layer.forward(inputTimes, solver, { inputGrad: false });
    const m = s.mask.dataSync();
    const t = s.times.dataSync() as Float32Array;
    const mask = new Uint8Array(m.length);
    let fired = 0;
    let early = 0;
    for (let k = 0; k < m.length; k++) {
      fired += m[k]!;
      mask[k] = m[k]! > 0.5 ? 1 : 0;
      if (m[k]! > 0.5 && t[k]! < start) early++;
    }
    const times = among ? t.filter((_, k) => among[k] !== 0) : t;
    return { median: times.length > 0 ? median(times) : Infinity, fired: fired / Math.max(1, m.length), early: early / Math.max(1, fired), mask };
  });
}

/**
 * At most this fraction of a layer's spikes may come before its window start when the firing
 * fraction raises its scale (calibrateScale's `start`). Why: a spike before the start is a decision
 * on part of the inputs; the window term of the loss then pushes those spikes later, every later
 * layer's spikes move with them past their horizons, and the deeper layers fall silent within ten
 * steps (mnist-conv-s2 on Fashion-MNIST, docs/RESULTS.md "Convolutional nets, this round").
 */
export const EARLY_LIMIT = 0.05;

/**
 * Sets layer.scale so that the median output time over `inputTimes` is `target`
 * (bisection on log(scale), 28 steps: relative precision ~1e-7 over 12 decades).
 *
 * With `fireFraction`, the scale is then raised, if need be, to the smallest one at which that
 * fraction of the outputs that can fire at all (those that fire at 14 e-folds more drive) fire
 * inside the window: a median alone leaves a bimodal layer (a conv layer's dark or weakly driven
 * positions) silent on its lower half, and silent neurons pass no gradient. With `start` (the
 * layer's window start) the raise stops where more than `earlyLimit` of the spikes would come
 * before the start (or the median scale's share, if that is larger). With `overFireable` the median
 * is taken over the outputs that fire at the top of the bisection's range (14 e-folds above the
 * layer's scale): those that can fire at all.
 */
export function calibrateScale(
  layer: SpikeLayer & { scale: number },
  inputTimes: tf.Tensor2D,
  solver: SpikeSolver,
  target: number,
  fireFraction?: number,
  start?: number,
  earlyLimit = EARLY_LIMIT,
  overFireable = false,
): number {
  let lo = Math.log(layer.scale) - 14;
  let hi = Math.log(layer.scale) + 14;
  let among: Uint8Array | undefined;
  if (overFireable) {
    among = responseAt(layer, inputTimes, solver, Math.exp(hi)).mask;
    // Nothing can fire: the median over all of them (every output at the horizon) as before.
    if (!among.some((v) => v !== 0)) among = undefined;
  }
  for (let i = 0; i < 28; i++) {
    const mid = 0.5 * (lo + hi);
    // Larger scale, stronger drive, earlier spikes (for a positive mean weight).
    if (responseAt(layer, inputTimes, solver, Math.exp(mid), -Infinity, among).median > target) lo = mid;
    else hi = mid;
  }
  const atMedian = 0.5 * (lo + hi);
  layer.scale = Math.exp(atMedian);
  if (fireFraction === undefined) return layer.scale;
  const goal = fireFraction * responseAt(layer, inputTimes, solver, Math.exp(atMedian + 14)).fired;
  if (responseAt(layer, inputTimes, solver, Math.exp(atMedian)).fired >= goal) {
    layer.scale = Math.exp(atMedian);
    return layer.scale;
  }
  lo = atMedian;
  hi = atMedian + 14;
  for (let i = 0; i < 20; i++) {
    const mid = 0.5 * (lo + hi);
    if (responseAt(layer, inputTimes, solver, Math.exp(mid)).fired < goal) lo = mid;
    else hi = mid;
  }
  let raised = hi;
  if (start !== undefined) {
    // No further than where more than earlyLimit of the spikes (or the median scale's share, if larger) come before the start.
    const limit = Math.max(earlyLimit, responseAt(layer, inputTimes, solver, Math.exp(atMedian), start).early);
    if (responseAt(layer, inputTimes, solver, Math.exp(raised), start).early > limit) {
      lo = atMedian;
      hi = raised;
      for (let i = 0; i < 20; i++) {
        const mid = 0.5 * (lo + hi);
        if (responseAt(layer, inputTimes, solver, Math.exp(mid), start).early > limit) hi = mid;
        else lo = mid;
      }
      raised = lo;
    }
  }
  layer.scale = Math.exp(raised);
  return layer.scale;
}

/** A calibrated network. `calibration` holds input rows in [0, 1] (n x inputs), e.g. 256 training samples. */
export function initNetwork(config: NetworkConfig, calibration: { x: Float32Array; n: number }, solver: SpikeSolver, opts: InitOptions): SpikingNetwork {
  checkConfig(config);
  const tfHidden = opts.targetFraction ?? 0.6;
  const tfOut = opts.outputTargetFraction ?? 0.25;
  for (const [k, v] of [
    ['targetFraction', tfHidden],
    ['outputTargetFraction', tfOut],
  ] as const) {
    if (!(v > 0 && v < 1)) throw new RangeError(`${k} must lie in (0, 1), got ${v}`);
  }
  const fireFraction = opts.fireFraction === undefined ? (config.arch ? 0.95 : undefined) : (opts.fireFraction ?? undefined);
  if (fireFraction !== undefined && !(fireFraction > 0 && fireFraction <= 1)) throw new RangeError(`fireFraction must lie in (0, 1], got ${fireFraction}`);
  const earlyLimit = opts.earlyLimit === undefined ? EARLY_LIMIT : opts.earlyLimit;
  if (earlyLimit !== null && !(earlyLimit >= 0 && earlyLimit < 1))
    throw new RangeError(`earlyLimit must lie in [0, 1) or be null (no limit), got ${earlyLimit}`);
  const overFireable = opts.medianOverFireable ?? (config.arch !== undefined && config.silentZeros);
  const kinds = config.arch ? compileArchitecture(config.arch).layers.map((c) => c.kind) : undefined;
  const layers = config.sizes
    .slice(1)
    .map((_, l) =>
      kinds?.[l] === 'conv'
        ? new ConvSpikeLayer(randomConvState(config, l, opts.seed, opts.meanRatio))
        : new DenseSpikeLayer({ ...randomDenseState(config, l, opts.seed, opts.meanRatio), ...opts.neurons?.[l], drives: opts.drives }),
    );
  const net = new SpikingNetwork(config, layers);
  const need = calibration.n * net.features;
  if (!(calibration.n >= 1 && calibration.x.length >= need)) {
    throw new RangeError(`calibration needs n >= 1 rows of ${net.features} values, got n = ${calibration.n} and ${calibration.x.length} values`);
  }
  let x = net.encode(calibration.x.subarray(0, need), calibration.n);
  for (let l = 0; l < layers.length; l++) {
    const start = windowStart(config, l);
    const h = config.horizons[l]!;
    const frac = l + 1 === layers.length ? tfOut : tfHidden;
    calibrateScale(
      layers[l]!,
      x,
      solver,
      start + frac * (h - start),
      fireFraction,
      earlyLimit === null ? undefined : start,
      earlyLimit ?? undefined,
      overFireable,
    );
    if (l + 1 < layers.length) {
      const next = tf.tidy(() => spikesToInputs(layers[l]!.forward(x, solver, { inputGrad: false })));
      x.dispose();
      x = next;
    }
  }
  x.dispose();
  return net;
}

/**
 * `size` standard normal weights shifted by meanRatio (seeded per layer), split by sign into pE and pI.
 * With `neurons` (the last, fastest axis of the layout: dense [nIn, nOut], HWIO kernels), each
 * neuron's draws are first standardised to mean 0 and deviation 1, so every neuron's weights sum
 * to meanRatio x fan-in: with a small fan-in (a 3x3 kernel, a 10-unit layer) a plain draw leaves
 * some neurons with a negative sum, silent at any scale.
 */
function signedUnits(size: number, seed: number, layer: number, meanRatio: number, neurons?: number): { pE: Float32Array; pI: Float32Array } {
  const rng = new Rng(deriveSeed(seed, layer, 0x1a7e5));
  const z = Float64Array.from({ length: size }, () => rng.normal());
  if (neurons !== undefined && size / neurons >= 2) {
    for (let o = 0; o < neurons; o++) {
      let sum = 0;
      let sq = 0;
      for (let k = o; k < size; k += neurons) sum += z[k]!;
      const mean = sum / (size / neurons);
      for (let k = o; k < size; k += neurons) sq += (z[k]! - mean) ** 2;
      const sd = Math.sqrt(sq / (size / neurons)) || 1;
      for (let k = o; k < size; k += neurons) z[k] = (z[k]! - mean) / sd;
    }
  }
  const pE = new Float32Array(size);
  const pI = new Float32Array(size);
  for (let k = 0; k < size; k++) {
    const w = z[k]! + meanRatio;
    if (w >= 0) pE[k] = w;
    else pI[k] = -w;
  }
  return { pE, pI };
}
