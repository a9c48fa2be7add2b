/** Runs bin/spikeloop.js as a child process (real signals, real exit codes). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/spikeloop.js', import.meta.url));

export interface SpawnResult {
  code: number | null;
  out: string;
  err: string;
  /** Milliseconds from the signal to the exit (undefined when no signal was sent). */
  msAfterSignal?: number;
  /** Whether `when` was seen (and the signal sent). */
  signalled: boolean;
}

/**
 * Spawns the CLI; once stdout or stderr matches `when`, sends `signal` (once). Resolves when the
 * process exits; kills it (SIGKILL) after `timeoutMs`.
 */
export function spawnCli(args: string[], opts: { when?: RegExp; signal?: NodeJS.Signals; timeoutMs?: number; cwd?: string } = {}): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sentAt: number | undefined;
    const check = () => {
      if (sentAt === undefined && opts.when && opts.signal && opts.when.test(out + err)) {
        sentAt = performance.now();
        child.kill(opts.signal);
      }
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      check();
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      check();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, signalled: sentAt !== undefined, ...(sentAt !== undefined ? { msAfterSignal: performance.now() - sentAt } : {}) });
    });
  });
}
