/**
 * Runs one farm job on this host: the same workflows the CLI commands call (host/workflows), with
 * the job's validated flags, its run folder in the shared farm folder, and its progress forwarded.
 *
 * Run folders: jobs/<job id>/try-<n> per attempt (a killed attempt leaves a partial folder that the
 * next attempt does not touch), except fine-tuning, which keeps jobs/<job id>/finetune so that a
 * retried attempt resumes from the checkpoint of the one before. Each finished attempt leaves
 * farm-result.json beside its outputs: the farm's own record that the job completed there.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomicSync } from '../../models/io/atomic-file.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { runBringup } from '../workflows/bringup.ts';
import { writeBringupJson, writeBringupReport } from '../workflows/bringup-report.ts';
import { runCalibrateWorkflow } from '../workflows/calibrate.ts';
import { defaultWorkers } from '../../models/parallel/pool.ts';
import { runDeployWorkflow } from '../workflows/deploy.ts';
import { hasCheckpoint } from '../workflows/finetune-checkpoint.ts';
import { runFinetune } from '../workflows/finetune.ts';
import { runTrainWorkflow } from '../workflows/train.ts';
import { runCvFoldJob, runCvGatherJob } from './cv-jobs.ts';
import { parseJobFlags, type JobData } from './jobs.ts';

export const RESULT_FILE = 'farm-result.json';

export interface JobProgress {
  stage: string;
  done: number;
  total: number;
}

export interface JobRunContext {
  jobId: string;
  data: JobData;
  /** The board's URI on this worker (chip jobs). */
  uri?: string;
  farmDir: string;
  /** The results of the job's children (a cross-validation's folds, for the train job that gathers them). */
  children?: unknown[];
  /** Threads the job's own pools may use when its flags do not say (the worker's share of the cores; default all of them). */
  workers?: number;
  signal: AbortSignal;
  progress(p: JobProgress): void;
  log(line: string): void;
}

/** A failure that retrying cannot fix (the board now holds another chip): the job fails at once. */
export class PermanentJobError extends Error {
  override name = 'PermanentJobError';
}

/** A network that does not fit the chip will not fit it on the next attempt either. */
async function notFitting<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof RangeError && /does not fit/.test(err.message)) throw new PermanentJobError(err.message);
    throw err;
  }
}

export const jobDir = (farmDir: string, jobId: string) => join(farmDir, 'jobs', jobId);

/** A fresh attempt folder: try-1, try-2, ... (a killed attempt's folder is left as it was). */
function attemptDir(farmDir: string, jobId: string): string {
  const base = jobDir(farmDir, jobId);
  mkdirSync(base, { recursive: true });
  const n = readdirSync(base).filter((f) => /^try-\d+$/.test(f)).length + 1;
  const dir = join(base, `try-${n}`);
  mkdirSync(dir);
  return dir;
}

/** Opens the board, checks it still holds the job's chip, and closes it: a clear reason when it does not answer. */
async function checkBoard(uri: string, chip: string): Promise<void> {
  let device: ChipDevice;
  try {
    device = await ChipDevice.open(uri, { timeouts: { HELLO: 3000 } });
  } catch (err) {
    throw new Error(`board ${uri} of chip ${chip} does not answer: ${(err as Error).message}`);
  }
  const id = device.info.chipId;
  await device.close();
  if (id !== chip) throw new PermanentJobError(`board ${uri} now holds chip ${id}, not ${chip}`);
}

export async function runFarmJob(ctx: JobRunContext): Promise<Record<string, unknown>> {
  const { data, jobId, farmDir, signal } = ctx;
  const flags = parseJobFlags(data.kind, data.flags);
  const p = flags.params as Record<string, any>;
  const chip = data.chip;
  if (chip !== null) {
    if (!ctx.uri) throw new PermanentJobError(`no board for chip ${chip} on this worker`);
    await checkBoard(ctx.uri, chip);
  }
  const uri = ctx.uri!;
  const started = performance.now();
  let summary: Record<string, unknown>;
  let dir: string;

  switch (data.kind) {
    case 'bringup': {
      dir = attemptDir(farmDir, jobId);
      const rec = await runBringup(() => ChipDevice.open(uri), {
        signal,
        log: ctx.log,
        seed: p.seed,
        jitterRepeats: p.jitterRuns,
        maxJitterTicks: p.maxJitter,
        onProgress: (q) => ctx.progress({ stage: q.step, done: q.done, total: q.total }),
      });
      // A board that stops answering is the farm's problem (retry); what the chip shows is the result.
      if (rec.stoppedEarly?.step === 'link') throw new Error(`board ${uri} of chip ${chip} does not answer: ${rec.stoppedEarly.reason}`);
      writeBringupJson(join(dir, 'bringup.json'), rec);
      await writeBringupReport(join(dir, 'report.html'), rec);
      summary = {
        ok: rec.ok,
        chip_id: rec.device.chipId ?? chip,
        stopped_early: rec.stoppedEarly ?? null,
        checks: Object.fromEntries(rec.checks.map((c) => [c.step, c.status])),
        failed_checks: rec.checks.filter((c) => c.status === 'fail').map((c) => `${c.title}: ${c.detail}`),
        dead_neurons: rec.dead_neurons,
        bad_synapses: rec.bad_synapses,
        jitter_ticks: rec.jitter_ticks,
        report: join(dir, 'report.html'),
      };
      break;
    }
    case 'calibrate': {
      dir = attemptDir(farmDir, jobId);
      const device = await ChipDevice.open(uri);
      try {
        const sizes: Record<string, number> = {};
        if (p.sweepRepeats !== undefined) sizes.sweepRepeats = p.sweepRepeats;
        if (p.patterns !== undefined) sizes.patternsPerConfig = p.patterns;
        if (p.heldOut !== undefined) sizes.heldOutPatterns = p.heldOut;
        summary = {
          ...(await runCalibrateWorkflow(device, {
            out: dir,
            quick: p.quick,
            profile: p.profile,
            layers: p.layers,
            seed: p.seed,
            adaptive: p.adaptive,
            workers: p.workers ?? ctx.workers ?? defaultWorkers(),
            sizes: Object.keys(sizes).length ? sizes : undefined,
            signal,
            print: ctx.log,
            deviceUri: uri,
            onProgress: (stage, done, total) => ctx.progress({ stage, done, total }),
          })),
        };
      } finally {
        await device.close();
      }
      break;
    }
    case 'deploy': {
      dir = attemptDir(farmDir, jobId);
      ctx.progress({ stage: 'deploy', done: 0, total: 1 });
      summary = {
        ...(await notFitting(
          runDeployWorkflow({
            device: uri,
            model: p.model,
            profile: p.nominal ? undefined : p.profile,
            dataset: p.dataset,
            limitTest: p.limitTest,
            seed: p.seed,
            signal,
            print: ctx.log,
            warn: ctx.log,
          }),
        )),
      };
      writeJsonAtomicSync(join(dir, 'deploy.json'), summary);
      break;
    }
    case 'finetune': {
      dir = join(jobDir(farmDir, jobId), 'finetune');
      const resume = hasCheckpoint(dir);
      // Killed before its first checkpoint: nothing to resume, and a new run needs an empty folder.
      if (!resume && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      const epochs = p.epochs as number;
      const s = await notFitting(
        runFinetune({
          device: uri,
          out: dir,
          resume,
          model: resume ? undefined : p.model,
          profile: p.profile,
          uncalibrated: resume ? undefined : p.uncalibrated,
          dataset: resume ? undefined : p.dataset,
          epochs,
          lr: resume ? undefined : p.lr,
          batchSize: resume ? undefined : p.batchSize,
          seed: resume ? undefined : p.seed,
          limitTrain: resume ? undefined : p.limitTrain,
          limitTest: resume ? undefined : p.limitTest,
          checkpointEvery: p.checkpointEvery,
          args: ['farm', data.kind, jobId],
          signal,
          print: ctx.log,
          warn: ctx.log,
          onBatch: (q) => ctx.progress({ stage: `epoch ${q.epoch}`, done: q.epoch, total: epochs }),
        }),
      );
      if (s.interrupted)
        throw new Error(
          signal.aborted
            ? `fine-tuning stopped: ${String((signal.reason as Error)?.message ?? signal.reason)}; the next attempt resumes from its checkpoint`
            : 'fine-tuning was interrupted; the next attempt resumes from its checkpoint',
        );
      summary = { ...s, resumed: resume };
      break;
    }
    case 'train':
    case 'cv-fold': {
      dir = attemptDir(farmDir, jobId);
      const opts = {
        dataset: p.dataset,
        model: 'pnn' as const,
        solver: 'dstd' as const,
        layers: p.layers,
        bins: 16,
        epochs: p.epochs,
        seed: p.seed ?? 1,
        out: dir,
        lr: p.lr,
        batchSize: p.batchSize,
        limitTrain: p.limitTrain,
        limitTest: p.limitTest,
        fromAnn: false,
        cv: p.cv,
        args: ['farm', data.kind, jobId],
        signal,
        print: ctx.log,
        progress: { write: () => true, isTTY: false },
      };
      if (data.kind === 'cv-fold') {
        ctx.progress({ stage: `fold ${p.fold}/${p.cv}`, done: 0, total: 1 });
        summary = await runCvFoldJob({ ...opts, cv: p.cv }, p.fold);
      } else if (p.cv !== undefined && ctx.children?.length) {
        // The parent of the folds' jobs (submit.ts): they have all finished; gather them.
        ctx.progress({ stage: 'gathering folds', done: 0, total: 1 });
        summary = { ...(await runCvGatherJob({ ...opts, cv: p.cv }, ctx.children)), network: null };
      } else summary = { ...(await runTrainWorkflow(opts)), network: p.cv === undefined ? join(dir, 'network.bin') : null };
      break;
    }
  }
  const result = {
    ...summary,
    job_id: jobId,
    kind: data.kind,
    chip: chip,
    artifacts: dir,
    job_seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
  };
  writeJsonAtomicSync(join(dir, RESULT_FILE), result);
  return result;
}
