/** Bad submissions are refused at submit time with the reason, and nothing is queued. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../../host/farm/config.ts';
import { ChipDb } from '../../../host/farm/db.ts';
import { FarmQueues } from '../../../host/farm/queues.ts';
import { announce } from '../../../host/farm/registry.ts';
import { submit, SubmitError } from '../../../host/farm/submit.ts';
import { cli, haveRedis, startRedis, type LocalRedis } from './helpers.ts';

const CHIP = 'behavioral-31-16x8x4';

describe.skipIf(!haveRedis())('farm submit', () => {
  let redis: LocalRedis;
  let client: Redis;
  let queues: FarmQueues;
  let db: ChipDb;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedis();
    client = connectRedis(redis.url);
    queues = new FarmQueues(client);
    dir = mkdtempSync(join(tmpdir(), 'spikeloop-farm-'));
    db = new ChipDb(join(dir, 'chips.db'));
    const now = new Date().toISOString();
    await announce(
      client,
      { id: 'w1', host: 'h', pid: 1, chips: [CHIP], cpu: true, startedAt: now, seenAt: now },
      [
        {
          chipId: CHIP,
          uri: 'mock:behavioral?seed=31&geometry=16-8-4',
          worker: 'w1',
          host: 'h',
          geometry: [16, 8, 4],
          boardId: 'b',
          firmware: 'f',
          seenAt: now,
        },
      ],
      60_000,
    );
  });
  afterAll(async () => {
    db?.close();
    await queues?.close();
    client?.disconnect();
    await redis?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const refused = async (job: string, argv: string[], opts: { chip?: string; all?: boolean } = {}) => {
    const err = await submit({ job, chip: opts.chip, all: opts.all ?? false, argv }, queues, db).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubmitError);
    return (err as Error).message;
  };

  it('refuses an unknown job, an unknown chip, bad flags and missing prerequisites, each with its reason', async () => {
    expect(await refused('frob', [], { chip: CHIP })).toMatch(/unknown job 'frob'; jobs: bringup, calibrate, deploy, finetune, train, cv-fold/);
    expect(await refused('bringup', [], { chip: 'nope' })).toMatch(new RegExp(`unknown chip 'nope'; known chips: ${CHIP}`));
    expect(await refused('bringup', [])).toMatch(/give --chip ID or --all/);
    expect(await refused('bringup', [], { chip: CHIP, all: true })).toMatch(/not both/);
    expect(await refused('calibrate', ['--patterns', 'x'], { chip: CHIP })).toMatch(/invalid --patterns 'x': expected a whole number/);
    expect(await refused('calibrate', ['--patterns', '2'], { chip: CHIP })).toMatch(/invalid --patterns '2': must be >= 4/);
    expect(await refused('calibrate', ['--frob'], { chip: CHIP })).toMatch(/calibrate: Unknown option '--frob'.*takes --timeout/);
    expect(await refused('calibrate', ['--quick', '--layers', '0'], { chip: CHIP })).toMatch(/--quick refits the globals only/);
    expect(await refused('calibrate', ['--quick'], { chip: CHIP })).toMatch(
      new RegExp(`chip ${CHIP} has no profile yet; run spikeloop farm submit calibrate --chip ${CHIP} first`),
    );
    expect(await refused('deploy', ['--dataset', 'iris'], { chip: CHIP })).toMatch(/--model FILE is required/);
    expect(await refused('deploy', ['--model', join(dir, 'missing.bin'), '--nominal'], { chip: CHIP })).toMatch(/invalid --model .*no such file/);
    expect(await refused('finetune', ['--dataset', 'iris', '--uncalibrated'], { chip: CHIP })).toMatch(/--model FILE is required/);
    expect(await refused('train', ['--dataset', 'iris'], { chip: CHIP })).toMatch(/runs on any worker's CPU; drop --chip/);
    expect(await refused('train', ['--dataset', 'nosuch'])).toMatch(/invalid --dataset 'nosuch'/);
    expect(await refused('bringup', ['--timeout', '0'], { chip: CHIP })).toMatch(/invalid --timeout '0': must be >= 1/);
    expect(await refused('train', ['--dataset', 'iris', '--cv', '3', '--limit-train', '20'])).toMatch(/--cv pools the data set/);
    expect(await refused('cv-fold', ['--dataset', 'iris', '--cv', '3', '--fold', '4'])).toMatch(/--fold 4 is beyond --cv 3; folds are 1..3/);
    expect(await refused('cv-fold', ['--dataset', 'iris', '--fold', '1'])).toMatch(/--cv K is required/);
    const counts = await queues.chip(CHIP).getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("queues a valid job with its retries and the chip's current profile filled in", async () => {
    const profile = join(dir, 'profile.slp');
    writeFileSync(profile, 'x');
    db.recordResult({
      job_id: 'cal-1',
      chip_id: CHIP,
      kind: 'calibrate',
      status: 'completed',
      attempts: 1,
      stalls: 0,
      worker: 'w1',
      host: 'h',
      submitted_at: null,
      finished_at: '2026-01-01T00:00:00.000Z',
      seconds: 1,
      error: null,
      artifacts: dir,
      summary: '{}',
      ok: 1,
      mode: 'full',
      e_plus: 9,
      e_minus: -6,
      rmse_pnn_ticks: 0.5,
      rmse_ideal_ticks: 6,
      accuracy: null,
      profile,
    });
    const res = await submit({ job: 'calibrate', chip: CHIP, all: false, argv: ['--quick', '--attempts', '5', '--backoff', '100'] }, queues, db);
    expect(res.jobs).toHaveLength(1);
    const job = (await queues.chip(CHIP).getJob(res.jobs[0]!.job_id))!;
    expect(job.opts.attempts).toBe(5);
    expect(job.opts.backoff).toEqual({ type: 'exponential', delay: 100 });
    expect(job.data).toMatchObject({ kind: 'calibrate', chip: CHIP, flags: { quick: true, profile } });
    await job.remove();
  });

  it('the CLI refuses with exit 2 and the reason in the JSON line', async () => {
    const r = await cli(['farm', 'submit', 'bringup', '--chip', 'nope', '--json'], { SPIKELOOP_REDIS: redis.url, SPIKELOOP_FARM_DIR: dir });
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({ ok: false, kind: 'usage' });
    expect(r.json.error).toMatch(/refused: unknown chip 'nope'/);
    const bad = await cli(['farm', 'status', '--redis', 'http://x'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --redis 'http:\/\/x': expected a Redis address/);
  });
});
