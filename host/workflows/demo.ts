/**
 * The main job on a fresh chip, end to end (`spikeloop demo`, `npm start`):
 *
 *   bring-up      runBringup on the open device; stops the demo with the failed checks when the chip is not healthy
 *   calibration   runCalibrateWorkflow on the layers the demo calibrates (default: every layer of at most
 *                 CALIBRATE_MAX_INPUTS inputs, which is the whole reference chip, in about two minutes)
 *   twin training Iris (4 inputs embedded in the first layer) and a Fashion-MNIST subset, PNN model with the
 *                 profile's reversal potentials, the chip's own hidden widths and time windows
 *   deploy        every network twice: through the nominal sky130 curves (uncalibrated) and through the
 *                 profile's curves, device test accuracy for each
 *   fine-tuning   runFinetune (chip in the loop) from the calibrated deployment, a few epochs
 *   table         twin, deployed (nominal, calibrated) and fine-tuned accuracy, calibration RMSE, time per stage
 *
 * Everything lands in one run folder: record.json, metrics.jsonl, profile.slp, the networks, and
 * report.html, which embeds the learning curves and spike raster and links the stage reports
 * (bringup/, calibration/, finetune-<data set>/).
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { profileTwinPhysics, loadChipProfile, type ChipProfile } from '../../calibration/chip-profile.ts';
import type { ProbeSizes } from '../../calibration/probe-plan.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import type { Dataset } from '../../models/datasets/types.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { trainNetwork, type EpochMetrics } from '../../models/training/trainer.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { ChipDevice, type DeviceInfo } from '../device/chip-device.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { lineChart, spikeRaster } from '../report/svg-plot.ts';
import { openRunDir, type RunDir } from '../runs/run-dir.ts';
import { createProgress, type Progress, type ProgressStream } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { runBringup } from './bringup.ts';
import type { BringupRecord, StepId } from './bringup-record.ts';
import { writeBringupJson, writeBringupReport } from './bringup-report.ts';
import { runCalibrateWorkflow, PROFILE_FILE, type CalibrateSummary, type CalibrateWorkflowOptions } from './calibrate.ts';
import { chipTimeBase, curvesFromProfile } from '../../calibration/chip-mapping.ts';
import { deployNetwork, evaluateOnDevice } from './deploy.ts';
import { runFinetune, type FinetuneSummary } from './finetune.ts';
import { presetFor } from '../../models/training/presets.ts';
import { displayPath, formatPercent } from '../ui/format.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

/**
 * Layers with at most this many inputs are calibrated by default: every layer of the reference
 * 784-256-128-10 chip. Leaving its first layer on nominal curves saves about 90 s but costs the
 * Fashion-MNIST network most of its accuracy on the chip (10-38 % instead of about 38 % deployed).
 */
export const CALIBRATE_MAX_INPUTS = 1024;

/**
 * Networks fine-tuned on the chip by default: Fashion-MNIST when the demo trains it, where the loop has the most to win:
 * once the chip is calibrated, Iris deploys at its twin's accuracy, and a 45-sample test set
 * makes a few more epochs on it noise.
 */
export function defaultFinetune(fashionTrained: boolean): DemoDataset[] {
  return fashionTrained ? ['fashion-mnist'] : ['iris'];
}

/**
 * Probe sizes of the demo's calibration: fewer and shorter pattern sets than `spikeloop calibrate`
 * (2 E/I configurations of 32 patterns, 1 excite-then-inhibit, 32 held out, against 3 x 96, 2 and
 * 64) and each single-synapse sweep read once instead of three times. The fit, not the probing, is
 * what costs, and it grows with the observations per synapse: on a 784-64-10 die (seed 1) these sizes
 * with DEMO_FIT took 58 CPU s for the whole calibration against 183 s with three readings, two more
 * precharge steps and the wide layer polished, at a held-out PNN RMSE of 0.60 against 0.49 ticks
 * (floor 0.39); docs/RESULTS.md has the figures and what the deployment loses.
 */
export const DEMO_PROBE_SIZES: Partial<ProbeSizes> = { patternConfigs: 2, eiConfigs: 1, patternsPerConfig: 32, heldOutPatterns: 32, sweepRepeats: 1 };

/**
 * How much the demo's calibration fits: the joint per-transistor polish only on layers of at most 64
 * driven inputs (on the 784-input layer it was a third of the fit's CPU time), and two precharge steps
 * instead of four (they pin E+; the network is trained with the fitted value either way).
 */
export const DEMO_FIT = { polishMaxInputs: 64, restShiftVolts: [0.2, 0.45] } as const;

/**
 * Layer widths of the demo's own mock chip (no --device). Calibration's cost grows with neurons x
 * inputs and most of it is the 784-input first layer: 64 first-layer neurons instead of the
 * reference chip's 256 (and one layer fewer) make every stage several times cheaper, and on
 * Fashion-MNIST a 784-64-10 network still reaches 80 % in seconds of training (docs/RESULTS.md).
 */
export const DEMO_GEOMETRY = '784-64-10';

/** What `spikeloop demo` runs when no flag says otherwise (the CLI's defaults); docs/RESULTS.md has what each costs. */
export const DEMO_DEFAULTS = {
  // Iris is off by default: 11 CPU s of a three-minute budget for a figure nobody doubts, and on
  // sky130-physics dies its calibrated deployment left most test samples silent (docs/RESULTS.md).
  irisEpochs: 0,
  fashionTrain: 20_000,
  fashionTest: 1000,
  fashionEpochs: 2,
  finetuneTrain: 2000,
  finetuneEpochs: 1,
} as const;

/** Twin batch size and Adam rate on images (see trainTwin). */
export const DEMO_IMAGE_BATCH = 32;
export const DEMO_IMAGE_LR = 0.02;

export type DemoDataset = 'iris' | 'fashion-mnist';

export interface DemoOptions {
  device: string;
  out: string;
  /** Seed of network initialisation, data split, batch order and probe patterns. */
  seed: number;
  /** Twin epochs on Iris; 0 skips Iris. */
  irisEpochs: number;
  /**
   * The Fashion-MNIST subset (training and test samples), its twin epochs and, optionally, the training
   * images in-situ fine-tuning sees (default: the twin's subset); null skips Fashion-MNIST.
   */
  fashion: { train: number; test: number; epochs: number; finetuneTrain?: number } | null;
  /** In-situ fine-tuning epochs, and of which networks (default Iris). */
  finetuneEpochs: number;
  finetune?: DemoDataset[];
  /** Layers to calibrate (default: every layer with at most CALIBRATE_MAX_INPUTS inputs). */
  calibrateLayers?: number[];
  /** Probe sizes of the calibration (default DEMO_PROBE_SIZES). */
  calibrationSizes?: Partial<ProbeSizes>;
  /** How much the calibration fits (default DEMO_FIT; {} = all of it, as `spikeloop calibrate`). */
  calibrationFit?: CalibrateWorkflowOptions['fit'];
  /** Identical runs of bring-up's jitter check (default 32). */
  jitterRepeats?: number;
  /** Worker threads for the calibration's per-neuron fits and the twin's training steps (default: the cores available). */
  workers?: number;
  signal?: AbortSignal;
  print(line: string): void;
  warn?(line: string): void;
  /** Where progress bars go (default stderr). */
  progress?: ProgressStream;
}

export interface DemoNetworkResult {
  dataset: DemoDataset;
  sizes: number[];
  train_samples: number;
  test_samples: number;
  epochs: number;
  twin_acc: number;
  /** Device test accuracy through the nominal curves (uncalibrated) and the profile's. */
  deployed_nominal_acc: number;
  deployed_acc: number;
  /**
   * Test samples with no output spike at all on the device (each counts as wrong), through the
   * nominal and the calibrated curves: tells a chip left silent by the mapping from one that fires
   * the wrong class.
   */
  deployed_nominal_no_spike: number;
  deployed_no_spike: number;
  clipped_synapses: number;
  /** After in-situ fine-tuning, measured on the device; null when the network was not fine-tuned. */
  finetuned_acc: number | null;
  finetuned_twin_acc: number | null;
  network: string;
}

export interface DemoSummary {
  device: string;
  chip_id: string;
  seed: number;
  backend: string;
  geometry: string;
  bringup_ok: boolean;
  calibrated_layers: number[];
  calibration: { rmse_pnn: number; rmse_ideal: number; rmse_pnn_ticks: number; rmse_ideal_ticks: number };
  networks: DemoNetworkResult[];
  /** The headline network's figures (the first fine-tuned one, else Iris), at the top level for scripts. */
  headline: DemoDataset;
  twin_acc: number;
  deployed_nominal_acc: number;
  deployed_acc: number;
  finetuned_acc: number | null;
  /** Wall and CPU seconds per stage (CPU: this process, every thread). */
  stages: { stage: string; seconds: number; cpu_seconds: number; result: string }[];
  seconds: number;
  cpu_seconds: number;
  /** The whole run, wall seconds (= seconds), and the process's peak resident memory in MB (every thread). */
  demo_s: number;
  demo_peak_rss_mb: number;
  workers: number;
  profile: string;
  report: string;
  [key: string]: unknown;
}

/** Default calibration subset: the layers narrow enough to calibrate within the demo's budget. */
export function defaultCalibrationLayers(info: DeviceInfo): number[] {
  const small = info.layers.flatMap((l, k) => (l.inputs <= CALIBRATE_MAX_INPUTS ? [k] : []));
  return small.length ? small : [info.layers.length - 1];
}

function geometryOf(info: DeviceInfo): string {
  return [info.layers[0]!.inputs, ...info.layers.map((l) => l.outputs)].join('-');
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const started = performance.now();
  const startedCpu = process.cpuUsage();
  const stages: DemoSummary['stages'] = [];
  const stage = async <T>(name: string, work: () => Promise<T>, describe: (r: T) => string): Promise<T> => {
    opts.print(`\n== ${name}`);
    const t = performance.now();
    const cpu = process.cpuUsage();
    const r = await work();
    const seconds = (performance.now() - t) / 1000;
    const used = process.cpuUsage(cpu);
    // CPU seconds beside wall seconds: on a shared machine the wall time says little on its own.
    const cpuSeconds = (used.user + used.system) / 1e6;
    const result = describe(r);
    stages.push({ stage: name, seconds, cpu_seconds: cpuSeconds, result });
    opts.print(`   ${result} (${seconds.toFixed(1)} s)`);
    return r;
  };
  const bar = (total: number, label: string, unit: string): Progress => createProgress({ total, label, unit, stream: opts.progress });

  if (opts.irisEpochs <= 0 && !opts.fashion) throw new RangeError('the demo needs a network to train: give Iris epochs above 0 or a Fashion-MNIST subset');
  const run = openRunDir({ out: opts.out, info: { command: 'demo', args: process.argv.slice(2), device: opts.device } });
  const nets: SpikingNetwork[] = [];
  let device: ChipDevice | undefined;
  try {
    const backend = await initBackend();
    run.update({ versions: { tfjs_backend: backend }, summary: { settings: settingsOf(opts) } });
    opts.print(`spikeloop demo: device ${opts.device}, seed ${opts.seed}, twin backend ${backend}, run folder ${displayPath(run.path)}`);
    device = await ChipDevice.open(opts.device);
    const info = device.info;
    const geometry = geometryOf(info);
    run.update({ device: { uri: opts.device, chipId: info.chipId, geometry } });

    // 1. Bring-up: a chip that fails it is not worth calibrating.
    const rec = await stage(
      'bring-up',
      () => bringup(device!, run, opts, bar),
      (r) => `${info.chipId} (${geometry}): ${r.checks.filter((c) => c.status === 'pass').length}/${r.checks.length} checks passed`,
    );
    run.metrics.append({ stage: 'bringup', ok: rec.ok, seconds: rec.seconds, dead_neurons: rec.dead_neurons.length, bad_synapses: rec.bad_synapses.length });
    if (!rec.ok) {
      const failed = rec.checks.filter((c) => c.status === 'fail').map((c) => `${c.title}: ${c.detail}`);
      const why = rec.stoppedEarly ? `stopped at ${rec.stoppedEarly.step}: ${rec.stoppedEarly.reason}` : failed.join('; ');
      throw new Error(
        `the chip failed bring-up (${why}); see ${displayPath(run.file('bringup/report.html'))}. A chip that fails bring-up is not calibrated or trained on.`,
      );
    }

    // 2. Calibration of the chosen layers; the profile is copied to the run folder's top.
    const layers = opts.calibrateLayers ?? defaultCalibrationLayers(info);
    const cal = await stage(
      `calibration (layers ${layers.join(', ')})`,
      () => calibrate(device!, run, layers, opts, bar),
      (c) => `held-out spike-time RMSE: PNN ${c.rmse_pnn_ticks.toFixed(3)} ticks, ideal model ${c.rmse_ideal_ticks.toFixed(3)} ticks (${c.probes} probes)`,
    );
    const profilePath = run.file(PROFILE_FILE);
    fs.copyFileSync(cal.profile, profilePath);
    const profile = await loadChipProfile(profilePath, { chipId: info.chipId });
    const curves = curvesFromProfile(profile, info);

    // 3-4. Twin training, then deployment through nominal and calibrated curves, per data set.
    const datasets: { name: DemoDataset; data: Dataset; epochs: number }[] = [];
    if (opts.irisEpochs > 0) datasets.push({ name: 'iris', data: await loadDataset('iris', { seed: opts.seed }), epochs: opts.irisEpochs });
    if (opts.fashion) {
      const f = opts.fashion;
      datasets.push({
        name: 'fashion-mnist',
        data: await loadDataset('fashion-mnist', { limitTrain: f.train, limitTest: f.test, seed: opts.seed }),
        epochs: f.epochs,
      });
    }
    const results: DemoNetworkResult[] = [];
    const histories = new Map<DemoDataset, EpochMetrics[]>();
    let raster: { ticks: Uint16Array[]; title: string } | undefined;
    for (const d of datasets) {
      const trained = await stage(
        `twin training (${label(d.name)})`,
        () => trainTwin(d.data, d.epochs, info, profile, opts, run, bar, d.name),
        (t) =>
          `${t.sizes.join('-')}, ${d.data.train.n} train / ${d.data.test.n} test samples, ${d.epochs} epochs: twin test accuracy ${formatPercent(t.history.at(-1)?.test_acc)}`,
      );
      nets.push(trained.net);
      histories.set(d.name, trained.history);
      const file = run.file(`${d.name}-network.bin`);
      await saveNetwork(file, trained.net, { dataset: d.name, seed: opts.seed });
      const deployed = await stage(
        `deploy (${label(d.name)})`,
        async () => {
          const nominal = await deployAndMeasure(device!, trained.net, d.data, undefined, opts, bar, 'nominal');
          const calibrated = await deployAndMeasure(device!, trained.net, d.data, curves, opts, bar, 'calibrated');
          return { nominal, calibrated };
        },
        (r) =>
          `device test accuracy through nominal curves ${deviceAccuracy(r.nominal.acc, r.nominal.noSpike, d.data.test.n)}, through the calibrated curves ${deviceAccuracy(r.calibrated.acc, r.calibrated.noSpike, d.data.test.n)} (${r.calibrated.clipped} synapses clipped)`,
      );
      raster ??= { ticks: deployed.calibrated.ticks, title: `${label(d.name)}, first test sample, calibrated deployment` };
      const r: DemoNetworkResult = {
        dataset: d.name,
        sizes: trained.sizes,
        train_samples: d.data.train.n,
        test_samples: d.data.test.n,
        epochs: d.epochs,
        twin_acc: trained.history.at(-1)?.test_acc ?? NaN,
        deployed_nominal_acc: deployed.nominal.acc,
        deployed_acc: deployed.calibrated.acc,
        deployed_nominal_no_spike: deployed.nominal.noSpike,
        deployed_no_spike: deployed.calibrated.noSpike,
        clipped_synapses: deployed.calibrated.clipped,
        finetuned_acc: null,
        finetuned_twin_acc: null,
        network: file,
      };
      run.metrics.append({
        stage: 'deploy',
        dataset: d.name,
        twin_acc: r.twin_acc,
        deployed_nominal_acc: r.deployed_nominal_acc,
        deployed_acc: r.deployed_acc,
        deployed_nominal_no_spike: r.deployed_nominal_no_spike,
        deployed_no_spike: r.deployed_no_spike,
        clipped: r.clipped_synapses,
      });
      results.push(r);
    }
    for (const n of nets.splice(0)) n.dispose();
    // Fine-tuning opens the device itself (the same URI is the same chip).
    await device.close();
    device = undefined;

    // 5. In-situ fine-tuning from the calibrated deployment.
    const finetuneDirs: Partial<Record<DemoDataset, string>> = {};
    for (const name of opts.finetune ?? defaultFinetune(opts.fashion !== null)) {
      const r = results.find((x) => x.dataset === name);
      if (!r || opts.finetuneEpochs <= 0) continue;
      const out = run.file(`finetune-${name}`);
      const ft = await stage(
        `in-situ fine-tuning (${label(name)})`,
        () => finetune(r, out, profilePath, opts),
        (s) =>
          `device test accuracy ${formatPercent(s.deployed_acc)} -> ${formatPercent(s.finetuned_acc)} in ${s.epochs} epochs (${s.batches} batches, ${s.changed_codes_per_batch.toFixed(0)} codes changed per batch)`,
      );
      r.finetuned_acc = ft.finetuned_acc;
      r.finetuned_twin_acc = ft.twin_acc;
      finetuneDirs[name] = out;
      run.metrics.append({
        stage: 'finetune',
        dataset: name,
        deployed_acc: ft.deployed_acc,
        finetuned_acc: ft.finetuned_acc,
        twin_acc: ft.twin_acc,
        epochs: ft.epochs,
      });
    }

    // 6. Table and report.
    const seconds = (performance.now() - started) / 1000;
    const cpuUsed = process.cpuUsage(startedCpu);
    const cpuTotal = (cpuUsed.user + cpuUsed.system) / 1e6;
    const reportPath = run.file('report.html');
    const rows = tableRows(results, cal, layers, info, stages, seconds, cpuTotal);
    await writeReport(reportPath, { opts, info, rows, results, cal, layers, stages, histories, raster, finetuneDirs });
    opts.print('\n' + renderTable(rows, { title: `spikeloop demo: ${info.chipId} (${geometry}), seed ${opts.seed}` }));
    opts.print(`report: ${displayPath(reportPath)}`);
    // The headline figures: the first network fine-tuned on the chip (else the first trained).
    const first = results.find((r) => r.finetuned_acc !== null) ?? results[0]!;
    const summary: DemoSummary = {
      device: opts.device,
      chip_id: info.chipId,
      seed: opts.seed,
      backend,
      geometry,
      bringup_ok: rec.ok,
      calibrated_layers: layers,
      calibration: { rmse_pnn: cal.rmse_pnn, rmse_ideal: cal.rmse_ideal, rmse_pnn_ticks: cal.rmse_pnn_ticks, rmse_ideal_ticks: cal.rmse_ideal_ticks },
      networks: results,
      headline: first.dataset,
      twin_acc: first.twin_acc,
      deployed_nominal_acc: first.deployed_nominal_acc,
      deployed_acc: first.deployed_acc,
      finetuned_acc: first.finetuned_acc,
      stages: stages.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(2)), cpu_seconds: Number(s.cpu_seconds.toFixed(2)) })),
      seconds,
      cpu_seconds: cpuTotal,
      demo_s: Number(seconds.toFixed(2)),
      demo_peak_rss_mb: peakRssMb(),
      workers: workersOf(opts),
      profile: profilePath,
      report: reportPath,
    };
    run.finish({ ...summary });
    return summary;
  } catch (err) {
    throw run.stopped(err, opts.signal, `a demo cannot be continued: run it again (add --seed ${opts.seed} for the same chip)`);
  } finally {
    for (const n of nets) n.dispose();
    await device?.close().catch(() => {});
  }
}

/** Peak resident memory of this process so far, MB (maxRSS covers every thread, so a worker pool's too). */
export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

function workersOf(o: DemoOptions): number {
  return o.workers ?? os.availableParallelism();
}

function settingsOf(o: DemoOptions): Record<string, unknown> {
  return {
    seed: o.seed,
    iris_epochs: o.irisEpochs,
    fashion: o.fashion,
    finetune_epochs: o.finetuneEpochs,
    finetune: o.finetune ?? defaultFinetune(o.fashion !== null),
    calibrate_layers: o.calibrateLayers ?? 'default',
    calibration_sizes: o.calibrationSizes ?? DEMO_PROBE_SIZES,
    calibration_fit: o.calibrationFit ?? DEMO_FIT,
    workers: workersOf(o),
  };
}

function label(d: DemoDataset): string {
  return d === 'iris' ? 'Iris' : 'Fashion-MNIST subset';
}

async function bringup(device: ChipDevice, run: RunDir, opts: DemoOptions, bar: (t: number, l: string, u: string) => Progress): Promise<BringupRecord> {
  let b: Progress | undefined;
  let step: StepId | undefined;
  const rec = await runBringup(device, {
    signal: opts.signal,
    seed: opts.seed,
    jitterRepeats: opts.jitterRepeats,
    onProgress: (p) => {
      if (p.step !== step) {
        b?.finish();
        b = p.total > 1 ? bar(p.total, `bring-up ${p.step}`, p.step === 'synapses' || p.step === 'jitter' ? 'samples' : 'steps') : undefined;
        step = p.step;
      }
      b?.update(p.done);
    },
    log: (line) => {
      b?.finish();
      b = undefined;
      step = undefined;
      opts.print(`   ${line}`);
    },
  });
  b?.finish();
  fs.mkdirSync(run.file('bringup'), { recursive: true });
  writeBringupJson(run.file('bringup/bringup.json'), rec);
  await writeBringupReport(run.file('bringup/report.html'), rec);
  return rec;
}

async function calibrate(
  device: ChipDevice,
  run: RunDir,
  layers: number[],
  opts: DemoOptions,
  bar: (t: number, l: string, u: string) => Progress,
): Promise<CalibrateSummary> {
  let b: Progress | undefined;
  let current = '';
  try {
    return await runCalibrateWorkflow(device, {
      out: run.file('calibration'),
      layers,
      seed: opts.seed,
      sizes: opts.calibrationSizes ?? DEMO_PROBE_SIZES,
      workers: workersOf(opts),
      fit: opts.calibrationFit ?? { polishMaxInputs: DEMO_FIT.polishMaxInputs, restShiftVolts: DEMO_FIT.restShiftVolts },
      signal: opts.signal,
      deviceUri: device.uri,
      // Its own table would repeat the demo's; the figures are in calibration/report.html.
      print: () => {},
      onProgress: (name, done, total) => {
        if (name !== current) {
          b?.finish();
          b = total > 1 ? bar(total, name, 'steps') : undefined;
          current = name;
        }
        b?.update(done);
      },
    });
  } finally {
    b?.finish();
  }
}

async function trainTwin(
  data: Dataset,
  epochs: number,
  info: DeviceInfo,
  profile: ChipProfile,
  opts: DemoOptions,
  run: RunDir,
  bar: (t: number, l: string, u: string) => Progress,
  name: DemoDataset,
): Promise<{ net: SpikingNetwork; history: EpochMetrics[]; sizes: number[] }> {
  const preset = presetFor(name);
  // The chip's own hidden widths, so the network deploys without reshaping; a preset's reference
  // input (Iris) takes one more chip input, driven at its fixed tick.
  const biasSpike = preset.biasSpike;
  const sizes = [data.features + (biasSpike === undefined ? 0 : 1), ...info.layers.slice(0, -1).map((l) => l.outputs), data.classes];
  const physics = profileTwinPhysics(profile);
  // The chip's time base (chipTimeBase); reversal potentials: the calibrated ones.
  const config = defaultConfig(sizes, {
    model: 'pnn',
    ePlus: physics.ePlus,
    eMinus: physics.eMinus,
    ...chipTimeBase(info),
    ...(biasSpike === undefined ? {} : { biasSpike }),
  });
  const solver = createSolver('dstd', { bins: 16 });
  const net = initNetwork(config, { x: data.train.x, n: Math.min(256, data.train.n) }, solver, { seed: opts.seed });
  try {
    const b = bar(epochs, `train ${name}`, 'epochs');
    const history = await trainNetwork(
      net,
      { train: data.train, test: data.test },
      {
        epochs,
        // Images: batches of 32 at twice the preset's rate (a short run needs many large steps): on
        // 784-64-10, 20 000 images x 2 epochs reached 82.1 % against 82.2 % at 16 and the preset's
        // rate, in about half the time per image (docs/RESULTS.md).
        batchSize: name === 'iris' ? preset.batchSize : DEMO_IMAGE_BATCH,
        lr: name === 'iris' ? preset.lr : DEMO_IMAGE_LR,
        seed: opts.seed,
        solver,
        schedule: preset.schedule,
        loss: preset.loss,
        // The preset's regularisers too (Iris: input noise, which is also training for input-timer jitter).
        averageDecay: preset.averageDecay,
        inputNoise: preset.inputNoise,
        weightDecay: preset.weightDecay,
        workers: workersOf(opts),
        signal: opts.signal,
        onEpoch: (m) => {
          run.metrics.append({ stage: 'train', dataset: name, ...m });
          b.update(m.epoch, { loss: m.train_loss, acc: m.train_acc, test: m.test_acc });
        },
      },
    );
    b.finish();
    return { net, history, sizes };
  } catch (err) {
    net.dispose();
    throw err;
  }
}

async function deployAndMeasure(
  device: ChipDevice,
  net: SpikingNetwork,
  data: Dataset,
  curves: ReturnType<typeof curvesFromProfile> | undefined,
  opts: DemoOptions,
  bar: (t: number, l: string, u: string) => Progress,
  which: 'nominal' | 'calibrated',
): Promise<{ acc: number; noSpike: number; clipped: number; ticks: Uint16Array[] }> {
  const d = await deployNetwork(device, net, { curves, signal: opts.signal });
  d.realised.dispose();
  const b = bar(data.test.n, `device (${which})`, 'samples');
  const e = await evaluateOnDevice(device, net, data.test.x, data.test.y, data.test.n, { signal: opts.signal, onProgress: (done) => b.update(done) });
  b.finish();
  return { acc: e.accuracy, noSpike: e.noSpike, clipped: d.layers.reduce((s, l) => s + l.clipped, 0), ticks: e.sampleTicks };
}

/** A device accuracy, with how many of the n test samples had no output spike when any had none. */
export function deviceAccuracy(acc: number, noSpike: number, n: number): string {
  return `${formatPercent(acc)}${noSpike > 0 ? ` (${noSpike} of ${n} without an output spike)` : ''}`;
}

async function finetune(r: DemoNetworkResult, out: string, profile: string, opts: DemoOptions): Promise<FinetuneSummary> {
  const spec = r.dataset;
  return runFinetune({
    device: opts.device,
    out,
    model: r.network,
    profile,
    dataset: spec,
    epochs: opts.finetuneEpochs,
    seed: opts.seed,
    // The twin's test subset (same seed, same size: the test part does not depend on the training limit); a
    // stratified subset of the training part, smaller than the twin's when asked.
    ...(spec === 'fashion-mnist' && opts.fashion ? { limitTrain: opts.fashion.finetuneTrain ?? opts.fashion.train, limitTest: opts.fashion.test } : {}),
    ...(spec === 'iris' ? { batchSize: 16 } : {}),
    signal: opts.signal,
    args: ['(spikeloop demo)'],
    print: (line) => {
      // The fine-tuning's own table repeats what the demo prints; keep its progress lines.
      if (!line.startsWith('\n')) opts.print(`   ${line}`);
    },
    warn: (line) => (opts.warn ?? opts.print)(`   ${line}`),
    progress: opts.progress,
  });
}

function tableRows(
  results: DemoNetworkResult[],
  cal: CalibrateSummary,
  layers: number[],
  info: DeviceInfo,
  stages: DemoSummary['stages'],
  seconds: number,
  cpuTotal: number,
): { figure: string; value: string }[] {
  const rows: { figure: string; value: string }[] = [];
  for (const r of results) {
    const name = r.dataset === 'iris' ? 'Iris' : `Fashion-MNIST (${r.train_samples} train / ${r.test_samples} test)`;
    rows.push({ figure: `${name}: twin test accuracy`, value: `${formatPercent(r.twin_acc)} (${r.sizes.join('-')}, ${r.epochs} epochs)` });
    rows.push({ figure: `${name}: deployed, nominal curves`, value: deviceAccuracy(r.deployed_nominal_acc, r.deployed_nominal_no_spike, r.test_samples) });
    rows.push({ figure: `${name}: deployed, calibrated curves`, value: deviceAccuracy(r.deployed_acc, r.deployed_no_spike, r.test_samples) });
    rows.push({ figure: `${name}: after in-situ fine-tuning`, value: r.finetuned_acc === null ? 'not fine-tuned' : formatPercent(r.finetuned_acc) });
  }
  const skipped = info.layers.map((_, k) => k).filter((k) => !layers.includes(k));
  rows.push({
    figure: 'calibration: held-out RMSE PNN / ideal',
    value: `${cal.rmse_pnn_ticks.toFixed(3)} / ${cal.rmse_ideal_ticks.toFixed(3)} ticks (${(cal.rmse_pnn * 1e9).toFixed(2)} / ${(cal.rmse_ideal * 1e9).toFixed(2)} ns)`,
  });
  rows.push({
    figure: 'calibrated layers',
    value: `${layers.join(', ')}${skipped.length ? ` (layer ${skipped.join(', ')}: nominal curves)` : ''}`,
  });
  for (const s of stages) rows.push({ figure: `time: ${s.stage}`, value: `${s.seconds.toFixed(1)} s (CPU ${s.cpu_seconds.toFixed(1)} s)` });
  rows.push({ figure: 'time taken', value: `${seconds.toFixed(1)} s (CPU ${cpuTotal.toFixed(1)} s)` });
  rows.push({ figure: 'peak resident memory', value: `${peakRssMb()} MB` });
  return rows;
}

interface ReportInput {
  opts: DemoOptions;
  info: DeviceInfo;
  rows: { figure: string; value: string }[];
  results: DemoNetworkResult[];
  cal: CalibrateSummary;
  layers: number[];
  stages: DemoSummary['stages'];
  histories: Map<DemoDataset, EpochMetrics[]>;
  raster?: { ticks: Uint16Array[]; title: string };
  finetuneDirs: Partial<Record<DemoDataset, string>>;
}

async function writeReport(file: string, r: ReportInput): Promise<void> {
  const info = r.info;
  const h0 = info.layers[0]!.horizonTicks;
  const link = (rel: string, text: string) => `<a href="${rel}">${text}</a>`;
  const links = [
    link('bringup/report.html', 'bring-up report'),
    link('calibration/report.html', 'calibration report'),
    ...Object.keys(r.finetuneDirs).map((d) => link(`finetune-${d}/report.html`, `fine-tuning report (${d})`)),
  ];
  const sections: ReportSection[] = [
    {
      title: 'What this run did',
      blocks: [
        {
          kind: 'text',
          text:
            `Bring-up of ${info.chipId}, calibration of layers ${r.layers.join(', ')} ` +
            '(the other layers are mapped through nominal sky130 curves), twin training on the PNN model with the calibrated reversal potentials, ' +
            'deployment of every network through the nominal curves and through the calibrated ones, device test accuracy of both, and in-situ fine-tuning from the calibrated deployment.',
        },
        { kind: 'html', html: `<p>Stage reports: ${links.join(' · ')}</p>` },
        {
          kind: 'table',
          rows: r.stages.map((s) => ({
            stage: s.stage,
            seconds: Number(s.seconds.toFixed(2)),
            cpu_seconds: Number(s.cpu_seconds.toFixed(2)),
            result: s.result,
          })),
        },
      ],
    },
    {
      title: 'Accuracy',
      blocks: [
        {
          kind: 'table',
          rows: r.results.map((n) => ({
            dataset: n.dataset,
            network: n.sizes.join('-'),
            train: n.train_samples,
            test: n.test_samples,
            twin: formatPercent(n.twin_acc),
            'deployed (nominal)': deviceAccuracy(n.deployed_nominal_acc, n.deployed_nominal_no_spike, n.test_samples),
            'deployed (calibrated)': deviceAccuracy(n.deployed_acc, n.deployed_no_spike, n.test_samples),
            'fine-tuned': n.finetuned_acc === null ? '-' : formatPercent(n.finetuned_acc),
          })),
        },
      ],
    },
    {
      title: 'Twin training',
      blocks: [...r.histories.entries()].map(([d, h]) => ({
        kind: 'plot' as const,
        caption: `Learning curves of the twin (DSTD on the PNN model), ${d}.`,
        svg: lineChart({
          title: `${d}: accuracy per epoch`,
          xLabel: 'epoch',
          yLabel: 'accuracy',
          series: [
            { name: 'train', x: h.map((m) => m.epoch), y: h.map((m) => m.train_acc) },
            { name: 'test', x: h.map((m) => m.epoch), y: h.map((m) => m.test_acc ?? NaN) },
          ],
        }),
      })),
    },
  ];
  const ftBlocks: ReportSection['blocks'] = [];
  for (const [d, dir] of Object.entries(r.finetuneDirs)) {
    const svg = path.join(dir, 'learning-curve.svg');
    if (fs.existsSync(svg))
      ftBlocks.push({
        kind: 'plot',
        caption: `Device and twin test accuracy while fine-tuning ${d} on the chip (epoch 0 = the calibrated deployment).`,
        svg: fs.readFileSync(svg, 'utf8'),
      });
  }
  if (ftBlocks.length) sections.push({ title: 'In-situ fine-tuning', blocks: ftBlocks });
  if (r.raster) {
    sections.push({
      title: 'Spikes on the device',
      blocks: [
        {
          kind: 'plot',
          caption: `Spike raster: ${r.raster.title}, as the device measured it (time in layer-0 windows).`,
          svg: spikeRaster({
            title: `device spikes: ${r.raster.title}`,
            xLabel: 'time (layer-0 windows)',
            layers: r.raster.ticks.map((ticks, l) => {
              const n = info.layers[l]!.outputs;
              return {
                name: `layer ${l}`,
                times: Array.from(ticks.subarray(0, n), (t) => (t === SILENT_TICK ? Infinity : t / h0)),
                horizon: info.layers[l]!.horizonTicks / h0,
              };
            }),
          }),
        },
      ],
    });
  }
  await writeHtmlReport(file, {
    title: 'spikeloop demo',
    subtitle: `${info.chipId} on ${r.opts.device}, seed ${r.opts.seed}`,
    summary: Object.fromEntries(r.rows.map((x) => [x.figure, x.value])),
    sections,
  });
}
