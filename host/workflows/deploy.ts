/**
 * Running a twin-trained network on a chip: map its conductances to DAC codes through the
 * chip's transfer curves, upload and verify them, and measure accuracy on the device beside the
 * twin's accuracy on the weights the codes really realise (quantised and clipped).
 */

import { mapLayer, type LayerCurves } from '../../calibration/weight-mapping.ts';
import { SILENT_TICK } from '../../models/chips/chip-backend.ts';
import {
  NOMINAL_CIRCUIT,
  NOMINAL_NMOS,
  NOMINAL_PMOS,
  NOMINAL_TEMPERATURE_C,
} from '../../models/chips/sky130-nominal.ts';
import { ttfsTicks } from '../../models/datasets/coding.ts';
import type { DenseLayerState } from '../../models/network/layer.ts';
import { SpikingNetwork } from '../../models/network/network.ts';
import type { ChipDevice, DeviceInfo } from '../device/chip-device.ts';

/** The nominal sky130 transfer curves: what a chip is assumed to be before it is calibrated. */
export function nominalCurves(): LayerCurves {
  return { nmos: NOMINAL_NMOS, pmos: NOMINAL_PMOS, circuit: NOMINAL_CIRCUIT, temperatureC: NOMINAL_TEMPERATURE_C };
}

/**
 * The device's layer windows in twin time units of `unitTicks` ticks (default: layer 0's window,
 * so it ends at 1). A network meant for this device is configured with these horizons.
 */
export function deviceHorizons(info: DeviceInfo, unitTicks = info.layers[0]!.horizonTicks): number[] {
  return info.layers.map((l) => l.horizonTicks / unitTicks);
}

/** Ticks per twin time unit, read off the network's first window against the device's. */
export function unitTicksOf(net: SpikingNetwork, info: DeviceInfo): number {
  return info.layers[0]!.horizonTicks / net.config.horizons[0]!;
}

/**
 * Reasons a network cannot run on this device as it is, each naming what differs and the fix;
 * empty when it fits. The twin may use any time unit; its windows must be the device's in it.
 */
export function fitProblems(net: SpikingNetwork, info: DeviceInfo): string[] {
  const problems: string[] = [];
  const sizes = net.config.sizes;
  if (net.layers.length !== info.layers.length) {
    problems.push(
      `the network has ${net.layers.length} layers, the chip ${info.layers.length}: train with --layers matching the chip's hidden layers (${info.layers
        .slice(0, -1)
        .map((l) => l.outputs)
        .join(',')})`,
    );
    return problems;
  }
  const unit = unitTicksOf(net, info);
  const want = deviceHorizons(info, unit);
  info.layers.forEach((chip, l) => {
    if (sizes[l]! > chip.inputs || sizes[l + 1]! > chip.outputs) {
      problems.push(`layer ${l} is ${sizes[l]}x${sizes[l + 1]}, the chip's array is ${chip.inputs}x${chip.outputs}`);
    }
    const have = net.config.horizons[l]!;
    if (Math.abs(have - want[l]!) > 1e-9 * want[l]!) {
      problems.push(
        `layer ${l}'s window ends at ${have} time units in the twin but at ${want[l]} on the chip (${chip.horizonTicks} ticks at ${unit} ticks per unit): configure the twin with deviceHorizons()`,
      );
    }
  });
  if (net.config.inputWindow > net.config.horizons[0]! * (1 + 1e-12)) {
    problems.push(`the input window (${net.config.inputWindow}) is longer than the chip's first window (${net.config.horizons[0]})`);
  }
  return problems;
}

export interface DeployedLayer {
  layer: number;
  codes: Uint16Array;
  clipped: number;
  zeroed: number;
  frames: number;
  verified: boolean;
}

export interface Deployment {
  layers: DeployedLayer[];
  /** The twin on the conductances the uploaded codes realise. */
  realised: SpikingNetwork;
}

export interface DeployOptions {
  /** Transfer curves per layer (a calibrated profile's); nominal when absent. */
  curves?: LayerCurves[];
  onProgress?: (p: { layer: number; done: number; total: number }) => void;
  signal?: AbortSignal;
}

/** Maps, uploads and CRC-verifies every layer; throws if a layer's read-back differs. */
export async function deployNetwork(device: ChipDevice, net: SpikingNetwork, opts: DeployOptions = {}): Promise<Deployment> {
  const info = device.info;
  const problems = fitProblems(net, info);
  if (problems.length > 0) throw new RangeError(`the network does not fit ${info.chipId}: ${problems.join('; ')}`);
  // Seconds per twin time unit.
  const t0 = unitTicksOf(net, info) * info.tickSeconds;
  const pnn = net.toPnnLayers();
  const states = net.states();
  const layers: DeployedLayer[] = [];
  const realisedStates: DenseLayerState[] = [];
  for (let l = 0; l < pnn.length; l++) {
    const p = pnn[l]!;
    const chip = info.layers[l]!;
    const curves = opts.curves?.[l] ?? nominalCurves();
    const geometry = { inputs: chip.inputs, outputs: chip.outputs, rowInput: chip.rowInput, rowPolarity: chip.rowPolarity };
    const m = mapLayer(p.gE, p.gI, p.nIn, p.nOut, { geometry, dac: info.dac, safe: info.safe, t0 }, curves);
    const up = await device.uploadWeights(l, m.codes, { onProgress: opts.onProgress, signal: opts.signal });
    const check = await device.verifyWeights(l, m.codes);
    if (!check.ok) throw new Error(`layer ${l} did not verify after upload: ${check.detail}`);
    layers.push({ layer: l, codes: m.codes, clipped: m.clipped, zeroed: m.zeroed, frames: up.frames, verified: check.ok });
    const s = states[l]!;
    // Back to the layer's trainable units: pE = gE * ePlus / scale, pI = gI * |eMinus| / scale.
    realisedStates.push({
      ...s,
      pE: Float32Array.from(m.gE, (g) => (g * s.ePlus) / s.scale),
      pI: Float32Array.from(m.gI, (g) => (g * -s.eMinus) / s.scale),
    });
  }
  return { layers, realised: SpikingNetwork.fromStates(net.config, realisedStates) };
}

/** Input ticks for the chip's first layer: the twin's inputs first, the rest of the array silent. */
export function encodeForDevice(x: Float32Array, n: number, net: SpikingNetwork, info: DeviceInfo): Uint16Array {
  const features = net.inputs;
  const chipInputs = info.layers[0]!.inputs;
  const horizonTicks = Math.round(net.config.inputWindow * unitTicksOf(net, info));
  const ticks = ttfsTicks(x.subarray(0, n * features), {
    horizonTicks,
    silentThreshold: net.config.silentZeros ? 0 : undefined,
  });
  if (chipInputs === features) return ticks;
  const out = new Uint16Array(n * chipInputs).fill(SILENT_TICK);
  for (let s = 0; s < n; s++) out.set(ticks.subarray(s * features, (s + 1) * features), s * chipInputs);
  return out;
}

/** Class = earliest spike among the first `classes` output neurons; -1 when all are silent. */
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

export interface DeviceEvaluation {
  accuracy: number;
  predictions: Int32Array;
  /** Every layer's spike ticks of the first samples (for rasters). */
  sampleTicks: Uint16Array[];
  samples: number;
}

/** Runs a data set on the device in RUN-sized batches and scores the earliest output spike. */
export async function evaluateOnDevice(
  device: ChipDevice,
  net: SpikingNetwork,
  x: Float32Array,
  y: Uint8Array,
  n: number,
  opts: { batch?: number; onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<DeviceEvaluation> {
  const info = device.info;
  const last = info.layers.length - 1;
  const outputs = info.layers[last]!.outputs;
  const classes = net.classes;
  const batch = opts.batch ?? Math.max(1, info.runBatch * 4);
  const predictions = new Int32Array(n);
  let sampleTicks: Uint16Array[] = [];
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const ticks = encodeForDevice(x.subarray(s * net.inputs, (s + b) * net.inputs), b, net, info);
    const layers = await device.run(ticks, b, { signal: opts.signal });
    if (s === 0) sampleTicks = layers;
    const pred = classifyTicks(layers[last]!, b, outputs, classes);
    predictions.set(pred, s);
    for (let k = 0; k < b; k++) if (pred[k] === y[s + k]) correct++;
    opts.onProgress?.(s + b, n);
  }
  return { accuracy: n > 0 ? correct / n : 0, predictions, sampleTicks, samples: Math.min(n, batch) };
}
