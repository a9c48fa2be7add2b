/**
 * Jobs beyond bring-up and calibration, through real worker processes: twin training on the CPU
 * queue, fine-tuning that resumes from its checkpoint after its worker was SIGKILLed, and a timeout.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  it('train --cv K fans out one cv-fold job per fold to the CPU workers and gathers them as spikeloop train --cv K does on one computer', async () => {
    const args = ['--lock-ms', '3000', '--heartbeat-ms', '1000', '--cores', '1'];
    workers.push(await startWorker(args, env), await startWorker(args, env));
    const flags = ['--dataset', 'iris', '--layers', '8', '--epochs', '2', '--cv', '3', '--seed', '2'];
    const s = await cli(['farm', 'submit', 'train', ...flags, '--json'], env);
    expect(s.json?.ok, s.stderr).toBe(true);
    expect(s.json.jobs.map((j: { kind: string }) => j.kind)).toEqual(['train', 'cv-fold', 'cv-fold', 'cv-fold']);
    const parent = s.json.jobs[0].job_id as string;
    const state = () =>
      queues
        .get(CPU_QUEUE)
        .getJob(parent)
        .then((j) => j?.getState());
    // The gathering job waits for its folds.
    expect(await state()).toBe('waiting-children');
    await until('the cross-validation', async () => ((await state()) === 'completed' ? true : undefined), 300_000);

    const folds = (await cli(['farm', 'results', '--kind', 'cv-fold', '--json'], env)).json.results as { status: string; summary: Record<string, unknown> }[];
    expect(folds.map((f) => f.status)).toEqual(['completed', 'completed', 'completed']);
    const gathered = (
      (await cli(['farm', 'results', '--kind', 'train', '--json'], env)).json.results as { job_id: string; summary: Record<string, unknown> }[]
    ).find((r) => r.job_id === parent)!;
    const cv = gathered.summary.cv as { k: number; n: number; folds: { fold: number; test_acc: number }[] };
    expect(cv.k).toBe(3);
    expect(cv.n).toBe(150);
    expect(cv.folds.map((f) => f.fold)).toEqual([1, 2, 3]);
    const correct = folds.reduce((t, f) => t + (f.summary.correct as number), 0);
    expect(gathered.summary.test_acc).toBeCloseTo(correct / 150, 12);
    const lines = readFileSync(join(gathered.summary.out as string, 'cv.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(3);
    for (const f of folds) expect(existsSync(f.summary.network as string)).toBe(true);

    // The reference: the same cross-validation in one process on this computer.
    const out = join(farmDir, 'local-cv');
    const local = await cli(['train', ...flags, '--out', out, '--json'], env);
    expect(local.code, local.stderr).toBe(0);
    expect(cv.folds.map((f) => f.test_acc)).toEqual(local.json.cv.folds.map((f: { test_acc: number }) => f.test_acc));
    expect(gathered.summary.test_acc).toBe(local.json.test_acc);
    for (const w of workers.splice(0)) await w.stop();
  }, 420_000);

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
    // A full calibration at its default sizes: many seconds even in a warm job thread.
    const s = await cli(['farm', 'submit', 'calibrate', '--chip', CHIP, '--timeout', '1', '--attempts', '1', '--json'], env);
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
