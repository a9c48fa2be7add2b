/**
 * Cross-validation on the farm. `farm submit train --cv K` queues one `cv-fold` job per fold on the
 * CPU queue (any worker, so the folds train on as many computers as take CPU jobs) and the `train`
 * job as their parent (a BullMQ flow): it runs once every fold has finished and gathers them into
 * what `spikeloop train --cv K` writes on one computer: cv.jsonl, the pooled accuracy and confusion
 * matrix, the report. A fold is a pure function of the flags (the folds come from the seed), so a
 * retried fold trains the same network.
 */
import { z } from 'zod';
import { initBackend } from '../../models/tf/backend.ts';
import { registerGradients } from '../../models/tf/gradients.ts';
import { presetFor } from '../../models/training/presets.ts';
import { MetricsLog } from '../runs/metrics-log.ts';
import { checkOutWritable } from '../runs/out-path.ts';
import { openRunDir } from '../runs/run-dir.ts';
import { cvFold, cvSummary, prepareCv, type CvFoldOutcome } from '../workflows/train-cv.ts';
import type { TrainSummary, TrainWorkflowOptions } from '../workflows/train-options.ts';
import { snnSetup } from '../workflows/train-snn.ts';

type CvOptions = TrainWorkflowOptions & { cv: number };

/** What a fold and the gathering both start from: the preset, the folds (from the seed) and the run folder. */
async function openCvRun(opts: CvOptions) {
  const preset = presetFor(opts.dataset);
  checkOutWritable(opts.out);
  const cv = await prepareCv(opts, opts.cv);
  const run = openRunDir({ out: opts.out, info: { command: 'train', args: opts.args ?? [] } });
  return { preset, cv, run };
}

/** Trains and tests fold `fold` (1..K) in `opts.out`; the result carries what the gathering job needs. */
export async function runCvFoldJob(opts: CvOptions, fold: number): Promise<Record<string, unknown>> {
  const { preset, cv, run } = await openCvRun(opts);
  try {
    const backend = await initBackend();
    registerGradients();
    run.update({ versions: { tfjs_backend: backend } });
    const s = snnSetup(opts, preset, cv.pool.features, cv.pool.classes);
    run.update({ summary: { settings: { ...s.settings, cv: opts.cv, cv_part: cv.pool.part, cv_fold: fold } } });
    const r = await cvFold(opts, s, cv.pool, cv.folds, fold - 1, run);
    const { history, samplesPerS, confusion, network, record, ...row } = r;
    const out = {
      ...row,
      cv_k: opts.cv,
      samples_per_s: samplesPerS,
      history,
      // Plain numbers: a job's result goes through JSON in Redis.
      confusion: { classes: confusion.classes, n: confusion.n, counts: Array.from(confusion.counts) },
      network,
      record,
    };
    run.finish(out);
    return out;
  } catch (err) {
    throw run.stopped(err, opts.signal, 'the fold is run again from the start by its next attempt');
  }
}

/** A fold job's result as it comes back from Redis: checked before it is trusted. */
const foldResultSchema = z.object({
  fold: z.number().int().min(1),
  n: z.number().int().min(1),
  test_acc: z.number(),
  test_acc_exact: z.number(),
  train_acc: z.number(),
  correct: z.number().int(),
  correct_exact: z.number().int(),
  n_train: z.number().int(),
  cv_k: z.number().int(),
  samples_per_s: z.number(),
  history: z.array(z.record(z.string(), z.unknown())),
  confusion: z.object({ classes: z.number().int().min(1), n: z.number().int(), counts: z.array(z.number().int().min(0)) }),
  network: z.string(),
  record: z.record(z.string(), z.unknown()),
});

/** The folds' results, in fold order; throws naming what is missing or wrong. */
export function foldOutcomes(children: unknown[], k: number): CvFoldOutcome[] {
  const out: CvFoldOutcome[] = [];
  for (const c of children) {
    const r = foldResultSchema.safeParse(c);
    if (!r.success) throw new Error(`a cv-fold result is not one: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const f = r.data;
    if (f.cv_k !== k) throw new Error(`fold ${f.fold} was trained for ${f.cv_k} folds, not ${k}`);
    if (f.confusion.counts.length !== f.confusion.classes * (f.confusion.classes + 1)) throw new Error(`fold ${f.fold}: confusion matrix of the wrong size`);
    out.push({
      fold: f.fold,
      n: f.n,
      test_acc: f.test_acc,
      test_acc_exact: f.test_acc_exact,
      train_acc: f.train_acc,
      correct: f.correct,
      correct_exact: f.correct_exact,
      n_train: f.n_train,
      history: f.history as unknown as CvFoldOutcome['history'],
      samplesPerS: f.samples_per_s,
      confusion: { classes: f.confusion.classes, n: f.confusion.n, counts: Uint32Array.from(f.confusion.counts) },
      network: f.network,
      record: f.record,
    });
  }
  out.sort((a, b) => a.fold - b.fold);
  const got = out.map((o) => o.fold).join(',');
  const want = Array.from({ length: k }, (_, i) => i + 1).join(',');
  if (got !== want) throw new Error(`cross-validation over ${k} folds gathered folds ${got || 'none'}; each of 1..${k} exactly once is needed`);
  return out;
}

/** Gathers the folds' results into the cross-validation's run folder `opts.out`. */
export async function runCvGatherJob(opts: CvOptions, children: unknown[]): Promise<TrainSummary> {
  const started = performance.now();
  const outcomes = foldOutcomes(children, opts.cv);
  const { preset, cv, run } = await openCvRun(opts);
  try {
    const backend = await initBackend();
    run.update({ versions: { tfjs_backend: backend } });
    const s = snnSetup(opts, preset, cv.pool.features, cv.pool.classes);
    run.update({ summary: { settings: { ...s.settings, cv: opts.cv, cv_part: cv.pool.part } } });
    const log = new MetricsLog(run.file('cv.jsonl'));
    try {
      for (const o of outcomes) log.append(o.record);
    } finally {
      log.close();
    }
    const summary = await cvSummary(opts, s, cv.pool, outcomes, run, backend);
    summary.seconds = (performance.now() - started) / 1000;
    run.finish(summary);
    return summary;
  } catch (err) {
    throw run.stopped(err, opts.signal, 'the gathering is run again by its next attempt');
  }
}
