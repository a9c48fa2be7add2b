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

import { TRAINING_SUBSET_KEY, trainingSubset } from '../../models/datasets/training-subset.ts';
import fs from 'node:fs';
import { loadChipProfile } from '../../calibration/chip-profile.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import type { Dataset } from '../../models/datasets/types.ts';
import { type SpikingNetwork } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { type EpochMetrics } from '../../models/training/trainer.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { describeChipPhysics } from '../../models/chips/index.ts';
import { ChipDevice, type DeviceInfo } from '../device/chip-device.ts';
import { parseDeviceUri } from '../device/device-uri.ts';
import { openRunDir } from '../runs/run-dir.ts';
import { createProgress, type Progress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { PROFILE_FILE } from './calibrate.ts';
import { curvesFromProfile } from '../../calibration/chip-mapping.ts';
import { displayPath, formatPercent } from '../ui/format.ts';
import {
  defaultCalibrationLayers,
  defaultFinetune,
  label,
  peakRssMb,
  settingsOf,
  workersOf,
  type DemoDataset,
  type DemoNetworkResult,
  type DemoOptions,
  type DemoSummary,
} from './demo-options.ts';
import { bringup, calibrate, deployAndMeasure, finetune, trainTwin, type DeployedRead } from './demo-stages.ts';
import { isolatedWeakSynapses } from './bringup-tolerance.ts';
import { deviceAccuracy, tableRows, writeReport } from './demo-report.ts';

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
    const address = parseDeviceUri(opts.device);
    const chipPhysics = address.scheme === 'mock' ? describeChipPhysics(address.chip, address.chipOptions) : 'silicon';
    opts.print(`chip physics: ${chipPhysics}`);
    run.update({ device: { uri: opts.device, chipId: info.chipId, geometry } });

    // 1. Bring-up: a chip that fails it is not worth calibrating.
    const rec = await stage(
      'bring-up',
      () => bringup(device!, run, opts, bar),
      (r) => `${info.chipId} (${geometry}): ${r.checks.filter((c) => c.status === 'pass').length}/${r.checks.length} checks passed`,
    );
    run.metrics.append({ stage: 'bringup', ok: rec.ok, seconds: rec.seconds, dead_neurons: rec.dead_neurons.length, bad_synapses: rec.bad_synapses.length });
    const tolerated = !rec.ok && isolatedWeakSynapses(rec, info.layers);
    if (tolerated)
      (opts.warn ?? opts.print)(
        `note: bring-up found ${rec.bad_synapses.length} weak synapse(s) and nothing else (${rec.bad_synapses.join(', ')}) that its shape re-check could not tell from the tail of the transistors' mismatch; calibration fits each transistor's own conductance, so the demo goes on`,
      );
    if (!rec.ok && !tolerated) {
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
    const datasets: { name: DemoDataset; data: Dataset; epochs: number; limitTrain?: number }[] = [];
    if (opts.irisEpochs > 0) datasets.push({ name: 'iris', data: await loadDataset('iris', { seed: opts.seed }), epochs: opts.irisEpochs });
    if (opts.fashion) {
      const f = opts.fashion;
      datasets.push({
        name: 'fashion-mnist',
        data: await loadDataset('fashion-mnist', { limitTrain: f.train, limitTest: f.test, seed: opts.seed }),
        epochs: f.epochs,
        limitTrain: f.train,
      });
    }
    const results: DemoNetworkResult[] = [];
    const trainPartSizes = new Map(datasets.map((d) => [d.name, d.data.trainPartSize]));
    const histories = new Map<DemoDataset, EpochMetrics[]>();
    let raster: { ticks: Uint16Array[]; title: string } | undefined;
    const deployedReads = new Map<DemoDataset, DeployedRead>();
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
      await saveNetwork(file, trained.net, {
        dataset: d.name,
        seed: opts.seed,
        [TRAINING_SUBSET_KEY]: trainingSubset(d.name, { seed: opts.seed, limitTrain: d.limitTrain }),
      });
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
      deployedReads.set(d.name, deployed.calibrated.read);
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
        () => finetune(r, out, profilePath, opts, deployedReads.get(name), trainPartSizes.get(name)),
        (s) =>
          `device test accuracy ${formatPercent(s.deployed_acc)} -> ${formatPercent(s.finetuned_acc)} in ${s.epochs} epochs (${s.batches} batches, ${s.changed_codes_per_batch.toFixed(0)} codes changed per batch)${s.kept_state === 'deployment' ? '; kept the deployment itself: no epoch beat it significantly on validation' : s.kept_state === 'epoch' ? `; kept epoch ${s.kept_epoch}` : ''}`,
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
      chip_physics: chipPhysics,
      seed: opts.seed,
      backend,
      geometry,
      bringup_ok: rec.ok,
      bringup_weak_tolerated: tolerated ? rec.bad_synapses : [],
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
