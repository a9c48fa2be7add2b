/**
 * One farm job in its own thread (worker.ts starts it through job-thread.js). Calibration fits and
 * twin training hold the CPU for seconds at a time; in a thread of their own they cannot starve the
 * worker's event loop, which must renew the job's lock in Redis and the chip's heartbeat, or the
 * job would be taken for dead and run a second time elsewhere.
 *
 * Messages to the parent: { type: 'progress', p } | { type: 'done', result } | { type: 'error', message, permanent }.
 * From the parent: { type: 'abort', reason } (timeout, shutdown): the workflow stops at its next check.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { jobDataSchema } from './jobs.ts';
import { PermanentJobError, runFarmJob } from './run-job.ts';

const port = parentPort!;
const input = workerData as { jobId: string; data: unknown; uri?: string; farmDir: string };
const controller = new AbortController();
port.on('message', (m: { type: string; reason?: string }) => {
  if (m.type === 'abort') controller.abort(new Error(m.reason ?? 'aborted'));
});

try {
  const data = jobDataSchema.parse(input.data);
  const result = await runFarmJob({
    jobId: input.jobId,
    data,
    uri: input.uri,
    farmDir: input.farmDir,
    signal: controller.signal,
    progress: (p) => port.postMessage({ type: 'progress', p }),
    log: () => {},
  });
  port.postMessage({ type: 'done', result: JSON.parse(JSON.stringify(result)) });
} catch (err) {
  port.postMessage({ type: 'error', message: (err as Error)?.message ?? String(err), permanent: err instanceof PermanentJobError });
}
port.close();
