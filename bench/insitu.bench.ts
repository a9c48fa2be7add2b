/**
 * In-situ fine-tuning on the behavioural mock chip (784-256-128-10, Fashion-MNIST): what the
 * chip in the loop buys over deploying a twin, and whether pipelining really overlaps.
 *
 * 1. A chip profile: from `host/workflows/calibrate.ts` when that module is present, otherwise
 *    built from the behavioural chip's hidden truth (an oracle only a simulation has);
 *    `profile_source` says which.
 * 2. Two twins on the same Fashion-MNIST subset (`train_samples`, `twin_epochs`): the PNN with the
 *    profile's reversal potentials, and the ideal (current-source) model.
 * 3. deployed_acc: the PNN twin mapped through the profile's curves, measured on the device;
 *    ideal_deployed_acc: the ideal twin mapped through the nominal curves (no calibration).
 * 4. finetuned_acc: `spikeloop finetune` from the deployed PNN twin, `epochs` epochs, on the same
 *    die with every RUN slowed by about the host's time per batch (`run_delay_ms`: 1.3 x the host's
 *    time measured beforehand, the mock board's `runDelayMs`), so that device and host take about as
 *    long and overlap is measurable.
 *
 * Timing, all from the pipelined run: host_ms_per_batch (gradient, update, mapping, upload issue),
 * device_ms_per_batch (RUN issue to reply, counted only when the host was already waiting for it,
 * so it is exact; it includes the board applying the codes uploaded before the RUN) and
 * wall_ms_per_batch. overlap_efficiency = max(host, device) / wall: 1 when the slower side never
 * waits for the other; a loop without overlap gets max / (host + device) (sequential_ms_per_batch).
 * hidden_host_fraction = (host + device - wall) / host: how much of the host's work the pipeline
 * hid behind the device's (the overlap itself, whichever side is slower). device_ms_per_run_idle is a bare RUN of a batch (no upload before it) with the
 * host idle. The in-process mock computes its spike times on the host's thread, so only the added
 * delay can overlap with the host's work.
 *
 * BENCH_PROFILE=truth skips the calibration and uses the hidden truth.
 * Sizes: BENCH_TRAIN (default 3000) training samples, BENCH_TEST (1000) test samples,
 * BENCH_TWIN_EPOCHS (10), BENCH_FT_EPOCHS (4), BENCH_FT_LR (0.003), BENCH_CHIP_SEED (7). Prints ONE JSON line.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { profileTwinPhysics, saveChipProfile, type ChipProfile } from '../calibration/chip-profile.ts';
import { truthChipProfile } from '../calibration/truth-score.ts';
import { ChipDevice } from '../host/device/chip-device.ts';
import { ChipMapping, chipNeuronLevels, curvesFromProfile, deviceHorizons } from '../calibration/chip-mapping.ts';
import { runDeployWorkflow } from '../host/workflows/deploy.ts';
import { runFinetune } from '../host/workflows/finetune.ts';
import { readMetrics } from '../host/runs/metrics-log.ts';
import type { BehavioralChip } from '../models/chips/behavioral-chip.ts';
import { createChip } from '../models/chips/index.ts';
import { gatherLabels, gatherRows } from '../models/datasets/batching.ts';
import { loadDataset } from '../models/datasets/load.ts';
import type { Dataset } from '../models/datasets/types.ts';
import { initNetwork } from '../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../models/network/serialize.ts';
import { createSolver } from '../models/network/solver.ts';
import { adamStep, inLoopGradients, newAdamState } from '../models/training/in-loop.ts';
import { resolveLoss, trainNetwork } from '../models/training/trainer.ts';
import { initBackend } from '../models/tf/backend.ts';

const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const TRAIN = env('BENCH_TRAIN', 3000);
const TEST = env('BENCH_TEST', 1000);
const TWIN_EPOCHS = env('BENCH_TWIN_EPOCHS', 10);
const FT_EPOCHS = env('BENCH_FT_EPOCHS', 4);
const CHIP_SEED = env('BENCH_CHIP_SEED', 7);
const DATA_SEED = 1;
const GEOMETRY = '784-256-128-10';
const FT_BATCH = 40;
const FT_LR = env('BENCH_FT_LR', 0.003);
const BINS = 16;
// One RUN frame per fine-tuning batch (a frame holds up to 41 samples of this geometry at 65535):
// the in-process board then starts on the whole batch while the host works.
const BASE_URI = `mock:behavioral?seed=${CHIP_SEED}&geometry=${GEOMETRY}&maxPayload=65535`;

const log = (s: string) => process.stderr.write(s + '\n');
const quiet = { print: log, warn: log };

/** The profile calibration would produce, read off the simulated die (its hidden truth). */
async function truthProfile(): Promise<ChipProfile> {
  const chip = (await createChip('behavioral', { seed: String(CHIP_SEED), geometry: GEOMETRY })) as BehavioralChip;
  try {
    return truthChipProfile(chip);
  } finally {
    await chip.close();
  }
}

/**
 * The real calibration (host/workflows/calibrate.ts, `spikeloop calibrate`) when that module is
 * present: its profile's path; undefined otherwise. Loaded by path so that this bench runs (on the
 * hidden truth) in a tree without it.
 */
async function calibrated(dir: string): Promise<string | undefined> {
  const file = fileURLToPath(new URL('../host/workflows/calibrate.ts', import.meta.url));
  if (process.env.BENCH_PROFILE === 'truth' || !fs.existsSync(file)) return undefined;
  const mod = (await import(pathToFileURL(file).href)) as {
    runCalibrateWorkflow?: (
      device: ChipDevice,
      o: { out: string; seed?: number; deviceUri?: string; print?: (l: string) => void },
    ) => Promise<{ profile: string }>;
  };
  if (typeof mod.runCalibrateWorkflow !== 'function') return undefined;
  const device = await ChipDevice.open(BASE_URI);
  try {
    const t = performance.now();
    const r = await mod.runCalibrateWorkflow(device, { out: path.join(dir, 'calibration'), seed: 1, deviceUri: BASE_URI, print: log });
    log(`calibration: ${((performance.now() - t) / 1000).toFixed(0)} s`);
    return r.profile;
  } finally {
    await device.close();
  }
}

async function trainTwin(
  data: Dataset,
  info: ChipDevice['info'],
  model: 'pnn' | 'ideal',
  physics: { ePlus: number; eMinus: number },
  profile?: ChipProfile,
): Promise<{ net: SpikingNetwork; acc: number }> {
  const config = defaultConfig([784, 256, 128, 10], {
    model,
    ePlus: physics.ePlus,
    eMinus: physics.eMinus,
    inputWindow: 1,
    horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2),
    shiftGrids: false,
  });
  const solver = createSolver('dstd', { bins: BINS });
  // The PNN twin fires at the chip's measured levels, as `spikeloop train --profile` trains it.
  const neurons = profile && model === 'pnn' ? chipNeuronLevels(profile, config) : undefined;
  const net = initNetwork(config, { x: data.train.x, n: Math.min(256, data.train.n) }, solver, { seed: DATA_SEED, neurons });
  const t = performance.now();
  const h = await trainNetwork(net, data, {
    epochs: TWIN_EPOCHS,
    batchSize: 64,
    lr: 0.01,
    schedule: 'cosine',
    seed: DATA_SEED,
    solver,
    loss: { tauSoft: 0.1, windowWeight: 0.1, deadWeight: 1 },
    onEpoch: (m) => {
      log(`twin ${model} epoch ${m.epoch}: train ${m.train_acc.toFixed(3)}, test ${m.test_acc?.toFixed(3)}`);
    },
  });
  log(`twin ${model}: ${((performance.now() - t) / 1000).toFixed(0)} s`);
  return { net, acc: h.at(-1)?.test_acc ?? 0 };
}

/** Host milliseconds of one fine-tuning batch (gradient, Adam, mapping), on a copy of the network. */
async function hostMsPerBatch(file: string, data: Dataset, info: ChipDevice['info'], profile: ChipProfile): Promise<number> {
  const { net } = await loadNetwork(file);
  const mapping = new ChipMapping(net, info, curvesFromProfile(profile, info));
  mapping.codes();
  const solver = createSolver('dstd', { bins: BINS });
  const adam = newAdamState(net);
  const times: number[] = [];
  for (let k = 0; k < 4; k++) {
    const idx = Uint32Array.from({ length: FT_BATCH }, (_, i) => k * FT_BATCH + i);
    const x = gatherRows(data.train.x, 784, idx);
    const y = gatherLabels(data.train.y, idx);
    const measured = net.layers.map((l) => new Float32Array(FT_BATCH * l.nOut).fill(Infinity));
    const t = performance.now();
    const g = inLoopGradients(net, x, y, measured, solver, resolveLoss({ windowWeight: 0.1 }));
    adamStep(net, adam, g.grads, { lr: FT_LR });
    mapping.codes();
    if (k > 0) times.push(performance.now() - t);
  }
  net.dispose();
  return times.reduce((a, b) => a + b, 0) / times.length;
}

/** RUN round trip of one batch with the host idle. */
async function deviceMsPerBatch(uri: string, net: SpikingNetwork, data: Dataset): Promise<number> {
  const dev = await ChipDevice.open(uri);
  try {
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      const idx = Uint32Array.from({ length: FT_BATCH }, (_, i) => k * FT_BATCH + i);
      const ticks = new ChipMapping(net, dev.info).encodeInputs(gatherRows(data.train.x, 784, idx), FT_BATCH);
      const t = performance.now();
      await dev.run(ticks, FT_BATCH);
      times.push(performance.now() - t);
    }
    return times.reduce((a, b) => a + b, 0) / times.length;
  } finally {
    await dev.close();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const backend = await initBackend();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeloop-insitu-'));
  try {
    const data = await loadDataset('fashion-mnist', { limitTrain: TRAIN, limitTest: TEST, seed: DATA_SEED });
    const probe = await ChipDevice.open(BASE_URI);
    const info = probe.info;
    await probe.close();

    let profileSource: 'calibrate' | 'hidden-truth' = 'calibrate';
    let profileFile = await calibrated(dir).catch((e: Error) => {
      log(`calibration failed (${e.message}); using the hidden truth`);
      return undefined;
    });
    if (!profileFile) {
      profileSource = 'hidden-truth';
      profileFile = path.join(dir, 'profile.slp');
      await saveChipProfile(profileFile, await truthProfile());
    }
    const { loadChipProfile } = await import('../calibration/chip-profile.ts');
    const profile = await loadChipProfile(profileFile, { chipId: info.chipId });
    const physics = profileTwinPhysics(profile);

    const pnn = await trainTwin(data, info, 'pnn', physics, profile);
    const pnnFile = path.join(dir, 'pnn.bin');
    await saveNetwork(pnnFile, pnn.net, { dataset: data.name, seed: DATA_SEED });
    const ideal = await trainTwin(data, info, 'ideal', physics);
    const idealFile = path.join(dir, 'ideal.bin');
    await saveNetwork(idealFile, ideal.net, { dataset: data.name, seed: DATA_SEED });
    ideal.net.dispose();

    const deployArgs = { device: BASE_URI, dataset: 'fashion-mnist', limitTest: TEST, seed: DATA_SEED, ...quiet };
    const deployed = await runDeployWorkflow({ ...deployArgs, model: pnnFile, profile: profileFile });
    const idealDeployed = await runDeployWorkflow({ ...deployArgs, model: idealFile });

    const hostMs = await hostMsPerBatch(pnnFile, data, info, profile);
    // A little above the host's time, so that the device is the slower side on (nearly) every batch and
    // its time is measured exactly on each.
    const runDelayMs = Math.max(1, Math.round(1.3 * hostMs));
    const slowUri = `${BASE_URI}&runDelayMs=${runDelayMs}`;
    const deviceMs = await deviceMsPerBatch(slowUri, pnn.net, data);
    pnn.net.dispose();

    const ft = await runFinetune({
      device: slowUri,
      out: path.join(dir, 'finetune'),
      model: pnnFile,
      profile: profileFile,
      dataset: 'fashion-mnist',
      limitTrain: TRAIN,
      limitTest: TEST,
      seed: DATA_SEED,
      epochs: FT_EPOCHS,
      batchSize: FT_BATCH,
      lr: FT_LR,
      bins: BINS,
      ...quiet,
    });
    const wall = ft.wall_ms_per_batch;
    // The pipeline's own device time (RUN issue to reply, counted when the host was already waiting,
    // so it includes applying the uploaded codes); the idle probe when the host was always the slower.
    const device = ft.device_ms_per_batch ?? deviceMs;
    const result = {
      twin_acc: pnn.acc,
      deployed_acc: deployed.deployed_acc,
      ideal_deployed_acc: idealDeployed.deployed_acc,
      finetuned_acc: ft.finetuned_acc,
      epochs: ft.epochs,
      host_ms_per_batch: Number(ft.host_ms_per_batch.toFixed(1)),
      device_ms_per_batch: Number(device.toFixed(1)),
      wall_ms_per_batch: Number(wall.toFixed(1)),
      overlap_efficiency: Number((Math.max(ft.host_ms_per_batch, device) / wall).toFixed(3)),
      sequential_ms_per_batch: Number((ft.host_ms_per_batch + device).toFixed(1)),
      // Of the host's time per batch, the part hidden behind the device's (1 = all of it).
      hidden_host_fraction: Number(((ft.host_ms_per_batch + device - wall) / ft.host_ms_per_batch).toFixed(3)),
      device_ms_per_run_idle: Number(deviceMs.toFixed(1)),
      run_delay_ms: runDelayMs,
      // Device test accuracy after each fine-tuning epoch (epoch 0 = deployed).
      finetune_curve: readMetrics(path.join(ft.out, 'metrics.jsonl')).records.map((r) => r.device_acc),
      finetune_twin_acc: ft.twin_acc,
      realised_twin_acc: deployed.realised_twin_acc,
      ideal_twin_acc: ideal.acc,
      clipped_synapses: deployed.clipped_synapses,
      ideal_clipped_synapses: idealDeployed.clipped_synapses,
      changed_codes_per_batch: Math.round(ft.changed_codes_per_batch),
      profile_source: profileSource,
      train_samples: data.train.n,
      test_samples: data.test.n,
      twin_epochs: TWIN_EPOCHS,
      finetune_batch: FT_BATCH,
      finetune_lr: FT_LR,
      device: slowUri,
      backend,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`insitu bench failed: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
