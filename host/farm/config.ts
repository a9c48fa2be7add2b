/**
 * Where the farm lives: the Redis address (jobs, workers, chips on line) and the shared farm folder
 * (artifacts every host reads, and the chip database of the coordinating host).
 * Flags win over the environment (SPIKELOOP_REDIS, SPIKELOOP_FARM_DIR), which wins over the defaults.
 */
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { z } from 'zod';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_FARM_DIR = 'farm';
/** Every Redis key of the farm starts with this (BullMQ queues and the registry alike). */
export const KEY_PREFIX = 'spikeloop-farm';

export const redisUrlSchema = z
  .string()
  .min(1, 'must not be empty')
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'expected a Redis address like redis://127.0.0.1:6379');

export function redisUrlFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const v = flag ?? env.SPIKELOOP_REDIS ?? DEFAULT_REDIS_URL;
  const r = redisUrlSchema.safeParse(v);
  if (!r.success) throw new Error(`${flag !== undefined ? '--redis' : 'SPIKELOOP_REDIS'} '${v}': ${r.error.issues[0]!.message}`);
  return r.data;
}

export function farmDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.SPIKELOOP_FARM_DIR ?? DEFAULT_FARM_DIR);
}

/**
 * A Redis connection as BullMQ wants it: commands wait for a reconnect instead of failing
 * (maxRetriesPerRequest null), so a Redis restart pauses the farm instead of losing work.
 */
export function connectRedis(url: string, opts: { failFast?: boolean } = {}): Redis {
  const client = new Redis(url, {
    maxRetriesPerRequest: opts.failFast ? 1 : null,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    // Reconnect forever, at most every 2 s: a restarted Redis is picked up again.
    retryStrategy: (times) => (opts.failFast && times > 2 ? null : Math.min(200 * times, 2000)),
    lazyConnect: false,
  });
  // Errors are reported by the operation that hits them; an unhandled 'error' event would crash.
  client.on('error', () => {});
  return client;
}

/** Fails fast with a clear message when nothing answers at `url` (for the one-shot commands). */
export async function pingRedis(client: Redis, url: string): Promise<void> {
  // The connection's own error (ECONNREFUSED, ...) says more than the retry limit the command hits.
  let cause: string | undefined;
  const onError = (err: Error) => (cause ??= err.message);
  client.on('error', onError);
  try {
    await client.ping();
  } catch (err) {
    throw new Error(`no Redis at ${url} (${cause ?? (err as Error).message}); start one (redis-server) or give --redis / SPIKELOOP_REDIS`);
  } finally {
    client.off('error', onError);
  }
}
