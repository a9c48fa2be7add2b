import { z } from 'zod';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { deviceOption, flag, intOption, stringOption } from '../common-options.ts';
import { FINETUNE_DEFAULTS, FINETUNE_VAL_DEFAULT, runFinetune } from '../../workflows/finetune.ts';
import { KEEP_ALPHA } from '../../workflows/finetune-keep.ts';
import { options as trainOptions } from './train.ts';

export const name = 'finetune';
export const summary = 'finish training on the chip: device forward pass, twin backward pass, only changed codes uploaded; pipelined and resumable';
export const description =
  "Each batch runs on the device, which returns every layer's spike times; the twin's DSTD forward is evaluated on the " +
  "device's times layer by layer, the loss on the device's outputs, and the gradient flows back through the twin. Adam " +
  "updates the conductances, the profile's curves map them to DAC codes, and only the codes that changed are uploaded. The " +
  'device measures the next batch while the host computes the last gradient (one-batch lag, see host/workflows/README.md; ' +
  '--no-pipeline turns it off). Each epoch: CRC verified, device and twin test accuracy in DIR/metrics.jsonl, a checkpoint ' +
  '(model, optimiser, device codes, cursor). The run ends with the state whose device accuracy on a validation split of the ' +
  'training part (--val) is best, the deployment unless an epoch beats it significantly (a paired sign test, --keep-alpha); the chip is left holding it (CRC-verified). Ctrl-C or a lost device leaves a resumable run: --resume DIR continues at the ' +
  'batch where it stopped. Writes learning-curve.svg, spike-raster.svg, report.html and network.bin.';
export const examples = [
  'spikeloop finetune --device mock:behavioral?seed=7 --model runs/fmnist/network.bin --profile runs/cal/profile.slp --dataset fashion-mnist --epochs 3 --out runs/ft',
  'spikeloop finetune --device mock:behavioral?seed=7 --resume runs/ft',
  'spikeloop finetune --model runs/iris/network.bin --dataset iris --epochs 5 --uncalibrated --out runs/ft-iris --json',
];

export const options = {
  device: deviceOption,
  model: stringOption('trained network to start from (new runs)', 'FILE'),
  profile: stringOption('chip profile from spikeloop calibrate (required unless --uncalibrated; a resumed run reuses its own)', 'FILE'),
  uncalibrated: flag('map through the nominal transfer curves instead of a chip profile'),
  dataset: { ...trainOptions.dataset, schema: trainOptions.dataset.schema.optional() },
  epochs: intOption('total epochs of the run (a resumed run may raise it)', 1, 1_000_000),
  out: stringOption('run folder of a new run (must be empty or missing)', 'DIR'),
  resume: stringOption('continue the interrupted run in DIR', 'DIR'),
  lr: { ...trainOptions.lr, description: `Adam learning rate on the conductances (default ${FINETUNE_DEFAULTS.lr})` },
  batchSize: intOption(`mini-batch size (default ${FINETUNE_DEFAULTS.batchSize})`, 1, 65536, 'B'),
  bins: intOption(`DSTD bins per layer of the twin (default ${FINETUNE_DEFAULTS.bins})`, 1, 4096),
  seed: intOption(`seed of the batch order and subsets (default ${FINETUNE_DEFAULTS.seed})`, 0, 2 ** 31 - 1),
  limitTrain: trainOptions.limitTrain,
  limitTest: trainOptions.limitTest,
  val: {
    type: 'string',
    placeholder: 'N|F',
    description: `validation samples, never from the test part: a count, or a fraction below 1 of the training part; from training samples the network never learnt from when its file names its training subset (spikeloop train and demo record it), else carved from the training part (after --limit-train); the device's accuracy on them at the deployment and after each epoch picks the state the run ends with, the deployment unless an epoch beats it (default ${FINETUNE_VAL_DEFAULT.fraction} of the part, at most ${FINETUNE_VAL_DEFAULT.max}; 0 keeps the last epoch)`,
    schema: z
      .string()
      .regex(/^(\d+|0?\.\d+)$/, 'expected a count like 500, a fraction below 1 like 0.1, or 0')
      .transform(Number)
      .pipe(z.number().max(10_000_000, 'must be <= 10000000'))
      .optional(),
  },
  keepAlpha: {
    type: 'string',
    placeholder: 'P',
    description: `significance level at which an epoch replaces the deployment: its validation samples gained against those lost, a one-sided paired sign test (default ${KEEP_ALPHA}; 1 keeps any epoch that validates better)`,
    schema: z
      .string()
      .regex(/^(1|0?\.\d+|\d(\.\d+)?e-\d+)$/, 'expected a level above 0 and at most 1, like 0.05')
      .transform(Number)
      .pipe(z.number().gt(0, 'must be above 0').max(1, 'must be at most 1'))
      .optional(),
  },
  noPipeline: flag('measure and learn one after the other (no overlap, no one-batch lag)'),
  checkpointEvery: intOption('also checkpoint every N batches (default: at epoch ends)', 1, 1_000_000),
} satisfies OptionsSpec;

export function check(o: ParsedOptions<typeof options>): string | undefined {
  if (o.resume) {
    if (o.out && o.out !== o.resume) return `--resume continues the run in its own folder; drop --out ${o.out} or make it ${o.resume}`;
    for (const k of ['model', 'dataset', 'lr', 'batchSize', 'bins', 'seed', 'limitTrain', 'limitTest', 'val', 'keepAlpha'] as const) {
      if (o[k] !== undefined) return `--resume takes the run's own settings from its checkpoint; drop --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
    }
    if (o.noPipeline || o.uncalibrated) return "--resume takes the run's own settings from its checkpoint; drop --no-pipeline / --uncalibrated";
    return undefined;
  }
  if (!o.model) return '--model FILE is required (or --resume DIR)';
  if (!o.dataset) return '--dataset is required (or --resume DIR)';
  if (o.epochs === undefined) return '--epochs N is required (or --resume DIR)';
  if (!o.out) return '--out DIR is required (or --resume DIR)';
  if (!o.profile && !o.uncalibrated)
    return 'fine-tuning needs the chip profile: --profile FILE (from spikeloop calibrate), or --uncalibrated to map through nominal curves';
  if (o.profile && o.uncalibrated) return '--profile and --uncalibrated contradict each other; give one';
  return undefined;
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const summary = await runFinetune({
    device: o.device,
    out: o.resume ?? o.out!,
    resume: o.resume !== undefined,
    model: o.model,
    profile: o.profile,
    uncalibrated: o.uncalibrated,
    dataset: o.dataset,
    epochs: o.epochs,
    lr: o.lr,
    batchSize: o.batchSize,
    bins: o.bins,
    seed: o.seed,
    limitTrain: o.limitTrain,
    limitTest: o.limitTest,
    val: o.val,
    keepAlpha: o.keepAlpha,
    pipelined: !o.noPipeline,
    checkpointEvery: o.checkpointEvery,
    args: process.argv.slice(2),
    signal: ctx.signal,
    print: ctx.print,
    warn: ctx.warn,
  });
  if (summary.interrupted)
    throw new Error(
      `the run is saved (checkpoint and record.json, status "interrupted"): continue with spikeloop finetune --resume ${summary.out} --device ${o.device}`,
    );
  const { deployed_acc, finetuned_acc, twin_acc, epochs, ...rest } = summary;
  return { deployed_acc, finetuned_acc, twin_acc, epochs, ...rest };
}
