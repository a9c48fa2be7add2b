/**
 * Jobs beyond bring-up and calibration, through real worker processes: twin training on the CPU
 * queue, fine-tuning that resumes from its checkpoint after its worker was SIGKILLed, and a timeout.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../../host/farm/config.ts';
import { CPU_QUEUE } from '../../../host/farm/jobs.ts';
import { FarmQueues } from '../../../host/farm/queues.ts';
import { cli, haveRedis, irisNetworkFor, startRedis, startWorker, until, type LocalRedis, type SpawnedWorker } from './helpers.ts';

const DEV = 'mock:behavioral?seed=41&geometry=16-8-4';
const CHIP = 'behavioral-41-16x8x4';

describe.skipIf(!haveRedis())('farm jobs: CPU training, resumable fine-tuning', () => {
  let redis: LocalRedis;
  let client: Redis;
  let queues: FarmQueues;
  let farmDir: string;
  let env: NodeJS.ProcessEnv;
  const workers: SpawnedWorker[] = [];
  /** The train job's network: shaped for the twin's default windows, not for the 16-8-4 chip. */
  let trained = '';

  beforeAll(async () => {
    redis = await startRedis();
    client = connectRedis(redis.url);
    queues = new FarmQueues(client);
    farmDir = mkdtempSync(join(tmpdir(), 'spikeloop-farm-'));
    env = { SPIKELOOP_REDIS: redis.url, SPIKELOOP_FARM_DIR: farmDir };
  });
  afterAll(async () => {
    for (const w of workers) await w.kill();
    await queues?.close();
    client?.disconnect();
    await redis?.dispose();
    rmSync(farmDir, { recursive: true, force: true });
  });

  it('a train job runs on the CPU queue and leaves its network in the shared folder', async () => {
    workers.push(await startWorker(['--lock-ms', '3000', '--heartbeat-ms', '1000'], env));
    const s = await cli(['farm', 'submit', 'train', '--dataset', 'iris', '--layers', '8', '--epochs', '2', '--json'], env);
    expect(s.json?.ok, s.stderr).toBe(true);
    const id = s.json.jobs[0].job_id as string;
    expect(s.json.jobs[0].queue).toBe(CPU_QUEUE);
    await until('the train job', async () => ((await (await queues.get(CPU_QUEUE).getJob(id))?.getState()) === 'completed' ? true : undefined), 100_000);
    const r = await cli(['farm', 'results', '--kind', 'train', '--json'], env);
    const row = r.json.results[0];
    expect(row).toMatchObject({ job_id: id, status: 'completed', chip_id: null });
    expect(row.summary.test_acc).toBeGreaterThanOrEqual(0);
    expect(existsSync(row.summary.network)).toBe(true);
    trained = row.summary.network;
    await workers.pop()!.stop();
  }, 120_000);

  it('a fine-tuning job whose worker is killed resumes from its checkpoint on the next worker', async () => {
    const net = join(farmDir, 'iris-16x8x4.bin');
    await irisNetworkFor(DEV, net, 3);
    const args = ['--lock-ms', '3000', '--heartbeat-ms', '1000', '--no-cpu', '--device', DEV];
    const a = await startWorker(args, env);
    workers.push(a);
    const s = await cli(
      [
        'farm',
        'submit',
        'finetune',
        '--chip',
        CHIP,
        '--uncalibrated',
        '--model',
        net,
        '--dataset',
        'iris',
        '--epochs',
        '3',
        '--limit-train',
        '32',
        '--limit-test',
        '16',
        '--batch-size',
        '8',
        '--json',
      ],
      env,
    );
    expect(s.json?.ok, s.stderr).toBe(true);
    const id = s.json.jobs[0].job_id as string;
    const checkpoint = join(farmDir, 'jobs', id, 'finetune', 'checkpoint.json');
    await until('the first checkpoint', async () => (existsSync(checkpoint) ? true : undefined), 100_000, 100);
    await a.kill();
    workers.push(await startWorker(args, env));
    await until('the job to complete', async () => ((await (await queues.chip(CHIP).getJob(id))?.getState()) === 'completed' ? true : undefined), 100_000);
    const job = (await queues.chip(CHIP).getJob(id))!;
    expect(job.returnvalue).toMatchObject({ resumed: true, epochs: 3 });
  }, 150_000);

  it('an attempt that runs past its --timeout is aborted and the job fails with the reason', async () => {
    const s = await cli(['farm', 'submit', 'bringup', '--chip', CHIP, '--jitter-runs', '1000', '--timeout', '1', '--attempts', '1', '--json'], env);
    expect(s.json?.ok, s.stderr).toBe(true);
    const id = s.json.jobs[0].job_id as string;
    await until('the job to fail', async () => ((await (await queues.chip(CHIP).getJob(id))?.getState()) === 'failed' ? true : undefined), 40_000);
    const job = (await queues.chip(CHIP).getJob(id))!;
    expect(job.failedReason).toMatch(/^timed out after 1 s \(--timeout\)/);
  });

  it('a deploy whose network does not fit the chip fails at once with the reason, without retries', async () => {
    expect(trained).not.toBe('');
    const s = await cli(['farm', 'submit', 'deploy', '--chip', CHIP, '--model', trained, '--nominal', '--json'], env);
    expect(s.json?.ok, s.stderr).toBe(true);
    const id = s.json.jobs[0].job_id as string;
    await until('the job to fail', async () => ((await (await queues.chip(CHIP).getJob(id))?.getState()) === 'failed' ? true : undefined), 60_000);
    const job = (await queues.chip(CHIP).getJob(id))!;
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/does not fit behavioral-41-16x8x4/);
  }, 90_000);
});
