/**
 * The shape of a CLI command. A command is a module commands/<name>.ts whose named exports
 * form a Command: `name`, a one-line `summary`, its flag `options` (each with a zod schema
 * for its value), optionally `description`, `examples` and `check`, and `run`, which does the
 * work and returns the JSON summary object. main.ts parses and validates flags, handles
 * --help and --json, and turns errors into exit codes.
 *
 *   export const name = 'info';
 *   export const summary = 'show what a device announces';
 *   export const options = { device: deviceOption } satisfies OptionsSpec;
 *   export async function run(ctx: CommandContext<ParsedOptions<typeof options>>) { ...; return { ... }; }
 */
import type { z } from 'zod';

export interface OptionSpec {
  /** A string flag takes a value (--device URI); a boolean flag does not (--pty). */
  type: 'string' | 'boolean';
  /** Validates (and transforms) the raw value; receives undefined when the flag is absent. */
  schema: z.ZodType;
  description: string;
  /** Shown in help: --device URI. */
  placeholder?: string;
  short?: string;
}

export type OptionsSpec = Record<string, OptionSpec>;
export type ParsedOptions<S extends OptionsSpec> = { [K in keyof S]: z.output<S[K]['schema']> };

export interface CommandIO {
  /** Writes a line for people: stdout normally, stderr under --json so stdout stays machine-readable. */
  print(line: string): void;
  /** Writes a raw line to stdout in every mode (for protocols like mock-board's first line). */
  stdout(line: string): void;
  /** Diagnostics, always to stderr. */
  warn(line: string): void;
}

export interface CommandContext<O> extends CommandIO {
  options: O;
  json: boolean;
  /** Aborted on SIGINT / SIGTERM: long-running commands stop and clean up when it fires. */
  signal: AbortSignal;
}

export interface Command<S extends OptionsSpec = OptionsSpec> {
  name: string;
  summary: string;
  /** Longer help text (paragraphs). */
  description?: string;
  examples?: string[];
  options: S;
  /** Checks across flags (e.g. exactly one of --pty, --port); return an error message or undefined. */
  check?(options: ParsedOptions<S>): string | undefined;
  /** A command whose argv does not fit one flag set (subcommands, repeated flags) parses it itself; throws UsageError. */
  parseArgv?(argv: string[]): { options: Record<string, unknown>; json: boolean; help: boolean };
  /** Does the work; the returned object is the --json summary (main adds "ok": true). */
  run(ctx: CommandContext<ParsedOptions<S>>): Promise<Record<string, unknown>>;
}

/** A wrong flag, value or argument: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The command ran to the end but its result is a failure (e.g. bring-up found faults): exit 1, and
 * under --json the `summary` fields go into the final JSON line next to `"ok": false`.
 */
export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
  readonly kind = 'failed';
  constructor(
    message: string,
    readonly summary: Record<string, unknown>,
  ) {
    super(message);
  }
}
