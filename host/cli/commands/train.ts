/** `spikeloop train`: train a spiking network in the twin (or map a ReLU network onto it). */
import { z } from 'zod';
import { UsageError, type CommandContext, type OptionsSpec, type ParsedOptions } from '../command.ts';
import { flag, intOption, intOptionWithDefault } from '../common-options.ts';
import { CrossValidationError, CV_PARTS } from '../../../models/datasets/cross-validation.ts';
import { DATASET_SPECS, parseDatasetSpec } from '../../../models/datasets/load.ts';
import { SOLVER_NAMES } from '../../../models/network/solver.ts';
import { ARCH_PRESETS, readArchitecture } from '../../../models/network/arch.ts';
import { runTrainWorkflow } from '../../workflows/train.ts';
import { chipTarget, ChipFitError } from '../../workflows/train-chip.ts';
import { cvFlagConflict } from '../../workflows/train-cv.ts';
import { deviceOption } from '../common-options.ts';

/** An optional number in [0, 1) written as a plain decimal (0 = off). */
function fractionBelowOne(expected: string, belowOne: string) {
  return z
    .string()
    .regex(/^(0(\.\d+)?|\.\d+)$/, `expected ${expected}, or 0 for off`)
    .transform(Number)
    .pipe(z.number().lt(1, belowOne))
    .optional();
}

export const name = 'train';
export const summary = 'train a spiking network in the digital twin (DSTD, Euler or exact solver; PNN or ideal model), or map a ReLU network onto it';
export const description =
  'Trains with Adam on mini-batches, shows a progress bar with loss and accuracy, appends per-epoch train and test metrics ' +
  'to DIR/metrics.jsonl, saves the network to DIR/network.bin (reloadable), plots the learning curve (DIR/learning-curve.svg, ' +
  'DIR/report.html) and writes DIR/record.json. Same seed, same numbers. Flags not given take per-data-set presets ' +
  '(iris: --layers 32 --epochs 300 --batch-size 8 --lr 0.01 --tau-soft 0.1 and a reference input spiking at t = 0; images: --layers 256,128 ' +
  '--epochs 20 --batch-size 64 --lr 0.01 --tau-soft 0.2 --dead-mean batch), recorded in record.json. Test accuracy is reported for the training solver and ' +
  'for the exact solver (test_acc_exact, the physics reference). --from-ann trains a ReLU network instead (dense, or with --arch the same conv layers), maps it onto the ideal model, and reports its accuracy ' +
  'on the PNN with the nominal reversal potentials and after a search over a uniform current scale and the operating point (scored with the exact solver; DSTD with 32 bins for --arch). ' +
  '--cv K runs stratified K-fold cross-validation instead: train and test parts pooled, K folds from --seed, per fold a fresh ' +
  'network trained on the other folds (same settings; iris features min-max scaled on those folds only) and tested on the ' +
  'held-out one; per-fold lines in DIR/cv.jsonl, networks in DIR/fold-<k>/network.bin, test_acc = pooled CV accuracy, and cv ' +
  '{ k, part, folds, mean, std, test_acc_exact } in the summary. --cv-part train pools the training part only, so settings can be ' +
  'chosen by cross-validation while the test part stays unseen for the final figure. --profile FILE (from spikeloop calibrate) or --device URI ' +
  "trains for that chip, so spikeloop deploy and finetune take the network: the chip's hidden widths, its layer windows as the twin's time " +
  'base and, from a profile, its calibrated ePlus and eMinus; a data set or --layers the chip cannot take is refused (exit 2) before anything runs. ' +
  '--workers N splits each training batch across N threads (gradients summed in a fixed order: the same seed and N give the same numbers; ' +
  'N = 1 trains on this thread; so do networks with conv layers and networks too small for shards to pay, such as the iris preset).';
export const examples = [
  'spikeloop train --dataset iris --out runs/iris-1',
  'spikeloop train --dataset fashion-mnist --layers 256,128 --bins 16 --epochs 20 --seed 1 --out runs/fmnist-pnn',
  'spikeloop train --dataset fashion-mnist --model ideal --out runs/fmnist-ideal --json',
  'spikeloop train --dataset fashion-mnist --arch mnist-conv --epochs 2 --out runs/fmnist-conv',
  'spikeloop train --dataset iris --profile runs/cal/profile.slp --out runs/iris-chip',
  "spikeloop train --dataset iris --device 'mock:behavioral?seed=5&geometry=16-8-4' --out runs/iris-chip",
  'spikeloop train --dataset iris --from-ann --out runs/iris-ann',
  'spikeloop train --dataset iris --cv 5 --out runs/iris-cv5 --json',
  'spikeloop train --dataset iris --cv 5 --cv-part train --tau-soft 0.05 --out runs/iris-cv5-tau005 --json',
];

const positiveNumber = (what: string) =>
  z
    .string()
    .regex(/^(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `expected a positive number like 0.01 (${what})`)
    .transform(Number)
    .pipe(z.number().positive('must be > 0').finite('must be finite'));

export const options = {
  dataset: {
    type: 'string',
    placeholder: 'SPEC',
    description: `data set: ${DATASET_SPECS.join(' | ')}`,
    schema: z.string({ error: `is required; use one of ${DATASET_SPECS.join(', ')}` }).transform((v, ctx) => {
      try {
        parseDatasetSpec(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
      return v;
    }),
  },
  model: {
    type: 'string',
    placeholder: 'pnn|ideal',
    description: 'neuron model: pnn (finite reversal potentials, nominal sky130) or ideal (current sources) (default pnn)',
    schema: z
      .enum(['pnn', 'ideal'], { error: 'must be pnn or ideal' })
      .optional()
      .transform((v) => v ?? 'pnn'),
  },
  solver: {
    type: 'string',
    placeholder: SOLVER_NAMES.join('|'),
    description: 'solver for training: dstd (default), euler (fine-step ODE, slow) or exact (event-driven float64, small nets only)',
    schema: z
      .enum(['dstd', 'euler', 'exact'], { error: `must be one of ${SOLVER_NAMES.join(', ')}` })
      .optional()
      .transform((v) => v ?? 'dstd'),
  },
  layers: {
    type: 'string',
    placeholder: 'N[,N...]',
    description: 'hidden layer widths, comma separated, e.g. 256,128 (default: per data set)',
    schema: z
      .string()
      .regex(/^\d+(,\d+)*$/, 'expected comma-separated positive whole numbers like 256,128')
      .transform((v) => v.split(',').map(Number))
      .pipe(z.array(z.number().int().min(1, 'each width must be >= 1').max(65536, 'each width must be <= 65536')).max(30, 'at most 30 hidden layers'))
      .optional(),
  },
  arch: {
    type: 'string',
    placeholder: 'NAME|FILE',
    description: `network with conv and pooling layers instead of --layers: a preset (${Object.keys(ARCH_PRESETS).join(', ')}) or a JSON file { input: { height, width, channels }, layers: [{ type: 'conv', channels, kernel, stride?, padding? } | { type: 'pool', size } | { type: 'dense', units }] }; saved in the network file`,
    schema: z
      .string()
      .min(1, 'must not be empty')
      .transform((v, ctx) => {
        try {
          return readArchitecture(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
          return z.NEVER;
        }
      })
      .optional(),
  },
  bins: intOptionWithDefault('DSTD bins per layer', 1, 4096, 16),
  eulerSteps: intOption('Euler steps per layer (default 256)', 1, 1_000_000, 'K'),
  epochs: intOption('training epochs (default: per data set)', 1, 1_000_000),
  seed: intOptionWithDefault('seed for initialisation, batch order and subsets', 0, 2 ** 31 - 1, 1),
  out: {
    type: 'string',
    placeholder: 'DIR',
    description: 'run folder; must be empty or missing',
    schema: z.string({ error: 'is required: a folder for the run, e.g. --out runs/fmnist-1' }).min(1, 'must not be empty'),
  },
  lr: {
    type: 'string',
    placeholder: 'X',
    description: 'Adam learning rate (default: per data set; 0.05 with --arch)',
    schema: positiveNumber('the Adam learning rate').optional(),
  },
  batchSize: intOption('mini-batch size (default: per data set; 32 with --arch)', 1, 65536, 'B'),
  limitTrain: intOption('use at most N training samples (a stratified subset)', 1, 10_000_000),
  limitTest: intOption('use at most N test samples', 1, 10_000_000),
  tauSoft: {
    type: 'string',
    placeholder: 'X',
    description: 'softmax temperature of the loss, in time units (default: 0.1 for iris, 0.2 for images)',
    schema: positiveNumber('the softmax temperature').optional(),
  },
  referenceSpike: {
    type: 'string',
    placeholder: 'T|none',
    description:
      'a reference input spiking at time T in [0, 1] (input windows) in every sample, one network input more than the data has; none = without (default: 0 for iris, none for images, which fill all 784 inputs of the reference chip)',
    schema: z
      .string()
      .regex(/^(none|0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'expected a time in [0, 1] like 0 or 0.5, or none')
      .transform((v) => (v === 'none' ? null : Number(v)))
      .optional(),
  },
  referenceReplaces: {
    type: 'string',
    placeholder: 'K|none',
    description:
      "with a reference spike: it takes the place of data feature K (one the data leave dark, e.g. 0 for Fashion-MNIST, whose pixel 0 is lit in 0.03 % of images) instead of an input more, so the network keeps the data's width and fits a chip with no spare input; none = appended (default)",
    schema: z
      .string()
      .regex(/^(none|\d{1,7})$/, 'expected a feature index like 0, or none')
      .transform((v) => (v === 'none' ? null : Number(v)))
      .optional(),
  },
  deadRate: {
    type: 'string',
    placeholder: 'X',
    description: 'hidden neurons firing for at most this fraction of a batch count as dead and are pushed to fire (default 0)',
    schema: z
      .string()
      .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'expected a fraction between 0 and 1 like 0.1')
      .transform(Number)
      .optional(),
  },
  windowWeight: {
    type: 'string',
    placeholder: 'X',
    description: 'weight of the term keeping spikes inside their layer windows (default 0.1)',
    schema: z
      .string()
      .regex(/^(\d+\.?\d*|\.\d+)$/, 'expected a number >= 0 like 0.1')
      .transform(Number)
      .optional(),
  },
  silentScale: {
    type: 'string',
    placeholder: 'X',
    description:
      'silent output neurons enter the cross-entropy at horizon + X windows per threshold their membrane at the horizon fell short, so the loss pulls a silent label neuron and pushes silent competitors (predictions unchanged); 0 = clamped at the horizon without gradient (default 0)',
    schema: z
      .string()
      .regex(/^(\d+\.?\d*|\.\d+)$/, 'expected a number >= 0 like 1')
      .transform(Number)
      .optional(),
  },
  deadMembrane: {
    type: 'string',
    placeholder: 'ideal|model',
    description:
      "membrane the dead-neuron term pushes up: ideal (ideal-limit rest potential, linear in the weights) or model (the neuron model's own membrane at the horizon on the DSTD grid) (default ideal)",
    schema: z.enum(['ideal', 'model'], { error: 'must be ideal or model' }).optional(),
  },
  deadMean: {
    type: 'string',
    placeholder: 'selected|batch',
    description:
      'what the dead-neuron term is a mean over: selected (the silent label neurons and dead hidden neurons it acts on, so a batch with one pushes it as hard as the cross-entropy pulls) or batch (every sample and neuron it could act on, a mean over the batch like the cross-entropy) (default: batch for images, selected for iris)',
    schema: z.enum(['selected', 'batch'], { error: 'must be selected or batch' }).optional(),
  },
  zeros: {
    type: 'string',
    placeholder: 'spike|silent',
    description:
      "with --arch: whether a pixel of 0 spikes at the end of the input window (spike) or never (silent, as a dense network's inputs); silent gives the conv net its data-dependent nonlinearity (docs/RESULTS.md, issue #31) (default silent)",
    schema: z.enum(['spike', 'silent'], { error: 'must be spike or silent' }).optional(),
  },
  schedule: {
    type: 'string',
    placeholder: 'constant|cosine|cosine-steps',
    description:
      'learning-rate schedule: cosine sets one rate per epoch, cosine-steps one per step (so a single epoch decays too) (default cosine; cosine-steps with --arch)',
    schema: z.enum(['constant', 'cosine', 'cosine-steps'], { error: 'must be constant, cosine or cosine-steps' }).optional(),
  },
  ema: {
    type: 'string',
    placeholder: 'DECAY',
    description:
      "keep an exponential moving average of the weights with this decay per step (e.g. 0.999, about the last 1000 steps) and report and save it; the optimiser's own weights are reported beside it as test_acc_raw per epoch; 0 = off (default 0)",
    schema: fractionBelowOne('a decay in [0, 1) like 0.999', 'must be below 1 (1 would never move from the initial weights)'),
  },
  inputNoise: {
    type: 'string',
    placeholder: 'STD',
    description:
      "add Gaussian noise of this standard deviation to every training batch's scaled features (a fraction of the input window, so also input-timer jitter), fresh each batch; evaluation sees none; 0 = off (default 0.05 for iris, 0 for images)",
    schema: fractionBelowOne('a standard deviation in [0, 1) like 0.05', 'must be below 1 (the features span [0, 1])'),
  },
  weightNoise: {
    type: 'string',
    placeholder: 'STD',
    description:
      "scale every conductance by 1 + STD x N(0, 1) during each training step, fresh each batch (the gradient taken there, the step applied to the clean weights), so the network keeps its accuracy when a chip's synapses miss their targets by a few per cent; steps then run on one thread; 0 = off (default, training for a chip: 0.1 for iris, 0 for images; otherwise 0)",
    schema: z
      .string()
      .regex(/^(0(\.\d+)?|\.\d+)$/, 'expected a relative spread in [0, 0.5) like 0.05, or 0 for off')
      .transform(Number)
      .pipe(z.number().lt(0.5, 'must be below 0.5 (a factor 1 + STD x N(0, 1) must stay positive)'))
      .optional(),
  },
  // Default 1, not the cores: bench:scaling measures a data-parallel step on 2 cores slower than one thread (docs/RESULTS.md).
  workers: intOptionWithDefault(
    'threads a training batch is split across (default 1: on 2 cores a split step measured slower than one thread; see docs/RESULTS.md)',
    1,
    256,
    1,
  ),
  weightDecay: {
    type: 'string',
    placeholder: 'X',
    description:
      "decoupled weight decay (AdamW): after every step each synapse's pE, pI shrink by the factor 1 - lr * X, pulling unused conductances toward an off transistor; 0 = off (default 0)",
    schema: z
      .string()
      .regex(/^(\d+\.?\d*|\.\d+)$/, 'expected a number >= 0 like 0.01')
      .transform(Number)
      .optional(),
  },
  profile: {
    type: 'string',
    placeholder: 'FILE',
    description:
      "train for the chip a profile from spikeloop calibrate describes: its hidden widths, its layer windows (the twin's time base) and its calibrated ePlus and eMinus, so that spikeloop deploy and finetune take the network",
    schema: z.string().min(1, 'must not be empty').optional(),
  },
  device: {
    ...deviceOption,
    description: `train for the chip a device announces (HELLO: hidden widths and layer windows; nominal ePlus and eMinus, --profile gives calibrated ones): ${deviceOption.description.replace(/ \(default [^)]*\)$/, '')}`,
    schema: deviceOption.schema.optional(),
  },
  fromAnn: flag('train a ReLU network, map it onto the ideal model and evaluate it on the PNN (ANN-to-IMC)'),
  cv: intOption(
    'stratified K-fold cross-validation: pool train and test, train a fresh network per fold on the other folds, test on the held-out one (SNN flow only)',
    2,
    20,
    'K',
  ),
  cvPart: {
    type: 'string',
    placeholder: 'all|train',
    description:
      'what --cv pools: all (train and test parts: how well the method does on the data) or train (the training part only: for choosing settings, the test part stays unseen) (default all)',
    schema: z.enum(CV_PARTS, { error: 'must be all or train' }).optional(),
  },
} satisfies OptionsSpec;

export function check(o: ParsedOptions<typeof options>): string | undefined {
  if (o.profile !== undefined && o.device !== undefined)
    return '--profile and --device both name the chip to train for; give one (the profile also carries the calibrated ePlus and eMinus)';
  if (o.fromAnn && (o.profile !== undefined || o.device !== undefined))
    return "--from-ann maps a ReLU network onto windows of its own, not a chip's: drop --from-ann to train for the chip";
  if (o.fromAnn && o.solver !== 'dstd') return `--from-ann evaluates with the exact solver and trains no spiking network; drop --solver ${o.solver}`;
  if (o.fromAnn && o.ema !== undefined)
    return "--ema averages a spiking network's weights while it trains; --from-ann trains a ReLU network and maps it, so drop --ema";
  if (o.fromAnn && o.inputNoise !== undefined)
    return "--input-noise regularises a spiking network's training; --from-ann trains a ReLU network and maps it, so drop --input-noise";
  if (o.fromAnn && o.weightDecay !== undefined)
    return "--weight-decay regularises a spiking network's training; --from-ann trains a ReLU network and maps it, so drop --weight-decay";
  if (o.fromAnn && o.model === 'ideal') return '--from-ann always maps onto the ideal model and reports the PNN beside it; drop --model ideal';
  if (o.zeros !== undefined && o.arch === undefined)
    return "--zeros chooses how an --arch network codes dark pixels; a dense network's zeros are always silent: drop --zeros or add --arch";
  if (o.arch !== undefined) {
    if (o.layers !== undefined) return '--arch and --layers both describe the network; give one';
    if (o.fromAnn && o.zeros !== undefined)
      return '--from-ann maps onto a network whose dark pixels spike at the end of the input window (the mapping needs every input in the slope); drop --zeros';
    if (o.referenceSpike !== undefined && o.referenceSpike !== null)
      return '--arch networks take no reference input spike (their input is the image); drop --reference-spike';
  }
  const cvConflict = cvFlagConflict(o);
  if (cvConflict) return cvConflict;
  if (o.eulerSteps !== undefined && o.solver !== 'euler') return `--euler-steps only applies to --solver euler (got --solver ${o.solver})`;
  return undefined;
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const chip = await chipTarget({ profile: o.profile, device: o.device }).catch((err: unknown) => {
    throw err instanceof ChipFitError ? new UsageError(err.message) : err;
  });
  const summary = await runTrainWorkflow({
    chip,
    cv: o.cv,
    cvPart: o.cvPart,
    dataset: o.dataset,
    model: o.model,
    solver: o.solver,
    layers: o.layers,
    arch: o.arch,
    zeros: o.zeros,
    bins: o.bins,
    eulerSteps: o.eulerSteps,
    epochs: o.epochs,
    seed: o.seed,
    out: o.out,
    lr: o.lr,
    batchSize: o.batchSize,
    limitTrain: o.limitTrain,
    limitTest: o.limitTest,
    tauSoft: o.tauSoft,
    referenceSpike: o.referenceSpike,
    referenceReplaces: o.referenceReplaces,
    deadRate: o.deadRate,
    windowWeight: o.windowWeight,
    silentScale: o.silentScale,
    deadMembrane: o.deadMembrane,
    deadMean: o.deadMean,
    schedule: o.schedule,
    averageDecay: o.ema,
    inputNoise: o.inputNoise,
    weightNoise: o.weightNoise,
    weightDecay: o.weightDecay,
    workers: o.workers,
    fromAnn: o.fromAnn,
    args: process.argv.slice(2),
    signal: ctx.signal,
    print: ctx.print,
  }).catch((err: unknown) => {
    // A fold count the data cannot fill, or a network the chip cannot take, is a usage error (exit
    // 2), found once the data and the chip are read.
    throw err instanceof CrossValidationError || err instanceof ChipFitError ? new UsageError(err.message) : err;
  });
  const { test_acc, train_acc, epochs, samples_per_s, backend, ...rest } = summary;
  // The five headline figures first; the rest of the summary after them.
  return { test_acc, train_acc, epochs, samples_per_s, backend, ...rest };
}
