/**
 * A farm job thread (worker.ts starts it through job-thread.js, job-threads.ts keeps it). Calibration
 * fits and twin training hold the CPU for seconds at a time; in a thread of their own they cannot
 * starve the worker's event loop, which must renew the job's lock in Redis and the chip's heartbeat,
 * or the job would be taken for dead and run a second time elsewhere.
 *
 * The thread is long-lived: it loads the sources and the tfjs backend once, says it is ready, and then
 * runs one job after another, so a job does not pay seconds of start-up on a busy machine.
 *
 * Messages to the parent: { type: 'ready' } once loaded, then per job { type: 'progress', p } |
 * { type: 'done', result } | { type: 'error', message, permanent }.
 * From the parent: { type: 'run', input } (one at a time), { type: 'abort', reason } (timeout,
 * shutdown): the running workflow stops at its next check.
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from '../../models/tf/backend.ts';
import { jobDataSchema } from './jobs.ts';
import { PermanentJobError, runFarmJob } from './run-job.ts';

export interface JobThreadInput {
  jobId: string;
  data: unknown;
  uri?: string;
  farmDir: string;
  /** Threads the job's own pools may use (calibration fits), when its flags do not say. */
  workers: number;
  /** The results of the job's children in the queue (a cross-validation's folds). */
  children?: unknown[];
}

const port = parentPort!;
let controller: AbortController | undefined;

async function runOne(input: JobThreadInput): Promise<void> {
  controller = new AbortController();
  try {
    const data = jobDataSchema.parse(input.data);
    const result = await runFarmJob({
      jobId: input.jobId,
      data,
      uri: input.uri,
      farmDir: input.farmDir,
      workers: input.workers,
      children: input.children,
      signal: controller.signal,
      progress: (p) => port.postMessage({ type: 'progress', p }),
      log: () => {},
    });
    port.postMessage({ type: 'done', result: JSON.parse(JSON.stringify(result)) });
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error)?.message ?? String(err), permanent: err instanceof PermanentJobError });
  } finally {
    controller = undefined;
  }
}

port.on('message', (m: { type: string; reason?: string; input?: JobThreadInput }) => {
  if (m.type === 'abort') controller?.abort(new Error(m.reason ?? 'aborted'));
  else if (m.type === 'run') void runOne(m.input!);
});
// The backend every job uses, loaded before the first job rather than inside it.
await initBackend();
port.postMessage({ type: 'ready' });
