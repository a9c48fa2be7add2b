/**
 * Where parsed data sets are cached: $SPIKELOOP_CACHE, else <repo>/.cache (gitignored).
 * Data-set caches live in its `datasets/` subfolder.
 */
import { mkdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, found relative to this file (models/datasets/ -> ../../). */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function cacheRoot(override?: string): string {
  const dir = override ?? process.env.SPIKELOOP_CACHE ?? join(REPO_ROOT, '.cache');
  return isAbsolute(dir) ? dir : resolve(dir);
}

/** `<cache root>/datasets`, created if needed. */
export function datasetCacheDir(override?: string): string {
  const dir = join(cacheRoot(override), 'datasets');
  mkdirSync(dir, { recursive: true });
  return dir;
}
