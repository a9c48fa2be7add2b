/**
 * `spikeloop train`: train a spiking network in the twin (or a ReLU network mapped onto it) and
 * leave everything in one run folder:
 *
 *   record.json        what ran, with which settings, and the final figures
 *   metrics.jsonl      one line per epoch (train and test metrics)
 *   network.bin        the trained network (models/network/serialize.ts; reload with loadNetwork)
 *   learning-curve.svg accuracy per epoch, loss-curve.svg the loss terms
 *   report.html        the same in one page
 *
 * With `cv: K`, stratified K-fold cross-validation instead: train and test parts pooled (or, with
 * `cvPart: 'train'`, the training part only, for choosing settings without seeing the test part),
 * per fold a fresh network trained on the other folds with the same settings and tested on the
 * held-out one; cv.jsonl (one line per fold), fold-<k>/network.bin, and test_acc = pooled CV accuracy.
 *
 * Settings a flag does not give come from a per-data-set preset (PRESETS) and are recorded.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { mapAnnToSnn, searchCurrentScale, type ReversalPair } from '../../models/ann/mapping.ts';
import { ReluNet, trainReluNet } from '../../models/ann/relu-net.ts';
import { NOMINAL_CIRCUIT } from '../../models/chips/sky130-nominal.ts';
import {
  classCounts,
  CrossValidationError,
  describePool,
  foldCountProblem,
  foldParts,
  loadPooledDataset,
  stratifiedFolds,
  type CvPart,
  type PooledDataset,
} from '../../models/datasets/cross-validation.ts';
import { loadDataset, parseDatasetSpec } from '../../models/datasets/load.ts';
import type { Dataset, DatasetPart } from '../../models/datasets/types.ts';
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import type { NeuronModel } from '../../models/neuron/layer.ts';
import { reversalPotentials } from '../../models/neuron/units.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig, NOMINAL_REVERSAL, type NetworkConfig, type SpikingNetwork } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { createSolver, type SolverName, type SpikeSolver } from '../../models/network/solver.ts';
import { addConfusion, confusionMatrix, type ConfusionMatrix } from '../../models/training/confusion.ts';
import { evaluateNetwork } from '../../models/training/evaluate.ts';
import type { LossConfig } from '../../models/training/losses.ts';
import { trainNetwork, type EpochMetrics, type LrSchedule } from '../../models/training/trainer.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { registerGradients } from '../../models/tf/gradients.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { CONFUSION_FILE, writeConfusion } from './confusion-report.ts';
import { lineChart } from '../report/svg-plot.ts';
import { checkOutWritable, MetricsLog, openRunDir, type RunDir } from '../runs/run-dir.ts';
import { loadChipProfile, type ChipProfile } from '../../calibration/chip-profile.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { chipTimeBase } from './deploy.ts';
import { checkInputFile, PROFILE_FILE_FIX } from './input-file.ts';
import { createProgress, type ProgressStream } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { displayPath, formatNumber, formatPercent } from '../ui/format.ts';

export interface TrainWorkflowOptions {
  dataset: string;
  model: NeuronModel;
  solver: SolverName;
  /** Hidden layer widths; preset when absent. */
  layers?: number[];
  bins: number;
  eulerSteps?: number;
  epochs?: number;
  seed: number;
  out: string;
  lr?: number;
  batchSize?: number;
  limitTrain?: number;
  limitTest?: number;
  fromAnn: boolean;
  /** Stratified K-fold cross-validation (2..20) over the pooled train and test parts, SNN flow only. */
  cv?: number;
  /** What `cv` pools: every sample (default) or the training part only (the test part unseen). */
  cvPart?: CvPart;
  tauSoft?: number;
  /**
   * A reference input spiking at this time in every sample (NetworkConfig.biasSpike): the network
   * takes one input more than the data has. null = none; absent = the preset's choice.
   */
  referenceSpike?: number | null;
  /**
   * The data feature the reference spike replaces (NetworkConfig.biasReplaces), keeping the data's
   * width; null = appended as an input more; absent = the preset's choice.
   */
  referenceReplaces?: number | null;
  /** Loss: hidden neurons firing for at most this fraction of a batch count as dead. */
  deadRate?: number;
  /** Loss: weight of the window term. */
  windowWeight?: number;
  /** Loss: silent outputs enter the cross-entropy after the horizon, this many windows per threshold short (LossConfig.silentScale; 0 = clamped). */
  silentScale?: number;
  /** Loss: the membrane the dead-neuron term pushes (LossConfig.deadMembrane): the ideal-limit rest potential or the model's own. */
  deadMembrane?: 'ideal' | 'model';
  /** Loss: what the dead-neuron term is a mean over (LossConfig.deadMean); absent = the preset's. */
  deadMean?: 'selected' | 'batch';
  schedule?: LrSchedule;
  /** Decay of the moving average of the weights (TrainOptions.averageDecay); 0 = off; absent = the preset's. */
  averageDecay?: number;
  /** Gaussian noise on the training batches' scaled features (TrainOptions.inputNoise); 0 = off; absent = the preset's. */
  inputNoise?: number;
  /** Decoupled weight decay (TrainOptions.weightDecay); 0 = off; absent = the preset's. */
  weightDecay?: number;
  /** Worker threads for the training steps (TrainOptions.workers); absent = 1. */
  workers?: number;
  /**
   * Train for this chip (chipTarget): its hidden widths, its layer windows as the twin's horizons
   * (chipTimeBase) and, from a profile, its calibrated reversal potentials.
   */
  chip?: ChipTarget;
  /** The command line, for the run record. */
  args?: string[];
  signal?: AbortSignal;
  print(line: string): void;
  /** Where the progress bar goes (default stderr). */
  progress?: ProgressStream;
}

/** Settings a run takes when no flag gives them. */
export interface Preset {
  layers: number[];
  epochs: number;
  batchSize: number;
  lr: number;
  schedule: LrSchedule;
  /** Moving average of the weights (TrainOptions.averageDecay); 0 = off. */
  averageDecay: number;
  /** Noise on the training inputs (TrainOptions.inputNoise); 0 = off. */
  inputNoise: number;
  /** Decoupled weight decay (TrainOptions.weightDecay); 0 = off. */
  weightDecay: number;
  loss: Partial<LossConfig>;
  /** A reference input spiking at this time in every sample (NetworkConfig.biasSpike); absent = none. */
  biasSpike?: number;
  /** The data feature the reference spike takes the place of (NetworkConfig.biasReplaces); absent = appended. */
  biasReplaces?: number;
  ann: { epochs: number; batchSize: number; lr: number };
}

export const PRESETS: Record<'tabular' | 'image', Preset> = {
  // Iris-sized problems: a small hidden layer, many short epochs. Settings are compared by 5-fold
  // cross-validation on Iris' training part (`--cv 5 --cv-part train`) and judged on the test part
  // only afterwards; docs/RESULTS.md lists what was measured (widths, tauSoft, input codings, the
  // window and dead-neuron terms, input noise, bins, weight decay) and the fixed-split figures.
  tabular: {
    layers: [32],
    epochs: 300,
    batchSize: 8,
    lr: 0.01,
    schedule: 'cosine',
    averageDecay: 0,
    inputNoise: 0.05,
    weightDecay: 0,
    loss: { tauSoft: 0.1, windowWeight: 0.1, deadWeight: 1 },
    // With 4 features the network must see the mean input time, which a reference spike gives
    // (models/network/network.ts, biasSpike): 80 % -> 95.6 % test accuracy on Iris.
    biasSpike: 0,
    ann: { epochs: 200, batchSize: 16, lr: 0.01 },
  },
  // MNIST-like images: the 784-256-128-10 reference network. The network underfits, so batches of
  // 64 (it learns per update, at the same samples/s as 128), a softer softmax (tauSoft 0.2) and the
  // dead-neuron term as a mean over the batch (deadMean 1: over the selected pairs one silent label
  // neuron is pushed as hard as the whole cross-entropy pulls, and the second hidden layer stays
  // mostly silent). docs/RESULTS.md has the measurements behind each choice.
  image: {
    layers: [256, 128],
    epochs: 20,
    batchSize: 64,
    lr: 0.01,
    schedule: 'cosine',
    averageDecay: 0,
    inputNoise: 0,
    weightDecay: 0,
    loss: { tauSoft: 0.2, windowWeight: 0.1, deadWeight: 1, deadMean: 1 },
    ann: { epochs: 10, batchSize: 128, lr: 0.002 },
  },
};

export function presetFor(dataset: string): Preset {
  return parseDatasetSpec(dataset).kind === 'iris' ? PRESETS.tabular : PRESETS.image;
}

export interface TrainSummary {
  test_acc: number;
  train_acc: number;
  epochs: number;
  samples_per_s: number;
  backend: string;
  [key: string]: unknown;
}

/** Operating points a chip can be set to (precharge and threshold voltages), as reversal pairs. */
export function reversalCandidates(): (ReversalPair & { vRest: number; vThreshold: number })[] {
  const out: (ReversalPair & { vRest: number; vThreshold: number })[] = [];
  for (const vRest of [1.2, 1.3, 1.4, 1.5]) {
    for (const vThreshold of [0.8, 0.9, 1.0]) {
      if (vRest - vThreshold < 0.2) continue;
      const r = reversalPotentials({ ...NOMINAL_CIRCUIT, vRest, vThreshold });
      out.push({ ...r, vRest, vThreshold });
    }
  }
  return out;
}

/** A chip to train for: what a profile records or a device announces in HELLO. */
export interface ChipTarget {
  /** Where the chip was read, for messages: "profile runs/cal/profile.slp" or "device mock:...". */
  source: string;
  chipId: string;
  layers: { inputs: number; outputs: number; horizonTicks: number }[];
  /** Calibrated reversal potentials (a profile's); the nominal ones when absent. */
  ePlus?: number;
  eMinus?: number;
}

/** A network that cannot be trained for the chip as asked: what differs and the flag that fixes it. */
export class ChipFitError extends Error {
  override name = 'ChipFitError';
}

/**
 * The chip `--profile FILE` records or `--device URI` announces (HELLO only: the device is opened,
 * read and closed). Throws with the flag named when the file or the device cannot be read.
 */
export async function chipTarget(o: { profile?: string; device?: string }): Promise<ChipTarget | undefined> {
  if (o.profile !== undefined) {
    checkInputFile('--profile', o.profile, PROFILE_FILE_FIX);
    let p: ChipProfile;
    try {
      p = await loadChipProfile(o.profile);
    } catch (err) {
      throw new ChipFitError(`--profile ${o.profile}: ${(err as Error).message.replace(`${o.profile}: `, '')}; ${PROFILE_FILE_FIX}`);
    }
    return {
      source: `profile ${o.profile}`,
      chipId: p.chipId,
      layers: p.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, horizonTicks: l.horizonTicks })),
      ePlus: p.global.ePlus,
      eMinus: p.global.eMinus,
    };
  }
  if (o.device !== undefined) {
    const device = await ChipDevice.open(o.device);
    try {
      const info = device.info;
      return {
        source: `device ${o.device}`,
        chipId: info.chipId,
        layers: info.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, horizonTicks: l.horizonTicks })),
      };
    } finally {
      await device.close();
    }
  }
  return undefined;
}

/** The layer sizes a run trains: inputs (the data's, plus an appended reference input), hidden widths, classes. */
function networkSizes(
  opts: TrainWorkflowOptions,
  preset: Preset,
  features: number,
  classes: number,
): { sizes: number[]; biasSpike?: number; biasReplaces?: number } {
  const hidden = opts.chip ? opts.chip.layers.slice(0, -1).map((l) => l.outputs) : (opts.layers ?? preset.layers);
  const biasSpike = opts.referenceSpike === null ? undefined : (opts.referenceSpike ?? preset.biasSpike);
  const biasReplaces = biasSpike === undefined || opts.referenceReplaces === null ? undefined : (opts.referenceReplaces ?? preset.biasReplaces);
  if (biasReplaces !== undefined && !(biasReplaces < features)) {
    throw new RangeError(
      `--reference-replaces ${biasReplaces}: the data have features 0..${features - 1}; name one of them, or none to append the reference input`,
    );
  }
  const sizes = [features + (biasSpike === undefined || biasReplaces !== undefined ? 0 : 1), ...hidden, classes];
  return { sizes, ...(biasSpike !== undefined ? { biasSpike } : {}), ...(biasReplaces !== undefined ? { biasReplaces } : {}) };
}

/** Why a network of the run's settings cannot be trained for the chip (flag and fix named), or undefined. */
export function chipFitProblem(opts: TrainWorkflowOptions, preset: Preset, features: number, classes: number, dataName: string): string | undefined {
  const chip = opts.chip;
  if (!chip) return undefined;
  const hidden = chip.layers.slice(0, -1).map((l) => l.outputs);
  const of = `the chip of ${chip.source} (${chip.chipId}, ${[chip.layers[0]!.inputs, ...chip.layers.map((l) => l.outputs)].join('-')})`;
  if (opts.layers && opts.layers.join(',') !== hidden.join(',')) {
    return `--layers ${opts.layers.join(',')} asks for hidden layers ${opts.layers.join('-')}, but ${of} has ${hidden.length ? hidden.join('-') : 'none'}: a network for a chip takes the chip's widths, so drop --layers`;
  }
  if (hidden.length === 0) return `${of} has a single layer; a network trained here needs at least one hidden layer: train for a chip with two or more layers`;
  const { sizes, biasSpike, biasReplaces } = networkSizes(opts, preset, features, classes);
  const inputs = chip.layers[0]!.inputs;
  if (sizes[0]! > inputs) {
    const ref = biasSpike !== undefined && biasReplaces === undefined;
    return `${dataName} needs ${sizes[0]} inputs (${features} features${ref ? ' and the reference input' : ''}), but ${of} has ${inputs}: ${ref && features <= inputs ? 'pass --reference-replaces K to put the reference spike in place of feature K, or --reference-spike none' : 'train for a chip with more inputs'}`;
  }
  const outputs = chip.layers.at(-1)!.outputs;
  if (classes > outputs)
    return `${dataName} has ${classes} classes, but ${of} has ${outputs} output neurons: train for a chip with at least ${classes} outputs`;
  return undefined;
}

export async function runTrainWorkflow(opts: TrainWorkflowOptions): Promise<TrainSummary> {
  const started = performance.now();
  const preset = presetFor(opts.dataset);
  if (opts.chip && opts.fromAnn)
    throw new ChipFitError(
      "--from-ann maps a ReLU network onto windows of its own, not a chip's: drop --from-ann to train for the chip, or drop --profile / --device",
    );
  // Everything that can be refused is checked before the run folder exists.
  checkOutWritable(opts.out);
  const cv = opts.cv === undefined ? undefined : await prepareCv(opts, opts.cv);
  const data = cv ? undefined : await loadDataset(opts.dataset, { limitTrain: opts.limitTrain, limitTest: opts.limitTest, seed: opts.seed });
  const shape = cv ? cv.pool : data!;
  const misfit = chipFitProblem(opts, preset, shape.features, shape.classes, shape.name);
  if (misfit) throw new ChipFitError(misfit);
  // Throws on a --reference-replaces the data do not have.
  if (!opts.fromAnn) networkSizes(opts, preset, shape.features, shape.classes);
  const run = openRunDir({
    out: opts.out,
    info: { command: 'train', args: opts.args ?? [], ...(opts.chip ? { device: { chip_id: opts.chip.chipId, from: opts.chip.source } } : {}) },
  });
  try {
    const backend = await initBackend();
    registerGradients();
    run.update({ versions: { tfjs_backend: backend } });
    let summary: TrainSummary;
    const forChip = opts.chip ? `; for ${opts.chip.chipId} (${opts.chip.source})` : '';
    if (cv) {
      opts.print(
        `spikeloop train: ${cv.pool.name}, stratified ${cv.k}-fold cross-validation over ${describePool(cv.pool)}, folds from seed ${opts.seed}${forChip}; tfjs backend ${backend}; run folder ${displayPath(run.path)}`,
      );
      summary = await cvFlow({ ...opts, cv: cv.k }, preset, cv.pool, cv.folds, run, backend);
    } else {
      opts.print(
        `spikeloop train: ${data!.name} (${data!.train.n} train / ${data!.test.n} test, ${data!.split})${forChip}; tfjs backend ${backend}; run folder ${displayPath(run.path)}`,
      );
      summary = opts.fromAnn ? await annFlow(opts, preset, data!, run, backend) : await snnFlow(opts, preset, data!, run, backend);
    }
    if (opts.chip) summary.chip = { chip_id: opts.chip.chipId, from: opts.chip.source };
    summary.seconds = (performance.now() - started) / 1000;
    run.finish(summary);
    return summary;
  } catch (err) {
    throw run.stopped(err, opts.signal, `training cannot be continued: run it again (with a new --out, or delete ${opts.out})`);
  }
}

/** Why `--cv K` cannot go with the other flags (the CLI's flag check and the workflow both ask), or undefined. */
export function cvFlagConflict(o: { cv?: number; cvPart?: CvPart; fromAnn?: boolean; limitTrain?: number; limitTest?: number }): string | undefined {
  if (o.cv === undefined) return o.cvPart === undefined ? undefined : '--cv-part chooses what --cv pools; add --cv K or drop --cv-part';
  if (o.fromAnn) return '--cv works with the SNN flow only; drop --from-ann';
  if (o.limitTrain !== undefined || o.limitTest !== undefined)
    return `--cv pools ${o.cvPart === 'train' ? 'the whole training part' : 'the whole data set'} into ${o.cv} folds; drop --limit-train / --limit-test`;
  return undefined;
}

/** Checks `--cv K` against the flags and the data (before any run folder exists) and assigns the folds. */
async function prepareCv(opts: TrainWorkflowOptions, k: number): Promise<{ k: number; pool: PooledDataset; folds: Uint8Array }> {
  const conflict = cvFlagConflict({ ...opts, cv: k });
  if (conflict) throw new CrossValidationError(conflict);
  if (!Number.isInteger(k) || k < 2 || k > 20) throw new CrossValidationError(`--cv must be a whole number from 2 to 20, got ${k}`);
  const pool = await loadPooledDataset(opts.dataset, opts.cvPart ?? 'all');
  const problem = foldCountProblem(pool.y, pool.classes, pool.classNames, k);
  if (problem) throw new CrossValidationError(problem);
  return { k, pool, folds: stratifiedFolds(pool.y, pool.classes, k, opts.seed) };
}

/** Everything one SNN training takes from flags and preset; the same for every CV fold. */
interface SnnSetup {
  sizes: number[];
  epochs: number;
  batchSize: number;
  lr: number;
  schedule: LrSchedule;
  averageDecay: number;
  inputNoise: number;
  weightDecay: number;
  loss: Partial<LossConfig>;
  solver: SpikeSolver;
  config: NetworkConfig;
  settings: Record<string, unknown>;
}

function snnSetup(opts: TrainWorkflowOptions, preset: Preset, features: number, classes: number): SnnSetup {
  const { sizes, biasSpike, biasReplaces } = networkSizes(opts, preset, features, classes);
  const epochs = opts.epochs ?? preset.epochs;
  const batchSize = opts.batchSize ?? preset.batchSize;
  const lr = opts.lr ?? preset.lr;
  const schedule = opts.schedule ?? preset.schedule;
  const averageDecay = opts.averageDecay ?? preset.averageDecay;
  const inputNoise = opts.inputNoise ?? preset.inputNoise;
  const weightDecay = opts.weightDecay ?? preset.weightDecay;
  if (!(lr * weightDecay < 1))
    throw new RangeError(
      `--weight-decay ${weightDecay} with --lr ${lr}: every step multiplies the weights by 1 - lr * weight decay, which must stay above 0; use a weight decay below ${formatNumber(1 / lr)}`,
    );
  const loss: Partial<LossConfig> = {
    ...preset.loss,
    ...(opts.tauSoft !== undefined ? { tauSoft: opts.tauSoft } : {}),
    ...(opts.deadRate !== undefined ? { deadRate: opts.deadRate } : {}),
    ...(opts.windowWeight !== undefined ? { windowWeight: opts.windowWeight } : {}),
    ...(opts.silentScale !== undefined ? { silentScale: opts.silentScale } : {}),
    ...(opts.deadMembrane !== undefined ? { deadMembrane: opts.deadMembrane === 'model' ? 1 : 0 } : {}),
    ...(opts.deadMean !== undefined ? { deadMean: opts.deadMean === 'batch' ? 1 : 0 } : {}),
  };
  const solver = createSolver(opts.solver, { bins: opts.bins, eulerSteps: opts.eulerSteps });
  const chip = opts.chip;
  // For a chip: its windows, and (PNN) the reversal potentials its profile calibrated.
  const physics = chip && opts.model === 'pnn' && chip.ePlus !== undefined && chip.eMinus !== undefined ? { ePlus: chip.ePlus, eMinus: chip.eMinus } : {};
  const config = defaultConfig(sizes, { model: opts.model, biasSpike, biasReplaces, ...(chip ? { ...chipTimeBase(chip), ...physics } : {}) });
  const settings = {
    sizes,
    model: opts.model,
    solver: opts.solver,
    bins: opts.bins,
    eulerSteps: opts.eulerSteps,
    epochs,
    batchSize,
    lr,
    schedule,
    averageDecay,
    inputNoise,
    weightDecay,
    loss,
    seed: opts.seed,
    config,
  };
  if (chip)
    opts.print(
      `for ${chip.chipId}: its hidden widths, its windows (horizons ${config.horizons.map((h) => formatNumber(h)).join(', ')} input windows)${'ePlus' in physics ? ', its calibrated ePlus and eMinus' : ', nominal ePlus and eMinus (--profile gives calibrated ones)'}`,
    );
  opts.print(
    `network ${sizes.join('-')} (${opts.model}, ePlus ${formatNumber(config.ePlus)}, eMinus ${formatNumber(config.eMinus)}), ${biasSpike === undefined ? '' : `reference input spike at t = ${biasSpike}${biasReplaces === undefined ? '' : ` in place of feature ${biasReplaces}`}, `}solver ${opts.solver}${solver.resolution ? ` (${solver.resolution} ${opts.solver === 'dstd' ? 'bins' : 'steps'})` : ''}, ${epochs} epochs of ${batchSize}, Adam lr ${lr} (${schedule})${averageDecay > 0 ? `, weights averaged (decay ${averageDecay})` : ''}${inputNoise > 0 ? `, input noise ${inputNoise}` : ''}${weightDecay > 0 ? `, weight decay ${weightDecay}` : ''}`,
  );
  return { sizes, epochs, batchSize, lr, schedule, averageDecay, inputNoise, weightDecay, loss, solver, config, settings };
}

/** One trained network's figures (the network itself is saved and disposed). */
interface SnnResult {
  history: EpochMetrics[];
  testAcc: number;
  testAccExact: number;
  trainAcc: number;
  onPnn?: number;
  onPnnExact?: number;
  samplesPerS: number;
  /** Test part, exact solver (the physics a chip computes). */
  confusion: ConfusionMatrix;
}

/**
 * Initialise a fresh network, train it on `parts.train` (test metrics per epoch on `parts.test`),
 * save it to `modelFile` and evaluate it: the training solver and the exact one on the test part,
 * and for the ideal model the same synapses on the PNN.
 */
async function trainOneSnn(
  opts: TrainWorkflowOptions,
  s: SnnSetup,
  parts: { train: DatasetPart; test: DatasetPart },
  run: RunDir,
  where: { label: string; modelFile: string; info: Record<string, unknown>; metrics?: Record<string, unknown> },
): Promise<SnnResult> {
  const { solver, epochs, batchSize } = s;
  const net = initNetwork(s.config, { x: parts.train.x, n: Math.min(256, parts.train.n) }, solver, { seed: opts.seed });
  try {
    const batches = Math.ceil(parts.train.n / batchSize);
    const bar = createProgress({ total: epochs * batches, label: where.label, unit: 'batches', stream: opts.progress });
    const history = await trainNetwork(net, parts, {
      epochs,
      batchSize,
      lr: s.lr,
      seed: opts.seed,
      solver,
      loss: s.loss,
      schedule: s.schedule,
      averageDecay: s.averageDecay,
      inputNoise: s.inputNoise,
      weightDecay: s.weightDecay,
      workers: opts.workers,
      signal: opts.signal,
      onBatch: (p) => bar.update(p.epoch * batches + p.batch, { epoch: p.epoch + 1, loss: p.loss, acc: p.acc }),
      onEpoch: (m) => {
        run.metrics.append({ ...where.metrics, ...m });
        bar.log(
          `${where.metrics ? `${where.label}, ` : ''}epoch ${m.epoch}/${epochs}: loss ${m.train_loss.toFixed(4)}, train ${formatPercent(m.train_acc)}, test ${formatPercent(m.test_acc)}${m.test_acc_raw === undefined ? '' : ` (averaged; ${formatPercent(m.test_acc_raw)} without)`}, ${m.samples_per_s.toFixed(0)} samples/s`,
        );
      },
    });
    bar.finish();
    if (opts.signal?.aborted) throw new Error('interrupted');
    await saveNetwork(where.modelFile, net, { ...where.info, seed: opts.seed, solver: opts.solver, bins: opts.bins });
    const trainAcc = evaluateNetwork(net, parts.train, solver, { tauSoft: s.loss.tauSoft }).acc;
    const testAcc = history.at(-1)?.test_acc ?? evaluateNetwork(net, parts.test, solver).acc;
    // The exact solver is the physics reference (what a chip computes): report its accuracy beside
    // the training solver's, so that a solver artefact cannot pass for accuracy.
    const exact = createSolver('exact');
    const exactEval = evaluateNetwork(net, parts.test, exact);
    const testAccExact = opts.solver === 'exact' ? testAcc : exactEval.acc;
    const confusion = confusionMatrix(parts.test.y, exactEval.predictions, parts.test.classes);
    let onPnn: number | undefined;
    let onPnnExact: number | undefined;
    if (opts.model === 'ideal') {
      // The same synapses (drive at rest held) on the PNN with the nominal reversal potentials.
      const pnn = net.withModel({ model: 'pnn' });
      onPnn = evaluateNetwork(pnn, parts.test, opts.solver === 'euler' ? createSolver('dstd', { bins: opts.bins }) : solver).acc;
      onPnnExact = evaluateNetwork(pnn, parts.test, exact).acc;
      pnn.dispose();
    }
    const trainSeconds = history.reduce((t, m) => t + m.seconds, 0);
    const trainSamples = history.reduce((t, m) => t + m.samples_per_s * m.seconds, 0);
    const samplesPerS = trainSeconds > 0 ? trainSamples / trainSeconds : 0;
    return { history, testAcc, testAccExact, trainAcc, samplesPerS, confusion, ...(onPnn !== undefined ? { onPnn, onPnnExact } : {}) };
  } finally {
    net.dispose();
  }
}

async function snnFlow(opts: TrainWorkflowOptions, preset: Preset, data: Dataset, run: RunDir, backend: string): Promise<TrainSummary> {
  const s = snnSetup(opts, preset, data.features, data.classes);
  run.update({ summary: { settings: s.settings } });
  const modelFile = run.file('network.bin');
  const r = await trainOneSnn(opts, s, data, run, {
    label: 'train',
    modelFile,
    info: { dataset: data.name, source: data.source, ...(opts.chip ? { chip: opts.chip.chipId } : {}) },
  });
  const { history, testAcc, testAccExact, onPnn, onPnnExact } = r;
  const testAccRaw = history.at(-1)?.test_acc_raw;
  const summary: TrainSummary = {
    test_acc: testAcc,
    train_acc: r.trainAcc,
    epochs: history.length,
    samples_per_s: r.samplesPerS,
    backend,
    test_acc_exact: testAccExact,
    dataset: data.name,
    model: opts.model,
    solver: opts.solver,
    sizes: s.sizes,
    best_test_acc: Math.max(...history.map((m) => m.test_acc ?? 0)),
    ...(testAccRaw !== undefined ? { test_acc_raw: testAccRaw } : {}),
    ...(onPnn !== undefined ? { test_acc_on_pnn: onPnn, test_acc_on_pnn_exact: onPnnExact } : {}),
    network: modelFile,
    out: run.path,
  };
  const confusion = await writeConfusion(run, r.confusion, data.classNames, 'test part, exact solver');
  summary.confusion = run.file(CONFUSION_FILE);
  await writePlots(run, history, data.name, opts, summary, [confusion.section]);
  opts.print(
    '\n' +
      renderTable(
        [
          { figure: `test accuracy (${opts.solver})`, value: formatPercent(testAcc) },
          ...(opts.solver !== 'exact' ? [{ figure: 'test accuracy (exact solver, the physics reference)', value: formatPercent(testAccExact) }] : []),
          ...(testAccRaw !== undefined
            ? [{ figure: `test accuracy, optimiser's weights without the average (${opts.solver})`, value: formatPercent(testAccRaw) }]
            : []),
          { figure: 'train accuracy', value: formatPercent(r.trainAcc) },
          ...(onPnn !== undefined
            ? [
                { figure: `test accuracy, run on the PNN (${opts.solver === 'euler' ? 'dstd' : opts.solver})`, value: formatPercent(onPnn) },
                { figure: 'test accuracy, run on the PNN (exact solver)', value: formatPercent(onPnnExact) },
              ]
            : []),
          { figure: 'epochs', value: String(history.length) },
          { figure: 'throughput', value: `${summary.samples_per_s.toFixed(0)} samples/s (${backend})` },
        ],
        { title: `spikeloop train: ${data.name}, ${s.sizes.join('-')} ${opts.model}, ${opts.solver}` },
      ),
  );
  opts.print('\n' + confusion.table);
  opts.print(`network: ${displayPath(modelFile)}`);
  return summary;
}

/** One fold of a cross-validation run, as in cv.jsonl and the summary's `cv.folds`. */
export interface CvFold {
  fold: number;
  n: number;
  test_acc: number;
  test_acc_exact: number;
  train_acc: number;
  /** Held-out samples classified right (training solver, exact solver). */
  correct: number;
  correct_exact: number;
  n_train: number;
}

/**
 * Stratified K-fold cross-validation with the SNN flow: per fold a fresh network trained on the
 * other folds (settings exactly as snnFlow's) and tested on the held-out fold.
 */
async function cvFlow(
  opts: TrainWorkflowOptions & { cv: number },
  preset: Preset,
  pool: PooledDataset,
  folds: Uint8Array,
  run: RunDir,
  backend: string,
): Promise<TrainSummary> {
  const k = opts.cv;
  const s = snnSetup(opts, preset, pool.features, pool.classes);
  run.update({ summary: { settings: { ...s.settings, cv: k, cv_part: pool.part } } });
  const log = new MetricsLog(run.file('cv.jsonl'));
  const results: (CvFold & { history: EpochMetrics[]; samplesPerS: number })[] = [];
  const networks: string[] = [];
  // Every sample is held out exactly once, so the folds' test matrices add up to one over the pool.
  let pooledConfusion: ConfusionMatrix | undefined;
  try {
    for (let f = 0; f < k; f++) {
      const parts = foldParts(pool, folds, f, opts.seed);
      const dir = run.file(`fold-${f + 1}`);
      mkdirSync(dir, { recursive: true });
      const label = `fold ${f + 1}/${k}`;
      const modelFile = join(dir, 'network.bin');
      const r = await trainOneSnn(opts, s, parts, run, {
        label,
        modelFile,
        info: { dataset: pool.name, source: pool.source, cv_k: k, cv_fold: f + 1, ...(parts.normalization ? { normalization: parts.normalization } : {}) },
        metrics: { fold: f + 1 },
      });
      const n = parts.test.n;
      const fold: CvFold = {
        fold: f + 1,
        n,
        test_acc: r.testAcc,
        test_acc_exact: r.testAccExact,
        train_acc: r.trainAcc,
        correct: Math.round(r.testAcc * n),
        correct_exact: Math.round(r.testAccExact * n),
        n_train: parts.train.n,
      };
      results.push({ ...fold, history: r.history, samplesPerS: r.samplesPerS });
      networks.push(modelFile);
      pooledConfusion = pooledConfusion ? addConfusion(pooledConfusion, r.confusion) : r.confusion;
      log.append({
        ...fold,
        class_counts: classCounts(parts.test.y, pool.classes),
        test_indices: Array.from(parts.testIndices, (i) => pool.sampleIndex[i]!),
        ...(parts.normalization ? { normalization: parts.normalization } : {}),
      });
      opts.print(
        `${label}: ${n} held out, test ${formatPercent(fold.test_acc)} (exact solver ${formatPercent(fold.test_acc_exact)}), train ${formatPercent(fold.train_acc)}`,
      );
    }
  } finally {
    log.close();
  }
  const total = results.reduce((t, r) => t + r.n, 0);
  const pooled = results.reduce((t, r) => t + r.correct, 0) / total;
  const pooledExact = results.reduce((t, r) => t + r.correct_exact, 0) / total;
  const accs = results.map((r) => r.test_acc);
  const mean = accs.reduce((t, a) => t + a, 0) / k;
  // Sample standard deviation (k - 1): the spread one would expect of another fold.
  const std = Math.sqrt(accs.reduce((t, a) => t + (a - mean) ** 2, 0) / (k - 1));
  const folds_ = results.map(({ history: _h, samplesPerS: _s, ...f }) => f);
  const summary: TrainSummary = {
    test_acc: pooled,
    train_acc: results.reduce((t, r) => t + r.train_acc, 0) / k,
    epochs: results[0]?.history.length ?? 0,
    samples_per_s: results.reduce((t, r) => t + r.samplesPerS, 0) / k,
    backend,
    test_acc_exact: pooledExact,
    dataset: pool.name,
    model: opts.model,
    solver: opts.solver,
    sizes: s.sizes,
    cv: {
      k,
      part: pool.part,
      n: total,
      folds: folds_,
      mean,
      std,
      test_acc_exact: pooledExact,
      scaling: pool.scaling === 'min-max-per-fold' ? "min-max fitted on each fold's training folds" : 'fixed (pixels / 255)',
    },
    networks,
    out: run.path,
  };
  const confusion = await writeConfusion(run, pooledConfusion!, pool.classNames, `every sample held out once, ${k} folds, exact solver`);
  summary.confusion = run.file(CONFUSION_FILE);
  await writeCvReport(run, results, pool, opts, summary, confusion.section);
  opts.print(
    '\n' +
      renderTable(
        [
          ...folds_.map((f) => ({
            fold: String(f.fold),
            'n test': f.n,
            'test acc': formatPercent(f.test_acc),
            'exact test acc': formatPercent(f.test_acc_exact),
            'train acc': formatPercent(f.train_acc),
          })),
          {
            fold: 'pooled',
            'n test': total,
            'test acc': formatPercent(pooled),
            'exact test acc': formatPercent(pooledExact),
            'train acc': formatPercent(summary.train_acc),
          },
          { fold: 'mean ± std', 'n test': '', 'test acc': `${formatPercent(mean)} ± ${formatPercent(std)}`, 'exact test acc': '', 'train acc': '' },
        ],
        { title: `spikeloop train --cv ${k}${cvPartFlag(pool)}: ${pool.name}, ${s.sizes.join('-')} ${opts.model}, ${opts.solver}` },
      ),
  );
  opts.print('\n' + confusion.table);
  opts.print(`folds: ${displayPath(run.file('cv.jsonl'))}; networks: ${displayPath(run.file('fold-<k>/network.bin'))}`);
  return summary;
}

/** The flag naming a training-part pool, for titles ('' for the default pool of every sample). */
const cvPartFlag = (pool: PooledDataset) => (pool.part === 'train' ? ' --cv-part train' : '');

async function writeCvReport(
  run: RunDir,
  results: (CvFold & { history: EpochMetrics[] })[],
  pool: PooledDataset,
  opts: TrainWorkflowOptions,
  summary: TrainSummary,
  confusion: ReportSection,
): Promise<void> {
  const name = pool.part === 'train' ? `${pool.name} (training part)` : pool.name;
  const acc = lineChart({
    title: `${name}: held-out accuracy per epoch, per fold (${opts.model}, ${opts.solver})`,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: results.map((r) => ({ name: `fold ${r.fold}`, x: r.history.map((m) => m.epoch), y: r.history.map((m) => m.test_acc ?? NaN) })),
  });
  await writeFileAtomic(run.file('learning-curve.svg'), acc);
  await writeHtmlReport(run.file('report.html'), {
    title: `spikeloop train --cv ${results.length}${cvPartFlag(pool)}: ${pool.name}`,
    summary: {
      pooled: describePool(pool),
      'pooled CV accuracy': formatPercent(summary.test_acc),
      'pooled CV accuracy (exact solver)': formatPercent(summary.test_acc_exact as number),
      'train accuracy (mean over folds)': formatPercent(summary.train_acc),
      epochs: summary.epochs,
      backend: summary.backend,
    },
    sections: [
      { title: 'Folds', blocks: [{ kind: 'table', rows: results.map(({ history: _h, ...f }) => ({ ...f })) }] },
      { title: 'Learning curves', blocks: [{ kind: 'plot', svg: acc }] },
      confusion,
    ],
  });
}

async function writePlots(
  run: RunDir,
  history: EpochMetrics[],
  name: string,
  opts: TrainWorkflowOptions,
  summary: TrainSummary,
  extra: ReportSection[] = [],
): Promise<void> {
  const epochs = history.map((m) => m.epoch);
  const averaged = history.some((m) => m.test_acc_raw !== undefined);
  const acc = lineChart({
    title: `${name}: accuracy per epoch (${opts.model}, ${opts.solver})`,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [
      { name: 'train (running)', x: epochs, y: history.map((m) => m.train_acc) },
      { name: averaged ? 'test (averaged weights)' : 'test', x: epochs, y: history.map((m) => m.test_acc ?? NaN) },
      ...(averaged ? [{ name: "test (optimiser's weights)", x: epochs, y: history.map((m) => m.test_acc_raw ?? NaN), dashed: true }] : []),
    ],
  });
  const loss = lineChart({
    title: `${name}: loss per epoch`,
    xLabel: 'epoch',
    yLabel: 'loss',
    series: [
      { name: 'total', x: epochs, y: history.map((m) => m.train_loss) },
      { name: 'cross-entropy', x: epochs, y: history.map((m) => m.train_terms.ce) },
      { name: 'window', x: epochs, y: history.map((m) => m.train_terms.window), dashed: true },
      { name: 'dead neurons', x: epochs, y: history.map((m) => m.train_terms.dead), dashed: true },
      { name: 'test cross-entropy', x: epochs, y: history.map((m) => m.test_loss ?? NaN) },
    ],
  });
  await writeFileAtomic(run.file('learning-curve.svg'), acc);
  await writeFileAtomic(run.file('loss-curve.svg'), loss);
  const sections: ReportSection[] = [
    {
      title: 'Learning curves',
      blocks: [
        { kind: 'plot', svg: acc },
        { kind: 'plot', svg: loss },
      ],
    },
    {
      title: 'Epochs',
      blocks: [
        {
          kind: 'table',
          rows: history.map((m) => ({
            epoch: m.epoch,
            loss: m.train_loss,
            train_acc: m.train_acc,
            test_acc: m.test_acc,
            ...(m.test_acc_raw !== undefined ? { test_acc_raw: m.test_acc_raw } : {}),
            silent: m.silent.map((s) => s.toFixed(2)).join(' / '),
            lr: m.lr,
            'samples/s': Math.round(m.samples_per_s),
          })),
        },
      ],
    },
  ];
  await writeHtmlReport(run.file('report.html'), {
    title: `spikeloop train: ${name}`,
    summary: {
      'test accuracy': formatPercent(summary.test_acc),
      ...(typeof summary.test_acc_exact === 'number' ? { 'test accuracy (exact solver)': formatPercent(summary.test_acc_exact) } : {}),
      'train accuracy': formatPercent(summary.train_acc),
      epochs: summary.epochs,
      backend: summary.backend,
    },
    sections: [...sections, ...extra],
  });
}

async function annFlow(opts: TrainWorkflowOptions, preset: Preset, data: Dataset, run: RunDir, backend: string): Promise<TrainSummary> {
  const hidden = opts.layers ?? preset.layers;
  const sizes = [data.features, ...hidden, data.classes];
  const epochs = opts.epochs ?? preset.ann.epochs;
  const batchSize = opts.batchSize ?? preset.ann.batchSize;
  const lr = opts.lr ?? preset.ann.lr;
  run.update({ summary: { settings: { flow: 'ann-to-imc', sizes, epochs, batchSize, lr, seed: opts.seed, rowSum: 1 } } });
  opts.print(`ANN-to-IMC: ReLU network ${sizes.join('-')} (weights of each neuron summing to 1), ${epochs} epochs of ${batchSize}, Adam lr ${lr}`);
  const ann = new ReluNet({ sizes, seed: opts.seed, rowSum: 1 });
  const t0 = performance.now();
  let samples = 0;
  try {
    const bar = createProgress({ total: epochs, label: 'ann', unit: 'epochs', stream: opts.progress });
    const history = await trainReluNet(
      ann,
      { train: data.train, test: data.test },
      {
        epochs,
        batchSize,
        lr,
        seed: opts.seed,
        signal: opts.signal,
        onEpoch: (m) => {
          samples += data.train.n;
          run.metrics.append({ stage: 'ann', ...m });
          bar.update(m.epoch, { loss: m.train_loss, acc: m.train_acc, test: m.test_acc });
        },
      },
    );
    bar.finish();
    if (opts.signal?.aborted) throw new Error('interrupted');
    const annSeconds = (performance.now() - t0) / 1000;
    const annTest = ann.accuracy(data.test);
    const annTrain = ann.accuracy(data.train);
    const weights = ann.layerWeights();
    // The exact solver is the reference for evaluating mapped networks (no training needed).
    const exact = createSolver('exact');
    const select = { ...data.train, n: Math.min(data.train.n, 1000) };
    // Slack decides whether neurons with negative pre-activation fire late or stay silent.
    let bestMap: { slack: number; net: SpikingNetwork; acc: number } | undefined;
    for (const slack of [0, 0.25, 0.5]) {
      const m = mapAnnToSnn(weights, { x: data.train.x, n: Math.min(data.train.n, 2000) }, { slack });
      const acc = evaluateNetwork(m.net, select, exact).acc;
      run.metrics.append({ stage: 'map', slack, ideal_select_acc: acc, windows: m.windows, invalid: m.invalid });
      if (!bestMap || acc > bestMap.acc) {
        bestMap?.net.dispose();
        bestMap = { slack, net: m.net, acc };
      } else m.net.dispose();
    }
    const mapped = bestMap!.net;
    try {
      const idealTest = evaluateNetwork(mapped, data.test, exact).acc;
      const nominal = mapped.withModel({ model: 'pnn' });
      const pnnNominal = evaluateNetwork(nominal, data.test, exact).acc;
      nominal.dispose();
      // Geometric: a balanced excitatory/inhibitory network can need several times the current.
      const scales = Array.from({ length: 11 }, (_, k) => Number((0.5 * Math.SQRT2 ** k).toPrecision(3)));
      const bar2 = createProgress({ total: scales.length * (1 + reversalCandidates().length), label: 'search', unit: 'points', stream: opts.progress });
      const nominalSearch = searchCurrentScale(mapped, select, exact, {
        scales,
        reversal: [NOMINAL_REVERSAL],
        onPoint: (p) => {
          bar2.tick(1);
          run.metrics.append({ stage: 'search', ...p });
        },
      });
      const fullSearch = searchCurrentScale(mapped, select, exact, {
        scales,
        reversal: reversalCandidates(),
        onPoint: (p) => {
          bar2.tick(1);
          run.metrics.append({ stage: 'search', ...p });
        },
      });
      bar2.finish();
      const testAt = (p: { scale: number; ePlus: number; eMinus: number }) => {
        const net = mapped.withModel({ model: 'pnn', ePlus: p.ePlus, eMinus: p.eMinus, scaleFactor: p.scale });
        try {
          return evaluateNetwork(net, data.test, exact).acc;
        } finally {
          net.dispose();
        }
      };
      const bestNominal = { ...nominalSearch.best, test_acc: testAt(nominalSearch.best) };
      const bestAny = { ...fullSearch.best, test_acc: testAt(fullSearch.best) };
      const chosen = bestAny.acc > bestNominal.acc ? bestAny : bestNominal;
      const deployed = mapped.withModel({ model: 'pnn', ePlus: chosen.ePlus, eMinus: chosen.eMinus, scaleFactor: chosen.scale });
      const modelFile = run.file('network.bin');
      await saveNetwork(modelFile, deployed, { dataset: data.name, flow: 'ann-to-imc', seed: opts.seed, scale: chosen.scale, slack: bestMap!.slack });
      const trainMapped = evaluateNetwork(deployed, data.train, exact).acc;
      deployed.dispose();
      const summary: TrainSummary = {
        test_acc: chosen.test_acc,
        train_acc: trainMapped,
        epochs: history.length,
        samples_per_s: annSeconds > 0 ? samples / annSeconds : 0,
        backend,
        flow: 'ann-to-imc',
        dataset: data.name,
        sizes,
        ann_test_acc: annTest,
        ann_train_acc: annTrain,
        mapped_ideal_test_acc: idealTest,
        mapped_pnn_nominal_test_acc: pnnNominal,
        mapped_pnn_scaled_test_acc: bestNominal.test_acc,
        mapped_pnn_best_test_acc: bestAny.test_acc,
        chosen: { scale: chosen.scale, ePlus: chosen.ePlus, eMinus: chosen.eMinus, slack: bestMap!.slack },
        network: modelFile,
        out: run.path,
      };
      const svg = lineChart({
        title: `${data.name}: ANN accuracy per epoch`,
        xLabel: 'epoch',
        yLabel: 'accuracy',
        series: [
          { name: 'train', x: history.map((m) => m.epoch), y: history.map((m) => m.train_acc) },
          { name: 'test', x: history.map((m) => m.epoch), y: history.map((m) => m.test_acc ?? NaN) },
        ],
      });
      await writeFileAtomic(run.file('learning-curve.svg'), svg);
      const rows = [
        { figure: 'ANN (ReLU) test accuracy', value: formatPercent(annTest) },
        { figure: 'mapped, ideal model', value: formatPercent(idealTest) },
        { figure: 'mapped, PNN (nominal ePlus/eMinus, scale 1)', value: formatPercent(pnnNominal) },
        { figure: `mapped, PNN, current scale ${bestNominal.scale}`, value: formatPercent(bestNominal.test_acc) },
        {
          figure: `mapped, PNN, scale ${bestAny.scale}, ePlus ${bestAny.ePlus.toFixed(2)}, eMinus ${bestAny.eMinus.toFixed(2)}`,
          value: formatPercent(bestAny.test_acc),
        },
      ];
      await writeHtmlReport(run.file('report.html'), {
        title: `spikeloop train --from-ann: ${data.name}`,
        summary: Object.fromEntries(rows.map((r) => [r.figure, r.value])),
        sections: [
          { title: 'ANN training', blocks: [{ kind: 'plot', svg }] },
          {
            title: 'Current-scale search (selection set: training data)',
            blocks: [{ kind: 'table', rows: [...nominalSearch.grid, ...fullSearch.grid].map((p) => ({ ...p })) }],
          },
        ],
      });
      opts.print('\n' + renderTable(rows, { title: `ANN-to-IMC: ${data.name} ${sizes.join('-')}` }));
      return summary;
    } finally {
      mapped.dispose();
    }
  } finally {
    ann.dispose();
  }
}
