/**
 * Who is on line: workers and the chips they hold, as Redis keys with a time to live that each
 * worker refreshes (a heartbeat). A worker that dies stops refreshing and its keys expire; the
 * chips it held stay known (a persistent hash), so jobs for them wait until a worker holding
 * them is back.
 *
 *   spikeloop-farm:worker:<id>   JSON WorkerEntry, TTL
 *   spikeloop-farm:chip:<id>     JSON ChipEntry (who holds it now), TTL
 *   spikeloop-farm:chips         hash chip id -> JSON ChipEntry, the last seen, never expires
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { KEY_PREFIX } from './config.ts';

export const chipEntrySchema = z.looseObject({
  chipId: z.string(),
  uri: z.string(),
  worker: z.string(),
  host: z.string(),
  geometry: z.array(z.number()),
  boardId: z.string(),
  firmware: z.string(),
  seenAt: z.string(),
  /** Set when the worker's last attempt to open the board failed. */
  unreachable: z.string().optional(),
});
export type ChipEntry = z.infer<typeof chipEntrySchema>;

export const workerEntrySchema = z.looseObject({
  id: z.string(),
  host: z.string(),
  pid: z.number(),
  chips: z.array(z.string()),
  cpu: z.boolean(),
  startedAt: z.string(),
  seenAt: z.string(),
});
export type WorkerEntry = z.infer<typeof workerEntrySchema>;

const workerKey = (id: string) => `${KEY_PREFIX}:worker:${id}`;
const chipKey = (id: string) => `${KEY_PREFIX}:chip:${id}`;
const KNOWN_CHIPS = `${KEY_PREFIX}:chips`;

export async function announce(redis: Redis, worker: WorkerEntry, chips: ChipEntry[], ttlMs: number): Promise<void> {
  const m = redis.multi();
  m.set(workerKey(worker.id), JSON.stringify(worker), 'PX', ttlMs);
  for (const c of chips) {
    m.set(chipKey(c.chipId), JSON.stringify(c), 'PX', ttlMs);
    m.hset(KNOWN_CHIPS, c.chipId, JSON.stringify(c));
  }
  await m.exec();
}

export async function withdraw(redis: Redis, worker: WorkerEntry): Promise<void> {
  const m = redis.multi();
  m.del(workerKey(worker.id));
  for (const c of worker.chips) m.del(chipKey(c));
  await m.exec();
}

async function scanJson<T>(redis: Redis, pattern: string, schema: z.ZodType<T>): Promise<T[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(...keys);
  const out: T[] = [];
  for (const v of values) {
    if (v === null) continue; // expired between SCAN and MGET
    const r = schema.safeParse(JSON.parse(v));
    if (r.success) out.push(r.data);
  }
  return out;
}

export const onlineWorkers = (redis: Redis) => scanJson(redis, `${KEY_PREFIX}:worker:*`, workerEntrySchema);
export const onlineChips = (redis: Redis) => scanJson(redis, `${KEY_PREFIX}:chip:*`, chipEntrySchema);

/** Every chip any worker ever announced, with what it last announced. */
export async function knownChips(redis: Redis): Promise<ChipEntry[]> {
  const all = await redis.hgetall(KNOWN_CHIPS);
  const out: ChipEntry[] = [];
  for (const v of Object.values(all)) {
    const r = chipEntrySchema.safeParse(JSON.parse(v));
    if (r.success) out.push(r.data);
  }
  return out.sort((a, b) => a.chipId.localeCompare(b.chipId));
}
