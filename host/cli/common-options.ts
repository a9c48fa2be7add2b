/** Flag definitions shared by commands, so --device and friends read and validate the same everywhere. */
import { z } from 'zod';
import type { OptionSpec } from './command.ts';
import { DEFAULT_DEVICE_URI, parseDeviceUri } from '../device/device-uri.ts';
import { geometrySchema } from '../../models/chips/index.ts';
import { MAX_SEED } from '../../models/chips/chip-checks.ts';
import { defaultWorkers } from '../../models/parallel/pool.ts';

/** A device URI the parser accepts, or the parser's reason as the flag's issue. */
const deviceUri = z.string().superRefine((uri, ctx) => {
  try {
    parseDeviceUri(uri);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** --device URI: validated by the device-URI parser, defaulting to the embedded mock. */
export const deviceOption = {
  type: 'string',
  placeholder: 'URI',
  description: `device to talk to: serial:/dev/ttyACM0[?baud=N], pty:PATH[?baud=N] or mock:KIND[?seed=N&geometry=A-B-C&baud=N&byteErrorRate=P] (default ${DEFAULT_DEVICE_URI})`,
  schema: deviceUri.optional().transform((v) => v ?? DEFAULT_DEVICE_URI),
} satisfies OptionSpec;

/** --device mock:... for a command that serves a mock board: the same options as a mock --device. */
export const mockDeviceOption = {
  type: 'string',
  placeholder: 'URI',
  description:
    'the mock board to serve, as a mock: device address (chip, board and line options, e.g. mock:behavioral?seed=7&faults=dead-neuron:0.3&baud=921600)',
  schema: z
    .string()
    .optional()
    .superRefine((uri, ctx) => {
      if (uri === undefined) return;
      try {
        if (parseDeviceUri(uri).scheme !== 'mock') ctx.addIssue({ code: 'custom', message: `'${uri}' is not a mock: address; write mock:KIND?options` });
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
} satisfies OptionSpec;

/** --geometry A-B-C: layer widths, checked by the chips' own geometry schema; kept as text. */
export const geometryOption = (description: string) =>
  ({
    type: 'string',
    placeholder: 'A-B-C',
    description,
    schema: z
      .string()
      .optional()
      .superRefine((v, ctx) => {
        if (v === undefined) return;
        const r = geometrySchema.safeParse(v);
        if (!r.success) ctx.addIssue({ code: 'custom', message: r.error.issues.map((i) => i.message).join('; ') });
      }),
  }) satisfies OptionSpec;

/** --seed N of a chip: the same range as a seed= in a device address. */
export const chipSeedOption = (description: string) => intOption(description, 0, MAX_SEED);

const lowest = (lo: number) => (lo === 1 ? 'must be >= 1 (a positive whole number)' : `must be >= ${lo}`);
const whole = (lo: number, hi: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(lo, lowest(lo)).max(hi, `must be <= ${hi}`));

/** An optional whole-number flag within [lo, hi]. */
export function intOption(description: string, lo: number, hi: number, placeholder = 'N') {
  return { type: 'string', placeholder, description, schema: whole(lo, hi).optional() } satisfies OptionSpec;
}

/** A whole-number flag within [lo, hi] with a default. */
export function intOptionWithDefault(description: string, lo: number, hi: number, fallback: number, placeholder = 'N') {
  return {
    type: 'string',
    placeholder,
    description: `${description} (default ${fallback})`,
    schema: whole(lo, hi)
      .optional()
      .transform((v) => v ?? fallback),
  } satisfies OptionSpec;
}

/** An optional non-empty string flag (a path, an address). */
export function stringOption(description: string, placeholder = 'VALUE') {
  return { type: 'string', placeholder, description, schema: z.string().min(1, 'must not be empty').optional() } satisfies OptionSpec;
}

/** An optional string flag matching a pattern. */
export function patternOption(description: string, pattern: RegExp, hint: string, placeholder = 'VALUE') {
  return { type: 'string', placeholder, description, schema: z.string().regex(pattern, hint).optional() } satisfies OptionSpec;
}

export function flag(description: string) {
  return {
    type: 'boolean',
    description,
    schema: z
      .boolean()
      .optional()
      .transform((v) => v ?? false),
  } satisfies OptionSpec;
}

/** --timeout MS for commands that talk to a device. */
export const timeoutOption = intOption('per-request timeout in milliseconds', 10, 600_000, 'MS');

/** --workers N: threads for the parallel parts of a command (calibration fits, training steps); default the available cores. */
export const workersOption = intOptionWithDefault(
  `worker threads for calibration fits and training steps (default ${defaultWorkers()}, the available cores; 1 = this thread only)`,
  1,
  256,
  defaultWorkers(),
);
