/**
 * The boundary between a chip and the twin that runs on it (docs/MODEL.md §3, §8): how many ticks
 * make a twin time unit, which windows a network for the chip has, how inputs become ticks and
 * measured ticks become twin times, which output won, and which DAC codes realise the network's
 * conductances (and what network those codes realise). Deploying, fine-tuning and the demo
 * orchestrate device I/O around it; nothing here talks to a device.
 *
 * Conventions: the twin's inputs take its input window (time-to-first-spike, models/datasets/coding.ts);
 * ticks become times by wire/ticks.ts (inputs on their tick, measured spikes at the tick's centre);
 * the class is the earliest spike among the first `classes` outputs, -1 when all are silent.
 */

import type { DacSpec, LayerGeometry, SafeRange } from '../models/chips/chip-backend.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../models/chips/sky130-nominal.ts';
import { ttfsTicks } from '../models/datasets/coding.ts';
import { unitsOf } from '../models/network/conductance-units.ts';
import type { DenseLayerState } from '../models/network/layer.ts';
import { compileArchitecture } from '../models/network/arch.ts';
import { SpikingNetwork, type NetworkConfig } from '../models/network/network.ts';
import { captureTime, SILENT_TICK } from '../wire/ticks.ts';
import { profileLayerCurves, type ChipProfile } from './chip-profile.ts';
import { IncrementalLayerCodes, mapLayer, type LayerCurves, type MappedLayer } from './weight-mapping.ts';

/** One chip layer: its synapse array and the tick its window ends on. */
export interface ChipLayer extends LayerGeometry {
  horizonTicks: number;
}

/** What the twin needs of a chip (a device's HELLO, a chip profile's target, an in-process chip). */
export interface ChipDescription {
  chipId?: string;
  layers: readonly ChipLayer[];
  dac: DacSpec;
  safe: SafeRange;
  tickSeconds: number;
}

/** A layer's synapse array alone (a device's layer description carries more). */
export function layerGeometry(l: LayerGeometry): LayerGeometry {
  return { inputs: l.inputs, outputs: l.outputs, rowInput: l.rowInput, rowPolarity: l.rowPolarity };
}

/** A chip layer alone: geometry and window. */
export function chipLayer(l: ChipLayer): ChipLayer {
  return { ...layerGeometry(l), horizonTicks: l.horizonTicks };
}

/** The nominal sky130 transfer curves: what a chip is assumed to be before it is calibrated. */
export function nominalCurves(): LayerCurves {
  return { nmos: NOMINAL_NMOS, pmos: NOMINAL_PMOS, circuit: NOMINAL_CIRCUIT, temperatureC: NOMINAL_TEMPERATURE_C };
}

/** Every layer's transfer curves from a chip profile (calibration/chip-profile.ts). */
export function curvesFromProfile(profile: ChipProfile, chip: ChipDescription): LayerCurves[] {
  if (profile.layers.length !== chip.layers.length) {
    throw new RangeError(`the profile describes ${profile.layers.length} layers, the chip has ${chip.layers.length}: calibrate this chip again`);
  }
  profile.layers.forEach((p, l) => {
    const c = chip.layers[l]!;
    if (p.inputs !== c.inputs || p.outputs !== c.outputs || p.rows !== c.rowInput.length) {
      throw new RangeError(
        `profile layer ${l} is ${p.inputs}x${p.outputs} with ${p.rows} rows, the chip's ${c.inputs}x${c.outputs} with ${c.rowInput.length}: calibrate this chip again`,
      );
    }
  });
  return profile.layers.map((_, l) => profileLayerCurves(profile, l));
}

/**
 * The chip's layer windows in twin time units of `unitTicks` ticks (default: layer 0's window,
 * so it ends at 1). A network meant for this chip is configured with these horizons.
 */
export function deviceHorizons(chip: { layers: readonly { horizonTicks: number }[] }, unitTicks = chip.layers[0]!.horizonTicks): number[] {
  return chip.layers.map((l) => l.horizonTicks / unitTicks);
}

/**
 * The time base of a twin trained for a chip: inputs take the first half of layer 0's window (one
 * twin time unit), the layers the rest, each ending where the chip's does; grids start at 0
 * (shiftGrids off) as the chip's do.
 */
export function chipTimeBase(chip: { layers: readonly { horizonTicks: number }[] }): { inputWindow: number; horizons: number[]; shiftGrids: boolean } {
  return { inputWindow: 1, horizons: deviceHorizons(chip, chip.layers[0]!.horizonTicks / 2), shiftGrids: false };
}

/** A calibrated neuron's fixed parameters in the twin: its firing level and its output delay (docs/MODEL.md §7, §9). */
export type NeuronLevels = Required<Pick<DenseLayerState, 'thresholdScale' | 'delay'>>;

/**
 * The firing levels and output delays a profile measured, for each layer of a network of `config`
 * on that chip: twin neuron i is chip neuron i (as `measuredTimes` reads them), the delays in the
 * twin's time unit (the chip's first window over `config.horizons[0]`, as `unitTicksOf`). A conv
 * layer gets undefined: its copies of a kernel share one neuron model, so it cannot carry a level per
 * chip neuron. Throws when the profile's layers cannot hold the network's.
 */
export function chipNeuronLevels(profile: ChipProfile, config: NetworkConfig): (NeuronLevels | undefined)[] {
  const layers = config.sizes.length - 1;
  if (profile.layers.length < layers) {
    throw new RangeError(
      `the profile of ${profile.chipId} describes ${profile.layers.length} layers, the network has ${layers}: train a network of at most that depth for this chip`,
    );
  }
  const kinds = config.arch ? compileArchitecture(config.arch).layers.map((c) => c.kind) : undefined;
  const perUnit = profile.t0Seconds / (unitTicksOf({ config }, profile) * profile.secondsPerTick);
  return config.sizes.slice(1).map((nOut, l) => {
    if (kinds?.[l] === 'conv') return undefined;
    const p = profile.layers[l]!;
    if (nOut > p.outputs) {
      throw new RangeError(`layer ${l} of the network has ${nOut} neurons, the profile's chip ${p.outputs}: train a network that fits ${profile.chipId}`);
    }
    return {
      thresholdScale: Float32Array.from(p.thresholdScale.subarray(0, nOut)),
      delay: Float32Array.from(p.delay.subarray(0, nOut), (d) => d * perUnit),
    };
  });
}

/** Whether every dense layer of `net` already fires at `levels` (absent arrays count as 1 and 0), to float32 precision. */
export function carriesNeuronLevels(net: SpikingNetwork, levels: readonly (NeuronLevels | undefined)[]): boolean {
  return net.layerStates().every((s, l) => {
    const want = levels[l];
    if (s.kind !== 'dense' || !want) return true;
    const same = (have: Float32Array | undefined, w: Float32Array, nominal: number) =>
      w.every((x, i) => Math.abs((have?.[i] ?? nominal) - x) <= 1e-6 * Math.max(1, Math.abs(x)));
    return same(s.thresholdScale, want.thresholdScale, 1) && same(s.delay, want.delay, 0);
  });
}

/**
 * The profile's firing levels and delays (`chipNeuronLevels`) when `net` is a PNN that does not
 * carry them yet; undefined when it does, or for the ideal model (which has no firing levels).
 */
export function missingNeuronLevels(net: SpikingNetwork, profile: ChipProfile): (NeuronLevels | undefined)[] | undefined {
  if (net.config.model !== 'pnn') return undefined;
  const levels = chipNeuronLevels(profile, net.config);
  return carriesNeuronLevels(net, levels) ? undefined : levels;
}

/** Ticks per twin time unit, read off the network's first window against the chip's (a chip, or a profile's layers). */
export function unitTicksOf(net: Pick<SpikingNetwork, 'config'>, chip: { layers: readonly { horizonTicks: number }[] }): number {
  return chip.layers[0]!.horizonTicks / net.config.horizons[0]!;
}

/** What makes a network fit a chip: training it for that chip. */
export const FIT_FIX = 'train the network for this chip with spikeloop train --profile FILE (or --device URI)';

/** Throws, naming every mismatch and the fix, unless `net` fits the chip (fitProblems). */
export function checkFits(net: SpikingNetwork, chip: ChipDescription, what = 'the network'): void {
  const problems = fitProblems(net, chip);
  if (problems.length > 0) throw new RangeError(`${what} does not fit ${chip.chipId ?? 'the chip'}: ${problems.join('; ')}; ${fitFix(net)}`);
}

/** The fix for a misfit: for a conv net also the chip geometry that holds its unrolled layers. */
function fitFix(net: SpikingNetwork): string {
  if (!net.config.arch) return FIT_FIX;
  return `a conv layer runs as its unrolled (Toeplitz) layer, so this network needs a chip of geometry ${net.config.sizes.join('-')} or larger in every layer (e.g. --device 'mock:behavioral?geometry=${net.config.sizes.join('-')}'), and its windows: ${FIT_FIX}`;
}

/**
 * Reasons a network cannot run on this chip as it is, each naming what differs; empty when it
 * fits (checkFits adds the fix). The twin may use any time unit; its windows must be the chip's in it.
 */
export function fitProblems(net: SpikingNetwork, chip: ChipDescription): string[] {
  const problems: string[] = [...net.denseFormProblems()];
  const sizes = net.config.sizes;
  if (net.layers.length !== chip.layers.length) {
    problems.push(
      `the network has ${net.layers.length} layers, the chip ${chip.layers.length} (the chip's hidden widths are ${chip.layers
        .slice(0, -1)
        .map((l) => l.outputs)
        .join(',')})`,
    );
    return problems;
  }
  const unit = unitTicksOf(net, chip);
  const want = deviceHorizons(chip, unit);
  chip.layers.forEach((c, l) => {
    if (sizes[l]! > c.inputs || sizes[l + 1]! > c.outputs) {
      problems.push(`layer ${l} is ${sizes[l]}x${sizes[l + 1]}, the chip's array is ${c.inputs}x${c.outputs}`);
    }
    const have = net.config.horizons[l]!;
    if (Math.abs(have - want[l]!) > 1e-9 * want[l]!) {
      problems.push(
        `layer ${l}'s window ends at ${have} time units in the twin but at ${want[l]} on the chip (${c.horizonTicks} ticks at ${unit} ticks per unit)`,
      );
    }
  });
  if (net.config.inputWindow > net.config.horizons[0]! * (1 + 1e-12)) {
    problems.push(`the input window (${net.config.inputWindow}) is longer than the chip's first window (${net.config.horizons[0]})`);
  }
  return problems;
}

export interface MappedNetwork {
  /** Per layer: the codes to upload and what they realise (weight-mapping.ts). */
  layers: MappedLayer[];
  /** Every layer's state with pE, pI replaced by what the codes realise. */
  realisedStates: DenseLayerState[];
}

/** A network on a chip: built once per (network, chip, curves); reads the network's conductances when asked. */
export class ChipMapping {
  /** Ticks per twin time unit. */
  readonly unitTicks: number;
  /** Seconds per twin time unit. */
  readonly t0: number;
  /** Transfer curves per layer (nominal where none were given). */
  readonly curves: readonly LayerCurves[];
  private incremental?: IncrementalLayerCodes[];

  /** Throws unless `net` fits `chip` (checkFits). */
  constructor(
    readonly net: SpikingNetwork,
    readonly chip: ChipDescription,
    curves?: readonly LayerCurves[],
    what?: string,
  ) {
    checkFits(net, chip, what);
    this.unitTicks = unitTicksOf(net, chip);
    this.t0 = this.unitTicks * chip.tickSeconds;
    this.curves = chip.layers.map((_, l) => curves?.[l] ?? nominalCurves());
  }

  /**
   * Input ticks for the chip's first layer: the twin's inputs first (the data features, then the
   * reference input at its fixed time when the network has one), the rest of the array silent.
   * `x` holds n rows of `net.features` values.
   */
  encodeInputs(x: Float32Array, n: number): Uint16Array {
    const { net, unitTicks: unit } = this;
    const features = net.features;
    const chipInputs = this.chip.layers[0]!.inputs;
    if (x.length < n * features) throw new RangeError(`encodeInputs needs ${n} rows of ${features} values, got ${x.length} values`);
    const horizonTicks = Math.round(net.config.inputWindow * unit);
    const ticks = ttfsTicks(x.subarray(0, n * features), {
      horizonTicks,
      silentThreshold: net.config.silentZeros ? 0 : undefined,
    });
    const bias = net.config.biasSpike;
    if (chipInputs === features && bias === undefined) return ticks;
    const out = new Uint16Array(n * chipInputs).fill(SILENT_TICK);
    const biasTick = bias === undefined ? SILENT_TICK : Math.round(bias * unit);
    const ref = net.referenceInput;
    for (let s = 0; s < n; s++) {
      out.set(ticks.subarray(s * features, (s + 1) * features), s * chipInputs);
      if (ref !== undefined) out[s * chipInputs + ref] = biasTick;
    }
    return out;
  }

  /**
   * Layer l's measured ticks (batch x the chip's outputs) as twin times of the network's neurons
   * of that layer: the capture time (the tick's centre), minus the board's timer offset (twin
   * units), never below 0; +Infinity when silent.
   */
  measuredTimes(l: number, ticks: Uint16Array, batch: number, offset = 0): Float32Array {
    const chipOutputs = this.chip.layers[l]!.outputs;
    const nOut = this.net.layers[l]!.nOut;
    const out = new Float32Array(batch * nOut);
    for (let s = 0; s < batch; s++) {
      for (let i = 0; i < nOut; i++) {
        const t = captureTime(ticks[s * chipOutputs + i]!, this.unitTicks);
        out[s * nOut + i] = t === Infinity ? Infinity : Math.max(0, t - offset);
      }
    }
    return out;
  }

  /** The class of each of n samples from the last layer's ticks: the earliest spike among the network's classes; -1 when all are silent. */
  classify(outTicks: Uint16Array, n: number): Int32Array {
    return classifyTicks(outTicks, n, this.chip.layers.at(-1)!.outputs, this.net.classes);
  }

  /** Maps every layer's conductances to DAC codes through the curves. */
  map(): MappedNetwork {
    const { net } = this;
    // Conv layers as their unrolled Toeplitz layers (unused synapses at 0 map to the off code).
    const pnn = net.toPnnLayers();
    const states = net.states();
    const layers: MappedLayer[] = [];
    const realisedStates: DenseLayerState[] = [];
    pnn.forEach((p, l) => {
      const m = mapLayer(p.gE, p.gI, p.nIn, p.nOut, this.target(l), this.curves[l]!);
      layers.push(m);
      const s = states[l]!;
      // Back to the layer's trainable units.
      realisedStates.push({ ...s, ...unitsOf(s, m.gE, m.gI) });
    });
    return { layers, realisedStates };
  }

  /**
   * The twin on the conductances `mapped` realises (the caller disposes it): dense layers only, a
   * conv layer's copies realised apart (each synapse through its own curve), so no arch.
   */
  realisedNetwork(mapped: MappedNetwork): SpikingNetwork {
    const { arch: _arch, ...config } = this.net.config;
    return SpikingNetwork.fromStates(config, mapped.realisedStates);
  }

  /**
   * Every layer's codes for the network's current conductances (fresh arrays), recomputing only
   * the synapses whose target left its code's interval since the last call (weight-mapping.ts
   * IncrementalLayerCodes); `recomputed` counts them.
   */
  codes(): { codes: Uint16Array[]; recomputed: number } {
    this.incremental ??= this.chip.layers.map((_, l) => new IncrementalLayerCodes(this.target(l), this.curves[l]!));
    let recomputed = 0;
    const codes = this.net.toPnnLayers().map((p, l) => {
      const inc = this.incremental![l]!;
      recomputed += inc.update(p.gE, p.gI, p.nIn, p.nOut);
      return inc.codes.slice();
    });
    return { codes, recomputed };
  }

  private target(l: number) {
    const { chip } = this;
    return { geometry: layerGeometry(chip.layers[l]!), dac: chip.dac, safe: chip.safe, t0: this.t0 };
  }
}

/** Class = earliest spike among the first `classes` of `outputs` output neurons; -1 when all are silent. */
export function classifyTicks(outTicks: Uint16Array, n: number, outputs: number, classes: number): Int32Array {
  const pred = new Int32Array(n);
  for (let s = 0; s < n; s++) {
    let best = -1;
    let bestTick = SILENT_TICK;
    for (let i = 0; i < classes; i++) {
      const t = outTicks[s * outputs + i]!;
      if (t < bestTick) {
        bestTick = t;
        best = i;
      }
    }
    pred[s] = best;
  }
  return pred;
}
