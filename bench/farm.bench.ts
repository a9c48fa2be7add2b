/**
 * The board farm end to end: a private redis-server, worker processes (the spawned CLI) with small
 * mock boards (16-8-4, behavioural), 8 bring-ups + 8 calibrations (one each per chip), then 8
 * deploys through each chip's new profile. Run twice: with 2 workers holding 4 chips each (one of
 * them SIGKILLed in the middle of a calibration and started again, the injected fault), and with
 * 1 worker holding all 8 chips, no fault. Prints ONE JSON line:
 *
 *   jobs, workers, boards, wall_s (2 workers, from first submission to last job finished),
 *   jobs_per_min, wall_s_one_worker, speedup_vs_one_worker, lost (submitted, not completed),
 *   duplicated (jobs run to the end more than once, by their farm-result.json files, plus database
 *   rows beyond one per job), retried (jobs that ran more than once: stalled by the kill or retried),
 *   cores (os.availableParallelism()).
 *
 * The mock boards compute their chips on the host's CPU, so on a machine with few cores the farm is
 * CPU-bound, not board-bound: the speedup measures that machine. Environment: FARM_BENCH_CAL
 * (calibrate flags, default "--sweep-repeats 1 --patterns 8 --held-out 8"), FARM_BENCH_KILL=0 (no kill).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRedis } from '../host/farm/config.ts';
import { ChipDb, DB_FILE } from '../host/farm/db.ts';
import { FarmQueues } from '../host/farm/queues.ts';
import { RESULT_FILE } from '../host/farm/run-job.ts';
import { submit } from '../host/farm/submit.ts';
import { syncResults } from '../host/farm/sync.ts';
import { irisNetworkFor, startRedis, startWorker, until, type SpawnedWorker } from '../test/host/farm/helpers.ts';

const SEEDS = [101, 102, 103, 104, 105, 106, 107, 108];
const dev = (seed: number) => `mock:behavioral?seed=${seed}&geometry=16-8-4`;
const chipOf = (seed: number) => `behavioral-${seed}-16x8x4`;
const CAL = (process.env.FARM_BENCH_CAL ?? '--sweep-repeats 1 --patterns 8 --held-out 8').split(/\s+/).filter(Boolean);
/** FARM_BENCH_KILL=0 leaves out the injected kill (the scaling alone). */
const KILL = process.env.FARM_BENCH_KILL !== '0';
const log = (s: string) => process.stderr.write(`[bench:farm] ${s}\n`);

interface RunFigures {
  wall_s: number;
  jobs: number;
  lost: number;
  duplicated: number;
  retried: number;
}

async function runFarm(workerGroups: number[][], kill: boolean, network: string): Promise<RunFigures> {
  const redis = await startRedis();
  const farmDir = mkdtempSync(join(tmpdir(), 'spikeloop-farm-bench-'));
  const env = { SPIKELOOP_REDIS: redis.url, SPIKELOOP_FARM_DIR: farmDir };
  const client = connectRedis(redis.url);
  const queues = new FarmQueues(client);
  const db = new ChipDb(join(farmDir, DB_FILE));
  const workers: SpawnedWorker[] = [];
  const args = (g: number[]) => ['--lock-ms', '4000', '--heartbeat-ms', '1000', '--no-cpu', ...g.flatMap((s) => ['--device', dev(s)])];
  try {
    for (const g of workerGroups) workers.push(await startWorker(args(g), env));
    const ids: { id: string; chip: string }[] = [];
    const add = async (job: string, argv: string[], all = true) => {
      const r = await submit({ job, all, argv }, queues, db);
      ids.push(...r.jobs.map((j) => ({ id: j.job_id, chip: j.chip! })));
      return r.jobs;
    };
    const allDone = async (list: { id: string; chip: string }[]) => {
      const states = await Promise.all(list.map(async (j) => (await queues.chip(j.chip).getJob(j.id))?.getState()));
      return states.every((s) => s === 'completed' || s === 'failed') ? true : undefined;
    };
    const t0 = performance.now();
    await add('bringup', ['--jitter-runs', '8']);
    const cals = await add('calibrate', CAL);
    if (kill) {
      // The injected fault: the second worker dies in the middle of one of its calibrations and comes back.
      const victim = workers[1]!;
      const mine = cals.filter((j) => victim.chips.includes(j.chip!));
      await until(
        'a calibration under way on the second worker',
        async () => {
          for (const j of mine) {
            const job = await queues.chip(j.chip!).getJob(j.job_id);
            if ((await job?.getState()) === 'active' && (job?.progress as { stage?: string })?.stage) return true;
          }
          return undefined;
        },
        600_000,
        200,
      );
      log('SIGKILL the second worker');
      await victim.kill();
      workers[1] = await startWorker(args(workerGroups[1]!), env);
    }
    await until('bring-ups and calibrations', () => allDone(ids), 3_600_000, 500);
    await syncResults(queues, db);
    const deploys = await add('deploy', ['--model', network, '--dataset', 'iris', '--limit-test', '30']);
    await until('deploys', () => allDone(deploys.map((j) => ({ id: j.job_id, chip: j.chip! }))), 3_600_000, 500);
    const wall = (performance.now() - t0) / 1000;

    await syncResults(queues, db);
    let lost = 0;
    let duplicated = 0;
    let retried = 0;
    for (const { id, chip } of ids) {
      const job = await queues.chip(chip).getJob(id);
      if ((await job?.getState()) !== 'completed') {
        lost++;
        log(`not completed: ${id}: ${job?.failedReason}`);
      }
      if ((job?.attemptsMade ?? 0) > 1 || (job?.stalledCounter ?? 0) > 0) retried++;
      const dir = join(farmDir, 'jobs', id);
      const finished = existsSync(dir) ? readdirSync(dir).filter((d) => existsSync(join(dir, d, RESULT_FILE))).length : 0;
      if (finished > 1) duplicated += finished - 1;
    }
    const rows = db.db.get('SELECT COUNT(*) AS n, COUNT(DISTINCT job_id) AS u FROM results') as unknown as { n: number; u: number };
    duplicated += rows.n - rows.u;
    lost += ids.length - rows.n;
    return { wall_s: wall, jobs: ids.length, lost, duplicated, retried };
  } finally {
    for (const w of workers) await w.stop();
    db.close();
    await queues.close();
    client.disconnect();
    await redis.dispose();
    rmSync(farmDir, { recursive: true, force: true });
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'spikeloop-farm-net-'));
try {
  mkdirSync(scratch, { recursive: true });
  const network = join(scratch, 'iris-16x8x4.bin');
  await irisNetworkFor(dev(SEEDS[0]!), network);
  log(`2 workers x 4 chips${KILL ? ', one SIGKILL' : ''}`);
  const two = await runFarm([SEEDS.slice(0, 4), SEEDS.slice(4)], KILL, network);
  log(`2 workers: ${two.wall_s.toFixed(1)} s; 1 worker x 8 chips`);
  const one = await runFarm([SEEDS], false, network);
  log(`1 worker: ${one.wall_s.toFixed(1)} s`);
  console.log(
    JSON.stringify({
      bench: 'farm',
      jobs: two.jobs,
      workers: 2,
      boards: SEEDS.length,
      wall_s: Number(two.wall_s.toFixed(2)),
      jobs_per_min: Number(((two.jobs / two.wall_s) * 60).toFixed(2)),
      wall_s_one_worker: Number(one.wall_s.toFixed(2)),
      speedup_vs_one_worker: Number((one.wall_s / two.wall_s).toFixed(3)),
      lost: two.lost,
      duplicated: two.duplicated,
      retried: two.retried,
      one_worker: { lost: one.lost, duplicated: one.duplicated, retried: one.retried },
      injected_kill: KILL,
      calibrate_flags: CAL.join(' '),
      cores: availableParallelism(),
    }),
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
