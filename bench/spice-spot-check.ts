/**
 * The transient spot check of `spice_flow`: the flow runs on a table-mode SPICE die (tables
 * characterised once, then the membrane integrated in JavaScript); here a sample of test patterns
 * runs again on the same die in transient mode (a full ngspice transient per neuron), with the
 * same network deployed through the same calibrated profile, and the two are compared spike by
 * spike. It says whether the flow's accuracies hold on the circuit simulation itself.
 */
import { join } from 'node:path';
import { loadChipProfile } from '../calibration/chip-profile.ts';
import { curvesFromProfile } from '../calibration/chip-mapping.ts';
import { ChipDevice } from '../host/device/chip-device.ts';
import { PROFILE_FILE } from '../host/workflows/calibrate.ts';
import { deployNetwork, evaluateOnDevice } from '../host/workflows/deploy.ts';
import { findNgspice } from '../models/chips/spice/engine.ts';
import { loadDataset } from '../models/datasets/load.ts';
import { loadNetwork } from '../models/network/serialize.ts';
import { initBackend } from '../models/tf/backend.ts';
import { SILENT_TICK } from '../wire/ticks.ts';

export interface SpotCheckOptions {
  /** The flow's run folder (profile and network). */
  runDir: string;
  die: number;
  geometry: string;
  engine: 'wasm' | 'ngspice';
  /** Data-set seed the flow used (its test split). */
  seed: number;
  /** Test patterns to run in transient mode. */
  samples: number;
}

interface ModeResult {
  ticks: Uint16Array[];
  predictions: Int32Array;
  seconds: number;
}

const round = (x: number, d = 4) => Number(x.toFixed(d));

async function runMode(mode: 'table' | 'transient', engine: 'wasm' | 'ngspice', o: SpotCheckOptions): Promise<ModeResult> {
  const t0 = performance.now();
  const net = await loadNetwork(join(o.runDir, 'iris-network.bin'));
  const data = await loadDataset('iris', { seed: o.seed });
  const n = Math.min(o.samples, data.test.n);
  // A transient RUN simulates every neuron of every sample: minutes, not the table's milliseconds.
  const device = await ChipDevice.open(`mock:spice?seed=${o.die}&mode=${mode}&engine=${engine}&geometry=${o.geometry}`, {
    timeouts: { RUN: 3_600_000, RUN_PACKED: 3_600_000 },
    notice: () => {},
  });
  try {
    const profile = await loadChipProfile(join(o.runDir, PROFILE_FILE), { chipId: device.info.chipId });
    await deployNetwork(device, net.net, { curves: curvesFromProfile(profile, device.info) });
    const e = await evaluateOnDevice(device, net.net, data.test.x.subarray(0, n * data.features), data.test.y.subarray(0, n), n, { batch: n });
    return { ticks: e.sampleTicks, predictions: e.predictions, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await device.close();
  }
}

/** Runs the sample in both modes and compares: spike-time differences per layer, firing disagreements, predictions. */
export async function transientSpotCheck(o: SpotCheckOptions): Promise<Record<string, unknown>> {
  await initBackend();
  const table = await runMode('table', o.engine, o);
  // Transients on the system ngspice when there is one: the engines agree to 1e-19 s
  // (test/models/chips/spice/engines.test.ts) and the native one is several times faster.
  const transientEngine = findNgspice() ? 'ngspice' : 'wasm';
  const transient = await runMode('transient', transientEngine, o);
  let both = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  let fireMismatch = 0;
  let neurons = 0;
  const perLayerMax: number[] = [];
  table.ticks.forEach((a, l) => {
    const b = transient.ticks[l]!;
    let layerMax = 0;
    for (let k = 0; k < a.length; k++) {
      neurons++;
      const fa = a[k] !== SILENT_TICK;
      const fb = b[k] !== SILENT_TICK;
      if (fa !== fb) fireMismatch++;
      if (!fa || !fb) continue;
      const d = Math.abs(a[k]! - b[k]!);
      both++;
      sumAbs += d;
      maxAbs = Math.max(maxAbs, d);
      layerMax = Math.max(layerMax, d);
    }
    perLayerMax.push(layerMax);
  });
  let agree = 0;
  for (let k = 0; k < table.predictions.length; k++) if (table.predictions[k] === transient.predictions[k]) agree++;
  return {
    samples: table.predictions.length,
    neurons,
    fired_in_both: both,
    fire_mismatch: fireMismatch,
    mean_abs_diff_ticks: both > 0 ? round(sumAbs / both) : null,
    max_abs_diff_ticks: maxAbs,
    max_abs_diff_ticks_per_layer: perLayerMax,
    predictions_agree: agree,
    transient_engine: transientEngine,
    table_s: round(table.seconds, 1),
    transient_s: round(transient.seconds, 1),
  };
}
