import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RunDirError } from './run-dir-error.ts';

export const LOCK_FILE = 'run.lock';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireLock(dir: string): string {
  const lock = join(dir, LOCK_FILE);
  const me = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, me, { flag: 'wx' });
      return lock;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: { pid?: number; host?: string } = {};
      try {
        owner = JSON.parse(fs.readFileSync(lock, 'utf8')) as typeof owner;
      } catch {
        /* unreadable lock: treat as stale */
      }
      const sameHost = owner.host === hostname();
      if (typeof owner.pid === 'number' && (!sameHost || pidAlive(owner.pid))) {
        throw new RunDirError(
          `${dir}: in use by process ${owner.pid}${sameHost ? '' : ` on ${owner.host}`} (${LOCK_FILE}); wait for it to finish, or delete ${LOCK_FILE} if that process is gone`,
        );
      }
      fs.rmSync(lock, { force: true }); // stale: its owner died without cleaning up
    }
  }
  throw new RunDirError(`${dir}: could not take ${LOCK_FILE}`);
}
