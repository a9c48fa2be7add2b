/**
 * The project's worker pool: a thin layer over piscina that runs a named export of a task module
 * on worker threads. Independent problems (one neuron's fit, one shard of a training batch) are
 * tasks; a task is a pure function of its input, so a result never depends on the worker count.
 *
 * `workers: 1` runs tasks inline in this thread (no thread start-up, the same code path as a
 * worker), which is also the reference every other worker count must reproduce.
 */

import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { pauser } from '../io/event-loop.ts';

const ENTRY = new URL('./task-entry.mjs', import.meta.url).href;

/** The default worker count: the cores this process may use. */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

/** Checks a worker count from a flag or an option; throws naming the value and the fix. */
export function checkWorkers(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 256) {
    throw new RangeError(`workers must be an integer from 1 to 256, got ${n}: pass --workers N (default ${defaultWorkers()}, the available cores)`);
  }
  return n;
}

export interface TaskOptions {
  /** Buffers moved (not copied) to the worker with the input. */
  transfer?: ArrayBuffer[];
  signal?: AbortSignal;
}

export class TaskPool {
  readonly workers: number;
  private readonly pool: Piscina | undefined;
  private readonly inline = new Map<string, Promise<Record<string, unknown>>>();

  constructor(workers: number = defaultWorkers()) {
    this.workers = checkWorkers(workers);
    if (this.workers > 1) {
      this.pool = new Piscina({ filename: ENTRY, minThreads: this.workers, maxThreads: this.workers, idleTimeout: 60_000 });
    }
  }

  /** Runs `fn` exported by `module` (a file URL, e.g. `new URL('./fit-task.ts', import.meta.url)`) on `input`. */
  async run<I, O>(module: URL, fn: string, input: I, opts: TaskOptions = {}): Promise<O> {
    opts.signal?.throwIfAborted();
    if (!this.pool) {
      let loaded = this.inline.get(module.href);
      if (!loaded) {
        loaded = import(module.href) as Promise<Record<string, unknown>>;
        this.inline.set(module.href, loaded);
      }
      const f = (await loaded)[fn];
      if (typeof f !== 'function') throw new TypeError(`pool task ${fn} is not exported by ${module.href}`);
      return (await f(input)) as O;
    }
    return this.pool.run({ module: module.href, fn, input }, { transferList: opts.transfer, signal: opts.signal ?? null }) as Promise<O>;
  }

  /**
   * Maps `inputs` through a task, results in input order; `onDone` fires as each one finishes.
   * Inline (one worker) the tasks run one after another with a turn of the event loop every
   * 50 ms between them, so a signal handler can run and abort the rest.
   */
  async runAll<I, O>(module: URL, fn: string, inputs: readonly I[], opts: { signal?: AbortSignal; onDone?: (index: number) => void } = {}): Promise<O[]> {
    if (!this.pool) {
      const pause = pauser(opts.signal);
      const out: O[] = [];
      for (const [k, input] of inputs.entries()) {
        await pause();
        out.push(await this.run<I, O>(module, fn, input, { signal: opts.signal }));
        opts.onDone?.(k);
      }
      return out;
    }
    // piscina listens on the signal once per queued task: one signal of our own (no listener
    // limit) takes the caller's abort, so the caller's signal carries one listener, not thousands.
    const outer = opts.signal;
    outer?.throwIfAborted();
    const inner = new AbortController();
    setMaxListeners(0, inner.signal);
    const forward = () => inner.abort(outer?.reason);
    outer?.addEventListener('abort', forward, { once: true });
    try {
      return await Promise.all(
        inputs.map((input, k) =>
          this.run<I, O>(module, fn, input, { signal: inner.signal }).then((r) => {
            opts.onDone?.(k);
            return r;
          }),
        ),
      );
    } catch (err) {
      // The caller's abort, not piscina's wrapper of it: callers tell an interruption by its reason.
      if (outer?.aborted) throw outer.reason;
      throw err;
    } finally {
      outer?.removeEventListener('abort', forward);
      // Tasks still queued after another one failed are not wanted any more.
      inner.abort();
    }
  }

  async close(): Promise<void> {
    await this.pool?.destroy();
  }
}
