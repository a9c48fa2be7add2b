/**
 * `spikeloop farm submit JOB [--chip ID | --all] [job flags]`: everything is checked before a job
 * enters a queue (the job exists, its flags pass its schema and rules, the chip is known, the
 * files it names exist, the chip has the profile the job needs), so a bad submission is refused
 * with its reason instead of failing later on some worker.
 */
import { randomBytes } from 'node:crypto';
import { FlowProducer } from 'bullmq';
import { KEY_PREFIX } from './config.ts';
import type { ChipDb } from './db.ts';
import { CHIP_JOBS, CPU_QUEUE, JOB_KINDS, JobFlagError, isJobKind, parseJobFlags, rawJobFlags, type JobData, type JobKind } from './jobs.ts';
import type { FarmQueues } from './queues.ts';
import { knownChips, onlineChips } from './registry.ts';

export class SubmitError extends Error {
  override name = 'SubmitError';
}

export interface SubmitRequest {
  job: string;
  chip?: string;
  all: boolean;
  argv: string[];
}

export interface Submitted {
  job_id: string;
  kind: JobKind;
  chip: string | null;
  queue: string;
  online: boolean;
}

const newJobId = (kind: string, chip: string | null) => `${kind}-${chip ?? 'cpu'}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

/** Validates a submission and returns the jobs it would add, without adding them. */
export async function planSubmission(
  req: SubmitRequest,
  queues: FarmQueues,
  db: ChipDb,
): Promise<{ kind: JobKind; jobs: { chip: string | null; data: JobData; attempts: number; backoffMs: number }[]; offline: string[] }> {
  if (!isJobKind(req.job)) throw new SubmitError(`unknown job '${req.job}'; jobs: ${JOB_KINDS.join(', ')}`);
  const kind = req.job;
  let raw;
  try {
    raw = rawJobFlags(kind, req.argv);
  } catch (err) {
    throw new SubmitError((err as Error).message);
  }

  // The flags and their rules first: a wrong flag is the first thing to hear about.
  try {
    parseJobFlags(kind, raw);
  } catch (err) {
    if (err instanceof JobFlagError) throw new SubmitError(err.message);
    throw err;
  }

  let chips: (string | null)[];
  const online = new Set((await onlineChips(queues.redis)).map((c) => c.chipId));
  if (CHIP_JOBS.has(kind)) {
    if (req.chip === undefined && !req.all) throw new SubmitError(`${kind} runs on a chip: give --chip ID or --all`);
    if (req.chip !== undefined && req.all) throw new SubmitError('give --chip ID or --all, not both');
    if (req.all) {
      chips = [...online].sort();
      if (chips.length === 0) throw new SubmitError('--all: no chip is on line (start spikeloop farm worker --device URI on the hosts with boards)');
    } else {
      const known = new Set([...(await knownChips(queues.redis)).map((c) => c.chipId), ...db.chips().map((c) => c.chip_id)]);
      if (!known.has(req.chip!)) {
        const list = [...known].sort();
        throw new SubmitError(
          `unknown chip '${req.chip}'; ${list.length ? `known chips: ${list.join(', ')}` : 'no chip has been announced yet (start a worker with its board)'}`,
        );
      }
      chips = [req.chip!];
    }
  } else {
    if (req.chip !== undefined || req.all) throw new SubmitError(`${kind} runs on any worker's CPU; drop --chip / --all`);
    chips = [null];
  }

  const jobs = [];
  for (const chip of chips) {
    const flags = { ...raw };
    // Jobs that map through a profile default to the chip's current one (the database keeps it).
    const needsProfile =
      (kind === 'calibrate' && flags.quick === true) || (kind === 'deploy' && flags.nominal !== true) || (kind === 'finetune' && flags.uncalibrated !== true);
    if (chip !== null && needsProfile && flags.profile === undefined) {
      const current = db.chip(chip)?.current_profile;
      if (!current) {
        const alt = kind === 'deploy' ? '--nominal' : kind === 'finetune' ? '--uncalibrated' : '--profile PATH';
        throw new SubmitError(`${kind}: chip ${chip} has no profile yet; run spikeloop farm submit calibrate --chip ${chip} first, or give ${alt}`);
      }
      flags.profile = current;
    }
    let parsed;
    try {
      parsed = parseJobFlags(kind, flags);
    } catch (err) {
      if (err instanceof JobFlagError) throw new SubmitError(err.message);
      throw err;
    }
    jobs.push({
      chip,
      data: { kind, chip, flags, timeoutMs: parsed.timeoutMs, submittedAt: new Date().toISOString() } satisfies JobData,
      attempts: parsed.attempts,
      backoffMs: parsed.backoffMs,
    });
  }
  return { kind, jobs, offline: chips.filter((c): c is string => c !== null && !online.has(c)) };
}

/**
 * A cross-validation (`train --cv K`): one cv-fold job per fold and the train job as their parent, in
 * one BullMQ flow (added atomically). The parent waits until every fold has completed, then gathers
 * them (cv-jobs.ts); a fold that fails after its attempts fails the parent with it.
 */
async function submitCv(j: { data: JobData; attempts: number; backoffMs: number }, k: number, queues: FarmQueues): Promise<Submitted[]> {
  const common = { attempts: j.attempts, backoff: { type: 'exponential', delay: j.backoffMs }, removeOnComplete: false, removeOnFail: false };
  const parentId = newJobId('train', null);
  const children = Array.from({ length: k }, (_, f) => {
    const flags = { ...j.data.flags, fold: String(f + 1) };
    const parsed = parseJobFlags('cv-fold', flags);
    const data: JobData = { ...j.data, kind: 'cv-fold', flags, timeoutMs: parsed.timeoutMs };
    return { name: 'cv-fold', queueName: CPU_QUEUE, data, opts: { ...common, jobId: `${parentId}-fold-${f + 1}`, failParentOnFailure: true } };
  });
  const flow = new FlowProducer({ connection: queues.redis, prefix: KEY_PREFIX });
  try {
    await flow.add({ name: 'train', queueName: CPU_QUEUE, data: j.data, opts: { ...common, jobId: parentId }, children });
  } finally {
    await flow.close();
  }
  return [
    { job_id: parentId, kind: 'train', chip: null, queue: CPU_QUEUE, online: true },
    ...children.map((c) => ({ job_id: c.opts.jobId, kind: 'cv-fold' as const, chip: null, queue: CPU_QUEUE, online: true })),
  ];
}

export async function submit(req: SubmitRequest, queues: FarmQueues, db: ChipDb): Promise<{ jobs: Submitted[]; offline: string[] }> {
  const plan = await planSubmission(req, queues, db);
  const out: Submitted[] = [];
  for (const j of plan.jobs) {
    const cv = plan.kind === 'train' ? (parseJobFlags('train', j.data.flags).params.cv as number | undefined) : undefined;
    if (cv !== undefined) {
      out.push(...(await submitCv(j, cv, queues)));
      continue;
    }
    const q = j.chip === null ? queues.get(CPU_QUEUE) : queues.chip(j.chip);
    const jobId = newJobId(plan.kind, j.chip);
    await q.add(plan.kind, j.data, {
      jobId,
      attempts: j.attempts,
      backoff: { type: 'exponential', delay: j.backoffMs },
      // Finished jobs stay in Redis until the coordinator has synced them (sync.ts).
      removeOnComplete: false,
      removeOnFail: false,
    });
    out.push({ job_id: jobId, kind: plan.kind, chip: j.chip, queue: q.name, online: j.chip === null || !plan.offline.includes(j.chip) });
  }
  return { jobs: out, offline: plan.offline };
}
