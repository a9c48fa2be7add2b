/**
 * The worker's job threads (job-thread.ts), kept warm between jobs: loading the sources and the
 * TensorFlow.js backend costs a thread a few CPU seconds, which on a busy 2-core machine was a
 * large share of a small chip's bring-up or deploy. A job takes an idle thread (or starts one),
 * and gives it back when it ends; a thread that had to be terminated (an abort it did not obey,
 * an exit) is not reused.
 */
import { Worker as Thread } from 'node:worker_threads';
import type { JobThreadInput } from './job-thread.ts';
import { PermanentJobError, type JobProgress } from './run-job.ts';

/** How long an aborted job's thread may take to stop before it is terminated. */
export const ABORT_GRACE_MS = 10_000;

type FromThread =
  | { type: 'ready' }
  | { type: 'progress'; p: JobProgress }
  | { type: 'done'; result: Record<string, unknown> }
  | { type: 'error'; message: string; permanent?: boolean };

interface Slot {
  thread: Thread;
  ready: Promise<void>;
  /** The handler of the job running on it, if any. */
  onMessage?: (m: FromThread) => void;
  onGone?: (err: Error) => void;
  gone: boolean;
}

export class JobThreads {
  private readonly idle: Slot[] = [];
  private readonly all = new Set<Slot>();
  private closed = false;

  private start(): Slot {
    const thread = new Thread(new URL('./job-thread.js', import.meta.url));
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    const slot: Slot = { thread, ready, gone: false };
    // A thread that dies while idle must not leave an unhandled rejection behind.
    slot.ready.catch(() => {});
    const gone = (err: Error) => {
      if (slot.gone) return;
      slot.gone = true;
      this.all.delete(slot);
      const k = this.idle.indexOf(slot);
      if (k >= 0) this.idle.splice(k, 1);
      readyReject(err);
      slot.onGone?.(err);
    };
    thread.on('message', (m: FromThread) => {
      if (m.type === 'ready') readyResolve();
      else slot.onMessage?.(m);
    });
    thread.on('error', (err) => gone(err));
    thread.on('exit', (code) => gone(new Error(`the job's thread exited (${code}) without a result`)));
    this.all.add(slot);
    return slot;
  }

  /** Starts threads until `n` are idle (they load in the background; `warm` resolves once they are ready). */
  async warm(n: number): Promise<void> {
    while (this.idle.length < n && !this.closed) this.idle.push(this.start());
    await Promise.all(this.idle.map((s) => s.ready.catch(() => {})));
  }

  /** Runs one job on an idle thread (a new one if none is idle); rejects with the job's error. */
  async run(input: JobThreadInput, signal: AbortSignal, progress: (p: JobProgress) => void): Promise<Record<string, unknown>> {
    if (this.closed) throw new Error('the worker is stopping');
    const slot = this.idle.pop() ?? this.start();
    return new Promise((resolve, reject) => {
      let settled = false;
      let running = false;
      let hardStop: NodeJS.Timeout | undefined;
      const settle = (reuse: boolean, fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(hardStop);
        signal.removeEventListener('abort', onAbort);
        slot.onMessage = undefined;
        slot.onGone = undefined;
        if (reuse && !slot.gone && !this.closed) this.idle.push(slot);
        else if (!slot.gone) void slot.thread.terminate();
        fn();
      };
      const onAbort = () => {
        const reason = (signal.reason as Error)?.message ?? 'aborted';
        // Not started yet (the thread still loading): nothing to stop.
        if (!running) return settle(true, () => reject(new Error(reason)));
        slot.thread.postMessage({ type: 'abort', reason });
        hardStop = setTimeout(
          () => settle(false, () => reject(new Error(`${reason}; the job did not stop within ${ABORT_GRACE_MS / 1000} s and was terminated`))),
          ABORT_GRACE_MS,
        );
      };
      slot.onGone = (err) => settle(false, () => reject(err));
      slot.onMessage = (m) => {
        if (m.type === 'progress') progress(m.p);
        else if (m.type === 'done') settle(true, () => resolve(m.result));
        // An aborted job's thread may be half way through something: not reused.
        else if (m.type === 'error') settle(!signal.aborted, () => reject(m.permanent ? new PermanentJobError(m.message) : new Error(m.message)));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      slot.ready.then(
        () => {
          if (settled) return;
          running = true;
          slot.thread.postMessage({ type: 'run', input });
        },
        () => {},
      );
    });
  }

  /** Terminates every thread (the running jobs' first: their callers were aborted before). */
  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((s) => s.thread.terminate().catch(() => 0)));
    this.all.clear();
  }
}
