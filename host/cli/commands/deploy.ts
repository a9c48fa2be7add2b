/** `spikeloop deploy`: a twin-trained network onto a chip, verified, optionally scored on the device. */
import { z } from 'zod';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { deviceOption, intOption, stringOption } from '../common-options.ts';
import { runDeployWorkflow } from '../../workflows/deploy.ts';
import { options as trainOptions } from './train.ts';

export const name = 'deploy';
export const summary =
  "map a trained network's conductances to DAC codes through the chip profile, upload, CRC-verify, and measure test accuracy on the device";
export const description =
  "Conductances become gate voltages through the profile's per-synapse inverse transfer curves, then DAC codes (quantised, " +
  'never outside the safe windows the board announces; a conductance the chip cannot realise is clipped to the window edge and ' +
  'counted). Every layer is uploaded and its CRC verified. With --dataset, the test part runs on the device and, beside it, ' +
  'in the twin on the conductances the codes really realise. Without --profile the nominal sky130 curves are used (a warning ' +
  'says so): run `spikeloop calibrate` first for a chip with mismatch.';
export const examples = [
  'spikeloop deploy --device mock:behavioral?seed=7 --model runs/fmnist/network.bin --profile runs/cal/profile.slp --dataset fashion-mnist',
  'spikeloop deploy --model runs/iris/network.bin --dataset iris --json',
];

export const options = {
  device: deviceOption,
  model: {
    type: 'string',
    placeholder: 'FILE',
    description: 'trained network (network.bin of spikeloop train)',
    schema: z.string({ error: 'is required: the network file, e.g. --model runs/iris/network.bin' }).min(1, 'must not be empty'),
  },
  profile: stringOption('chip profile from spikeloop calibrate (default: nominal curves, with a warning)', 'FILE'),
  dataset: {
    ...trainOptions.dataset,
    description: `score this data set's test part on the device: ${trainOptions.dataset.description.replace(/^data set: /, '')}`,
    schema: trainOptions.dataset.schema.optional(),
  },
  limitTest: intOption('score at most N test samples (a stratified subset)', 1, 10_000_000),
  seed: intOption("seed choosing the test subset (default: the model's training seed)", 0, 2 ** 31 - 1),
} satisfies OptionsSpec;

export function check(o: ParsedOptions<typeof options>): string | undefined {
  if (o.limitTest !== undefined && !o.dataset) return '--limit-test needs --dataset';
  return undefined;
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const summary = await runDeployWorkflow({
    device: o.device,
    model: o.model,
    profile: o.profile,
    dataset: o.dataset,
    limitTest: o.limitTest,
    seed: o.seed,
    signal: ctx.signal,
    print: ctx.print,
    warn: ctx.warn,
  });
  return { ...summary };
}
