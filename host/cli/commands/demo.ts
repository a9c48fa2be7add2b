/** `spikeloop demo` (`npm start`): the main job on the embedded mock board, end to end. */
import path from 'node:path';
import { z } from 'zod';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { geometryOption, intOption, intOptionWithDefault, stringOption, workersOption } from '../common-options.ts';
import { UsageError } from '../command.ts';
import { parseDeviceUri } from '../../device/device-uri.ts';
import { runDemo } from '../../workflows/demo.ts';
import { DEMO_DEFAULTS, DEMO_GEOMETRY, type DemoDataset } from '../../workflows/demo-options.ts';
import { options as calibrateOptions } from './calibrate.ts';

export const name = 'demo';
export const summary = 'the main job: bring-up, calibration, twin training, deployment and in-situ fine-tuning on a fresh chip (the embedded mock by default)';
export const description =
  'On a fresh behavioural chip (784-64-10 unless --geometry or --device says otherwise; a random seed, printed, unless --seed or --device pins it): brings the chip up (stops if it is not healthy), ' +
  'calibrates the chip (default: every layer of at most 1024 inputs, the whole reference chip; --calibrate-layers picks fewer), trains a Fashion-MNIST subset (and Iris with --iris-epochs N) in the digital twin (DSTD on the PNN model with the calibrated ' +
  'reversal potentials), deploys each through the nominal and through the calibrated transfer curves and measures both on the device, fine-tunes ' +
  'with the chip in the loop, and prints a table of accuracies, calibration RMSE and time per stage. Writes one run folder with record.json, ' +
  'metrics.jsonl, profile.slp, the networks, the stage reports and report.html.';
export const examples = [
  'spikeloop demo',
  'spikeloop demo --seed 7 --json',
  "spikeloop demo --device 'mock:behavioral?seed=3&geometry=784-64-32-10' --fashion-train 500",
  'spikeloop demo --device serial:/dev/ttyACM0 --out runs/board-17-demo',
];

const DATASETS = ['iris', 'fashion-mnist'] as const;

export const options = {
  device: stringOption(
    `device to run on (default: the embedded behavioural mock with a fresh chip, mock:behavioral?seed=SEED&geometry=${DEMO_GEOMETRY})`,
    'URI',
  ),
  out: stringOption('run folder (default runs/demo-<date-time>); must be empty or missing', 'DIR'),
  geometry: geometryOption(
    `layer widths of the embedded mock chip, without --device (default ${DEMO_GEOMETRY}: a chip the demo calibrates, trains and fine-tunes within minutes)`,
  ),
  seed: intOption('seed of the mock chip (without --device) and of training, data split and probes (default: a random one, printed)', 0, 999_999),
  irisEpochs: intOptionWithDefault('twin training epochs on Iris (0 skips Iris; 150 trains it well)', 0, 10_000, DEMO_DEFAULTS.irisEpochs),
  fashionTrain: intOptionWithDefault('Fashion-MNIST training samples (0 skips Fashion-MNIST)', 0, 60_000, DEMO_DEFAULTS.fashionTrain),
  fashionTest: intOptionWithDefault('Fashion-MNIST test samples', 1, 10_000, DEMO_DEFAULTS.fashionTest),
  fashionEpochs: intOptionWithDefault('twin training epochs on the Fashion-MNIST subset', 1, 1000, DEMO_DEFAULTS.fashionEpochs),
  finetuneTrain: intOptionWithDefault(
    'Fashion-MNIST training images in-situ fine-tuning sees per epoch (a stratified subset of the training part)',
    1,
    60_000,
    DEMO_DEFAULTS.finetuneTrain,
  ),
  finetuneEpochs: intOptionWithDefault('in-situ fine-tuning epochs (0 skips fine-tuning)', 0, 1000, DEMO_DEFAULTS.finetuneEpochs),
  finetune: {
    type: 'string',
    placeholder: 'LIST',
    description: 'networks to fine-tune on the chip, comma-separated: iris, fashion-mnist (default fashion-mnist, or iris with --fashion-train 0)',
    schema: z
      .string()
      .optional()
      .transform((v, ctx) => {
        if (v === undefined) return undefined;
        const list = v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const bad = list.find((s) => !(DATASETS as readonly string[]).includes(s));
        if (bad !== undefined || list.length === 0) {
          ctx.addIssue({ code: 'custom', message: `"${bad ?? v}" is not a demo network: use iris, fashion-mnist or both (iris,fashion-mnist)` });
          return z.NEVER;
        }
        return list as DemoDataset[];
      }),
  },
  // The same layer list as `spikeloop calibrate --layers`.
  calibrateLayers: {
    ...calibrateOptions.layers,
    description: 'chip layers to calibrate, comma-separated (default: every layer of at most 1024 inputs, the whole reference chip)',
  },
  workers: workersOption,
} satisfies OptionsSpec;

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  const out = o.out ?? path.join('runs', `demo-${stamp}`);
  // A fresh chip each time unless pinned: the point is that the flow works on a chip nobody has seen.
  const seed = o.seed ?? Math.floor(Math.random() * 1_000_000);
  if (o.device && o.geometry)
    throw new UsageError('--geometry sets the embedded mock chip: with --device, the device has its own geometry (put geometry= in a mock: address)');
  // With more than one worker the embedded mock's chip gets a thread of its own (host and device overlap).
  const device = o.device ?? `mock:behavioral?seed=${seed}&geometry=${o.geometry ?? DEMO_GEOMETRY}${o.workers > 1 ? '&thread=1' : ''}`;
  try {
    parseDeviceUri(device);
  } catch (err) {
    throw new UsageError(`--device ${device}: ${(err as Error).message}`);
  }
  if (o.fashionTrain === 0 && o.irisEpochs === 0)
    throw new UsageError('--iris-epochs 0 with --fashion-train 0 leaves nothing to train: keep one of them above 0');
  if (o.fashionTrain === 0 && o.finetune?.includes('fashion-mnist')) {
    throw new UsageError('--finetune fashion-mnist needs the Fashion-MNIST network: set --fashion-train above 0');
  }
  const repeat = `spikeloop demo --seed ${seed}${o.device ? ` --device '${o.device}'` : ''}${o.geometry ? ` --geometry ${o.geometry}` : ''}`;
  ctx.print(`seed ${seed}${o.seed === undefined ? ' (drawn at random)' : ''}: repeat this run with \`${repeat}\``);
  const summary = await runDemo({
    device,
    out,
    seed,
    irisEpochs: o.irisEpochs,
    fashion:
      o.fashionTrain > 0
        ? { train: o.fashionTrain, test: o.fashionTest, epochs: o.fashionEpochs, finetuneTrain: Math.min(o.finetuneTrain, o.fashionTrain) }
        : null,
    finetuneEpochs: o.finetuneEpochs,
    finetune: o.finetune,
    calibrateLayers: o.calibrateLayers,
    workers: o.workers,
    signal: ctx.signal,
    print: ctx.print,
    warn: ctx.warn,
  });
  ctx.print(`repeat: ${repeat}`);
  return {
    ...summary,
    rmse_pnn: summary.calibration.rmse_pnn,
    rmse_ideal: summary.calibration.rmse_ideal,
  };
}
