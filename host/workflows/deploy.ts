/**
 * Running a twin-trained network on a chip: upload and verify the DAC codes a ChipMapping
 * (calibration/chip-mapping.ts) gives for it, and measure accuracy on the device beside the
 * twin's accuracy on the weights the codes really realise (quantised and clipped).
 */

import { classFigures, confusionJson, confusionMatrix } from '../../models/training/confusion.ts';
import { classTableRows } from './confusion-report.ts';
import { loadChipProfile, type ChipProfile } from '../../calibration/chip-profile.ts';
import { ChipMapping, checkFits, curvesFromProfile, missingNeuronLevels } from '../../calibration/chip-mapping.ts';
import type { LayerCurves } from '../../calibration/weight-mapping.ts';
import type { SpikingNetwork } from '../../models/network/network.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import { loadNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { createProgress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { formatPercent } from '../ui/format.ts';
import { checkInputFile, MODEL_FILE_FIX, PROFILE_FILE_FIX } from './input-file.ts';

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
  const mapping = new ChipMapping(net, device.info, opts.curves);
  const mapped = mapping.map();
  const layers: DeployedLayer[] = [];
  for (const [l, m] of mapped.layers.entries()) {
    const up = await device.uploadWeights(l, m.codes, { onProgress: opts.onProgress, signal: opts.signal });
    const check = await device.verifyWeights(l, m.codes);
    if (!check.ok) throw new Error(`layer ${l} did not verify after upload: ${check.detail}`);
    layers.push({ layer: l, codes: m.codes, clipped: m.clipped, zeroed: m.zeroed, frames: up.frames, verified: check.ok });
  }
  return { layers, realised: mapping.realisedNetwork(mapped) };
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
  const mapping = new ChipMapping(net, info);
  const last = info.layers.length - 1;
  const batch = opts.batch ?? Math.max(1, info.runBatch * 4);
  const predictions = new Int32Array(n);
  let sampleTicks: Uint16Array[] = [];
  let correct = 0;
  let noSpike = 0;
  const issue = (s: number) => {
    const b = Math.min(batch, n - s);
    const ticks = mapping.encodeInputs(x.subarray(s * net.features, (s + b) * net.features), b);
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
    const pred = mapping.classify(layers[last]!, b);
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
    let profile: ChipProfile | undefined;
    if (opts.profile) {
      profile = await loadChipProfile(opts.profile, { chipId: info.chipId });
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
    // The twin of what the chip runs fires at the chip's measured levels, whatever the network carries.
    const levels = profile && missingNeuronLevels(net, profile);
    if (levels) {
      opts.warn(
        `WARNING: ${opts.model} was trained without this chip's measured firing levels and output delays, so the chip's spikes part from its twin's: train it with --profile ${opts.profile} (the realised twin below carries them)`,
      );
      const realised = d.realised;
      d.realised = realised.withNeuronLevels(levels);
      realised.dispose();
    }
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
