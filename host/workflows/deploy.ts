/**
 * Running a twin-trained network on a chip: map its conductances to DAC codes through the
 * chip's transfer curves, upload and verify them, and measure accuracy on the device beside the
 * twin's accuracy on the weights the codes really realise (quantised and clipped).
 */

import { classFigures, confusionJson, confusionMatrix } from '../../models/training/confusion.ts';
import { classTableRows } from './confusion-report.ts';
import { loadChipProfile, profileLayerCurves, type ChipProfile } from '../../calibration/chip-profile.ts';
import { mapLayer, type LayerCurves, type MappedLayer } from '../../calibration/weight-mapping.ts';
import { SILENT_TICK } from '../../models/chips/chip-backend.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../../models/chips/sky130-nominal.ts';
import { ttfsTicks } from '../../models/datasets/coding.ts';
import type { DenseLayerState } from '../../models/network/layer.ts';
import { SpikingNetwork } from '../../models/network/network.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import { loadNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { ChipDevice, type DeviceInfo } from '../device/chip-device.ts';
import { createProgress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { formatPercent } from '../ui/format.ts';
import { checkInputFile, MODEL_FILE_FIX, PROFILE_FILE_FIX } from './input-file.ts';
import { unitsOf } from '../../models/network/conductance-units.ts';

/** The nominal sky130 transfer curves: what a chip is assumed to be before it is calibrated. */
export function nominalCurves(): LayerCurves {
  return { nmos: NOMINAL_NMOS, pmos: NOMINAL_PMOS, circuit: NOMINAL_CIRCUIT, temperatureC: NOMINAL_TEMPERATURE_C };
}

/** A chip's layer windows, as HELLO announces them or a chip profile records them. */
export interface ChipWindows {
  layers: readonly { horizonTicks: number }[];
}

/**
 * The device's layer windows in twin time units of `unitTicks` ticks (default: layer 0's window,
 * so it ends at 1). A network meant for this device is configured with these horizons.
 */
export function deviceHorizons(info: ChipWindows, unitTicks = info.layers[0]!.horizonTicks): number[] {
  return info.layers.map((l) => l.horizonTicks / unitTicks);
}

/**
 * The time base of a twin trained for a chip: inputs take the first half of layer 0's window (one
 * twin time unit), the layers the rest, each ending where the chip's does; grids start at 0
 * (shiftGrids off) as the chip's do.
 */
export function chipTimeBase(chip: ChipWindows): { inputWindow: number; horizons: number[]; shiftGrids: boolean } {
  return { inputWindow: 1, horizons: deviceHorizons(chip, chip.layers[0]!.horizonTicks / 2), shiftGrids: false };
}

/** Ticks per twin time unit, read off the network's first window against the device's. */
export function unitTicksOf(net: SpikingNetwork, info: DeviceInfo): number {
  return info.layers[0]!.horizonTicks / net.config.horizons[0]!;
}

/** What makes a network fit a chip: training it for that chip. */
export const FIT_FIX = 'train the network for this chip with spikeloop train --profile FILE (or --device URI)';

/** Throws, naming every mismatch and the fix, unless `net` fits the device (fitProblems). */
export function checkFits(net: SpikingNetwork, info: DeviceInfo, what = 'the network'): void {
  const problems = fitProblems(net, info);
  if (problems.length > 0) throw new RangeError(`${what} does not fit ${info.chipId}: ${problems.join('; ')}; ${FIT_FIX}`);
}

/**
 * Reasons a network cannot run on this device as it is, each naming what differs; empty when it
 * fits (checkFits adds the fix). The twin may use any time unit; its windows must be the device's in it.
 */
export function fitProblems(net: SpikingNetwork, info: DeviceInfo): string[] {
  const problems: string[] = [];
  const sizes = net.config.sizes;
  if (net.layers.length !== info.layers.length) {
    problems.push(
      `the network has ${net.layers.length} layers, the chip ${info.layers.length} (the chip's hidden widths are ${info.layers
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
        `layer ${l}'s window ends at ${have} time units in the twin but at ${want[l]} on the chip (${chip.horizonTicks} ticks at ${unit} ticks per unit)`,
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

export interface MappedNetwork {
  /** Per layer: the codes to upload and what they realise (calibration/weight-mapping.ts). */
  layers: MappedLayer[];
  /** Every layer's state with pE, pI replaced by what the codes realise. */
  realisedStates: DenseLayerState[];
}

/** Maps every layer's conductances to DAC codes through `curves` (nominal where absent); no I/O. */
export function mapNetwork(net: SpikingNetwork, info: DeviceInfo, curves?: readonly LayerCurves[]): MappedNetwork {
  checkFits(net, info);
  // Seconds per twin time unit.
  const t0 = unitTicksOf(net, info) * info.tickSeconds;
  const pnn = net.toPnnLayers();
  const states = net.states();
  const layers: MappedLayer[] = [];
  const realisedStates: DenseLayerState[] = [];
  for (let l = 0; l < pnn.length; l++) {
    const p = pnn[l]!;
    const chip = info.layers[l]!;
    const geometry = { inputs: chip.inputs, outputs: chip.outputs, rowInput: chip.rowInput, rowPolarity: chip.rowPolarity };
    const m = mapLayer(p.gE, p.gI, p.nIn, p.nOut, { geometry, dac: info.dac, safe: info.safe, t0 }, curves?.[l] ?? nominalCurves());
    layers.push(m);
    const s = states[l]!;
    // Back to the layer's trainable units.
    realisedStates.push({ ...s, ...unitsOf(s, m.gE, m.gI) });
  }
  return { layers, realisedStates };
}

/** Maps, uploads and CRC-verifies every layer; throws if a layer's read-back differs. */
export async function deployNetwork(device: ChipDevice, net: SpikingNetwork, opts: DeployOptions = {}): Promise<Deployment> {
  const mapped = mapNetwork(net, device.info, opts.curves);
  const layers: DeployedLayer[] = [];
  for (const [l, m] of mapped.layers.entries()) {
    const up = await device.uploadWeights(l, m.codes, { onProgress: opts.onProgress, signal: opts.signal });
    const check = await device.verifyWeights(l, m.codes);
    if (!check.ok) throw new Error(`layer ${l} did not verify after upload: ${check.detail}`);
    layers.push({ layer: l, codes: m.codes, clipped: m.clipped, zeroed: m.zeroed, frames: up.frames, verified: check.ok });
  }
  return { layers, realised: SpikingNetwork.fromStates(net.config, mapped.realisedStates) };
}

/** Every layer's transfer curves from a chip profile (calibration/chip-profile.ts). */
export function curvesFromProfile(profile: ChipProfile, info: DeviceInfo): LayerCurves[] {
  if (profile.layers.length !== info.layers.length) {
    throw new RangeError(`the profile describes ${profile.layers.length} layers, the chip has ${info.layers.length}: calibrate this chip again`);
  }
  profile.layers.forEach((p, l) => {
    const c = info.layers[l]!;
    if (p.inputs !== c.inputs || p.outputs !== c.outputs || p.rows !== c.rowInput.length) {
      throw new RangeError(
        `profile layer ${l} is ${p.inputs}x${p.outputs} with ${p.rows} rows, the chip's ${c.inputs}x${c.outputs} with ${c.rowInput.length}: calibrate this chip again`,
      );
    }
  });
  return profile.layers.map((_, l) => profileLayerCurves(profile, l));
}

/**
 * A layer's measured ticks (batch x the chip's outputs) as twin times for the network's first
 * `nOut` neurons: the centre of the tick (the timer floors), minus the board's timer offset
 * (twin units), +Infinity when silent.
 */
export function ticksToTwinTimes(ticks: Uint16Array, batch: number, chipOutputs: number, nOut: number, unitTicks: number, offset = 0): Float32Array {
  const out = new Float32Array(batch * nOut);
  for (let s = 0; s < batch; s++) {
    for (let i = 0; i < nOut; i++) {
      const t = ticks[s * chipOutputs + i]!;
      out[s * nOut + i] = t === SILENT_TICK ? Infinity : Math.max(0, (t + 0.5) / unitTicks - offset);
    }
  }
  return out;
}

/**
 * Input ticks for the chip's first layer: the twin's inputs first (the data features, then the
 * reference input at its fixed time when the network has one), the rest of the array silent.
 * `x` holds n rows of `net.features` values.
 */
export function encodeForDevice(x: Float32Array, n: number, net: SpikingNetwork, info: DeviceInfo): Uint16Array {
  const features = net.features;
  const chipInputs = info.layers[0]!.inputs;
  if (x.length < n * features) throw new RangeError(`encodeForDevice needs ${n} rows of ${features} values, got ${x.length} values`);
  const unit = unitTicksOf(net, info);
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
  /** Samples with no output spike at all (prediction -1; each counts as wrong). */
  noSpike: number;
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
  let noSpike = 0;
  const issue = (s: number) => {
    const b = Math.min(batch, n - s);
    const ticks = encodeForDevice(x.subarray(s * net.features, (s + b) * net.features), b, net, info);
    // Scoring needs the output layer; the first batch keeps every layer (sampleTicks). On protocol 2 the board sends only those.
    return device.run(ticks, b, { signal: opts.signal, ...(s === 0 ? {} : { layers: [last] }) });
  };
  // The next batch is on the wire while the board runs this one: on a slow line the two overlap.
  let ahead: Promise<Uint16Array[]> | undefined = n > 0 ? issue(0) : undefined;
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const current = ahead!;
    ahead = s + batch < n ? issue(s + batch) : undefined;
    let layers: Uint16Array[];
    try {
      layers = await current;
    } catch (err) {
      ahead?.catch(() => {}); // failing anyway: the batch ahead must not end as an unhandled rejection
      throw err;
    }
    if (s === 0) sampleTicks = layers;
    const pred = classifyTicks(layers[last]!, b, outputs, classes);
    predictions.set(pred, s);
    for (let k = 0; k < b; k++) {
      if (pred[k] === y[s + k]) correct++;
      if (pred[k] === -1) noSpike++;
    }
    opts.onProgress?.(s + b, n);
  }
  return { accuracy: n > 0 ? correct / n : 0, predictions, noSpike, sampleTicks, samples: Math.min(n, batch) };
}

export interface DeployWorkflowOptions {
  device: string;
  /** A network file (models/network/serialize.ts). */
  model: string;
  /** A chip profile (calibration/chip-profile.ts); nominal curves with a warning when absent. */
  profile?: string;
  /** Score the test part of this data set on the device and in the twin. */
  dataset?: string;
  limitTest?: number;
  seed?: number;
  signal?: AbortSignal;
  print(line: string): void;
  warn(line: string): void;
}

export interface DeploySummary {
  device: string;
  chip_id: string;
  model: string;
  curves: 'calibrated' | 'nominal';
  profile: string | null;
  /** Synapses whose conductance lay beyond the safe gate range (realised at its edge). */
  clipped_synapses: number;
  /** Non-zero conductances below the smallest realisable step (switched off). */
  zeroed_synapses: number;
  frames: number;
  weights_verified: boolean;
  layers: { layer: number; codes: number; clipped: number; zeroed: number; frames: number; verified: boolean }[];
  dataset?: string;
  test_samples?: number;
  /** Test accuracy measured on the device. */
  deployed_acc?: number;
  /** Test samples for which the device fired no output neuron. */
  device_no_spike?: number;
  /** The device's test confusion matrix: rows true class, columns predicted, last column no spike. */
  device_confusion?: ReturnType<typeof confusionJson>;
  /** The twin (exact solver) on the conductances the codes realise. */
  realised_twin_acc?: number;
  /** The twin (exact solver) on the network's own conductances. */
  twin_acc?: number;
  [key: string]: unknown;
}

/** Accuracy of a network's earliest-spike predictions (exact solver, the reference). */
function exactAccuracy(net: SpikingNetwork, x: Float32Array, y: Uint8Array, n: number): number {
  const pred = net.predict(x, n, createSolver('exact'));
  let correct = 0;
  for (let s = 0; s < n; s++) if (pred[s] === y[s]) correct++;
  return n > 0 ? correct / n : 0;
}

/** `spikeloop deploy`: map through the profile's curves, upload, verify, and optionally score on the device. */
export async function runDeployWorkflow(opts: DeployWorkflowOptions): Promise<DeploySummary> {
  // Every input is read and checked before the device is opened.
  checkInputFile('--model', opts.model, MODEL_FILE_FIX);
  if (opts.profile) checkInputFile('--profile', opts.profile, PROFILE_FILE_FIX);
  await initBackend();
  const { net, info: modelInfo } = await loadNetwork(opts.model);
  let device: ChipDevice | undefined;
  try {
    if (opts.profile) await loadChipProfile(opts.profile);
    const data = opts.dataset
      ? await loadDataset(opts.dataset, { limitTest: opts.limitTest, seed: opts.seed ?? (typeof modelInfo.seed === 'number' ? modelInfo.seed : undefined) })
      : undefined;
    if (data && (data.features !== net.features || data.classes !== net.classes)) {
      throw new RangeError(
        `--dataset ${opts.dataset}: ${data.name} has ${data.features} features and ${data.classes} classes, the network ${net.features} features and ${net.classes} outputs: pass the data set it was trained on${typeof modelInfo.dataset === 'string' ? ` (${modelInfo.dataset})` : ''}`,
      );
    }
    opts.signal?.throwIfAborted();
    device = await ChipDevice.open(opts.device);
    const info = device.info;
    checkFits(net, info, `the network in ${opts.model}`);
    let curves: LayerCurves[] | undefined;
    if (opts.profile) {
      const profile = await loadChipProfile(opts.profile, { chipId: info.chipId });
      curves = curvesFromProfile(profile, info);
    } else {
      opts.warn(
        `WARNING: no --profile given: conductances are mapped through the NOMINAL sky130 transfer curves, so this chip's own mismatch is not compensated and accuracy on the device will suffer. Run \`spikeloop calibrate --device ${opts.device}\` and pass its profile with --profile.`,
      );
    }
    opts.print(
      `spikeloop deploy: ${opts.model} (${net.config.sizes.join('-')}) onto ${info.chipId} at ${opts.device}, ${curves ? `calibrated curves from ${opts.profile}` : 'nominal curves'}`,
    );
    const d = await deployNetwork(device, net, { curves, signal: opts.signal });
    const summary: DeploySummary = {
      device: opts.device,
      chip_id: info.chipId,
      model: opts.model,
      curves: curves ? 'calibrated' : 'nominal',
      profile: opts.profile ?? null,
      clipped_synapses: d.layers.reduce((s, l) => s + l.clipped, 0),
      zeroed_synapses: d.layers.reduce((s, l) => s + l.zeroed, 0),
      frames: d.layers.reduce((s, l) => s + l.frames, 0),
      weights_verified: d.layers.every((l) => l.verified),
      layers: d.layers.map((l) => ({ layer: l.layer, codes: l.codes.length, clipped: l.clipped, zeroed: l.zeroed, frames: l.frames, verified: l.verified })),
    };
    const rows: Record<string, unknown>[] = d.layers.map((l) => ({
      layer: l.layer,
      codes: l.codes.length,
      frames: l.frames,
      clipped: l.clipped,
      zeroed: l.zeroed,
      'CRC verified': l.verified,
    }));
    opts.print(renderTable(rows, { title: 'uploaded layers' }));
    if (summary.clipped_synapses > 0) {
      opts.warn(`${summary.clipped_synapses} synapses needed more conductance than the safe gate range gives and were clipped to its edge`);
    }
    try {
      if (data) {
        const test = data.test;
        const wire = device.runWireSecondsPerSample();
        const bar = createProgress({ total: test.n, label: 'device', unit: 'samples', ...(wire ? { wireSecondsPerUnit: wire } : {}) });
        const onDevice = await evaluateOnDevice(device, net, test.x, test.y, test.n, { signal: opts.signal, onProgress: (done) => bar.update(done) });
        bar.finish();
        summary.dataset = data.name;
        summary.test_samples = test.n;
        summary.deployed_acc = onDevice.accuracy;
        // Which classes the chip mixes up, and whether its errors are wrong spikes or silence.
        const cm = confusionMatrix(test.y.subarray(0, test.n), onDevice.predictions, data.classes);
        summary.device_no_spike = classFigures(cm).reduce((t, f) => t + f.noSpike, 0);
        summary.device_confusion = confusionJson(cm, data.classNames);
        summary.realised_twin_acc = exactAccuracy(d.realised, test.x, test.y, test.n);
        summary.twin_acc = exactAccuracy(net, test.x, test.y, test.n);
        opts.print(
          renderTable(
            [
              { figure: 'device test accuracy', value: formatPercent(summary.deployed_acc) },
              { figure: 'twin on the realised (quantised, clipped) weights', value: formatPercent(summary.realised_twin_acc) },
              { figure: "twin on the network's own weights", value: formatPercent(summary.twin_acc) },
            ],
            { title: `${data.name}: ${test.n} test samples` },
          ),
        );
        opts.print(renderTable(classTableRows(cm, data.classNames), { title: 'per class on the device' }));
      }
    } finally {
      d.realised.dispose();
    }
    return summary;
  } finally {
    net.dispose();
    await device?.close();
  }
}
