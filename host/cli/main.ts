/**
 * The spikeloop CLI entry: `spikeloop <command> [flags]`.
 *
 * Flags are parsed with node:util parseArgs (strict) and each value is validated by the
 * command's zod schema; a wrong flag or value exits 2 with a message naming the flag, the
 * value and the fix. Every command accepts --help and --json; with --json the last line of
 * stdout is one JSON object ({"ok": true, ...summary} or {"ok": false, "error": ...}) and
 * human-readable lines go to stderr. Runtime failures exit 1 with a one-line summary; a command
 * stopped by SIGINT or SIGTERM exits 130.
 */
import { distance } from 'fastest-levenshtein';
import { parseArgs } from 'node:util';
import type { Command, CommandContext, OptionSpec } from './command.ts';
import { CommandFailedError, UsageError } from './command.ts';
import { commandNames, loadAllCommands, loadCommand } from './registry.ts';

export interface MainIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Aborts long-running commands; by default SIGINT/SIGTERM handlers provide it. */
  signal?: AbortSignal;
}

const VERSION = '0.1.0';

const defaultIO: MainIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** camelCase option key -> kebab-case flag name. */
export const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** JSON with typed arrays as lists (and nothing that throws on BigInt). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
    if (typeof v === 'bigint') return v.toString();
    return v;
  });
}

function withoutOk(summary: Record<string, unknown>): Record<string, unknown> {
  const { ok: _ok, ...rest } = summary;
  return rest;
}

function errorKind(err: unknown): string {
  if (err instanceof UsageError) return 'usage';
  const k = (err as { kind?: unknown })?.kind;
  if (typeof k === 'string') return k;
  return (err as Error)?.name ?? 'error';
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/\s*\n\s*/g, '; ');
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = distance(word, c);
    if (dist < bestD) {
      bestD = dist;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function allOptions(cmd: Command): [string, OptionSpec][] {
  return Object.entries(cmd.options);
}

/** The error a command threw once stopped, as one message that starts with what stopped it. */
function interruption(err: unknown, reason: unknown): Error & { kind: string } {
  const why = reason instanceof Error ? reason.message : 'interrupted';
  const msg = err instanceof Error ? err.message : String(err);
  // An abort seen deep inside (a pending request, a fit) says only that it was aborted.
  const detail = /^(interrupted|this operation was aborted|the operation was aborted)\.?$/i.test(msg) || msg === why ? '' : `: ${msg}`;
  return Object.assign(new Error(`${why}${detail}`), { kind: 'interrupted' });
}

/** Help text for one command. */
export function commandHelp(cmd: Command): string {
  const lines = [`spikeloop ${cmd.name}: ${cmd.summary}`, '', `usage: spikeloop ${cmd.name} [flags]`];
  if (cmd.description) lines.push('', cmd.description);
  lines.push('', 'flags:');
  const rows: [string, string][] = allOptions(cmd).map(([k, o]) => [
    `  ${o.short ? `-${o.short}, ` : ''}--${flagName(k)}${o.type === 'string' ? ` ${o.placeholder ?? 'VALUE'}` : ''}`,
    o.description,
  ]);
  rows.push(['  --json', 'print one JSON summary object as the last line of stdout']);
  rows.push(['  -h, --help', 'show this help']);
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  for (const [a, b] of rows) lines.push(a.padEnd(w) + b);
  if (cmd.examples?.length) lines.push('', 'examples:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n') + '\n';
}

async function globalHelp(): Promise<string> {
  const cmds = await loadAllCommands();
  const w = Math.max(8, ...cmds.map((c) => c.name.length)) + 2;
  return [
    `spikeloop ${VERSION}: hardware-in-the-loop control of RC-Spike in-memory-computing chips`,
    '',
    'usage: spikeloop <command> [flags]     (spikeloop <command> --help for its flags)',
    '',
    'commands:',
    ...cmds.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    '',
    'Every command takes --json (one JSON summary object as the last line of stdout).',
    'Devices: --device serial:/dev/ttyACM0 | pty:PATH | mock:behavioral?seed=7 (the default, no board needed; also mock:ideal).',
    '',
  ].join('\n');
}

/** Turns a parseArgs failure into a message naming the flag and the fix. */
function explainParseError(err: Error & { code?: string }, cmd: Command, argv: string[]): string {
  const known = ['json', 'help', ...Object.keys(cmd.options).map(flagName)];
  const m = /'(-{1,2}[^' ]+)/.exec(err.message);
  const given = m?.[1] ?? '';
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const guess = closest(given.replace(/^-+/, ''), known);
      return `unknown flag ${given} for '${cmd.name}'; ${guess ? `did you mean --${guess}? ` : ''}see spikeloop ${cmd.name} --help`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const key = Object.keys(cmd.options).find((k) => given === `--${flagName(k)}` || (cmd.options[k]!.short && given === `-${cmd.options[k]!.short}`));
      const spec = key ? cmd.options[key] : undefined;
      if (spec?.type === 'string') return `flag ${given} needs a value: ${given} ${spec.placeholder ?? 'VALUE'} (${spec.description})`;
      if (spec?.type === 'boolean' || given === '--json' || given === '--help') return `flag ${given} takes no value; write just ${given}`;
      return `${err.message}; see spikeloop ${cmd.name} --help`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL': {
      const pos = /'([^']*)'/.exec(err.message)?.[1] ?? argv.find((a) => !a.startsWith('-'));
      return `unexpected argument '${pos}' for '${cmd.name}': it takes only flags; see spikeloop ${cmd.name} --help`;
    }
    default:
      return `${err.message}; see spikeloop ${cmd.name} --help`;
  }
}

/**
 * `--epochs -3` as `--epochs=-3`: parseArgs takes a value starting with '-' for a flag, so a
 * negative number would read as a missing value; joined, it reaches the flag's schema, which
 * says what the value must be.
 */
function joinNegativeValues(argv: string[], config: Record<string, { type: 'string' | 'boolean'; short?: string }>): string[] {
  const takesValue = (a: string) =>
    Object.entries(config).some(([k, c]) => c.type === 'string' && (a === `--${k}` || (c.short !== undefined && a === `-${c.short}`)));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (takesValue(a) && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Parses and validates flags against a command's options. Throws UsageError. */
export function parseCommandFlags(cmd: Command, argv: string[]): { options: Record<string, unknown>; json: boolean; help: boolean } {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const [k, o] of Object.entries(cmd.options)) config[flagName(k)] = { type: o.type, ...(o.short ? { short: o.short } : {}) };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: joinNegativeValues(argv, config), options: config, strict: true, allowPositionals: false }).values as typeof values;
  } catch (err) {
    throw new UsageError(explainParseError(err as Error & { code?: string }, cmd, argv));
  }
  const json = values.json === true;
  const help = values.help === true;
  const options: Record<string, unknown> = {};
  if (help) return { options, json, help };
  for (const [k, o] of Object.entries(cmd.options)) {
    const raw = values[flagName(k)];
    const r = o.schema.safeParse(raw);
    if (!r.success) {
      const why = r.error.issues.map((i) => i.message).join('; ');
      const shown = raw === undefined ? '(missing)' : `'${String(raw)}'`;
      throw new UsageError(`invalid --${flagName(k)} ${shown}: ${why}${/;\s/.test(why) ? '' : `; expected ${o.description}`}`);
    }
    options[k] = r.data;
  }
  if (cmd.check) {
    const problem = cmd.check(options);
    if (problem) throw new UsageError(`${problem}; see spikeloop ${cmd.name} --help`);
  }
  return { options, json, help };
}

/**
 * Runs the CLI with `argv` (without node and script). Resolves to the exit code:
 * 0 success, 1 failure, 2 usage error, 130 interrupted.
 */
export async function main(argv: string[], ioOverride: Partial<MainIO> = {}): Promise<number> {
  const io: MainIO = { ...defaultIO, ...ioOverride };
  const wantsJson = argv.includes('--json');
  const [first, ...rest] = argv;
  let cmdName = first;

  const fail = (code: number, err: unknown, name?: string): number => {
    const line = oneLine(err);
    io.stderr(`spikeloop${name ? ' ' + name : ''}: ${line}\n`);
    // A CommandFailedError carries the command's summary: it still belongs in the JSON line.
    const summary = err instanceof CommandFailedError ? withoutOk(err.summary) : {};
    if (wantsJson) io.stdout(toJson({ ok: false, ...(name ? { command: name } : {}), ...summary, error: line, kind: errorKind(err) }) + '\n');
    return code;
  };

  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const target = first === 'help' ? rest[0] : undefined;
    if (target) {
      const cmd = await loadCommand(target).catch(() => undefined);
      if (!cmd) return fail(2, new UsageError(`unknown command '${target}'; commands: ${commandNames().join(', ')}`));
      io.stdout(commandHelp(cmd));
      return 0;
    }
    const text = await globalHelp();
    if (wantsJson) {
      io.stderr(text);
      io.stdout(toJson({ ok: true, commands: commandNames() }) + '\n');
    } else io.stdout(text);
    return first === undefined ? 2 : 0;
  }
  if (first === '--version' || first === '-V') {
    io.stdout(wantsJson ? toJson({ ok: true, version: VERSION }) + '\n' : `${VERSION}\n`);
    return 0;
  }
  if (first.startsWith('-')) {
    return fail(2, new UsageError(`expected a command before flags, got '${first}'; run spikeloop --help for the list`));
  }

  let cmd: Command | undefined;
  try {
    cmd = await loadCommand(first);
  } catch (err) {
    return fail(1, err, first);
  }
  if (!cmd) {
    const guess = closest(first, commandNames());
    return fail(2, new UsageError(`unknown command '${first}'; ${guess ? `did you mean '${guess}'? ` : ''}commands: ${commandNames().join(', ')}`));
  }
  cmdName = cmd.name;

  let parsed: ReturnType<typeof parseCommandFlags>;
  try {
    parsed = cmd.parseArgv ? cmd.parseArgv(rest) : parseCommandFlags(cmd, rest);
  } catch (err) {
    return fail(err instanceof UsageError ? 2 : 1, err, cmdName);
  }
  if (parsed.help) {
    const text = commandHelp(cmd);
    if (parsed.json) {
      io.stderr(text);
      io.stdout(toJson({ ok: true, command: cmd.name, help: true }) + '\n');
    } else io.stdout(text);
    return 0;
  }

  // Stop long-running commands on SIGINT/SIGTERM; a second signal exits at once.
  const controller = new AbortController();
  const outer = ioOverride.signal;
  const onOuter = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuter, { once: true });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    controller.abort(new Error(`interrupted by ${sig}`));
  };
  const installHandlers = !ioOverride.signal;
  if (installHandlers) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  const json = parsed.json;
  const ctx: CommandContext<Record<string, unknown>> = {
    options: parsed.options,
    json,
    signal: controller.signal,
    print: (line) => (json ? io.stderr(line + '\n') : io.stdout(line + '\n')),
    stdout: (line) => io.stdout(line + '\n'),
    warn: (line) => io.stderr(line + '\n'),
  };
  try {
    const summary = await cmd.run(ctx);
    if (json) io.stdout(toJson({ ok: true, command: cmd.name, ...summary }) + '\n');
    return 0;
  } catch (err) {
    // Stopped by SIGINT / SIGTERM (or the caller's signal): 130, as a shell reports Ctrl-C.
    if (controller.signal.aborted) return fail(130, interruption(err, controller.signal.reason), cmdName);
    return fail(err instanceof UsageError ? 2 : 1, err, cmdName);
  } finally {
    outer?.removeEventListener('abort', onOuter);
    if (installHandlers) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
