/**
 * The board farm end to end: a private redis-server, worker processes (the spawned CLI) with small
 * mock boards (16-8-4, behavioural), 8 bring-ups + 8 calibrations (one each per chip), then 8
 * deploys through each chip's new profile. Three runs of that job set: 1 worker holding all 8 chips,
 * 2 workers holding 4 each (the same total work: the speed-up), and 2 workers of which one is
 * SIGKILLed in the middle of a calibration and started again (the injected fault: lost, duplicated,
 * retried). Each worker process stands for a computer of its own: it is pinned to one core (taskset,
 * and `--cores 1` for its jobs' pools), so the speed-up measures what adding a host gives;
 * FARM_BENCH_HOSTS=0 lets the workers share every core instead (each `--cores` its share), where one
 * worker running 8 jobs at once already fills the machine. The clock starts once the workers' job
 * threads are loaded (FARM_BENCH_COLD=1: at once). Prints ONE JSON line:
 *
 *   jobs, workers, boards, wall_s (2 workers, from first submission to last job finished),
 *   jobs_per_min, wall_s_one_worker, speedup_vs_one_worker, speedup_bound_cpu (1 worker's CPU
 *   seconds over 2 workers', times 2 when each worker has a core of its own: the most 2 workers can give),
 *   lost (submitted, not completed), duplicated (jobs run to the end more than once, by their
 *   farm-result.json files, plus database rows beyond one per job), retried (jobs that ran more than
 *   once: stalled by the kill or retried), per run (one_worker, two_workers, two_workers_killed) its
 *   wall, CPU seconds (workers, Redis, this process), cores_busy, start_cpu_s, jobs_at_once and the
 *   load average, one_core_per_worker, and cores (os.availableParallelism()).
 *
 * The mock boards compute their chips on the host's CPU, so the farm is CPU-bound, not board-bound.
 * Environment: FARM_BENCH_CAL (calibrate flags, default "--sweep-repeats 1 --patterns 8 --held-out 8"),
 * FARM_BENCH_KILL=0 (no fault run), FARM_BENCH_HOSTS=0 (workers share the cores).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
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
const CAL = (process.env.FARM_BENCH_CAL ?? '--sweep-repeats 1 --patterns 8 --held-out 8').split(/\s+/).filter(Boolean);
/** FARM_BENCH_KILL=0 leaves out the injected kill (the scaling alone). */
const KILL = process.env.FARM_BENCH_KILL !== '0';
const COLD = process.env.FARM_BENCH_COLD === '1';
// Each worker process stands for one computer with one core: pinned to its own core (taskset) with
// `--cores 1`, so 1 worker has one core and 2 workers have two, which is what adding a host gives. The
// default where the machine can (2 cores or more, taskset present); FARM_BENCH_HOSTS=0 shares the cores.
const HOSTS = process.env.FARM_BENCH_HOSTS !== '0' && availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** Pins every thread of a worker process (and the threads it starts later, which inherit it) to one core. */
function pin(w: SpawnedWorker, core: number): void {
  if (!HOSTS || w.child.pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core % availableParallelism()), String(w.child.pid)], { stdio: 'ignore' });
}
/** A worker process's start-up on a machine this busy can take minutes. */
const READY_MS = 600_000;
const log = (s: string) => process.stderr.write(`[bench:farm] ${s}\n`);

/** CPU seconds (utime + stime, every thread, the ones that ended included) of a live process; 0 when gone (Linux /proc). */
function processCpuS(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

interface RunFigures {
  wall_s: number;
  /** CPU seconds from the first submission to the last job finished: the worker processes (a killed one read just before the kill; its successor's start-up included), Redis and this process. */
  cpu_s: { workers: number; redis: number; bench: number };
  /** CPU seconds the workers had used when the clock started (process start-up, warm job threads). */
  start_cpu_s: number;
  /** Per job: wall seconds of the job as its worker ran it (job_seconds), summed. */
  job_s_sum: number;
  load_avg_1min: [number, number];
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
  let killedCpuS = 0;
  // Each worker gets its share of the machine's cores for its jobs' pools (several workers on one computer).
  const share = HOSTS ? '1' : String(Math.max(1, Math.floor(availableParallelism() / workerGroups.length)));
  const args = (g: number[]) => ['--lock-ms', '4000', '--heartbeat-ms', '1000', '--no-cpu', '--cores', share, ...g.flatMap((s) => ['--device', dev(s)])];
  try {
    for (const g of workerGroups) {
      workers.push(await startWorker(args(g), env, READY_MS));
      pin(workers.at(-1)!, workers.length - 1);
    }
    // Steady state: the workers' job threads loaded before the clock starts (a worker is a long-lived
    // process; its start-up is paid once, not per job). FARM_BENCH_COLD=1 starts the clock at once.
    if (!COLD) await Promise.all(workers.map((w) => w.warm));
    // Again once warm: threads started before the first pin took hold are pinned too.
    workers.forEach((w, i) => pin(w, i));
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
    const load0 = loadavg()[0]!;
    const cpu0 = process.cpuUsage();
    const redisCpu0 = processCpuS(redis.pid());
    // The workers' start-up (process, sources, warm job threads) is theirs, not the jobs': counted apart.
    const startCpuS = workers.reduce((a, w) => a + processCpuS(w.child.pid), 0);
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
      killedCpuS = processCpuS(victim.child.pid);
      await victim.kill();
      workers[1] = await startWorker(args(workerGroups[1]!), env, READY_MS);
      pin(workers[1], 1);
    }
    await until('bring-ups and calibrations', () => allDone(ids), 3_600_000, 500);
    await syncResults(queues, db);
    const deploys = await add('deploy', ['--model', network, '--dataset', 'iris', '--limit-test', '30']);
    await until('deploys', () => allDone(deploys.map((j) => ({ id: j.job_id, chip: j.chip! }))), 3_600_000, 500);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = process.cpuUsage(cpu0);
    const cpu_s = {
      workers: killedCpuS + workers.reduce((a, w) => a + processCpuS(w.child.pid), 0) - startCpuS,
      redis: processCpuS(redis.pid()) - redisCpu0,
      bench: (cpu1.user + cpu1.system) / 1e6,
    };
    const load_avg_1min: [number, number] = [load0, loadavg()[0]!];

    await syncResults(queues, db);
    let lost = 0;
    let duplicated = 0;
    let retried = 0;
    let job_s_sum = 0;
    for (const { id, chip } of ids) {
      const job = await queues.chip(chip).getJob(id);
      job_s_sum += Number((job?.returnvalue as { job_seconds?: number } | undefined)?.job_seconds ?? 0);
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
    return { wall_s: wall, cpu_s, start_cpu_s: startCpuS, job_s_sum, load_avg_1min, jobs: ids.length, lost, duplicated, retried };
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
  const cores = availableParallelism();
  const total = (r: RunFigures) => r.cpu_s.workers + r.cpu_s.redis + r.cpu_s.bench;
  const figures = (r: RunFigures) => ({
    wall_s: Number(r.wall_s.toFixed(2)),
    cpu_s: { workers: Number(r.cpu_s.workers.toFixed(2)), redis: Number(r.cpu_s.redis.toFixed(2)), bench: Number(r.cpu_s.bench.toFixed(2)) },
    cpu_s_total: Number(total(r).toFixed(2)),
    // Cores the run kept busy on average: 2 on an idle 2-core machine that the farm fills.
    cores_busy: Number((total(r) / r.wall_s).toFixed(3)),
    start_cpu_s: Number(r.start_cpu_s.toFixed(2)),
    // Jobs running at once on average (the sum of the jobs' own wall times over the run's).
    jobs_at_once: Number((r.job_s_sum / r.wall_s).toFixed(2)),
    load_avg_1min: r.load_avg_1min.map((x) => Number(x.toFixed(2))),
    lost: r.lost,
    duplicated: r.duplicated,
    retried: r.retried,
  });
  // The same total work both ways (no fault) for the speed-up; the fault run for lost, duplicated, retried.
  log('1 worker x 8 chips');
  const one = await runFarm([SEEDS], false, network);
  log(`1 worker: ${one.wall_s.toFixed(1)} s, ${total(one).toFixed(1)} CPU s; 2 workers x 4 chips`);
  const two = await runFarm([SEEDS.slice(0, 4), SEEDS.slice(4)], false, network);
  log(`2 workers: ${two.wall_s.toFixed(1)} s, ${total(two).toFixed(1)} CPU s`);
  let killed: RunFigures | undefined;
  if (KILL) {
    log('2 workers x 4 chips, one SIGKILLed during a calibration');
    killed = await runFarm([SEEDS.slice(0, 4), SEEDS.slice(4)], true, network);
    log(`2 workers with the kill: ${killed.wall_s.toFixed(1)} s, ${total(killed).toFixed(1)} CPU s`);
  }
  const faults = killed ?? two;
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
      // What the cores allow: the 1-worker job set's CPU over the 2-worker one's. When one worker
      // already keeps every core busy (cores_busy = cores on an idle machine, jobs_at_once >= cores),
      // 2 workers on the same cores can be no faster than this.
      // With one core per worker the 2 workers have twice the cores: twice that.
      speedup_bound_cpu: Number((((HOSTS ? 2 : 1) * total(one)) / total(two)).toFixed(3)),
      lost: faults.lost,
      duplicated: faults.duplicated,
      retried: faults.retried,
      one_worker: figures(one),
      two_workers: figures(two),
      ...(killed ? { two_workers_killed: { ...figures(killed), speedup_vs_one_worker: Number((one.wall_s / killed.wall_s).toFixed(3)) } } : {}),
      injected_kill: KILL,
      warm_start: !COLD,
      one_core_per_worker: HOSTS,
      calibrate_flags: CAL.join(' '),
      cores,
    }),
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
