/**
 * The faults the farm must survive, with a real Redis (a private redis-server, append-only file on),
 * real worker processes (the spawned CLI) and small mock boards:
 *  - a worker SIGKILLed in the middle of a calibration: the job runs again once a worker holding
 *    the chip is back, finishes once, and lands in the database once;
 *  - Redis restarted during a run: no job lost, none written twice;
 *  - a board that disappears: its job fails with the reason after its retries, the other chip's
 *    job completes.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../../host/farm/config.ts';
import { FarmQueues } from '../../../host/farm/queues.ts';
import { RESULT_FILE } from '../../../host/farm/run-job.ts';
import { haveSocat, startChildBoard } from '../../e2e/helpers.ts';
import { cli, haveRedis, startRedis, startWorker, until, type LocalRedis, type SpawnedWorker } from './helpers.ts';

const redisOk = haveRedis();
if (!redisOk) console.warn('farm fault tests skipped: redis-server is not installed (apt-get install redis-server); CI installs it');

const dev = (seed: number) => `mock:behavioral?seed=${seed}&geometry=16-8-4`;
const chipOf = (seed: number) => `behavioral-${seed}-16x8x4`;
/** A calibration small enough for a test, long enough to be killed in the middle of. */
const SMALL_CAL = ['--layers', '0', '--sweep-repeats', '1', '--patterns', '8', '--held-out', '8'];

/** Attempts of a job that ran to the end (each leaves its farm-result.json). */
function finishedAttempts(farmDir: string, jobId: string): number {
  const dir = join(farmDir, 'jobs', jobId);
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, RESULT_FILE))).length;
}

describe.skipIf(!redisOk)('farm faults (real Redis, worker processes, mock boards)', () => {
  let redis: LocalRedis;
  let client: Redis;
  let queues: FarmQueues;
  let farmDir: string;
  let env: NodeJS.ProcessEnv;
  const workers: SpawnedWorker[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    client = connectRedis(redis.url);
    queues = new FarmQueues(client);
  });
  afterAll(async () => {
    await queues?.close();
    client?.disconnect();
    await redis?.dispose();
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.kill();
    await client.flushall();
    rmSync(farmDir, { recursive: true, force: true });
  });
  const fresh = () => {
    farmDir = mkdtempSync(join(tmpdir(), 'spikeloop-farm-'));
    env = { SPIKELOOP_REDIS: redis.url, SPIKELOOP_FARM_DIR: farmDir };
  };
  const worker = async (args: string[]) => {
    const w = await startWorker(['--lock-ms', '3000', '--heartbeat-ms', '1000', '--no-cpu', ...args], env);
    workers.push(w);
    return w;
  };
  const submit = async (args: string[]): Promise<string[]> => {
    const r = await cli(['farm', 'submit', ...args, '--json'], env);
    expect(r.json?.ok, r.stderr).toBe(true);
    return r.json.jobs.map((j: { job_id: string }) => j.job_id);
  };
  const stateOf = async (chip: string, id: string) => (await queues.chip(chip).getJob(id))?.getState();
  const results = async () => {
    const r = await cli(['farm', 'results', '--json'], env);
    expect(r.json?.ok, r.stderr).toBe(true);
    return r.json.results as { job_id: string; status: string; error: string | null; chip_id: string }[];
  };

  it('a worker killed in the middle of a calibration: the job finishes once, on the next worker holding the chip', async () => {
    fresh();
    const a = await worker(['--device', dev(11)]);
    const [id] = await submit(['calibrate', '--chip', chipOf(11), ...SMALL_CAL]);
    // Killed while the job is active and has reported progress from inside the calibration.
    await until('the calibration to be under way', async () => {
      const job = await queues.chip(chipOf(11)).getJob(id!);
      const p = job?.progress as { stage?: string } | undefined;
      return (await job?.getState()) === 'active' && p?.stage ? true : undefined;
    });
    await a.kill();
    expect(await stateOf(chipOf(11), id!)).toBe('active'); // still locked by the dead worker
    await worker(['--device', dev(11)]);
    await until('the job to complete', async () => ((await stateOf(chipOf(11), id!)) === 'completed' ? true : undefined), 100_000);
    const job = (await queues.chip(chipOf(11)).getJob(id!))!;
    expect(job.stalledCounter).toBeGreaterThanOrEqual(1);
    expect(finishedAttempts(farmDir, id!)).toBe(1);
    const rows = await results();
    expect(rows.map((r) => [r.job_id, r.status])).toEqual([[id, 'completed']]);
    // A second sync writes nothing new.
    const again = await cli(['farm', 'sync', '--json'], env);
    expect(again.json.written).toBe(0);
  }, 150_000);

  it('Redis restarted during a run: every job completes and lands once', async () => {
    fresh();
    const w = await worker(['--device', dev(12), '--device', dev(13)]);
    const ids = [
      ...(await submit(['bringup', '--all', '--jitter-runs', '4'])),
      ...(await submit(['bringup', '--all', '--jitter-runs', '4'])),
      ...(await submit(['bringup', '--all', '--jitter-runs', '4'])),
    ];
    expect(ids).toHaveLength(6);
    const chipOfJob = (id: string) => (id.includes(chipOf(12)) ? chipOf(12) : chipOf(13));
    const states = () => Promise.all(ids.map((id) => stateOf(chipOfJob(id), id)));
    // Restarted while the run is under way: some jobs running or done, others still waiting.
    await until('the run to be under way', async () => ((await states()).some((s) => s === 'active' || s === 'completed') ? true : undefined), 20_000, 100);
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    await until('all jobs to complete', async () => ((await states()).every((s) => s === 'completed') ? true : undefined), 110_000, 500).catch((err: Error) => {
      throw new Error(`${err.message}; worker log:\n${w.log()}`);
    });
    const rows = await results();
    expect(rows.map((r) => r.job_id).sort()).toEqual([...ids].sort());
    expect(rows.every((r) => r.status === 'completed')).toBe(true);
    for (const id of ids) expect(finishedAttempts(farmDir, id)).toBeGreaterThanOrEqual(1);
  }, 150_000);

  it.skipIf(!haveSocat())(
    'a board that disappears fails its job with the reason after its retries; the other chip goes on',
    async () => {
      fresh();
      const board = await startChildBoard(['--chip', 'behavioral', '--geometry', '16-8-4', '--seed', '14']);
      await worker(['--device', `pty:${board.hostPath}`, '--device', dev(15)]);
      await board.stop();
      const ids = await submit(['bringup', '--all', '--jitter-runs', '4', '--attempts', '2', '--backoff', '200']);
      const gone = ids.find((id) => id.includes(chipOf(14)))!;
      const alive = ids.find((id) => id.includes(chipOf(15)))!;
      await until('both jobs to finish', async () => {
        const [g, a] = [await stateOf(chipOf(14), gone), await stateOf(chipOf(15), alive)];
        return g === 'failed' && a === 'completed' ? true : undefined;
      });
      const job = (await queues.chip(chipOf(14)).getJob(gone))!;
      expect(job.attemptsMade).toBe(2);
      const rows = await results();
      const failed = rows.find((r) => r.job_id === gone)!;
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(new RegExp(`board pty:${board.hostPath} of chip ${chipOf(14)} does not answer`));
      expect(rows.find((r) => r.job_id === alive)!.status).toBe('completed');
      const status = await cli(['farm', 'status', '--json'], env);
      expect(status.json.chips.find((c: { chip: string }) => c.chip === chipOf(14)).unreachable).toMatch(/does not answer/);
    },
    120_000,
  );
});
