/** Runs the CLI in process and captures what it prints; `last` is the final stdout line (the --json line). */
import { main } from '../../../host/cli/main.ts';

export interface CliResult {
  code: number;
  out: string;
  err: string;
  last: string;
}

export async function cli(...argv: string[]): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), signal: new AbortController().signal });
  const lines = out.trimEnd().split('\n');
  return { code, out, err, last: lines[lines.length - 1] ?? '' };
}
