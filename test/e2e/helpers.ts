/** End-to-end plumbing: a mock board in a child process on a pseudo-terminal pair. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/spikeloop.js', import.meta.url));

export function haveSocat(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

export interface ChildBoard {
  hostPath: string;
  child: ChildProcess;
  /** Stderr collected so far (for failure messages). */
  log(): string;
  stop(): Promise<{ code: number | null; stdout: string[] }>;
}

/**
 * Starts `spikeloop mock-board --pty ...` and resolves once it printed its first stdout line
 * ({"pty": path}). --exit-with-parent makes the child exit if we die.
 */
export function startChildBoard(args: string[], timeoutMs = 20_000): Promise<ChildBoard> {
  const child = spawn(process.execPath, [BIN, 'mock-board', '--pty', '--exit-with-parent', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const lines: string[] = [];
  const rl = createInterface({ input: child.stdout! });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mock-board printed no pty line within ${timeoutMs} ms; stderr:\n${err}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (lines.length === 0) reject(new Error(`mock-board exited (${code}) before printing its pty; stderr:\n${err}`));
    });
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length !== 1) return;
      clearTimeout(timer);
      let hostPath: string;
      try {
        hostPath = (JSON.parse(line) as { pty: string }).pty;
      } catch {
        child.kill('SIGKILL');
        reject(new Error(`first stdout line of mock-board is not {"pty": ...}: ${line}`));
        return;
      }
      resolve({
        hostPath,
        child,
        log: () => err,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          const code = await exited;
          return { code, stdout: lines };
        },
      });
    });
  });
}
