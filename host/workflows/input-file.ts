/**
 * Checks a file a flag names (--model, --profile) before anything reads it, so a wrong path is
 * reported as the flag, the value and the fix instead of a bare ENOENT / EACCES.
 */
import * as fs from 'node:fs';

/** Throws unless `path` is a readable regular file; `fix` says where the right file comes from. */
export function checkInputFile(flag: string, path: string, fix: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'ENOTDIR'
          ? 'a folder on the path is a file'
          : code === 'EACCES'
            ? 'not readable by this user'
            : `cannot be read (${code ?? (err as Error).message})`;
    throw new InputFileError(`${flag} ${path}: ${why}; ${fix}`);
  }
  if (st.isDirectory()) throw new InputFileError(`${flag} ${path}: is a folder, not a file; ${fix}`);
  if (!st.isFile()) throw new InputFileError(`${flag} ${path}: is not a regular file; ${fix}`);
  try {
    fs.accessSync(path, fs.constants.R_OK);
  } catch {
    throw new InputFileError(`${flag} ${path}: not readable by this user; ${fix}`);
  }
}

/** A flag names a file that is missing or unreadable. */
export class InputFileError extends Error {
  override name = 'InputFileError';
}

/** Where each kind of input file comes from, for the fix of a message. */
export const MODEL_FILE_FIX = 'pass the network.bin that spikeloop train wrote, e.g. --model runs/iris/network.bin';
export const PROFILE_FILE_FIX = 'pass the profile.slp that spikeloop calibrate wrote, e.g. --profile runs/cal/profile.slp';
