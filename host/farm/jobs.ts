/**
 * The jobs a farm runs: their names, their flags (each validated by a zod schema, at submit time
 * and again by the worker that takes the job), which queue they go to, and their defaults.
 *
 * A job's data in Redis is `{ kind, chip, flags, timeoutMs, submittedAt }` with the flags as the
 * strings the user typed (plus what submit filled in, such as the chip's current profile), so the
 * one schema validates both boundaries.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { flag, intOption } from '../cli/common-options.ts';
import { options as trainOptions } from '../cli/commands/train.ts';

export const JOB_KINDS = ['bringup', 'calibrate', 'deploy', 'finetune', 'train', 'cv-fold'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Jobs that need one particular chip; the others (twin training, cross-validation folds) run on any worker's CPU. */
export const CHIP_JOBS: ReadonlySet<JobKind> = new Set(['bringup', 'calibrate', 'deploy', 'finetune']);

/** The queue of jobs for one chip: only a worker holding that chip consumes it. */
export const chipQueueName = (chipId: string) => `chip.${chipId}`;
export const CPU_QUEUE = 'cpu';

/** Chip ids come from HELLO; they name queues and folders, so only a safe alphabet is accepted. */
export const chipIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/, 'expected a chip id of letters, digits and . _ + -');

interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  schema: z.ZodType;
}

// The same flag schemas as the single-board commands, so a job's flags mean what the command's do.
const optInt = (description: string, lo: number, hi: number): FlagSpec => intOption(description, lo, hi);
const bool = (description: string): FlagSpec => flag(description);
const existingFile = (what: string) =>
  z
    .string()
    .min(1, 'must not be empty')
    .refine((p) => existsSync(p), `no such file; give a ${what} every worker can read (the shared farm folder)`);
const positive = trainOptions.lr.schema;
const dataset = trainOptions.dataset.schema;
const intList = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'expected comma-separated whole numbers like 0,1')
  .transform((v) => v.split(',').map(Number));

/** Flags every job takes: how long one attempt may run and how often it is tried. */
const COMMON = {
  timeout: optInt('seconds one attempt may run before it is aborted and retried (default per job)', 1, 7 * 24 * 3600),
  attempts: optInt('attempts before the job fails (default 3)', 1, 20),
  backoff: optInt('first retry delay in milliseconds, doubled each retry (default 2000)', 0, 3_600_000),
} satisfies Record<string, FlagSpec>;

export interface JobSpec {
  kind: JobKind;
  summary: string;
  options: Record<string, FlagSpec>;
  /** Cross-flag rules; a message, or undefined when fine. */
  check?(o: Record<string, unknown>): string | undefined;
  defaultTimeoutS: number;
}

// Twin training's flags, shared by a cross-validation's fold jobs (the same settings for every fold).
const TRAIN_OPTIONS: Record<string, FlagSpec> = {
  dataset: { type: 'string', description: 'data set', schema: dataset.optional() },
  layers: { type: 'string', description: 'hidden widths, e.g. 8 or 256,128', schema: intList.optional() },
  epochs: optInt('epochs', 1, 100_000),
  seed: optInt('seed', 0, 2 ** 31 - 1),
  batchSize: optInt('mini-batch size', 1, 65536),
  lr: { type: 'string', description: 'learning rate', schema: positive },
  limitTrain: optInt('train on at most N samples', 1, 10_000_000),
  limitTest: optInt('test on at most N samples', 1, 10_000_000),
  cv: optInt('stratified K-fold cross-validation', 2, 20),
};

function trainCheck(o: Record<string, unknown>): string | undefined {
  if (!o.dataset) return '--dataset is required';
  if (o.cv !== undefined && (o.limitTrain !== undefined || o.limitTest !== undefined)) return '--cv pools the data set; drop --limit-train / --limit-test';
  return undefined;
}

export const JOB_SPECS: Record<JobKind, JobSpec> = {
  bringup: {
    kind: 'bringup',
    summary: 'the bring-up checks of spikeloop bringup',
    defaultTimeoutS: 600,
    options: {
      seed: optInt('seed of the random weight-memory pattern', 0, 2 ** 31 - 1),
      jitterRuns: optInt('identical runs for the jitter check', 2, 1000),
      maxJitter: optInt('largest acceptable rms timer jitter, in ticks', 1, 1000),
    },
  },
  calibrate: {
    kind: 'calibrate',
    summary: 'fit the chip profile (full), or refit its globals against drift (--quick)',
    defaultTimeoutS: 3600,
    options: {
      quick: bool("refit only the global parameters of the chip's current profile"),
      profile: {
        type: 'string',
        description: "with --quick: the profile to start from (default: the chip's current profile in the database)",
        schema: existingFile('profile').optional(),
      },
      layers: { type: 'string', description: 'layers to calibrate, e.g. 0,1 (default all)', schema: intList.optional() },
      seed: optInt('seed of the probe patterns', 0, 2 ** 31 - 1),
      sweepRepeats: optInt('readings of each single-synapse sweep (default 3)', 1, 16),
      patterns: optInt('patterns per E/I configuration (default 96): fewer is faster', 4, 4096),
      heldOut: optInt('held-out patterns per layer (default 64)', 4, 4096),
      adaptive: bool('add the adaptive round of sensitive patterns'),
      workers: optInt('threads for the per-neuron fits (default: the cores of the machine the job runs on)', 1, 256),
    },
    check(o) {
      if (o.quick && (o.layers || o.sweepRepeats !== undefined || o.patterns !== undefined || o.adaptive))
        return '--quick refits the globals only; drop --layers, --sweep-repeats, --patterns and --adaptive';
      if (o.profile && !o.quick) return '--profile goes with --quick (a full calibration starts from nothing)';
      return undefined;
    },
  },
  deploy: {
    kind: 'deploy',
    summary: "map a network through the chip's current profile, upload, verify, score on the device",
    defaultTimeoutS: 1800,
    options: {
      model: {
        type: 'string',
        description: 'network file (network.bin of spikeloop train) in the shared folder',
        schema: existingFile('network file').optional(),
      },
      profile: {
        type: 'string',
        description: "chip profile (default: the chip's current profile in the database)",
        schema: existingFile('profile').optional(),
      },
      nominal: bool('map through the nominal sky130 curves, not a profile'),
      dataset: { type: 'string', description: "score this data set's test part on the device", schema: dataset.optional() },
      limitTest: optInt('score at most N test samples', 1, 10_000_000),
      seed: optInt('seed choosing the test subset', 0, 2 ** 31 - 1),
    },
    check(o) {
      if (!o.model) return '--model FILE is required';
      if (o.nominal && o.profile) return '--nominal and --profile contradict each other; give one';
      if (o.limitTest !== undefined && !o.dataset) return '--limit-test needs --dataset';
      return undefined;
    },
  },
  finetune: {
    kind: 'finetune',
    summary: 'in-situ training with the chip in the loop; a retried job resumes from its checkpoint',
    defaultTimeoutS: 6 * 3600,
    options: {
      model: { type: 'string', description: 'network to start from', schema: existingFile('network file').optional() },
      dataset: { type: 'string', description: 'data set', schema: dataset.optional() },
      epochs: optInt('epochs', 1, 1_000_000),
      profile: {
        type: 'string',
        description: "chip profile (default: the chip's current profile in the database)",
        schema: existingFile('profile').optional(),
      },
      uncalibrated: bool('map through the nominal curves instead of a profile'),
      lr: { type: 'string', description: 'Adam learning rate', schema: positive },
      batchSize: optInt('mini-batch size', 1, 65536),
      limitTrain: optInt('train on at most N samples', 1, 10_000_000),
      limitTest: optInt('test on at most N samples', 1, 10_000_000),
      seed: optInt('seed of the batch order', 0, 2 ** 31 - 1),
      checkpointEvery: optInt('also checkpoint every N batches', 1, 1_000_000),
    },
    check(o) {
      if (!o.model) return '--model FILE is required';
      if (!o.dataset) return '--dataset is required';
      if (o.epochs === undefined) return '--epochs N is required';
      if (o.profile && o.uncalibrated) return '--profile and --uncalibrated contradict each other; give one';
      return undefined;
    },
  },
  train: {
    kind: 'train',
    summary: "train a network in the digital twin (any worker's CPU); --cv K queues one cv-fold job per fold and gathers them",
    defaultTimeoutS: 6 * 3600,
    options: TRAIN_OPTIONS,
    check: trainCheck,
  },
  'cv-fold': {
    kind: 'cv-fold',
    summary: 'one fold of a cross-validation (train --cv K queues them; the train job gathers them)',
    defaultTimeoutS: 6 * 3600,
    options: { ...TRAIN_OPTIONS, fold: optInt('the fold to hold out and test, 1..K', 1, 20) },
    check(o) {
      const t = trainCheck(o);
      if (t) return t;
      if (o.cv === undefined) return '--cv K is required (the number of folds)';
      if (o.fold === undefined) return '--fold F is required (1..K)';
      if ((o.fold as number) > (o.cv as number)) return `--fold ${o.fold} is beyond --cv ${o.cv}; folds are 1..${o.cv}`;
      return undefined;
    },
  },
};

export const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export class JobFlagError extends Error {
  override name = 'JobFlagError';
}

export function isJobKind(v: string): v is JobKind {
  return (JOB_KINDS as readonly string[]).includes(v);
}

/** The raw flags of a job: what the user typed, by option key. */
export type RawFlags = Record<string, string | boolean>;

/** Splits a job's argv into raw flags, strictly (unknown flags and stray words are refused). */
export function rawJobFlags(kind: JobKind, argv: string[]): RawFlags {
  const spec = JOB_SPECS[kind];
  const all = { ...COMMON, ...spec.options };
  const config = Object.fromEntries(Object.entries(all).map(([k, o]) => [flagName(k), { type: o.type }]));
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: config, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const known = Object.keys(all)
      .map((k) => `--${flagName(k)}`)
      .join(', ');
    throw new JobFlagError(`${kind}: ${(err as Error).message.split('\n')[0]}; the ${kind} job takes ${known}`);
  }
  const out: RawFlags = {};
  for (const k of Object.keys(all)) {
    const v = values[flagName(k)];
    if (typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

export interface ParsedJobFlags {
  params: Record<string, unknown>;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

/** Validates raw flags with the job's schemas and rules; throws JobFlagError naming the flag, the value and the fix. */
export function parseJobFlags(kind: JobKind, raw: RawFlags): ParsedJobFlags {
  const spec = JOB_SPECS[kind];
  const all: Record<string, FlagSpec> = { ...COMMON, ...spec.options };
  for (const k of Object.keys(raw)) if (!(k in all)) throw new JobFlagError(`${kind}: unknown flag --${flagName(k)}`);
  const params: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(all)) {
    const r = o.schema.safeParse(raw[k]);
    if (!r.success) {
      const shown = raw[k] === undefined ? '(missing)' : `'${String(raw[k])}'`;
      throw new JobFlagError(`${kind}: invalid --${flagName(k)} ${shown}: ${r.error.issues.map((i) => i.message).join('; ')} (${o.description})`);
    }
    params[k] = r.data;
  }
  const problem = spec.check?.(params);
  if (problem) throw new JobFlagError(`${kind}: ${problem}`);
  const { timeout, attempts, backoff, ...rest } = params as { timeout?: number; attempts?: number; backoff?: number };
  return { params: rest, timeoutMs: (timeout ?? spec.defaultTimeoutS) * 1000, attempts: attempts ?? 3, backoffMs: backoff ?? 2000 };
}

/** What a job carries in Redis. */
export const jobDataSchema = z.strictObject({
  kind: z.enum(JOB_KINDS),
  chip: chipIdSchema.nullable(),
  flags: z.record(z.string(), z.union([z.string(), z.boolean()])),
  timeoutMs: z.number().int().positive(),
  submittedAt: z.string(),
});
export type JobData = z.infer<typeof jobDataSchema>;

/** Help text: every job and its flags. */
export function jobsHelp(): string {
  const lines: string[] = [];
  for (const spec of Object.values(JOB_SPECS)) {
    lines.push(`  ${spec.kind}${CHIP_JOBS.has(spec.kind) ? ' (--chip ID | --all)' : ' (CPU queue)'}: ${spec.summary}`);
    for (const [k, o] of Object.entries(spec.options)) lines.push(`      --${flagName(k)}${o.type === 'string' ? ' VALUE' : ''}  ${o.description}`);
  }
  lines.push(
    '  every job: ' +
      Object.entries(COMMON)
        .map(([k, o]) => `--${flagName(k)} N (${o.description})`)
        .join('; '),
  );
  return lines.join('\n');
}
