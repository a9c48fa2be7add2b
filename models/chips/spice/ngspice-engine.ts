/**
 * A system ngspice in batch mode: `ngspice -b -r run.raw run.cir` in a private temporary folder
 * that also holds the bundled sky130 card (`modelcard.skywater`, see sky130-models.ts) and a
 * `.spiceinit`. Runs may overlap (each has its own files); the raw output is parsed by raw-file.ts.
 *
 * `.spiceinit` sets `num_threads=1` (and OMP_NUM_THREADS=1 is passed): distribution builds of
 * ngspice use OpenMP inside the BSIM4 device loop, which on a busy machine made a one-neuron
 * transient 50x slower. Parallelism comes from running several simulations at once instead.
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpiceEngine, SpiceVectors } from './engine.ts';
import { fatalLines, SpiceError } from './errors.ts';
import { parseRawFile, RawFileError } from './raw-file.ts';
import { sky130ModelCard } from './sky130-models.ts';

export interface NgspiceOptions {
  /** Write ASCII raw files instead of binary (slower, for inspection). */
  ascii?: boolean;
  /** Kill a run after this long (default 30 min). */
  timeoutMs?: number;
}

function runProcess(
  exe: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(exe, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      // Keep the tail only: batch mode prints every breakpoint of a long transient.
      out = (out + s).slice(-200_000);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err = (err + s).slice(-200_000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    timer.unref?.();
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, timedOut });
    });
  });
}

export class NgspiceEngine implements SpiceEngine {
  readonly kind = 'ngspice' as const;
  private seq = 0;
  private closed = false;

  private constructor(
    readonly executable: string,
    readonly version: string,
    private readonly dir: string,
    private readonly opts: NgspiceOptions,
  ) {}

  static async start(executable: string, opts: NgspiceOptions = {}): Promise<NgspiceEngine> {
    const dir = mkdtempSync(join(tmpdir(), 'spikeloop-ngspice-'));
    try {
      writeFileSync(join(dir, 'modelcard.skywater'), sky130ModelCard());
      writeFileSync(join(dir, '.spiceinit'), '* written by spikeloop: one thread per simulation\nset num_threads=1\n');
      const v = await runProcess(executable, ['-v'], dir, { ...process.env, OMP_NUM_THREADS: '1' }, 60_000);
      const m = /ngspice-?\s*([\w.+-]+)/i.exec(v.out + v.err);
      return new NgspiceEngine(executable, `ngspice-${m ? m[1] : 'unknown'}`, dir, opts);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  async run(netlist: string): Promise<SpiceVectors> {
    if (this.closed) throw new Error('the ngspice engine is closed');
    const id = `run${this.seq++}`;
    const cir = join(this.dir, `${id}.cir`);
    const raw = join(this.dir, `${id}.raw`);
    await writeFile(cir, netlist);
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1' };
      if (this.opts.ascii) env.SPICE_ASCIIRAWFILE = '1';
      else delete env.SPICE_ASCIIRAWFILE;
      const timeoutMs = this.opts.timeoutMs ?? 30 * 60_000;
      const p = await runProcess(this.executable, ['-b', '-r', `${id}.raw`, `${id}.cir`], this.dir, env, timeoutMs);
      const lines = (p.err + '\n' + p.out).split(/\r?\n/).filter((l) => l.trim() !== '' && !/^\s*Reference value/i.test(l));
      const messages = lines.filter((l) => /error|warning|abort|too small|interrupted|not parsed|iteration limit/i.test(l));
      if (p.timedOut) throw new SpiceError(`ngspice did not finish within ${timeoutMs} ms`, netlist, messages, 'ngspice');
      const fatal = fatalLines(messages);
      if (fatal.length) throw new SpiceError(`SPICE run failed: ${fatal[0].trim()}`, netlist, messages, 'ngspice');
      if (p.code !== 0) throw new SpiceError(`ngspice exited with ${p.code ?? p.signal}`, netlist, messages.length ? messages : lines.slice(-20), 'ngspice');
      let bytes: Uint8Array;
      try {
        bytes = await readFile(raw);
      } catch {
        throw new SpiceError('ngspice wrote no raw output', netlist, messages.length ? messages : lines.slice(-20), 'ngspice');
      }
      try {
        const res = parseRawFile(bytes);
        if (res.data.length === 0 || res.data[0].length === 0) throw new RawFileError('no points');
        return { names: res.names, data: res.data };
      } catch (e) {
        if (e instanceof RawFileError) throw new SpiceError(`unreadable ngspice output: ${e.message}`, netlist, messages, 'ngspice');
        throw e;
      }
    } finally {
      await Promise.all([rm(cir, { force: true }), rm(raw, { force: true })]);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
