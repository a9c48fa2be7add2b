import * as fs from 'node:fs';
import { RunDirError } from './run-dir-error.ts';

/** JSON for a metrics line: typed arrays become arrays, bigints strings, non-finite numbers null. */
function metricsJson(obj: Record<string, unknown>): string {
  return JSON.stringify(obj, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
    return v;
  });
}

/** Appends one JSON object per line; each line is handed to the OS before append() returns. */
export class MetricsLog {
  private fd: number | undefined;
  /** Records appended by this process. */
  appended = 0;

  constructor(readonly path: string) {
    // O_NOFOLLOW: a symbolic link planted in the run folder must not redirect the log elsewhere.
    const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = fs.constants;
    try {
      this.fd = fs.openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
        throw new RunDirError(`${path} is a symbolic link; spikeloop writes only to files inside the run folder: remove the link and run again`);
      }
      throw err;
    }
    if (!fs.fstatSync(this.fd).isFile()) {
      fs.closeSync(this.fd);
      this.fd = undefined;
      throw new RunDirError(`${path} is not a regular file; remove it and run again`);
    }
    // A crash mid-line leaves a partial last line; start on a fresh line so it stays
    // one skippable damaged record instead of corrupting the next one.
    const size = fs.fstatSync(this.fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      const rfd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        fs.readSync(rfd, last, 0, 1, size - 1);
      } finally {
        fs.closeSync(rfd);
      }
      if (last[0] !== 0x0a) fs.writeSync(this.fd, '\n');
    }
  }

  /** Append a record. Adds `time` (ISO) unless the record has one. */
  append(record: Record<string, unknown>): void {
    if (this.fd === undefined) throw new RunDirError(`${this.path}: metrics log is closed`);
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new TypeError('metrics.append: a record must be a plain object, e.g. { epoch: 1, loss: 0.5 }');
    }
    const line = metricsJson('time' in record ? record : { time: new Date().toISOString(), ...record });
    fs.writeSync(this.fd, line + '\n');
    this.appended++;
  }

  /** fsync and close (idempotent). */
  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.fsyncSync(this.fd);
    } catch {
      /* e.g. not supported on this file system */
    }
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Read a metrics file. Lines that do not parse (a crash mid-write) are skipped and
 * their 1-based line numbers returned, so a reader can warn instead of failing.
 */
export function readMetrics(path: string): { records: Record<string, unknown>[]; skippedLines: number[] } {
  const text = fs.readFileSync(path, 'utf8');
  const records: Record<string, unknown>[] = [];
  const skippedLines: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) records.push(v as Record<string, unknown>);
      else skippedLines.push(i + 1);
    } catch {
      skippedLines.push(i + 1);
    }
  });
  return { records, skippedLines };
}
