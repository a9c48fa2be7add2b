/** `spikeloop farm status`: queues, workers, chips and running jobs, read from Redis. */
import { CPU_QUEUE } from './jobs.ts';
import type { FarmQueues } from './queues.ts';
import { knownChips, onlineChips, onlineWorkers, type WorkerEntry } from './registry.ts';

export interface QueueStatus {
  queue: string;
  chip: string | null;
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
}

export interface ChipStatus {
  chip: string;
  online: boolean;
  worker: string | null;
  uri: string;
  geometry: string;
  unreachable: string | null;
}

export interface RunningJob {
  job_id: string;
  kind: string;
  chip: string | null;
  attempt: number;
  progress: unknown;
  started_at: string | null;
}

export interface FarmStatus {
  workers: WorkerEntry[];
  chips: ChipStatus[];
  queues: QueueStatus[];
  running: RunningJob[];
}

export async function farmStatus(queues: FarmQueues): Promise<FarmStatus> {
  const redis = queues.redis;
  const [workers, online, known] = await Promise.all([onlineWorkers(redis), onlineChips(redis), knownChips(redis)]);
  const onlineById = new Map(online.map((c) => [c.chipId, c]));
  const chips: ChipStatus[] = known.map((k) => {
    const o = onlineById.get(k.chipId);
    return { chip: k.chipId, online: !!o, worker: o?.worker ?? null, uri: (o ?? k).uri, geometry: k.geometry.join('-'), unreachable: o?.unreachable ?? null };
  });
  const qs: QueueStatus[] = [];
  const running: RunningJob[] = [];
  for (const q of await queues.all()) {
    const c = await q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized', 'waiting-children');
    const chip = q.name === CPU_QUEUE ? null : q.name.replace(/^chip\./, '');
    qs.push({
      queue: q.name,
      chip,
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    });
    if ((c.active ?? 0) > 0) {
      for (const j of await q.getJobs(['active'])) {
        if (!j) continue;
        running.push({
          job_id: j.id!,
          kind: j.name,
          chip,
          attempt: j.attemptsMade + 1,
          progress: j.progress,
          started_at: j.processedOn ? new Date(j.processedOn).toISOString() : null,
        });
      }
    }
  }
  return { workers, chips, queues: qs, running };
}
