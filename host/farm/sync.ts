/**
 * Pulls finished jobs from Redis into the chip database. Safe to run any number of times, from
 * any coordinator command: rows are keyed by the BullMQ job id (db.ts). Jobs stay in Redis after
 * they finish, so a sync that runs late, or twice, sees the same jobs and writes nothing new.
 */
import type { Job } from 'bullmq';
import type { ChipDb, ResultRow } from './db.ts';
import { jobDataSchema } from './jobs.ts';
import type { FarmQueues } from './queues.ts';
import { knownChips } from './registry.ts';

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** A finished job as a database row (undefined for a job that is not the farm's). */
export function rowOf(job: Job, status: 'completed' | 'failed'): ResultRow | undefined {
  const d = jobDataSchema.safeParse(job.data);
  if (!d.success) return undefined;
  const r = (status === 'completed' && job.returnvalue && typeof job.returnvalue === 'object' ? job.returnvalue : {}) as Record<string, unknown>;
  const finished = job.finishedOn ? new Date(job.finishedOn).toISOString() : null;
  const accuracy = num(r.finetuned_acc) ?? num(r.deployed_acc) ?? num(r.test_acc);
  return {
    job_id: job.id!,
    chip_id: d.data.chip,
    kind: d.data.kind,
    status,
    attempts: job.attemptsMade,
    stalls: job.stalledCounter ?? 0,
    worker: str(r.worker),
    host: str(r.host),
    submitted_at: d.data.submittedAt,
    finished_at: finished,
    seconds: job.processedOn && job.finishedOn ? (job.finishedOn - job.processedOn) / 1000 : null,
    error: status === 'failed' ? (job.failedReason ?? 'failed') : null,
    artifacts: str(r.artifacts),
    summary: JSON.stringify(r),
    ok: d.data.kind === 'bringup' && status === 'completed' ? (r.ok ? 1 : 0) : status === 'completed' ? 1 : 0,
    mode: str(r.mode),
    e_plus: num(r.e_plus),
    e_minus: num(r.e_minus),
    rmse_pnn_ticks: num(r.rmse_pnn_ticks),
    rmse_ideal_ticks: num(r.rmse_ideal_ticks),
    accuracy,
    profile: d.data.kind === 'calibrate' ? str(r.profile) : null,
  };
}

export async function syncResults(queues: FarmQueues, db: ChipDb): Promise<{ seen: number; written: number }> {
  for (const c of await knownChips(queues.redis)) db.upsertChip(c);
  let seen = 0;
  let written = 0;
  const PAGE = 500;
  for (const q of await queues.all()) {
    for (const status of ['completed', 'failed'] as const) {
      for (let start = 0; ; start += PAGE) {
        const jobs = await q.getJobs([status], start, start + PAGE - 1, true);
        for (const job of jobs) {
          if (!job) continue;
          const row = rowOf(job as Job, status);
          if (!row) continue;
          seen++;
          if (db.recordResult(row)) written++;
        }
        if (jobs.length < PAGE) break;
      }
    }
  }
  return { seen, written };
}
