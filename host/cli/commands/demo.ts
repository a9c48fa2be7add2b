/** `spikeloop demo` (`npm start`): the main job on the embedded mock board, end to end. */
import path from 'node:path';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { deviceOption, intOptionWithDefault } from '../common-options.ts';
import { UsageError } from '../command.ts';
import { parseDeviceUri } from '../../device/device-uri.ts';
import { runDemo } from '../../workflows/demo.ts';
import { z } from 'zod';

export const name = 'demo';
export const summary = 'the main job: board check, twin training, deployment and measurement on a device (the embedded mock by default)';
export const description =
  'Checks the board (HELLO, self-test, status), trains an Iris network in the digital twin with DSTD on the PNN model, ' +
  "maps its conductances to DAC codes through the chip's transfer curves, uploads and verifies them, and measures test " +
  'accuracy on the device beside the twin. Writes a run folder with record.json, metrics.jsonl, the model and report.html.';
export const examples = ['spikeloop demo', 'spikeloop demo --device pty:/dev/pts/5 --out runs/my-demo', 'spikeloop demo --json'];

export const options = {
  device: {
    ...deviceOption,
    description: 'device to run on (default: the embedded behavioural mock with a fresh chip seed, mock:behavioral?seed=N)',
    schema: z.string().min(1).optional(),
  },
  out: {
    type: 'string',
    placeholder: 'DIR',
    description: 'run folder (default runs/demo-<date-time>); must be empty or missing',
    schema: z.string().min(1, 'must not be empty').optional(),
  },
  seed: intOptionWithDefault('seed for the network initialisation and batch order', 0, 2 ** 31 - 1, 1),
  epochs: intOptionWithDefault('training epochs of the twin', 1, 10_000, 150),
} satisfies OptionsSpec;

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  const out = o.out ?? path.join('runs', `demo-${stamp}`);
  // A fresh chip each time: the point is that the flow works on a chip nobody has seen.
  const device = o.device ?? `mock:behavioral?seed=${Math.floor(Math.random() * 1_000_000)}`;
  try {
    parseDeviceUri(device);
  } catch (err) {
    throw new UsageError(`--device ${device}: ${(err as Error).message}`);
  }
  const summary = await runDemo({ device, out, seed: o.seed, epochs: o.epochs, signal: ctx.signal, print: ctx.print });
  return { ...summary };
}
