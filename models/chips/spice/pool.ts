/**
 * Runs netlists on a pool of worker threads, one SPICE engine per worker (worker.ts), at most
 * os.availableParallelism() of them. Independent neurons are independent netlists, so a batch
 * spreads over the pool; results come back in submission order for each caller.
 *
 * `workers: 0` runs everything on one engine in this thread (no worker start-up; for small jobs
 * and tests). A job that overstays `timeoutMs` is failed with a SpiceError and its worker is
 * terminated (the engine cannot be interrupted otherwise); a worker that dies fails its job the
 * same way. Replacement workers start on demand.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { createEngine, type EngineKind, type SpiceEngine, type SpiceVectors } from './engine.ts';
import { SpiceError, type SpiceErrorData } from './errors.ts';

/** Longest a worker may take to start its engine before its job is failed. */
const START_LIMIT_MS = 5 * 60_000;

export interface PoolOptions {
  engine: EngineKind;
  /** Worker threads (default: available parallelism); 0 = run in this thread. Capped at the available parallelism. */
  workers?: number;
  ngspicePath?: string;
  /** Per-job simulation limit, milliseconds from the engine being ready (default 30 min). */
  timeoutMs?: number;
}

interface Job {
  netlist: string;
  resolve: (v: SpiceVectors) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  job: (Job & { id: number; timer?: NodeJS.Timeout }) | undefined;
}

export class SpicePool {
  readonly size: number;
  private readonly queue: Job[] = [];
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  private local: Promise<SpiceEngine> | undefined;
  private localChain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: PoolOptions) {
    const max = Math.max(1, availableParallelism());
    const w = opts.workers ?? max;
    if (!Number.isInteger(w) || w < 0) throw new RangeError(`workers must be a non-negative integer, got ${w}`);
    this.size = Math.min(w, max);
  }

  get engineKind(): EngineKind {
    return this.opts.engine;
  }

  /** Runs one netlist; rejects with SpiceError on any simulator or worker failure. */
  run(netlist: string): Promise<SpiceVectors> {
    if (this.closed) return Promise.reject(new Error('the SPICE pool is closed'));
    if (this.size === 0) return this.runLocal(netlist);
    return new Promise((resolve, reject) => {
      this.queue.push({ netlist, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Runs many netlists and returns their results in order; `onDone(k)` fires as each finishes.
   * The first failure rejects (the rest still run to completion, their results dropped).
   */
  async runAll(netlists: readonly string[], onDone?: (index: number) => void): Promise<SpiceVectors[]> {
    return Promise.all(
      netlists.map((n, k) =>
        this.run(n).then((r) => {
          onDone?.(k);
          return r;
        }),
      ),
    );
  }

  private runLocal(netlist: string): Promise<SpiceVectors> {
    this.local ??= createEngine(this.opts.engine, { ngspicePath: this.opts.ngspicePath });
    const job = this.localChain.then(async () => (await this.local!).run(netlist));
    this.localChain = job.catch(() => undefined);
    return job;
  }

  private spawn(): Slot {
    // A .mjs entry that registers tsx and imports worker.ts (see worker-entry.mjs).
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
      workerData: { engine: this.opts.engine, ngspicePath: this.opts.ngspicePath },
    });
    const slot: Slot = { worker, job: undefined };
    worker.on('message', (m: { id: number; started?: boolean; ok?: boolean; names?: string[]; data?: Float64Array[]; error?: SpiceErrorData }) => {
      const job = slot.job;
      if (!job || m.id !== job.id) return;
      clearTimeout(job.timer);
      if (m.started) {
        job.timer = this.limit(slot, job, this.opts.timeoutMs ?? 30 * 60_000, 'did not finish');
        return;
      }
      slot.job = undefined;
      worker.unref();
      if (m.ok) job.resolve({ names: m.names ?? [], data: m.data ?? [] });
      else job.reject(SpiceError.fromJSON(m.error!));
      this.dispatch();
    });
    const fail = (why: string) => {
      this.drop(slot);
      const job = slot.job;
      slot.job = undefined;
      if (job) {
        clearTimeout(job.timer);
        job.reject(new SpiceError(`SPICE worker stopped: ${why}`, job.netlist, [], this.opts.engine));
      }
      this.dispatch();
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  /** Fails `job` and replaces its worker unless it settles within `ms`. */
  private limit(slot: Slot, job: NonNullable<Slot['job']>, ms: number, what: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (slot.job !== job) return;
      slot.job = undefined;
      this.drop(slot);
      void slot.worker.terminate();
      job.reject(new SpiceError(`SPICE run ${what} within ${ms} ms`, job.netlist, [], this.opts.engine));
      this.dispatch();
    }, ms);
    timer.unref?.();
    return timer;
  }

  private drop(slot: Slot): void {
    const k = this.slots.indexOf(slot);
    if (k >= 0) this.slots.splice(k, 1);
  }

  private dispatch(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const job = this.queue.shift()!;
      const id = this.nextId++;
      const active: NonNullable<Slot['job']> = { ...job, id };
      // Until the worker reports its engine ready, only a hung start-up is caught.
      active.timer = this.limit(slot, active, START_LIMIT_MS, 'did not start');
      slot.job = active;
      slot.worker.ref();
      slot.worker.postMessage({ id, netlist: job.netlist });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the SPICE pool was closed'));
    const slots = this.slots.splice(0);
    // Let idle engines clean up (the ngspice engine removes its temporary folder), then stop.
    await Promise.all(
      slots.map(async (s) => {
        if (!s.job) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 5000);
            s.worker.on('message', (m: { closed?: boolean }) => {
              if (m.closed) {
                clearTimeout(t);
                resolve();
              }
            });
            s.worker.postMessage({ close: true });
          });
        }
        await s.worker.terminate().catch(() => 0);
      }),
    );
    for (const s of slots) s.job?.reject(new Error('the SPICE pool was closed'));
    if (this.local) await (await this.local.catch(() => undefined))?.close();
  }
}
