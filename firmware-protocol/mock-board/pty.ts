/**
 * A pseudo-terminal pair from Debian's `socat`: the mock board serves one end, the host opens
 * the other as if it were a USB serial port. socat logs the two paths on stderr at -d -d.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface PtyPair {
  /** The end the (mock) device serves. */
  devicePath: string;
  /** The end the host opens. */
  hostPath: string;
  close(): Promise<void>;
}

export interface PtyOptions {
  /** socat executable; default "socat" on PATH. */
  socat?: string;
  /** How long to wait for socat to report both paths. Default 5000 ms. */
  timeoutMs?: number;
}

const INSTALL_HINT = 'socat is needed for pseudo-terminal pairs; install it with `apt-get install socat` (Debian/Ubuntu)';

export function openPtyPair(opts: PtyOptions = {}): Promise<PtyPair> {
  const exe = opts.socat ?? 'socat';
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(exe, ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      reject(new Error(`${INSTALL_HINT} (${(e as Error).message})`));
      return;
    }
    const paths: string[] = [];
    let log = '';
    let settled = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGTERM');
      reject(new Error(msg));
    };
    const timer = setTimeout(() => fail(`socat did not report two pty paths within ${timeoutMs} ms; its log:\n${log}`), timeoutMs);
    child.once('error', (e: NodeJS.ErrnoException) => {
      fail(e.code === 'ENOENT' ? `${INSTALL_HINT} (\`${exe}\` not found)` : `socat failed to start: ${e.message}`);
    });
    child.once('exit', (code, signal) => fail(`socat exited (code ${code}, signal ${signal}) before the ptys were ready; its log:\n${log}`));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      if (settled) return;
      log += s;
      for (const m of s.matchAll(/PTY is (\S+)/g)) paths.push(m[1]!);
      if (paths.length >= 2 && /starting data transfer loop/.test(log)) {
        settled = true;
        clearTimeout(timer);
        const [devicePath, hostPath] = paths as [string, string];
        resolve({
          devicePath,
          hostPath,
          async close() {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGTERM');
              await exited;
            }
          },
        });
      }
    });
  });
}
