import * as fs from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { RunDirError } from './run-dir-error.ts';

/** Mounts whose files are not storage (writing there can hang or spin): never a run folder. */
const PSEUDO_ROOTS = ['/proc', '/sys', '/dev'];
// statfs magic numbers of pseudo file systems (proc, sysfs, cgroup, cgroup2, debugfs, tracefs, securityfs).
const PSEUDO_FS_TYPES = new Set([0x9fa0, 0x62656572, 0x27e0eb, 0x63677270, 0x64626720, 0x74726163, 0x73636673]);

/**
 * Refuses an --out that cannot hold a run before anything is created: a path under a pseudo
 * file system (/proc, /sys, /dev), or one whose nearest existing folder cannot be written.
 */
export function checkOutWritable(out: string): void {
  const dir = resolve(out);
  let existing = dir;
  while (!fs.existsSync(existing)) {
    const up = dirname(existing);
    if (up === existing) break;
    existing = up;
  }
  let real = existing;
  try {
    real = fs.realpathSync(existing);
  } catch {
    /* keep the path as given */
  }
  const pseudo = [dir, real].some((p) => PSEUDO_ROOTS.some((r) => p === r || p.startsWith(r + sep)));
  let fsType: number | undefined;
  try {
    fsType = Number(fs.statfsSync(real).type);
  } catch {
    /* statfs not available here */
  }
  if (pseudo || (fsType !== undefined && PSEUDO_FS_TYPES.has(fsType))) {
    throw new RunDirError(`--out ${out}: ${real} is a system pseudo-filesystem, not storage; choose a folder on disk, e.g. --out runs/NAME`);
  }
  if (existing === dir && !fs.statSync(dir).isDirectory()) throw new RunDirError(`--out ${out}: exists and is not a folder; choose another path`);
  const target = existing === dir ? 'the folder' : `its parent ${existing}`;
  try {
    fs.accessSync(existing, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EROFS'
        ? 'is on a read-only file system'
        : code === 'EACCES' || code === 'EPERM'
          ? 'is not writable by this user'
          : `cannot be written (${code ?? (err as Error).message})`;
    throw new RunDirError(`--out ${out}: ${target} ${why}; choose a folder you can write, e.g. --out runs/NAME`);
  }
}
