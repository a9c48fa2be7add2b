/** Flag definitions shared by commands, so --device and friends read and validate the same everywhere. */
import { z } from 'zod';
import type { OptionSpec } from './command.ts';
import { DEFAULT_DEVICE_URI, parseDeviceUri } from '../device/device-uri.ts';

/** --device URI: validated by the device-URI parser, defaulting to the embedded mock. */
export const deviceOption: OptionSpec = {
  type: 'string',
  placeholder: 'URI',
  description: `device to talk to: serial:/dev/ttyACM0[?baud=N], pty:PATH or mock:KIND[?seed=N&geometry=A-B-C] (default ${DEFAULT_DEVICE_URI})`,
  schema: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const uri = v ?? DEFAULT_DEVICE_URI;
      try {
        parseDeviceUri(uri);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
      return uri;
    }),
};

/** A whole number flag within [lo, hi]. */
export function intOption(description: string, lo: number, hi: number, fallback?: number, placeholder = 'N'): OptionSpec {
  const n = z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(lo, `must be >= ${lo}`).max(hi, `must be <= ${hi}`));
  return {
    type: 'string',
    placeholder,
    description: fallback === undefined ? description : `${description} (default ${fallback})`,
    schema: fallback === undefined ? n.optional() : n.optional().transform((v) => v ?? fallback),
  };
}

export const flag = (description: string): OptionSpec => ({
  type: 'boolean',
  description,
  schema: z.boolean().optional().transform((v) => v ?? false),
});

/** --timeout MS for commands that talk to a device. */
export const timeoutOption = intOption('per-request timeout in milliseconds', 10, 600_000, undefined, 'MS');
