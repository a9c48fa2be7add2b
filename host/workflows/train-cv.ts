/**
 * `spikeloop train --cv K`: stratified K-fold cross-validation with the SNN flow (train-snn.ts),
 * cv.jsonl, one network per fold, the pooled confusion matrix and report.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import { addConfusion, type ConfusionMatrix } from '../../models/training/confusion.ts';
import type { EpochMetrics } from '../../models/training/trainer.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { CONFUSION_FILE, writeConfusion } from './confusion-report.ts';
import { lineChart } from '../report/svg-plot.ts';
import { MetricsLog } from '../runs/metrics-log.ts';
import type { RunDir } from '../runs/run-dir.ts';
import { renderTable } from '../ui/table.ts';
import { displayPath, formatPercent } from '../ui/format.ts';
import type { Preset } from '../../models/training/presets.ts';
import type { TrainSummary, TrainWorkflowOptions } from './train-options.ts';
import { snnSetup, trainOneSnn, type SnnSetup } from './train-snn.ts';

/** Why `--cv K` cannot go with the other flags (the CLI's flag check and the workflow both ask), or undefined. */
export function cvFlagConflict(o: { cv?: number; cvPart?: CvPart; fromAnn?: boolean; limitTrain?: number; limitTest?: number }): string | undefined {
  if (o.cv === undefined) return o.cvPart === undefined ? undefined : '--cv-part chooses what --cv pools; add --cv K or drop --cv-part';
  if (o.fromAnn) return '--cv works with the SNN flow only; drop --from-ann';
  if (o.limitTrain !== undefined || o.limitTest !== undefined)
    return `--cv pools ${o.cvPart === 'train' ? 'the whole training part' : 'the whole data set'} into ${o.cv} folds; drop --limit-train / --limit-test`;
  return undefined;
}

/** Checks `--cv K` against the flags and the data (before any run folder exists) and assigns the folds. */
export async function prepareCv(opts: TrainWorkflowOptions, k: number): Promise<{ k: number; pool: PooledDataset; folds: Uint8Array }> {
  const conflict = cvFlagConflict({ ...opts, cv: k });
  if (conflict) throw new CrossValidationError(conflict);
  if (!Number.isInteger(k) || k < 2 || k > 20) throw new CrossValidationError(`--cv must be a whole number from 2 to 20, got ${k}`);
  const pool = await loadPooledDataset(opts.dataset, opts.cvPart ?? 'all');
  const problem = foldCountProblem(pool.y, pool.classes, pool.classNames, k);
  if (problem) throw new CrossValidationError(problem);
  return { k, pool, folds: stratifiedFolds(pool.y, pool.classes, k, opts.seed) };
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

/** One fold's outcome: its row, its learning curve, its confusion matrix, its network and its cv.jsonl line. */
export interface CvFoldOutcome extends CvFold {
  history: EpochMetrics[];
  samplesPerS: number;
  /** Held-out part, exact solver. */
  confusion: ConfusionMatrix;
  network: string;
  /** The fold's line of cv.jsonl. */
  record: Record<string, unknown>;
}

/**
 * Fold `f` (0-based) of a cross-validation: a fresh network trained on the other folds (settings
 * exactly as snnFlow's), tested on the held-out fold; its network in `fold-<f+1>/` of the run folder.
 * One fold is a job of its own on a board farm (host/farm), where every fold may run on another host.
 */
export async function cvFold(
  opts: TrainWorkflowOptions & { cv: number },
  s: SnnSetup,
  pool: PooledDataset,
  folds: Uint8Array,
  f: number,
  run: RunDir,
): Promise<CvFoldOutcome> {
  const k = opts.cv;
  const parts = foldParts(pool, folds, f, opts.seed);
  const dir = run.file(`fold-${f + 1}`);
  mkdirSync(dir, { recursive: true });
  const modelFile = join(dir, 'network.bin');
  const r = await trainOneSnn(opts, s, parts, run, {
    label: `fold ${f + 1}/${k}`,
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
  const record = {
    ...fold,
    class_counts: classCounts(parts.test.y, pool.classes),
    test_indices: Array.from(parts.testIndices, (i) => pool.sampleIndex[i]!),
    ...(parts.normalization ? { normalization: parts.normalization } : {}),
  };
  return { ...fold, history: r.history, samplesPerS: r.samplesPerS, confusion: r.confusion, network: modelFile, record };
}

/** The line cvFlow prints as a fold finishes. */
export const cvFoldLine = (r: CvFold, k: number) =>
  `fold ${r.fold}/${k}: ${r.n} held out, test ${formatPercent(r.test_acc)} (exact solver ${formatPercent(r.test_acc_exact)}), train ${formatPercent(r.train_acc)}`;

/**
 * Stratified K-fold cross-validation with the SNN flow: per fold a fresh network trained on the
 * other folds (settings exactly as snnFlow's) and tested on the held-out fold.
 */
export async function cvFlow(
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
  const results: CvFoldOutcome[] = [];
  try {
    for (let f = 0; f < k; f++) {
      const r = await cvFold(opts, s, pool, folds, f, run);
      results.push(r);
      log.append(r.record);
      opts.print(cvFoldLine(r, k));
    }
  } finally {
    log.close();
  }
  return cvSummary(opts, s, pool, results, run, backend);
}

/**
 * The cross-validation's figures from its folds' outcomes (in fold order): pooled and mean accuracy,
 * the pooled confusion matrix, the report and the table. cv.jsonl is the caller's (written as folds end).
 */
export async function cvSummary(
  opts: TrainWorkflowOptions & { cv: number },
  s: SnnSetup,
  pool: PooledDataset,
  results: CvFoldOutcome[],
  run: RunDir,
  backend: string,
): Promise<TrainSummary> {
  const k = opts.cv;
  if (results.length !== k) throw new CrossValidationError(`cross-validation summary: ${results.length} fold results for ${k} folds`);
  const networks = results.map((r) => r.network);
  // Every sample is held out exactly once, so the folds' test matrices add up to one over the pool.
  const pooledConfusion = results.slice(1).reduce((m, r) => addConfusion(m, r.confusion), results[0]!.confusion);
  const total = results.reduce((t, r) => t + r.n, 0);
  const pooled = results.reduce((t, r) => t + r.correct, 0) / total;
  const pooledExact = results.reduce((t, r) => t + r.correct_exact, 0) / total;
  const accs = results.map((r) => r.test_acc);
  const mean = accs.reduce((t, a) => t + a, 0) / k;
  // Sample standard deviation (k - 1): the spread one would expect of another fold.
  const std = Math.sqrt(accs.reduce((t, a) => t + (a - mean) ** 2, 0) / (k - 1));
  const folds_ = results.map(({ history: _h, samplesPerS: _s, confusion: _c, network: _n, record: _r, ...f }) => f);
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
  const confusion = await writeConfusion(run, pooledConfusion, pool.classNames, `every sample held out once, ${k} folds, exact solver`);
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
  results: CvFoldOutcome[],
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
      { title: 'Folds', blocks: [{ kind: 'table', rows: results.map(({ history: _h, confusion: _c, network: _n, record: _r, ...f }) => ({ ...f })) }] },
      { title: 'Learning curves', blocks: [{ kind: 'plot', svg: acc }] },
      confusion,
    ],
  });
}
