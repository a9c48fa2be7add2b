/**
 * `spikeloop finetune`: finish a twin-trained network's training with the chip in the loop
 * (docs/MODEL.md §7).
 *
 * Each batch: RUN on the device (every layer's spike ticks) -> the twin's DSTD forward with the
 * device's times substituted layer by layer and the loss on the device's outputs, backward through
 * the twin (models/training/in-loop.ts) -> Adam on the conductances, projected onto g >= 0 -> map
 * to DAC codes through the profile's curves -> upload only the codes that changed.
 *
 * Pipelining (finetune-pipeline.ts): the RUN of batch k+1 goes out before the host starts on batch
 * k, so the device measures while the host computes. The one-batch lag: batch k+1 is measured on
 * the codes from before batch k's update, and its gradient (the twin's Jacobian at the current
 * conductances, the loss at the device's outputs) is applied to the conductances after that
 * update, a delayed-gradient step of delay one. Adam's normalised step at fine-tuning rates (the
 * default lr is 0.002, a fifth of twin training's) moves each conductance by about lr per batch, so
 * the stale measurement differs from a fresh one by one such step; `pipelined: false` removes the
 * lag (and the overlap). Uploads are issued, not awaited, at the end of each batch: ChipDevice
 * lands the uploads of a layer in the order they were issued, and a RUN after all of them.
 *
 * Each epoch ends with the pipeline drained: uploads done, CRC of every layer verified, test
 * accuracy on the device and in the twin appended to metrics.jsonl, and a checkpoint
 * (finetune-checkpoint.ts). Ctrl-C (the signal) stops after the current batch and checkpoints
 * mid-epoch; a lost device or any other failure checkpoints the last consistent state (every
 * batch before the cursor applied exactly once); `resume: true` continues at the cursor. After a
 * hard kill the run resumes from the last epoch's (or `checkpointEvery`) checkpoint, whose later
 * batches were never saved and are learnt again from the saved state.
 *
 * One module on purpose (about 560 lines): the batch loop, its checkpoints and its error handling
 * share one loop state (LoopState, the codes on the device, the uploads in flight); the pipeline
 * (finetune-pipeline.ts) and the checkpoint files (finetune-checkpoint.ts) are their own modules.
 */

import { epochOrder, gatherLabels, gatherRows, miniBatches } from '../../models/datasets/batching.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import { holdOut } from '../../models/datasets/split.ts';
import { readTrainingSubset, type TrainingSubset, unseenOf } from '../../models/datasets/training-subset.ts';
import type { UnseenTrainOptions } from '../../models/datasets/types.ts';
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import type { SpikingNetwork } from '../../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { restoreWeights, snapshotWeights } from '../../models/network/weights-snapshot.ts';
import { evaluateNetwork } from '../../models/training/evaluate.ts';
import { adamStep, inLoopGradients, newAdamState, type AdamState } from '../../models/training/in-loop.ts';
import { resolveLoss } from '../../models/training/trainer.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { registerGradients } from '../../models/tf/gradients.ts';
import { checkProfileChip, loadChipProfile, profileTwinPhysics } from '../../calibration/chip-profile.ts';
import type { LayerCurves } from '../../calibration/weight-mapping.ts';
import { ChipMapping, checkFits, curvesFromProfile, missingNeuronLevels, unitTicksOf } from '../../calibration/chip-mapping.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { writeHtmlReport } from '../report/html-report.ts';
import { lineChart, spikeRaster } from '../report/svg-plot.ts';
import { openRunDir, type RunDir } from '../runs/run-dir.ts';
import { checkInputFile, MODEL_FILE_FIX, PROFILE_FILE_FIX } from './input-file.ts';
import { createProgress, type ProgressStream } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { evaluateOnDevice } from './deploy.ts';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint, type BestState, type EpochRecord, type FinetuneSettings } from './finetune-checkpoint.ts';
import { runPipeline, type BatchTiming } from './finetune-pipeline.ts';
import { comparePaired, correctness, KEEP_ALPHA, type PairedComparison, replacesKept } from './finetune-keep.ts';
import { formatPercent } from '../ui/format.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

export const FINETUNE_DEFAULTS = { lr: 0.002, batchSize: 32, bins: 16, seed: 1 } as const;

/**
 * The validation split when `val` is not given: a tenth of the training part, at most 500 samples. A device
 * pass is a forward run only (no gradient, no upload); at 500 samples one standard error of an accuracy
 * near 80 % is 1.8 points, less for the difference of two states measured on the same samples.
 */
export const FINETUNE_VAL_DEFAULT = { fraction: 0.1, max: 500 } as const;

/**
 * Validation samples for a training part of `trainN`: `val` as a count (a whole number >= 1), a fraction of
 * the part (0 < val < 1), 0 (no split: the last epoch is kept), or the default. Throws naming --val when
 * the split, `carved` from the training part, would leave no training sample.
 */
export function validationSize(val: number | undefined, trainN: number, carved = true): number {
  if (val === undefined) return Math.min(FINETUNE_VAL_DEFAULT.max, Math.round(FINETUNE_VAL_DEFAULT.fraction * trainN));
  if (!(val >= 0) || (val > 1 && !Number.isInteger(val)))
    throw new RangeError(`--val ${val}: give a count of validation samples (a whole number), a fraction below 1 like 0.1, or 0 to keep the last epoch`);
  const k = val < 1 ? Math.round(val * trainN) : val;
  if (carved && k >= trainN)
    throw new RangeError(
      `--val ${val}: ${k} validation samples leave none of the ${trainN} training samples to learn from; take fewer (e.g. --val ${Math.max(0, Math.floor(trainN / 10))}) or raise --limit-train`,
    );
  return k;
}

export interface FinetuneOptions {
  device: string;
  /** Run folder; with `resume` the folder of the run to continue. */
  out: string;
  resume?: boolean;
  /** Network file to start from (new runs). */
  model?: string;
  /** Chip profile; required unless `uncalibrated`. */
  profile?: string;
  uncalibrated?: boolean;
  /** Data set spec (new runs). */
  dataset?: string;
  /** Total epochs of the run (a resumed run may raise it). */
  epochs?: number;
  lr?: number;
  batchSize?: number;
  bins?: number;
  seed?: number;
  limitTrain?: number;
  limitTest?: number;
  /**
   * Validation samples, never from the test part: a count, a fraction below 1 of the training part, or 0 to keep
   * the last epoch (default FINETUNE_VAL_DEFAULT). When the network file names the training samples it learnt
   * from (models/datasets/training-subset.ts) and the data set has enough others, they are training-part
   * samples outside those and outside this run's training part; otherwise they are carved from the training
   * part (after `limitTrain`). The device's accuracy on them, at the deployment and after each epoch, chooses
   * the state the run ends with.
   */
  val?: number;
  /**
   * Significance level of the keep rule (finetune-keep.ts, default KEEP_ALPHA): an epoch replaces the deployment
   * only when its gain on the validation split passes a one-sided paired sign test at this level; 1 keeps any
   * epoch that validates better.
   */
  keepAlpha?: number;
  /**
   * A read of the test part already taken on this device with the deployment's codes (the demo's deploy stage):
   * when the run's deployment maps to exactly these codes and the labels match, epoch 0's test figure is this
   * read rather than a second one, so the deployment and a kept deployment are the same measurement.
   */
  deployedRead?: { codes: Uint16Array[]; labels: Uint8Array; predictions: Int32Array };
  /** Default true: the device measures the next batch while the host learns from the last. */
  pipelined?: boolean;
  /** Also checkpoint every N batches (0 / absent: at epoch ends only). */
  checkpointEvery?: number;
  /** After every learnt batch (position in the run, running device accuracy of the epoch, the batch's positions in the loaded training part). */
  onBatch?(p: { epoch: number; batch: number; steps: number; acc: number; samples: Uint32Array }): void;
  args?: string[];
  signal?: AbortSignal;
  print(line: string): void;
  warn(line: string): void;
  progress?: ProgressStream;
}

export interface FinetuneSummary {
  device: string;
  chip_id: string;
  curves: 'calibrated' | 'nominal';
  /** Device test accuracy before fine-tuning (the deployment) and after. */
  deployed_acc: number;
  finetuned_acc: number;
  /** The twin on its own conductances, after fine-tuning (the kept state's). */
  twin_acc: number;
  /** Epochs run; the state kept at the end is `kept_epoch`'s (0 = the deployment; null: no validation split, or interrupted). */
  epochs: number;
  kept_epoch: number | null;
  /** Validation samples, and the device's accuracy on them per epoch (index = epoch, 0 = deployed). */
  val_samples: number;
  /** Where they came from: 'unseen' (outside the network's training subset and the run's batches), 'carved' (from the run's training part), null (no split). */
  val_source: 'unseen' | 'carved' | null;
  val_acc: (number | null)[];
  /** Device test accuracy after the last epoch run, whether kept or not. */
  last_epoch_acc: number;
  /** What the chip ends with: 'deployment' (kept_epoch 0), 'epoch' (a fine-tuned state) or 'last' (no validation split, or interrupted). */
  kept_state: 'deployment' | 'epoch' | 'last';
  /** The keep rule's level (null: no split, or a run begun before the rule) and each epoch's paired comparison with the deployment on validation. */
  keep_alpha: number | null;
  val_comparisons: ({ epoch: number } & PairedComparison)[];
  /** Whether epoch 0's test figure is `deployedRead` ('reused') or a read of its own ('measured'). */
  deployed_read: 'reused' | 'measured';
  batches: number;
  host_ms_per_batch: number;
  device_ms_per_batch: number | null;
  wall_ms_per_batch: number;
  /** max(host, device) / wall per batch: 1 = the slower side never waits for the other. */
  overlap_efficiency: number | null;
  pipelined: boolean;
  changed_codes_per_batch: number;
  interrupted: boolean;
  network: string;
  out: string;
  [key: string]: unknown;
}

/** What the device holds and the host knows, batch by batch; checkpointed as it is. */
interface LoopState {
  cursor: { epoch: number; batch: number };
  adam: AdamState;
  /** Codes of the twin's current conductances (uploaded or on their way). */
  codes: Uint16Array[];
  /** The codes the latest issued RUN was measured with, and its batch. */
  issued?: { epoch: number; batch: number; codes: Uint16Array[] };
  history: EpochRecord[];
  steps: number;
  /** The state the run keeps so far (finetune-keep.ts; ties: the earlier), when there is a validation split. */
  best?: BestState;
  /** The deployment's validation correctness, the keep rule's reference. */
  valDeployed?: Uint8Array;
}

function mean(a: readonly number[]): number | null {
  return a.length ? a.reduce((s, v) => s + v, 0) / a.length : null;
}

/** Link bytes and request frames per training batch, and the bytes out by request type. */
function perBatch(t: { bytesOut: number; bytesIn: number; frames: number; byType: Record<string, number> }, batches: number) {
  const per = (x: number) => (batches > 0 ? Math.round(x / batches) : 0);
  return {
    bytes_out: per(t.bytesOut),
    bytes_in: per(t.bytesIn),
    frames: per(t.frames),
    bytes_out_by_request: Object.fromEntries(Object.entries(t.byType).map(([k, v]) => [k, per(v)])),
  };
}

function isLinkLoss(err: unknown): boolean {
  const n = (err as Error)?.name ?? '';
  return /LinkClosed|LinkTimeout|Transport/.test(n);
}

/** Validation samples no training saw: the run's data set loaded again, with `u` naming the training samples to stay out of. */
async function loadUnseen(settings: FinetuneSettings, u: UnseenTrainOptions) {
  const d = await loadDataset(settings.dataset, { limitTrain: settings.limitTrain ?? undefined, limitTest: 1, seed: settings.seed, unseenTrain: u });
  return d.unseen!;
}

export async function runFinetune(opts: FinetuneOptions): Promise<FinetuneSummary> {
  await initBackend();
  registerGradients();
  const resuming = opts.resume === true;
  if (resuming && !hasCheckpoint(opts.out)) throw new Error(`${opts.out} holds no checkpoint to resume; start a new run with --out`);
  let net: SpikingNetwork;
  let settings: FinetuneSettings;
  let state: LoopState;
  let savedChip: string | undefined;
  /** The samples the network file says trained it (new runs). */
  let trainedOn: TrainingSubset | undefined;
  if (resuming) {
    const c = await loadCheckpoint(opts.out);
    net = c.net;
    settings = { ...c.checkpoint.settings, epochs: opts.epochs ?? c.checkpoint.settings.epochs };
    savedChip = c.checkpoint.chipId;
    state = {
      cursor: c.checkpoint.cursor,
      adam: c.checkpoint.adam,
      codes: c.checkpoint.codes,
      issued: { ...c.checkpoint.cursor, codes: c.checkpoint.runCodes },
      history: c.checkpoint.history,
      steps: c.checkpoint.steps,
      ...(c.checkpoint.best ? { best: c.checkpoint.best } : {}),
      ...(c.checkpoint.valDeployed ? { valDeployed: c.checkpoint.valDeployed } : {}),
    };
  } else {
    if (!opts.model || !opts.dataset || opts.epochs === undefined) throw new Error('a new fine-tuning run needs a model, a data set and a number of epochs');
    if (opts.keepAlpha !== undefined && !(opts.keepAlpha > 0 && opts.keepAlpha <= 1))
      throw new RangeError(
        `--keep-alpha ${opts.keepAlpha}: give a significance level above 0 and at most 1, like ${KEEP_ALPHA} (1 keeps any epoch that validates better)`,
      );
    if (!opts.profile && !opts.uncalibrated)
      throw new Error('fine-tuning needs the chip profile (--profile FILE from spikeloop calibrate), or --uncalibrated to map through nominal curves');
    checkInputFile('--model', opts.model, MODEL_FILE_FIX);
    if (opts.profile) checkInputFile('--profile', opts.profile, PROFILE_FILE_FIX);
    const loaded = await loadNetwork(opts.model);
    net = loaded.net;
    trainedOn = readTrainingSubset(loaded.info);
    settings = {
      model: opts.model,
      dataset: opts.dataset,
      limitTrain: opts.limitTrain ?? null,
      limitTest: opts.limitTest ?? null,
      seed: opts.seed ?? FINETUNE_DEFAULTS.seed,
      batchSize: opts.batchSize ?? FINETUNE_DEFAULTS.batchSize,
      lr: opts.lr ?? FINETUNE_DEFAULTS.lr,
      bins: opts.bins ?? FINETUNE_DEFAULTS.bins,
      epochs: opts.epochs,
      profile: opts.profile ?? null,
      pipelined: opts.pipelined ?? true,
      loss: { ...resolveLoss({ windowWeight: 0.1 }) },
      keepAlpha: opts.keepAlpha ?? KEEP_ALPHA,
    };
    state = { cursor: { epoch: 0, batch: 0 }, adam: newAdamState(net), codes: [], history: [], steps: 0 };
  }
  const run = openRunDir({
    out: opts.out,
    resume: resuming,
    info: { command: 'finetune', args: opts.args ?? [], device: opts.device },
    continueHint: `continue the run recorded there with spikeloop finetune --resume ${opts.out}`,
  });
  let device: ChipDevice | undefined;
  let consistent = false;
  /** Every state of the run is checkpointed; what follows (restoring the kept state) must not overwrite it. */
  let finalSaved = false;
  /** The codes the batch at the cursor must be measured with. */
  const cursorRunCodes = () =>
    state.issued && state.issued.epoch === state.cursor.epoch && state.issued.batch === state.cursor.batch ? state.issued.codes : state.codes;
  const checkpoint = async (runCodes: Uint16Array[]) =>
    saveCheckpoint(run.path, net, {
      chipId: device!.info.chipId,
      cursor: { ...state.cursor },
      settings,
      history: state.history,
      steps: state.steps,
      adam: state.adam,
      codes: state.codes,
      runCodes,
      ...(state.best ? { best: state.best } : {}),
      ...(state.valDeployed ? { valDeployed: state.valDeployed } : {}),
    });
  try {
    // Every input is read and checked before the device is opened: the profile (its integrity
    // here, its chip once HELLO names the chip) and the data set against the network.
    const profilePath = opts.profile ?? settings.profile ?? undefined;
    const profile = profilePath ? await loadChipProfile(profilePath) : undefined;
    const data = await loadDataset(settings.dataset, {
      limitTrain: settings.limitTrain ?? undefined,
      limitTest: settings.limitTest ?? undefined,
      seed: settings.seed,
    });
    if (data.features !== net.features || data.classes !== net.classes) {
      throw new RangeError(
        `--dataset ${settings.dataset}: ${data.name} has ${data.features} features and ${data.classes} classes, the network ${net.features} features and ${net.classes} outputs: pass the data set it was trained on`,
      );
    }
    // The validation split, never the test part: samples neither the network's training nor this run's batches
    // saw when the network file says which trained it, else carved from the loaded training part with the run's
    // seed. Either way a resumed run takes the same samples.
    let outside: Awaited<ReturnType<typeof loadUnseen>> | undefined;
    if (!resuming) {
      const k = validationSize(opts.val, data.train.n, false);
      const unseen = k > 0 ? unseenOf(trainedOn, settings.dataset, k) : undefined;
      if (unseen) {
        outside = await loadUnseen(settings, unseen);
        if (outside.n === k)
          settings.valUnseen = {
            ...(unseen.seenSeed !== undefined ? { seenSeed: unseen.seenSeed } : {}),
            ...(unseen.seenLimit !== undefined ? { seenLimit: unseen.seenLimit } : {}),
          };
        else
          opts.warn(
            `note: only ${outside.n} training samples lie outside the network's training subset and this run's; the ${k} validation samples are carved from this run's training part`,
          );
      } else if (k > 0)
        opts.warn(
          `note: ${opts.model} does not say which samples trained it; the ${k} validation samples are carved from this run's training part and may include some it learnt from`,
        );
      settings.val = settings.valUnseen ? k : validationSize(opts.val, data.train.n);
    } else if (settings.val === undefined) opts.warn('note: this run was started without a validation split: it ends with its last epoch, as it was begun');
    const split = settings.val && !settings.valUnseen ? holdOut(data.train, settings.val, settings.seed) : undefined;
    if (!settings.val || !settings.valUnseen) outside = undefined;
    else outside ??= await loadUnseen(settings, { count: settings.val, ...settings.valUnseen });
    if (outside && outside.n !== settings.val)
      throw new Error(
        `the run's ${settings.val} validation samples outside the network's training subset are ${outside.n} now: the data set changed; start a new run`,
      );
    const train = split?.train ?? data.train;
    const val = split?.val ?? outside;
    device = await ChipDevice.open(opts.device);
    const info = device.info;
    if (savedChip !== undefined && savedChip !== info.chipId) {
      throw new Error(`the run was fine-tuning chip ${savedChip}, the device holds chip ${info.chipId}: resume on the same chip`);
    }
    checkFits(net, info);
    const unitTicks = unitTicksOf(net, info);
    let curves: LayerCurves[] | undefined;
    let timerOffset = 0;
    if (profile) {
      checkProfileChip(profile, profilePath!, info.chipId);
      curves = curvesFromProfile(profile, info);
      const physics = profileTwinPhysics(profile);
      // The profile's offset is in layer-0 windows; the twin's unit may differ.
      timerOffset = (physics.timerOffset * info.layers[0]!.horizonTicks) / unitTicks;
      const off = (a: number, b: number) => Math.abs(a - b) > 0.05 * Math.abs(b);
      if (net.config.model === 'pnn' && (off(net.config.ePlus, physics.ePlus) || off(net.config.eMinus, physics.eMinus))) {
        opts.warn(
          `note: the network was trained with ePlus ${net.config.ePlus.toFixed(2)}, eMinus ${net.config.eMinus.toFixed(2)}; the profile measured ${physics.ePlus.toFixed(2)}, ${physics.eMinus.toFixed(2)}. The device's times correct the forward pass, but a twin trained with the profile's values starts closer.`,
        );
      }
      // The twin's gradients sit at the chip's state only if its neurons fire where the chip's do.
      const levels = resuming ? undefined : missingNeuronLevels(net, profile);
      if (levels) {
        const before = net;
        net = net.withNeuronLevels(levels);
        before.dispose();
        opts.warn(
          `note: the twin takes the profile's measured firing levels and output delays in place of the ones ${opts.model} carries (a network trained with this --profile starts from them)`,
        );
      }
    } else {
      opts.warn(
        'WARNING: --uncalibrated: codes come from the NOMINAL transfer curves; the chip loop still corrects the forward pass, but every update lands on the chip with its mismatch',
      );
    }
    const solver = createSolver('dstd', { bins: settings.bins });
    const loss = resolveLoss(settings.loss);
    run.update({ device: { uri: opts.device, chipId: info.chipId }, summary: { settings } });
    // Written once the device is open and accepted: a run refused before that leaves no folder behind.
    if (split && !resuming)
      await writeFileAtomic(
        run.file('validation.json'),
        `${JSON.stringify({ samples: split.val.n, seed: settings.seed, of_train_samples: data.train.n, indices: Array.from(split.valIndices) })}\n`,
      );
    if (outside && !resuming)
      await writeFileAtomic(
        run.file('validation.json'),
        `${JSON.stringify({ samples: outside.n, seed: settings.seed, outside_training_subset: settings.valUnseen, data_set_train_rows: Array.from(outside.rows) })}\n`,
      );
    const nL = net.layers.length;

    // Bring the device to the state the next RUN expects: everything uploaded and verified.
    const mapping = new ChipMapping(net, info, curves);
    const mapCodes = () => mapping.codes().codes;
    if (!resuming) {
      state.codes = mapCodes();
      state.issued = undefined;
    }
    const startCodes = state.issued?.codes ?? state.codes;
    for (let l = 0; l < nL; l++) {
      await device.uploadWeights(l, startCodes[l]!, { signal: opts.signal });
      const v = await device.verifyWeights(l, startCodes[l]!);
      if (!v.ok) throw new Error(`layer ${l} did not verify after upload: ${v.detail}`);
    }
    let onDevice = startCodes.map((c) => c.slice());
    /**
     * Uploads in flight. All layers' changed runs are issued at once (ChipDevice keeps each layer's
     * uploads in issue order); a RUN waits for the uploads before it, so it never sees half an update.
     */
    let uploads: Promise<unknown> = Promise.resolve();
    let uploadError: unknown;
    const queueUpload = (next: Uint16Array[]) => {
      const prev = onDevice;
      onDevice = next.map((c) => c.slice());
      const dev = device!;
      const sent = Promise.all(next.map((codes, l) => dev.uploadChanged(l, prev[l]!, codes)));
      sent.catch((e: unknown) => (uploadError ??= e));
      uploads = Promise.all([uploads, sent]);
      let changed = 0;
      for (let l = 0; l < nL; l++) for (let k = 0; k < next[l]!.length; k++) if (prev[l]![k] !== next[l]![k]) changed++;
      return changed;
    };
    const drain = async () => {
      await uploads.catch(() => {});
      if (uploadError) throw uploadError;
    };

    const test = data.test;
    let deployedRead: FinetuneSummary['deployed_read'] = 'measured';
    /** The caller's read of the test part fits this run's deployment: the same codes on the chip, the same labels. */
    const reusableRead = () => {
      const r = opts.deployedRead;
      if (!r || resuming) return false;
      const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (x: number, i: number) => x === b[i]);
      const fits =
        r.predictions.length === test.n && same(r.labels, test.y) && r.codes.length === onDevice.length && r.codes.every((c, l) => same(c, onDevice[l]!));
      if (!fits) opts.warn('note: the deployment read given does not match this run (other codes or test samples); the deployment is measured again');
      return fits;
    };
    const evaluate = async (epoch: number, extra: Record<string, unknown>): Promise<{ ticks: Uint16Array[] }> => {
      await drain();
      const crc = await Promise.all(onDevice.map((c, l) => device!.verifyWeights(l, c)));
      const bad = crc.find((v) => !v.ok);
      if (bad) throw new Error(`CRC check after epoch ${epoch} failed: ${bad.detail}`);
      const reused = epoch === 0 && reusableRead() ? opts.deployedRead! : undefined;
      // A reused read still needs the first sample's spikes of every layer (the raster); one sample is read for them.
      const e = await evaluateOnDevice(device!, net, test.x, test.y, reused ? Math.min(1, test.n) : test.n, { signal: opts.signal });
      const testAcc = reused ? correctness(reused.predictions, test.y).reduce((a, v) => a + v, 0) / test.n : e.accuracy;
      if (epoch === 0) deployedRead = reused ? 'reused' : 'measured';
      const twin = evaluateNetwork(net, test, solver, { tauSoft: loss.tauSoft }).acc;
      // Selection looks at the validation split only; the test figures above are recorded, never compared.
      const vr = val ? await evaluateOnDevice(device!, net, val.x, val.y, val.n, { signal: opts.signal }) : undefined;
      const v = vr?.accuracy;
      const rec: EpochRecord = {
        epoch,
        device_acc: testAcc,
        twin_acc: twin,
        crc_ok: true,
        ...(reused ? { test_read: 'deployment read reused' } : {}),
        ...(v === undefined ? {} : { val_acc: v }),
        ...extra,
      };
      if (vr && v !== undefined) {
        const correct = correctness(vr.predictions, val!.y);
        let replace: boolean;
        if (epoch === 0 || !state.best) {
          if (epoch === 0) state.valDeployed = correct;
          replace = !state.best;
        } else if (settings.keepAlpha !== undefined && state.valDeployed) {
          // The keep rule (finetune-keep.ts): a significant paired gain over the deployment, then the most correct.
          const cmp = comparePaired(state.valDeployed, correct);
          Object.assign(rec, { val_gained: cmp.gained, val_lost: cmp.lost, val_p: cmp.p });
          replace = replacesKept(cmp, v, { epoch: state.best.epoch, score: state.best.valAcc }, settings.keepAlpha);
        } else {
          // A run begun before the rule: strictly better only, a tie keeps the earlier state.
          replace = v > state.best.valAcc;
        }
        if (replace) state.best = { epoch, valAcc: v, codes: onDevice.map((c) => c.slice()), weights: snapshotWeights(net) };
      }
      state.history.push(rec);
      run.metrics.append({ ...rec });
      return { ticks: e.sampleTicks };
    };
    let lastTicks: Uint16Array[] = [];
    if (!resuming) {
      opts.print(
        `spikeloop finetune: ${settings.model} on ${info.chipId} (${opts.device}), ${data.name} ${train.n} train${val ? ` + ${val.n} validation` : ''} / ${test.n} test, ${settings.epochs} epochs of batches of ${settings.batchSize}, Adam lr ${settings.lr}, ${settings.pipelined ? 'pipelined' : 'sequential'}`,
      );
      lastTicks = (await evaluate(0, { stage: 'deployed' })).ticks;
      await checkpoint(state.codes);
    } else {
      opts.print(`spikeloop finetune: resuming ${run.path} at epoch ${state.cursor.epoch + 1}, batch ${state.cursor.batch + 1} (${state.steps} batches done)`);
    }
    consistent = true;
    opts.print(`deployed: device ${formatPercent(state.history[0]?.device_acc)}, twin ${formatPercent(state.history[0]?.twin_acc)}`);

    const perEpoch = Math.ceil(train.n / settings.batchSize);
    const bar = createProgress({ total: settings.epochs * perEpoch, label: 'finetune', unit: 'batches', stream: opts.progress });
    bar.update(state.cursor.epoch * perEpoch + state.cursor.batch);
    const allTimings: BatchTiming[] = [];
    let changedTotal = 0;
    let batchesThisSession = 0;
    let interrupted = false;
    let resumeUpload = resuming ? state.codes : undefined;
    // The link traffic of the training batches alone (not the evaluations between epochs).
    const traffic = { bytesOut: 0, bytesIn: 0, frames: 0, byType: {} as Record<string, number> };

    for (let epoch = state.cursor.epoch; epoch < settings.epochs; epoch++) {
      const order = epochOrder(train.n, settings.seed, epoch);
      const all = [...miniBatches(order, settings.batchSize)];
      const first = state.cursor.epoch === epoch ? state.cursor.batch : 0;
      state.cursor = { epoch, batch: first };
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      const epochTimings: BatchTiming[] = [];
      const items = all
        .slice(first)
        .map((indices, k) => ({ batch: first + k, indices }))
        [Symbol.iterator]();
      const s0 = device.link.stats;
      await runPipeline({
        batches: items,
        pipelined: settings.pipelined,
        signal: opts.signal,
        measure: (b) => {
          const x = gatherRows(train.x, train.features, b.indices);
          const ticks = mapping.encodeInputs(x, b.indices.length);
          let markSent!: () => void;
          const sent = new Promise<void>((r) => (markSent = r));
          const result = (async () => {
            try {
              // Never measure half an update: the uploads before this RUN complete first.
              await drain();
              state.issued = { epoch, batch: b.batch, codes: onDevice };
              const p = device!.run(ticks, b.indices.length);
              // After a resume the first RUN uses the checkpoint's run codes; the current ones follow it.
              if (resumeUpload) {
                queueUpload(resumeUpload);
                resumeUpload = undefined;
              }
              markSent();
              return { x, ticks: await p };
            } finally {
              markSent();
            }
          })();
          return { sent, result };
        },
        learn: async (b, m) => {
          if (uploadError) throw uploadError;
          const n = b.indices.length;
          const labels = gatherLabels(train.y, b.indices);
          const measured = net.layers.map((_, l) => mapping.measuredTimes(l, m.ticks[l]!, n, timerOffset));
          const g = inLoopGradients(net, m.x, labels, measured, solver, loss);
          if (!Number.isFinite(g.loss)) throw new Error(`loss became ${g.loss} at epoch ${epoch + 1}, batch ${b.batch + 1}; lower --lr`);
          adamStep(net, state.adam, g.grads, { lr: settings.lr });
          // The batch is applied: from here a checkpoint counts it once.
          state.cursor = { epoch, batch: b.batch + 1 };
          state.steps++;
          state.codes = mapCodes();
          changedTotal += queueUpload(state.codes);
          lossSum += g.loss * n;
          correct += g.correct;
          seen += n;
          batchesThisSession++;
          bar.update(epoch * perEpoch + b.batch + 1, { epoch: epoch + 1, loss: lossSum / seen, acc: correct / seen });
          if (opts.onBatch) {
            const samples = split ? Uint32Array.from(b.indices, (i) => split.trainIndices[i]!) : b.indices.slice();
            opts.onBatch({ epoch, batch: b.batch, steps: state.steps, acc: correct / seen, samples });
          }
          if (opts.checkpointEvery && state.steps % opts.checkpointEvery === 0 && b.batch + 1 < all.length) {
            await drain();
            await checkpoint(cursorRunCodes());
          }
        },
        onBatch: (t) => epochTimings.push(t),
      });
      await uploads.catch(() => {});
      const s1 = device.link.stats;
      traffic.bytesOut += s1.bytesOut - s0.bytesOut;
      traffic.bytesIn += s1.bytesIn - s0.bytesIn;
      traffic.frames += s1.framesOut - s0.framesOut;
      for (const [k, v] of Object.entries(s1.sent)) traffic.byType[k] = (traffic.byType[k] ?? 0) + v.bytes - (s0.sent[k as keyof typeof s0.sent]?.bytes ?? 0);
      allTimings.push(...epochTimings.slice(1));
      if (opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      // Epoch end: drained pipeline, verified codes, device and twin accuracy, checkpoint.
      const steady = epochTimings.slice(1);
      const host = mean(steady.map((t) => t.hostMs));
      const dev = mean(steady.flatMap((t) => (t.deviceMs === undefined ? [] : [t.deviceMs])));
      const wall = mean(steady.map((t) => t.wallMs));
      lastTicks = (
        await evaluate(epoch + 1, {
          train_loss: seen ? lossSum / seen : null,
          train_device_acc: seen ? correct / seen : null,
          batches: epochTimings.length,
          host_ms_per_batch: host,
          device_ms_per_batch: dev,
          wall_ms_per_batch: wall,
          overlap_efficiency: host !== null && wall ? Math.max(host, dev ?? 0) / wall : null,
          lr: settings.lr,
        })
      ).ticks;
      state.cursor = { epoch: epoch + 1, batch: 0 };
      await checkpoint(state.codes);
      const r = state.history.at(-1)!;
      bar.log(
        `epoch ${epoch + 1}/${settings.epochs}: device ${formatPercent(r.device_acc)}, twin ${formatPercent(r.twin_acc)}, train loss ${(seen ? lossSum / seen : NaN).toFixed(4)}, host ${host?.toFixed(0)} ms / device ${dev?.toFixed(0) ?? '-'} ms / wall ${wall?.toFixed(0)} ms per batch`,
      );
    }
    bar.finish();
    if (interrupted) {
      await drain().catch(() => {});
      await checkpoint(cursorRunCodes());
    }
    finalSaved = true;

    // The run ends on the kept state: if a later epoch validated worse, the kept codes go back on the chip
    // (only the runs that differ), CRC-verified, and the twin takes the matching conductances. The checkpoint
    // keeps the last state, so a resumed run with more epochs continues training from there.
    const final = state.history.at(-1)!;
    const best = interrupted ? undefined : state.best;
    const kept = best && state.history.find((r) => r.epoch === best.epoch);
    if (best && best.epoch !== final.epoch) {
      await drain();
      const from = onDevice;
      await Promise.all(best.codes.map((c, l) => device!.uploadChanged(l, from[l]!, c, { signal: opts.signal })));
      onDevice = best.codes.map((c) => c.slice());
      const crc = await Promise.all(best.codes.map((c, l) => device!.verifyWeights(l, c)));
      const bad = crc.find((v) => !v.ok);
      if (bad) throw new Error(`CRC check after restoring the codes of epoch ${best.epoch} failed: ${bad.detail}`);
      restoreWeights(net, best.weights);
      lastTicks = (await evaluateOnDevice(device, net, test.x, test.y, Math.min(1, test.n), { signal: opts.signal })).sampleTicks;
    }
    const comparisons = state.history.flatMap((r) =>
      typeof r.val_gained === 'number' && typeof r.val_lost === 'number' && typeof r.val_p === 'number'
        ? [{ epoch: r.epoch, gained: r.val_gained, lost: r.val_lost, p: r.val_p }]
        : [],
    );
    if (best) {
      const why = comparisons.map((c) => `epoch ${c.epoch} +${c.gained}/-${c.lost}, p ${c.p < 0.001 ? c.p.toExponential(1) : c.p.toFixed(3)}`).join('; ');
      opts.print(
        `kept ${best.epoch === 0 ? 'the deployment (epoch 0)' : `epoch ${best.epoch}`} of ${final.epoch}: validation device accuracy ${state.history.map((r) => (typeof r.val_acc === 'number' ? formatPercent(r.val_acc) : '-')).join(' / ')} (epochs 0-${final.epoch})${why ? `, samples gained/lost against the deployment ${why} (replaces it at p <= ${settings.keepAlpha})` : ''}; test ${formatPercent(kept?.device_acc)} (last epoch ${formatPercent(final.device_acc)})`,
      );
    }

    const host = mean(allTimings.map((t) => t.hostMs)) ?? 0;
    const devMs = mean(allTimings.flatMap((t) => (t.deviceMs === undefined ? [] : [t.deviceMs])));
    const wall = mean(allTimings.map((t) => t.wallMs)) ?? 0;
    const networkFile = run.file('network.bin');
    await saveNetwork(networkFile, net, {
      dataset: data.name,
      finetunedOn: info.chipId,
      seed: settings.seed,
      epochs: state.cursor.epoch,
      ...(best ? { keptEpoch: best.epoch } : {}),
    });
    const summary: FinetuneSummary = {
      device: opts.device,
      chip_id: info.chipId,
      curves: curves ? 'calibrated' : 'nominal',
      deployed_acc: state.history[0]?.device_acc ?? NaN,
      finetuned_acc: kept?.device_acc ?? final.device_acc,
      twin_acc: kept?.twin_acc ?? final.twin_acc,
      epochs: final.epoch,
      kept_epoch: best?.epoch ?? null,
      val_samples: settings.val ?? 0,
      val_source: settings.val ? (settings.valUnseen ? 'unseen' : 'carved') : null,
      val_acc: state.history.map((r) => (typeof r.val_acc === 'number' ? r.val_acc : null)),
      last_epoch_acc: final.device_acc,
      kept_state: !best ? 'last' : best.epoch === 0 ? 'deployment' : 'epoch',
      keep_alpha: best && settings.keepAlpha !== undefined ? settings.keepAlpha : null,
      val_comparisons: comparisons,
      deployed_read: deployedRead,
      batches: state.steps,
      host_ms_per_batch: host,
      device_ms_per_batch: devMs,
      wall_ms_per_batch: wall,
      overlap_efficiency: wall > 0 ? Math.max(host, devMs ?? 0) / wall : null,
      pipelined: settings.pipelined,
      changed_codes_per_batch: batchesThisSession ? changedTotal / batchesThisSession : 0,
      link_per_batch: perBatch(traffic, batchesThisSession),
      interrupted,
      cursor: { ...state.cursor },
      network: networkFile,
      out: run.path,
    };
    await writeOutputs(run, state.history, lastTicks, info.layers, summary, data.name);
    opts.print(
      '\n' +
        renderTable(
          [
            { figure: 'device accuracy, deployed', value: formatPercent(summary.deployed_acc) },
            { figure: 'device accuracy, fine-tuned', value: formatPercent(summary.finetuned_acc) },
            ...(best ? [{ figure: 'kept state (validation)', value: `${keptText(summary)} (${val!.n} samples)` }] : []),
            { figure: 'twin accuracy', value: formatPercent(summary.twin_acc) },
            { figure: 'host / device / wall ms per batch', value: `${host.toFixed(1)} / ${devMs?.toFixed(1) ?? '-'} / ${wall.toFixed(1)}` },
            { figure: 'overlap efficiency', value: summary.overlap_efficiency?.toFixed(3) ?? '-' },
          ],
          { title: `spikeloop finetune: ${data.name} on ${info.chipId}${interrupted ? ' (interrupted)' : ''}` },
        ),
    );
    if (interrupted) {
      opts.print(
        `interrupted at epoch ${state.cursor.epoch + 1}, batch ${state.cursor.batch + 1}: continue with spikeloop finetune --resume ${run.path} --device ${opts.device}`,
      );
      run.fail(new Error('interrupted'), 'interrupted');
    } else run.finish({ ...summary });
    return summary;
  } catch (err) {
    // Save what is consistent: every batch before the cursor applied once, the device state to restore.
    if (consistent && !finalSaved) await checkpoint(cursorRunCodes()).catch(() => {});
    const stopped = run.stopped(
      err,
      opts.signal,
      consistent
        ? `continue with spikeloop finetune --resume ${run.path} --device ${opts.device}`
        : resuming
          ? `nothing changed; continue with spikeloop finetune --resume ${run.path} --device ${opts.device}`
          : 'nothing was trained yet: run the same command again',
    );
    if (opts.signal?.aborted) throw stopped;
    if (consistent && isLinkLoss(err)) {
      throw new Error(
        `the device was lost at epoch ${state.cursor.epoch + 1}, batch ${state.cursor.batch + 1} (${(err as Error).message}); the run is saved: reconnect and continue with spikeloop finetune --resume ${run.path} --device URI`,
      );
    }
    throw err;
  } finally {
    net.dispose();
    await device?.close().catch(() => {});
  }
}

/** The kept state in words: the deployment itself, or which epoch, and against what rule. */
function keptText(s: FinetuneSummary): string {
  const rule = s.keep_alpha === null ? 'best validation accuracy' : `sign test on validation, p <= ${s.keep_alpha}`;
  if (s.kept_state === 'deployment')
    return `the deployment itself (no epoch beat it: ${rule}); the fine-tuned figure is the deployment's${s.deployed_read === 'reused' ? ' own read' : ''}`;
  return `epoch ${s.kept_epoch} of ${s.epochs} (${rule})`;
}

async function writeOutputs(
  run: RunDir,
  history: EpochRecord[],
  ticks: Uint16Array[],
  chip: { horizonTicks: number; outputs: number }[],
  summary: FinetuneSummary,
  name: string,
): Promise<void> {
  const horizons = chip.map((l) => l.horizonTicks);
  const outputs = chip.map((l) => l.outputs);
  const epochs = history.map((r) => r.epoch);
  const withVal = history.filter((r) => typeof r.val_acc === 'number');
  const curve = lineChart({
    title: `${name}: accuracy while fine-tuning on the chip`,
    xLabel: 'epoch (0 = deployed)',
    yLabel: 'accuracy (test; validation dashed)',
    series: [
      { name: 'device', x: epochs, y: history.map((r) => r.device_acc) },
      { name: 'twin', x: epochs, y: history.map((r) => r.twin_acc), dashed: true },
      ...(withVal.length ? [{ name: 'device, validation', x: withVal.map((r) => r.epoch), y: withVal.map((r) => r.val_acc as number), dashed: true }] : []),
    ],
  });
  await writeFileAtomic(run.file('learning-curve.svg'), curve);
  const h0 = horizons[0]!;
  const raster =
    ticks.length === 0
      ? undefined
      : spikeRaster({
          title: 'device spikes, first test sample (after fine-tuning)',
          xLabel: 'time (layer-0 windows)',
          layers: ticks.map((t, l) => ({
            name: `layer ${l}`,
            times: Array.from(t.subarray(0, outputs[l]!), (v) => (v === SILENT_TICK ? Infinity : v / h0)),
            horizon: horizons[l]! / h0,
          })),
        });
  if (raster) await writeFileAtomic(run.file('spike-raster.svg'), raster);
  const sections = [
    { title: 'Learning curve', blocks: [{ kind: 'plot' as const, svg: curve }] },
    ...(raster ? [{ title: 'Spikes on the device', blocks: [{ kind: 'plot' as const, svg: raster }] }] : []),
    { title: 'Epochs', blocks: [{ kind: 'table' as const, rows: history.map((r) => ({ ...r })) }] },
  ];
  await writeHtmlReport(run.file('report.html'), {
    title: `spikeloop finetune: ${name}`,
    summary: {
      'device accuracy, deployed': formatPercent(summary.deployed_acc),
      'device accuracy, fine-tuned': formatPercent(summary.finetuned_acc),
      'kept state (validation)': summary.kept_epoch === null ? 'the last epoch (no validation split)' : `${keptText(summary)} (${summary.val_samples} samples)`,
      'twin accuracy': formatPercent(summary.twin_acc),
      'overlap efficiency': summary.overlap_efficiency?.toFixed(3) ?? '-',
    },
    sections,
  });
}
