/** The demo's stages on an open device: each runs one workflow with the demo's sizes and progress bars, and returns its data. */

import fs from 'node:fs';
import { profileTwinPhysics, type ChipProfile } from '../../calibration/chip-profile.ts';
import type { Dataset } from '../../models/datasets/types.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../models/network/network.ts';
import { createSolver } from '../../models/network/solver.ts';
import { trainNetwork, type EpochMetrics } from '../../models/training/trainer.ts';
import { ChipDevice, type DeviceInfo } from '../device/chip-device.ts';
import { type RunDir } from '../runs/run-dir.ts';
import { type Progress } from '../ui/progress.ts';
import { runBringup } from './bringup.ts';
import type { BringupRecord, StepId } from './bringup-record.ts';
import { writeBringupJson, writeBringupReport } from './bringup-report.ts';
import { runCalibrateWorkflow, type CalibrateSummary } from './calibrate.ts';
import { chipNeuronLevels, chipTimeBase, curvesFromProfile } from '../../calibration/chip-mapping.ts';
import { deployNetwork, evaluateOnDevice } from './deploy.ts';
import { runFinetune, type FinetuneOptions, type FinetuneSummary } from './finetune.ts';
import { presetFor } from '../../models/training/presets.ts';
import {
  DEMO_FINETUNE_VAL,
  DEMO_FIT,
  DEMO_IMAGE_BATCH,
  DEMO_IMAGE_LR,
  DEMO_PROBE_SIZES,
  workersOf,
  type DemoDataset,
  type DemoNetworkResult,
  type DemoOptions,
} from './demo-options.ts';
export async function bringup(device: ChipDevice, run: RunDir, opts: DemoOptions, bar: (t: number, l: string, u: string) => Progress): Promise<BringupRecord> {
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

export async function calibrate(
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
      fit: opts.calibrationFit ?? {
        polishMaxInputs: DEMO_FIT.polishMaxInputs,
        restShiftVolts: DEMO_FIT.restShiftVolts,
        allPairPartners: DEMO_FIT.allPairPartners,
      },
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

export async function trainTwin(
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
  // The chip's measured firing levels and delays, fixed in the twin: on SPICE die 5 the calibrated
  // deployment of a twin trained without them lost 12 of 45 Iris samples (docs/RESULTS.md).
  const neurons = chipNeuronLevels(profile, config);
  const net = initNetwork(config, { x: data.train.x, n: Math.min(256, data.train.n) }, solver, { seed: opts.seed, neurons });
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
        // Training for this chip: through the preset's conductance noise (its deployment misses by a few per cent).
        weightNoise: preset.chipWeightNoise,
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

export async function deployAndMeasure(
  device: ChipDevice,
  net: SpikingNetwork,
  data: Dataset,
  curves: ReturnType<typeof curvesFromProfile> | undefined,
  opts: DemoOptions,
  bar: (t: number, l: string, u: string) => Progress,
  which: 'nominal' | 'calibrated',
): Promise<{ acc: number; noSpike: number; clipped: number; ticks: Uint16Array[]; read: DeployedRead }> {
  const d = await deployNetwork(device, net, { curves, signal: opts.signal });
  d.realised.dispose();
  const b = bar(data.test.n, `device (${which})`, 'samples');
  const e = await evaluateOnDevice(device, net, data.test.x, data.test.y, data.test.n, { signal: opts.signal, onProgress: (done) => b.update(done) });
  b.finish();
  return {
    acc: e.accuracy,
    noSpike: e.noSpike,
    clipped: d.layers.reduce((s, l) => s + l.clipped, 0),
    ticks: e.sampleTicks,
    read: { codes: d.layers.map((l) => l.codes), labels: data.test.y, predictions: e.predictions },
  };
}

/** The deploy stage's read of the test part with the codes it uploaded: fine-tuning's epoch 0 when its deployment is the same. */
export type DeployedRead = NonNullable<FinetuneOptions['deployedRead']>;

export async function finetune(
  r: DemoNetworkResult,
  out: string,
  profile: string,
  opts: DemoOptions,
  deployed?: DeployedRead,
  trainPartSize?: number,
): Promise<FinetuneSummary> {
  const spec = r.dataset;
  // Images outside the twin's training subset validate; when the twin took nearly all of them, the validation
  // images are carved from the fine-tuning's own (so its batches still see finetuneTrain images).
  const ftTrain = opts.fashion ? (opts.fashion.finetuneTrain ?? opts.fashion.train) : 0;
  const unseenRoom = opts.fashion !== null && trainPartSize !== undefined && trainPartSize - opts.fashion.train - ftTrain >= DEMO_FINETUNE_VAL;
  return runFinetune({
    // The calibrated deployment's test read from the deploy stage: kept unchanged, the fine-tuned figure is that same read.
    ...(deployed ? { deployedRead: deployed } : {}),
    device: opts.device,
    out,
    model: r.network,
    profile,
    dataset: spec,
    epochs: opts.finetuneEpochs,
    seed: opts.seed,
    // The twin's test subset (same seed, same size: the test part does not depend on the training limit); a
    // stratified subset of the training part, smaller than the twin's when asked; and validation images, which
    // choose the state kept, from the training part outside the twin's subset (the network file names it).
    ...(spec === 'fashion-mnist' && opts.fashion
      ? { limitTrain: ftTrain + (unseenRoom ? 0 : DEMO_FINETUNE_VAL), val: DEMO_FINETUNE_VAL, limitTest: opts.fashion.test }
      : {}),
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
