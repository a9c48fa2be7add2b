/**
 * Farm test plumbing: a private redis-server on a free loopback port with its own temporary folder
 * (append-only file on, so a restart keeps the queues), and spikeloop CLI processes (workers,
 * submit, results) spawned as a user would run them.
 *
 * Nothing outlives the test process: every child is started under `setpriv --pdeathsig` (Linux:
 * the kernel signals it when this process dies, even by SIGKILL or a runner's timeout), and on a
 * normal exit the children still running are killed and the Redis folders removed.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadDataset } from '../../../models/datasets/load.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { deviceHorizons } from '../../../calibration/chip-mapping.ts';
import { presetFor } from '../../../models/training/presets.ts';

export const BIN = fileURLToPath(new URL('../../../bin/spikeloop.js', import.meta.url));

const HAVE_SETPRIV = spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
const live = new Set<ChildProcess>();
const folders = new Set<string>();
let reaperInstalled = false;

function reap(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of folders) rmSync(d, { recursive: true, force: true });
}

/** spawn(), tied to this process's life (see the file comment). */
export function spawnTied(command: string, args: string[], opts: SpawnOptions): ChildProcess {
  if (!reaperInstalled) {
    process.once('exit', reap);
    reaperInstalled = true;
  }
  const c = HAVE_SETPRIV ? spawn('setpriv', ['--pdeathsig', 'SIGTERM', command, ...args], opts) : spawn(command, args, opts);
  live.add(c);
  c.once('exit', () => live.delete(c));
  return c;
}

export function haveRedis(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LocalRedis {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (SIGTERM: it writes its append-only file and exits). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
  /** The running server's process id (benches read its CPU time). */
  pid(): number | undefined;
}

export async function startRedis(): Promise<LocalRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'spikeloop-redis-'));
  folders.add(dir);
  let child: ChildProcess | undefined;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawnTied(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--save',
          '',
          '--daemonize',
          'no',
          '--protected-mode',
          'yes',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child = c;
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start within 10 s:\n${out}`)), 10_000);
      c.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code}):\n${out}`));
      });
    });
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop,
    start,
    pid: () => child?.pid,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
      folders.delete(dir);
    },
  };
}

export interface SpawnedWorker {
  child: ChildProcess;
  id: string;
  chips: string[];
  /** Resolves once the worker's job threads are loaded (its `{"warm":true}` line). */
  warm: Promise<void>;
  log(): string;
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait: the crash the farm must survive. */
  kill(): Promise<void>;
}

/** Starts `spikeloop farm worker` and resolves once it printed its ready line. */
export function startWorker(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<SpawnedWorker> {
  const child = spawnTied(process.execPath, [BIN, 'farm', 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let warmed!: () => void;
  const warm = new Promise<void>((r) => (warmed = r));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`farm worker not ready within ${timeoutMs} ms; stderr:\n${err}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`farm worker exited (${code}) before it was ready; stderr:\n${err}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: { ready?: boolean; warm?: boolean; worker?: string; chips?: string[] };
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.warm) warmed();
      if (!msg.ready) return;
      clearTimeout(timer);
      resolve({
        child,
        id: msg.worker!,
        chips: msg.chips!,
        warm,
        log: () => err,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
        async kill() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
        },
      });
    });
  });
}

/** Runs one CLI command to the end; with --json in args, `json` is its last stdout line parsed. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string; json: any }> {
  return new Promise((resolve) => {
    const child = spawnTied(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.once('exit', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: unknown;
      try {
        json = JSON.parse(last);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** An Iris network shaped and timed for the chip at `uri` (as the demo trains one), a few epochs: what deploy and finetune jobs need. */
export async function irisNetworkFor(uri: string, file: string, epochs = 20): Promise<void> {
  await initBackend();
  const device = await ChipDevice.open(uri);
  const info = device.info;
  await device.close();
  const data = await loadDataset('iris');
  const preset = presetFor('iris');
  const sizes = [data.features + (preset.biasSpike === undefined ? 0 : 1), ...info.layers.slice(0, -1).map((l) => l.outputs), data.classes];
  const config = defaultConfig(sizes, {
    model: 'pnn',
    inputWindow: 1,
    horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2),
    shiftGrids: false,
    ...(preset.biasSpike === undefined ? {} : { biasSpike: preset.biasSpike }),
  });
  const solver = createSolver('dstd', { bins: 16 });
  const net = initNetwork(config, { x: data.train.x, n: data.train.n }, solver, { seed: 1 });
  await trainNetwork(net, { train: data.train, test: data.test }, { epochs, batchSize: preset.batchSize, lr: preset.lr, seed: 1, solver, loss: preset.loss });
  await saveNetwork(file, net, { dataset: 'iris', seed: 1 });
  net.dispose();
}
