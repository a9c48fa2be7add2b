/**
 * On-disk cache of characterisation results, keyed by a hash of what produced them: the engine's
 * identity and the exact netlist text (which holds every device size, grid and bias). Files are
 * tensor files (models/io/tensor-file.ts) written atomically, under `$SPIKELOOP_CACHE/spice/` or
 * `<repo>/.cache/spice/`. A damaged or foreign file is recomputed and replaced.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from '../../datasets/cache.ts';
import { loadArrays, saveArrays } from '../../io/tensor-file.ts';
import type { CharacterisationJob } from './characterise.ts';
import type { SpiceVectors } from './engine.ts';

/** Bump when the meaning of cached arrays changes. */
export const TABLE_CACHE_VERSION = 1;

export function spiceCacheDir(override?: string): string {
  const dir = join(cacheRoot(override), 'spice');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function jobKey(engineVersion: string, netlist: string): string {
  return createHash('sha256').update(`spikeloop spice table v${TABLE_CACHE_VERSION}\n${engineVersion}\n${netlist}`).digest('hex').slice(0, 24);
}

export interface CacheStats {
  hits: number;
  misses: number;
}

/**
 * The job's result from the cache, or from running it (then stored). `dir` undefined = no cache.
 */
export async function cachedJob<T>(
  job: CharacterisationJob<T>,
  run: (netlist: string) => Promise<SpiceVectors>,
  engineVersion: string,
  dir: string | undefined,
  stats?: CacheStats,
): Promise<T> {
  const key = jobKey(engineVersion, job.netlist);
  const path = dir ? join(dir, `${job.name}-${key}.slt`) : undefined;
  if (path && existsSync(path)) {
    try {
      const loaded = await loadArrays(path);
      if (loaded.meta.name === `spice-${job.name}` && loaded.meta.key === key) {
        const arrays: Record<string, Float64Array> = {};
        for (const [k, a] of Object.entries(loaded.arrays)) {
          if (!(a instanceof Float64Array)) throw new Error(`array ${k} is not float64`);
          arrays[k] = a;
        }
        const value = job.fromArrays(arrays);
        if (stats) stats.hits++;
        return value;
      }
    } catch {
      /* damaged or stale: recompute below and overwrite */
    }
  }
  const value = job.parse(await run(job.netlist));
  if (stats) stats.misses++;
  if (path && dir) {
    mkdirSync(dir, { recursive: true });
    await saveArrays(path, { name: `spice-${job.name}`, version: TABLE_CACHE_VERSION, key, engine: engineVersion }, job.toArrays(value));
  }
  return value;
}
