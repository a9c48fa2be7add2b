/**
 * `spikeloop farm worker`: one per computer with boards. Identifies each board's chip from its
 * HELLO, announces the chips (heartbeat keys with a time to live, registry.ts) and consumes the
 * queue of each chip it holds (one job per board at a time) and, unless told not to, the shared
 * CPU queue. A job addressed to a chip therefore runs only where that chip is.
 *
 * Faults: a worker that dies leaves its active jobs locked until the lock expires (lockMs); then
 * BullMQ's stalled-job check, run by any worker on that queue (the next one holding the chip),
 * puts them back, and they run again. A job that throws is retried with exponential backoff
 * (attempts and backoff from its submission); a timeout aborts the attempt through the workflow's
 * AbortSignal. Redis going away pauses the worker; its client reconnects and goes on.
 */
import { availableParallelism, hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { ChipDevice } from '../device/chip-device.ts';
import { connectRedis, KEY_PREFIX } from './config.ts';
import { CPU_QUEUE, chipIdSchema, chipQueueName, jobDataSchema } from './jobs.ts';
import { announce, withdraw, type ChipEntry, type WorkerEntry } from './registry.ts';
import { JobThreads } from './job-threads.ts';
import { PermanentJobError, type JobProgress } from './run-job.ts';

export interface FarmWorkerOptions {
  redisUrl: string;
  devices: string[];
  farmDir: string;
  /** Also take CPU jobs (twin training). */
  cpu: boolean;
  /** How long a job's lock lasts without renewal: a dead worker's job is retried this long after. */
  lockMs: number;
  heartbeatMs: number;
  /** Cores this worker may use (default: all of the machine's); shared among the jobs it runs at once. */
  cores?: number;
  id?: string;
  signal: AbortSignal;
  log(line: string): void;
  /** Called once the worker is registered and consuming (tests and scripts wait for it). */
  onReady?(info: { id: string; chips: ChipEntry[] }): void;
  /** Called once its job threads are loaded (benches wait for it, so that start-up is not counted as job time). */
  onWarm?(): void;
}

export interface FarmWorkerSummary {
  worker: string;
  chips: string[];
  completed: number;
  failed: number;
}

/** Opens a board for its HELLO and closes it again: jobs open it themselves when they run. */
async function identify(uri: string, worker: string, host: string): Promise<ChipEntry> {
  const device = await ChipDevice.open(uri, { timeouts: { HELLO: 3000 } });
  try {
    const h = device.info;
    const id = chipIdSchema.safeParse(h.chipId);
    if (!id.success) throw new Error(`board ${uri} announces chip id '${h.chipId}', which the farm cannot use as a queue name: ${id.error.issues[0]!.message}`);
    return {
      chipId: id.data,
      uri,
      worker,
      host,
      geometry: [h.layers[0]!.inputs, ...h.layers.map((l) => l.outputs)],
      boardId: h.boardId,
      firmware: h.firmware,
      seenAt: new Date().toISOString(),
    };
  } finally {
    await device.close();
  }
}

export async function runFarmWorker(opts: FarmWorkerOptions): Promise<FarmWorkerSummary> {
  const host = hostname();
  const id = opts.id ?? `${host}-${process.pid}`;
  const chips: ChipEntry[] = [];
  for (const uri of opts.devices) {
    let entry: ChipEntry;
    try {
      entry = await identify(uri, id, host);
    } catch (err) {
      throw new Error(`board ${uri}: ${(err as Error).message}`);
    }
    const twin = chips.find((c) => c.chipId === entry.chipId);
    if (twin) throw new Error(`boards ${twin.uri} and ${uri} both announce chip ${entry.chipId}; a chip id must name one die`);
    chips.push(entry);
    opts.log(`chip ${entry.chipId} (${entry.geometry.join('-')}) on ${uri}`);
  }
  if (chips.length === 0 && !opts.cpu) throw new Error('nothing to do: no --device and --no-cpu');

  const redis = connectRedis(opts.redisUrl);
  const self: WorkerEntry = { id, host, pid: process.pid, chips: chips.map((c) => c.chipId), cpu: opts.cpu, startedAt: new Date().toISOString(), seenAt: '' };
  const ttl = opts.heartbeatMs * 3;
  const beat = async () => {
    const now = new Date().toISOString();
    self.seenAt = now;
    for (const c of chips) c.seenAt = now;
    await announce(redis, self, chips, ttl).catch((err: Error) => opts.log(`heartbeat: ${err.message}`));
  };
  await beat();
  const timer = setInterval(() => void beat(), opts.heartbeatMs);

  const active = new Set<AbortController>();
  // One thread per job that can run at once (a chip's queue takes one job at a time), kept warm.
  const threads = new JobThreads();
  const slots = chips.length + (opts.cpu ? 1 : 0);
  const cores = opts.cores ?? availableParallelism();
  const counts = { completed: 0, failed: 0 };

  const processJob = async (job: Job, uri: string | undefined, entry: ChipEntry | undefined): Promise<Record<string, unknown>> => {
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`job data invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const data = parsed.data;
    const controller = new AbortController();
    active.add(controller);
    // The job's pools (calibration fits) get its share of the cores: the jobs running now split them,
    // so 8 calibrations on 2 cores fit inline instead of starting 16 pool threads that fight for them.
    const workers = Math.max(1, Math.floor(cores / active.size));
    let timedOut = false;
    const timeout = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${data.timeoutMs / 1000} s`));
    }, data.timeoutMs);
    let lastSent = 0;
    let lastStage = '';
    const progress = (p: JobProgress) => {
      const now = Date.now();
      if (p.stage === lastStage && now - lastSent < 500 && p.done < p.total) return;
      lastSent = now;
      lastStage = p.stage;
      job.updateProgress({ ...p, worker: id }).catch(() => {});
    };
    opts.log(`job ${job.id} ${data.kind}${data.chip ? ` on ${data.chip}` : ''}: started (attempt ${job.attemptsMade + 1})`);
    try {
      // A cross-validation's train job runs after its folds' jobs (submit.ts): their results are its input.
      const children = data.kind === 'train' ? Object.values(await job.getChildrenValues()) : [];
      const result = await threads.run(
        { jobId: job.id!, data, uri, farmDir: opts.farmDir, workers, ...(children.length ? { children } : {}) },
        controller.signal,
        progress,
      );
      if (entry?.unreachable) delete entry.unreachable;
      counts.completed++;
      opts.log(`job ${job.id}: completed`);
      return { ...result, worker: id, host };
    } catch (err) {
      counts.failed++;
      let msg = (err as Error).message;
      if (timedOut) msg = `timed out after ${data.timeoutMs / 1000} s (--timeout): ${msg}`;
      if (entry && /does not answer/.test(msg)) entry.unreachable = msg;
      opts.log(`job ${job.id}: attempt failed: ${msg}`);
      if (err instanceof PermanentJobError) throw new UnrecoverableError(msg);
      throw new Error(msg);
    } finally {
      clearTimeout(timeout);
      active.delete(controller);
    }
  };

  const common = {
    connection: redis,
    prefix: KEY_PREFIX,
    concurrency: 1,
    lockDuration: opts.lockMs,
    stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
    maxStalledCount: 3,
  };
  const workers: Worker[] = [];
  for (const c of chips) workers.push(new Worker(chipQueueName(c.chipId), (job) => processJob(job, c.uri, c), common));
  // CPU jobs (training, cross-validation folds) are single-threaded: as many at once as the worker has cores.
  if (opts.cpu) workers.push(new Worker(CPU_QUEUE, (job) => processJob(job, undefined, undefined), { ...common, concurrency: cores }));
  for (const w of workers) w.on('error', (err) => opts.log(`queue ${w.name}: ${err.message}`));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  opts.log(`worker ${id}: ${chips.length} chip(s)${opts.cpu ? ' and the CPU queue' : ''}, Redis ${opts.redisUrl}`);
  opts.onReady?.({ id, chips });
  // Load the job threads while the queues are quiet (a job that comes first starts its own).
  void threads.warm(slots).then(() => opts.onWarm?.());

  await new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  opts.log(`worker ${id}: stopping`);
  clearInterval(timer);
  for (const c of active) c.abort(new Error('the worker is stopping'));
  await Promise.all(workers.map((w) => w.close().catch(() => {})));
  await threads.close();
  await withdraw(redis, self).catch(() => {});
  await redis.quit().catch(() => redis.disconnect());
  return { worker: id, chips: self.chips, ...counts };
}
