/**
 * `spikeloop farm <worker|submit|status|results|report|sync>`: the board farm's command line.
 * It takes a subcommand, a repeatable --device and the flags of the submitted job, which the
 * one-flag-set parser of host/cli/main.ts cannot express, so it parses its own argv (parseArgv)
 * with node:util parseArgs and zod, and refuses what it does not know with the reason.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { UsageError, type CommandContext, type OptionsSpec } from '../cli/command.ts';
import { renderTable } from '../ui/table.ts';
import { displayPath } from '../ui/format.ts';
import { parseDeviceUri } from '../device/device-uri.ts';
import { connectRedis, farmDirFrom, pingRedis, redisUrlFrom, redisUrlSchema } from './config.ts';
import { ChipDb, DB_FILE, type ResultRow } from './db.ts';
import { jobsHelp } from './jobs.ts';
import { FarmQueues } from './queues.ts';
import { farmStatus } from './status.ts';
import { submit, SubmitError } from './submit.ts';
import { syncResults } from './sync.ts';

export const SUBCOMMANDS = ['worker', 'submit', 'status', 'results', 'report', 'sync'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const text = (description: string, placeholder = 'VALUE') => ({ type: 'string' as const, placeholder, description, schema: z.string().optional() });
const yes = (description: string) => ({ type: 'boolean' as const, description, schema: z.boolean().optional() });

/** For --help; parseArgv below does the parsing. */
export const options = {
  redis: text('Redis address (default $SPIKELOOP_REDIS, else redis://127.0.0.1:6379)', 'URL'),
  farmDir: text('shared farm folder: artifacts of every job, chips.db (default $SPIKELOOP_FARM_DIR, else ./farm)', 'DIR'),
  device: text('worker: a board to serve; repeat for more boards', 'URI'),
  noCpu: yes('worker: do not take CPU jobs (twin training, cross-validation folds)'),
  lockMs: text("worker: job lock lifetime; a dead worker's job is retried this long after (default 30000)", 'MS'),
  heartbeatMs: text('worker: registry heartbeat (default 5000; entries live 3 heartbeats)', 'MS'),
  id: text('worker: its name (default host-pid)', 'NAME'),
  cores: text(
    "worker: cores its jobs may use, split among the jobs running at once (default: the machine's); give each worker its share when several run on one computer",
    'N',
  ),
  chip: text('submit: the chip the job is for; results: only this chip', 'ID'),
  all: yes('submit: one job for every chip on line'),
  kind: text('results: only this job kind', 'JOB'),
  out: text('report: the HTML file (default FARM_DIR/report.html)', 'FILE'),
} satisfies OptionsSpec;

export const name = 'farm';
export const summary = 'a board farm on Redis and BullMQ: workers per host, jobs per chip, a chip database and a lot report';
export const description = [
  'spikeloop farm worker --device URI [--device URI ...]   serve boards: take the jobs of their chips and CPU jobs',
  'spikeloop farm submit JOB [--chip ID | --all] [job flags]   queue a job (validated here; refused with the reason)',
  'spikeloop farm status     queues, workers, chips, running jobs',
  'spikeloop farm results    finished jobs from the chip database (a table; --json for the rows)',
  'spikeloop farm report     an HTML page of the lot: yield, bring-up findings, E+/E- and calibration error, current profiles',
  'spikeloop farm sync       copy finished jobs from Redis into the chip database (results and report do it first)',
  '',
  'Jobs:',
  jobsHelp(),
].join('\n');
export const examples = [
  "spikeloop farm worker --device 'mock:behavioral?seed=1&geometry=16-8-4' --device 'mock:behavioral?seed=2&geometry=16-8-4'",
  'spikeloop farm submit calibrate --all --patterns 24',
  'spikeloop farm submit calibrate --chip behavioral-1-16x8x4 --quick',
  'spikeloop farm submit deploy --chip behavioral-1-16x8x4 --model farm/nets/iris.bin --dataset iris',
  'spikeloop farm results --json',
];

export interface FarmOptions {
  sub: Sub;
  job?: string;
  jobArgv: string[];
  redis?: string;
  farmDir?: string;
  devices: string[];
  noCpu: boolean;
  lockMs: number;
  heartbeatMs: number;
  cores?: number;
  id?: string;
  chip?: string;
  all: boolean;
  kind?: string;
  out?: string;
}

/** Flags of the farm itself that submit takes out of the argv before the rest goes to the job. */
const SUBMIT_OWN: Record<string, 'string' | 'boolean'> = {
  '--redis': 'string',
  '--farm-dir': 'string',
  '--chip': 'string',
  '--all': 'boolean',
  '--json': 'boolean',
};

const ALLOWED: Record<Sub, string[]> = {
  worker: ['redis', 'farm-dir', 'device', 'no-cpu', 'lock-ms', 'heartbeat-ms', 'id', 'cores'],
  submit: [],
  status: ['redis'],
  results: ['redis', 'farm-dir', 'chip', 'kind'],
  report: ['redis', 'farm-dir', 'out'],
  sync: ['redis', 'farm-dir'],
};

const ms = (flag: string, v: string | undefined, fallback: number, lo: number) => {
  if (v === undefined) return fallback;
  const r = z.coerce.number().int().min(lo).max(3_600_000).safeParse(v);
  if (!/^\d+$/.test(v) || !r.success) throw new UsageError(`invalid --${flag} '${v}': expected whole milliseconds, ${lo} to 3600000`);
  return r.data;
};

export function parseArgv(argv: string[]): { options: Record<string, unknown>; json: boolean; help: boolean } {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') return { options: {}, json: argv.includes('--json'), help: true };
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown farm subcommand '${sub}'; use one of ${SUBCOMMANDS.join(', ')}`);
  const s = sub as Sub;
  if (rest.includes('--help') || rest.includes('-h')) return { options: {}, json: false, help: true };
  const o: FarmOptions = { sub: s, jobArgv: [], devices: [], noCpu: false, lockMs: 30_000, heartbeatMs: 5000, all: false };
  let json = false;

  if (s === 'submit') {
    const [job, ...tail] = rest;
    if (job === undefined || job.startsWith('-'))
      throw new UsageError('farm submit needs the job first: spikeloop farm submit JOB [--chip ID | --all] [job flags]');
    o.job = job;
    for (let i = 0; i < tail.length; i++) {
      const t = tail[i]!;
      const eq = t.indexOf('=');
      const key = eq > 0 ? t.slice(0, eq) : t;
      const type = SUBMIT_OWN[key];
      if (!type) {
        o.jobArgv.push(t);
        continue;
      }
      let value: string | undefined;
      if (type === 'string') {
        value = eq > 0 ? t.slice(eq + 1) : tail[++i];
        if (value === undefined || value === '') throw new UsageError(`flag ${key} needs a value`);
      }
      if (key === '--redis') o.redis = value;
      else if (key === '--farm-dir') o.farmDir = value;
      else if (key === '--chip') o.chip = value;
      else if (key === '--all') o.all = true;
      else if (key === '--json') json = true;
    }
  } else {
    const config: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { json: { type: 'boolean' } };
    for (const f of ALLOWED[s]) config[f] = { type: f === 'no-cpu' ? 'boolean' : 'string', ...(f === 'device' ? { multiple: true } : {}) };
    let v: Record<string, unknown>;
    try {
      v = parseArgs({ args: rest, options: config, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new UsageError(`farm ${s}: ${(err as Error).message.split('\n')[0]}; it takes ${ALLOWED[s].map((f) => `--${f}`).join(', ') || 'no flags'}`);
    }
    json = v.json === true;
    o.redis = v.redis as string | undefined;
    o.farmDir = v['farm-dir'] as string | undefined;
    o.devices = (v.device as string[] | undefined) ?? [];
    o.noCpu = v['no-cpu'] === true;
    o.lockMs = ms('lock-ms', v['lock-ms'] as string | undefined, 30_000, 1000);
    o.heartbeatMs = ms('heartbeat-ms', v['heartbeat-ms'] as string | undefined, 5000, 100);
    o.id = v.id as string | undefined;
    if (v.cores !== undefined) {
      const c = v.cores as string;
      if (!/^\d+$/.test(c) || Number(c) < 1 || Number(c) > 256) throw new UsageError(`invalid --cores '${c}': expected a whole number of cores, 1 to 256`);
      o.cores = Number(c);
    }
    o.chip = v.chip as string | undefined;
    o.kind = v.kind as string | undefined;
    o.out = v.out as string | undefined;
    if (o.id !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(o.id)) throw new UsageError(`invalid --id '${o.id}': letters, digits, . _ - only`);
    if (s === 'worker') {
      if (o.devices.length === 0 && o.noCpu)
        throw new UsageError('farm worker: give --device URI (one per board), or drop --no-cpu to serve the CPU queue only');
    }
  }
  if (o.redis !== undefined) {
    const r = redisUrlSchema.safeParse(o.redis);
    if (!r.success) throw new UsageError(`invalid --redis '${o.redis}': ${r.error.issues[0]!.message}`);
  }
  for (const uri of o.devices) {
    try {
      parseDeviceUri(uri);
    } catch (err) {
      throw new UsageError(`invalid --device '${uri}': ${(err as Error).message}`);
    }
  }
  return { options: o as unknown as Record<string, unknown>, json, help: false };
}

function headline(r: ResultRow): string {
  if (r.status === 'failed') return r.error ?? 'failed';
  const s = JSON.parse(r.summary) as Record<string, any>;
  switch (r.kind) {
    case 'bringup':
      return s.ok
        ? 'pass'
        : `FAIL ${[...(s.dead_neurons ?? []), ...(s.bad_synapses ?? [])].slice(0, 4).join(' ')}${s.failed_checks?.length ? ` (${s.failed_checks.length} check(s))` : ''}`;
    case 'calibrate':
      return `${s.mode} E+ ${Number(s.e_plus).toFixed(3)} E- ${Number(s.e_minus).toFixed(3)} rmse ${Number(s.rmse_pnn_ticks).toFixed(2)}/${Number(s.rmse_ideal_ticks).toFixed(2)} ticks`;
    case 'deploy':
      return s.deployed_acc !== undefined ? `acc ${(100 * s.deployed_acc).toFixed(1)} % (${s.curves})` : `verified ${s.weights_verified} (${s.curves})`;
    case 'finetune':
      return `acc ${(100 * s.deployed_acc).toFixed(1)} -> ${(100 * s.finetuned_acc).toFixed(1)} %${s.resumed ? ' (resumed)' : ''}`;
    case 'train':
      return `test acc ${(100 * s.test_acc).toFixed(1)} %${s.cv ? ` (${s.cv.k}-fold CV, pooled)` : ''}`;
    case 'cv-fold':
      return `fold ${s.fold}/${s.cv_k}: test acc ${(100 * s.test_acc).toFixed(1)} %`;
    default:
      return '';
  }
}

export async function run(ctx: CommandContext<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const o = ctx.options as unknown as FarmOptions;
  const redisUrl = redisUrlFrom(o.redis);
  const farmDir = farmDirFrom(o.farmDir);

  if (o.sub === 'worker') {
    const { runFarmWorker } = await import('./worker.ts');
    const summary = await runFarmWorker({
      redisUrl,
      devices: o.devices,
      farmDir,
      cpu: !o.noCpu,
      lockMs: o.lockMs,
      heartbeatMs: o.heartbeatMs,
      cores: o.cores,
      id: o.id,
      signal: ctx.signal,
      log: (line) => ctx.warn(`[farm] ${line}`),
      // The contract with scripts and tests: one line on stdout once jobs are being taken.
      onReady: (info) => ctx.stdout(JSON.stringify({ ready: true, worker: info.id, chips: info.chips.map((c) => c.chipId) })),
      // And one more once its job threads are loaded.
      onWarm: () => ctx.stdout(JSON.stringify({ warm: true })),
    });
    return { ...summary };
  }

  const redis = connectRedis(redisUrl, { failFast: true });
  const queues = new FarmQueues(redis);
  let db: ChipDb | undefined;
  try {
    await pingRedis(redis, redisUrl);
    const openDb = () => (db ??= new ChipDb(join(farmDir, DB_FILE)));
    switch (o.sub) {
      case 'submit': {
        const database = openDb();
        await syncResults(queues, database);
        let res;
        try {
          res = await submit({ job: o.job!, chip: o.chip, all: o.all, argv: o.jobArgv }, queues, database);
        } catch (err) {
          if (err instanceof SubmitError) throw new UsageError(`refused: ${err.message}`);
          throw err;
        }
        for (const j of res.jobs)
          ctx.print(`${j.job_id}  ${j.kind}${j.chip ? ` on ${j.chip}` : ' (CPU queue)'}${j.online ? '' : '  (chip off line: waits for a worker holding it)'}`);
        return { jobs: res.jobs, offline: res.offline };
      }
      case 'status': {
        const st = await farmStatus(queues);
        ctx.print(
          renderTable(
            st.workers.map((w) => ({ worker: w.id, host: w.host, chips: w.chips.length, cpu: w.cpu ? 'yes' : 'no', seen: w.seenAt })),
            { title: `workers on line: ${st.workers.length}` },
          ),
        );
        ctx.print(
          renderTable(
            st.chips.map((c) => ({
              chip: c.chip,
              geometry: c.geometry,
              online: c.online ? 'yes' : 'no',
              worker: c.worker ?? '',
              uri: c.uri,
              problem: c.unreachable ?? '',
            })),
            { title: 'chips' },
          ),
        );
        ctx.print(
          renderTable(
            st.queues.map((q) => ({ ...q, chip: q.chip ?? '' })),
            { title: 'queues' },
          ),
        );
        if (st.running.length)
          ctx.print(
            renderTable(
              st.running.map((r) => ({ job: r.job_id, chip: r.chip ?? 'cpu', attempt: r.attempt, progress: JSON.stringify(r.progress) })),
              { title: 'running' },
            ),
          );
        return { ...st };
      }
      case 'results': {
        const database = openDb();
        const sync = await syncResults(queues, database);
        const rows = database.results({ chip: o.chip, kind: o.kind });
        ctx.print(
          renderTable(
            rows.map((r) => ({
              job: r.job_id,
              chip: r.chip_id ?? 'cpu',
              kind: r.kind,
              status: r.status,
              tries: r.attempts,
              seconds: r.seconds === null ? '' : Number(r.seconds.toFixed(1)),
              result: headline(r),
            })),
            { title: `results: ${rows.length} job(s), ${displayPath(database.path)}` },
          ),
        );
        return { db: database.path, synced: sync.written, results: rows.map((r) => ({ ...r, summary: JSON.parse(r.summary) })) };
      }
      case 'sync': {
        const database = openDb();
        const s = await syncResults(queues, database);
        ctx.print(`synced: ${s.written} new of ${s.seen} finished job(s) into ${displayPath(database.path)}`);
        return { db: database.path, ...s };
      }
      case 'report': {
        const database = openDb();
        await syncResults(queues, database);
        const { writeFarmReport } = await import('./report.ts');
        const out = o.out ?? join(farmDir, 'report.html');
        const r = await writeFarmReport(database, out);
        ctx.print(`report: ${displayPath(out)} (${r.chips} chip(s), ${r.jobs} job(s))`);
        return { report: out, ...r };
      }
    }
    throw new UsageError(`unknown farm subcommand '${o.sub}'`);
  } finally {
    db?.close();
    await queues.close();
    await redis.quit().catch(() => redis.disconnect());
  }
}
