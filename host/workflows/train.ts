import { describePool } from '../../models/datasets/cross-validation.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { registerGradients } from '../../models/tf/gradients.ts';
import { checkOutWritable } from '../runs/out-path.ts';
import { openRunDir } from '../runs/run-dir.ts';
import { displayPath } from '../ui/format.ts';
import { presetFor } from '../../models/training/presets.ts';
import type { TrainSummary, TrainWorkflowOptions } from './train-options.ts';
import { ChipFitError, chipFitProblem, networkSizes } from './train-chip.ts';
import { cvFlow, prepareCv } from './train-cv.ts';
import { snnFlow } from './train-snn.ts';
import { annFlow } from './train-ann.ts';

export async function runTrainWorkflow(opts: TrainWorkflowOptions): Promise<TrainSummary> {
  const started = performance.now();
  const preset = presetFor(opts.dataset, { arch: opts.arch !== undefined });
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
