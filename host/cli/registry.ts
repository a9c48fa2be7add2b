/**
 * The command registry: every module in commands/ is a command, named after its file.
 * Adding a command means adding commands/<name>.ts that exports `name` (equal to the file
 * name), `summary`, `options` and `run` (see command.ts); nothing else needs editing.
 * A command module is only imported when it runs (or when help lists all of them), so a
 * heavy command does not slow the others down.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from './command.ts';

const COMMANDS_DIR = new URL('./commands/', import.meta.url);
const NAME = /^[a-z][a-z0-9-]*$/;

/** Command names available (from the files in commands/), sorted. */
export function commandNames(): string[] {
  let files: string[];
  try {
    files = readdirSync(fileURLToPath(COMMANDS_DIR));
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => NAME.test(n))
    .sort();
}

/** Loads one command module and checks its shape; undefined when no such command exists. */
export async function loadCommand(name: string): Promise<Command | undefined> {
  if (!NAME.test(name) || !commandNames().includes(name)) return undefined;
  const mod = (await import(new URL(`${name}.ts`, COMMANDS_DIR).href)) as Partial<Command>;
  const problems: string[] = [];
  if (mod.name !== name) problems.push(`exports name '${String(mod.name)}' instead of '${name}'`);
  if (typeof mod.summary !== 'string') problems.push('has no summary');
  if (typeof mod.options !== 'object' || mod.options === null) problems.push('has no options');
  if (typeof mod.run !== 'function') problems.push('has no run()');
  if (problems.length > 0) throw new Error(`command module commands/${name}.ts ${problems.join(', ')}`);
  return mod as Command;
}

export async function loadAllCommands(): Promise<Command[]> {
  const out: Command[] = [];
  for (const n of commandNames()) {
    const c = await loadCommand(n);
    if (c) out.push(c);
  }
  return out;
}
