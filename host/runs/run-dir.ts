/**
 * A run folder: everything one command produces, in one place.
 *
 *   <out>/record.json    what ran and how it ended (command, args, versions, device,
 *                        start/end time, status, summary); rewritten atomically
 *   <out>/metrics.jsonl  one JSON object per line, appended as the run goes
 *   <out>/run.lock       present while a process owns the folder
 *   <out>/...            plots, reports, models (use run.file(name))
 *
 * A new run needs an empty or missing folder; a non-empty folder is only reused when
 * resuming the run recorded in it (same command). The lock keeps two processes from
 * writing one run; a lock left by a dead process is taken over.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { writeJsonAtomicSync } from '../../models/io/atomic-file.ts';
import { RunDirError } from './run-dir-error.ts';
import { checkOutWritable } from './out-path.ts';
import { MetricsLog } from './metrics-log.ts';
import { acquireLock, LOCK_FILE } from './run-lock.ts';

export const RECORD_FILE = 'record.json';
export const METRICS_FILE = 'metrics.jsonl';

export type RunStatus = 'running' | 'finished' | 'failed' | 'interrupted';

export interface RunRecord {
  schema: 'spikeloop-run';
  schemaVersion: 1;
  runId: string;
  command: string;
  args: string[];
  cwd: string;
  versions: Record<string, string>;
  device?: unknown;
  startedAt: string;
  endedAt?: string;
  durationSeconds?: number;
  status: RunStatus;
  summary?: Record<string, unknown>;
  error?: { message: string; stack?: string };
  /** Each time the run was continued with --resume, and how the session before it had ended. */
  resumes: { at: string; args: string[]; previousStatus: RunStatus }[];
}

const recordSchema = z.looseObject({
  schema: z.literal('spikeloop-run'),
  schemaVersion: z.literal(1),
  runId: z.string(),
  command: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
  versions: z.record(z.string(), z.string()),
  startedAt: z.string(),
  status: z.enum(['running', 'finished', 'failed', 'interrupted']),
  resumes: z.array(z.looseObject({ at: z.string(), args: z.array(z.string()) })),
});

export interface RunInfo {
  /** The subcommand, e.g. "train". */
  command: string;
  /** The arguments as given (for the record; they are not interpreted here). */
  args?: string[];
  /** Device URI or a description of it (firmware version, chip id...). */
  device?: unknown;
  /** Extra versions to record (backend, firmware...), added to spikeloop/node/platform. */
  versions?: Record<string, string>;
}

export interface OpenRunOptions {
  /** The folder (--out DIR). Created if missing. */
  out: string;
  /** Continue the run recorded in `out` instead of starting a new one. */
  resume?: boolean;
  info: RunInfo;
  /** Clock for tests. */
  now?: () => Date;
  /**
   * How to continue the run recorded in a non-empty `out`, for the refusal's hint, e.g.
   * "pass --resume to continue it" (only commands with such a flag give one).
   */
  continueHint?: string;
}

function spikeloopVersion(): string {
  try {
    const pkg = fileURLToPath(new URL('../../package.json', import.meta.url));
    const v = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

function baseVersions(extra: Record<string, string> = {}): Record<string, string> {
  return { spikeloop: spikeloopVersion(), node: process.version, platform: `${process.platform}-${process.arch}`, ...extra };
}

/** True when a folder holds nothing but a run's record and lock and an empty metrics log. */
function onlyRunFiles(dir: string): boolean {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return false;
  }
  return entries.every((f) => {
    if (f === RECORD_FILE || f === LOCK_FILE || f.startsWith(`.${RECORD_FILE}.`)) return true;
    if (f !== METRICS_FILE) return false;
    const st = fs.lstatSync(join(dir, f));
    return st.isFile() && st.size === 0;
  });
}

/** The command that made the run recorded in `dir`, if a valid record says. */
function recordedCommand(dir: string): string | undefined {
  try {
    const rec = recordSchema.safeParse(JSON.parse(fs.readFileSync(join(dir, RECORD_FILE), 'utf8')));
    return rec.success ? rec.data.command : undefined;
  } catch {
    return undefined;
  }
}

/** A folder left by a run that failed or was interrupted before it produced anything. */
function leftNothing(dir: string, entries: string[]): boolean {
  if (!entries.includes(RECORD_FILE) || entries.includes(LOCK_FILE) || !onlyRunFiles(dir)) return false;
  try {
    const rec = recordSchema.safeParse(JSON.parse(fs.readFileSync(join(dir, RECORD_FILE), 'utf8')));
    return rec.success && (rec.data.status === 'failed' || rec.data.status === 'interrupted') && rec.data.resumes.length === 0;
  } catch {
    return false;
  }
}

export class RunDir {
  readonly metrics: MetricsLog;
  private rec: RunRecord;
  private lock: string | undefined;
  private readonly now: () => Date;
  private readonly startMs: number;
  /** The outermost folder this run created (mkdir -p), removed again if the run leaves nothing. */
  private createdFrom: string | undefined;

  private constructor(
    readonly path: string,
    record: RunRecord,
    readonly resumed: boolean,
    lock: string,
    now: () => Date,
  ) {
    this.rec = record;
    this.lock = lock;
    this.now = now;
    this.startMs = now().getTime();
    this.metrics = new MetricsLog(join(path, METRICS_FILE));
    this.writeRecord();
  }

  /** Create (or resume) the run folder; see the module comment for the rules. */
  static open(opts: OpenRunOptions): RunDir {
    const now = opts.now ?? (() => new Date());
    if (typeof opts.out !== 'string' || opts.out.trim() === '') throw new RunDirError('--out: a folder path is required, e.g. --out runs/fmnist-1');
    if (!opts.info || typeof opts.info.command !== 'string' || opts.info.command === '') {
      throw new RunDirError('run info: command is required (e.g. "train")');
    }
    checkOutWritable(opts.out);
    const dir = resolve(opts.out);
    let entries: string[] = [];
    if (fs.existsSync(dir)) {
      if (!fs.statSync(dir).isDirectory()) throw new RunDirError(`--out ${opts.out}: exists and is not a folder; choose another path`);
      entries = fs.readdirSync(dir);
    }
    const args = opts.info.args ?? [];

    if (opts.resume) {
      const recPath = join(dir, RECORD_FILE);
      if (!fs.existsSync(recPath)) {
        throw new RunDirError(
          `--resume: ${opts.out} holds no ${RECORD_FILE}, so there is no run to resume; drop --resume to start a new run there (it must be empty)`,
        );
      }
      let parsed: RunRecord;
      try {
        const r = recordSchema.safeParse(JSON.parse(fs.readFileSync(recPath, 'utf8')));
        if (!r.success) {
          const issue = r.error.issues[0]!;
          throw new Error(`field "${issue.path.join('.')}" ${issue.message}`);
        }
        parsed = r.data as unknown as RunRecord;
      } catch (err) {
        throw new RunDirError(`--resume: ${recPath} is not a valid run record (${(err as Error).message}); start a new run in an empty folder`);
      }
      if (parsed.command !== opts.info.command) {
        throw new RunDirError(`--resume: the run in ${opts.out} was made by "${parsed.command}", not "${opts.info.command}"; resume it with the same command`);
      }
      const lock = acquireLock(dir);
      try {
        const at = now().toISOString();
        const record: RunRecord = {
          ...parsed,
          status: 'running',
          // previousStatus "running" means the last session died without recording an end.
          resumes: [...parsed.resumes, { at, args, previousStatus: parsed.status }],
          versions: { ...parsed.versions, ...baseVersions(opts.info.versions) },
          ...(opts.info.device !== undefined ? { device: opts.info.device } : {}),
        };
        delete record.endedAt;
        delete record.durationSeconds;
        delete record.error;
        return new RunDir(dir, record, true, lock, now);
      } catch (err) {
        fs.rmSync(lock, { force: true });
        throw err;
      }
    }

    // A run that ended before it produced anything (only its record and an empty metrics log) is
    // no reason to refuse the folder: the same --out starts afresh there.
    if (entries.length > 0 && leftNothing(dir, entries)) {
      for (const f of entries) fs.rmSync(join(dir, f), { force: true });
      entries = [];
    }
    if (entries.length > 0) {
      const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? ', ...' : '');
      const hint = opts.continueHint && recordedCommand(dir) === opts.info.command ? ` or ${opts.continueHint}` : ` (or delete ${opts.out} to start over)`;
      throw new RunDirError(`--out ${opts.out}: folder is not empty (${shown}); choose a new folder${hint}`);
    }
    const created = fs.mkdirSync(dir, { recursive: true });
    const lock = acquireLock(dir);
    const started = now();
    const record: RunRecord = {
      schema: 'spikeloop-run',
      schemaVersion: 1,
      runId: `${started
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`,
      command: opts.info.command,
      args,
      cwd: process.cwd(),
      versions: baseVersions(opts.info.versions),
      ...(opts.info.device !== undefined ? { device: opts.info.device } : {}),
      startedAt: started.toISOString(),
      status: 'running',
      resumes: [],
    };
    try {
      const run = new RunDir(dir, record, false, lock, now);
      run.createdFrom = created;
      return run;
    } catch (err) {
      fs.rmSync(lock, { force: true });
      throw err;
    }
  }

  get record(): Readonly<RunRecord> {
    return this.rec;
  }

  /**
   * A path inside the run folder; refuses names that would escape it, lexically or through a
   * symbolic link planted at the path or at a folder on the way to it.
   */
  file(name: string): string {
    const n = normalize(name);
    if (name === '' || isAbsolute(name) || n === '..' || n.startsWith('..' + sep)) {
      throw new RunDirError(`run file "${name}": must be a relative path inside the run folder`);
    }
    let p = this.path;
    for (const part of n.split(sep)) {
      p = join(p, part);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        break; // not there yet: nothing to follow
      }
      if (st.isSymbolicLink())
        throw new RunDirError(`${p} is a symbolic link; spikeloop writes only to files inside the run folder: remove the link and run again`);
    }
    return join(this.path, n);
  }

  /** Merge into the record (device details, versions, a partial summary) and rewrite it. */
  update(patch: { device?: unknown; versions?: Record<string, string>; summary?: Record<string, unknown> }): void {
    if (patch.device !== undefined) this.rec.device = patch.device;
    if (patch.versions) this.rec.versions = { ...this.rec.versions, ...patch.versions };
    if (patch.summary) this.rec.summary = { ...this.rec.summary, ...patch.summary };
    this.writeRecord();
  }

  /** Mark the run finished with its summary; closes the metrics log and releases the folder. */
  finish(summary?: Record<string, unknown>): void {
    if (summary) this.rec.summary = { ...this.rec.summary, ...summary };
    this.end('finished');
  }

  /**
   * Mark the run failed (or interrupted, e.g. on Ctrl-C), recording the error. A new run that
   * failed before it wrote anything (no metrics, no files besides its record) is removed instead,
   * folder and all, so the same --out can be used again once the cause is fixed.
   */
  fail(error: unknown, status: 'failed' | 'interrupted' = 'failed'): void {
    const e = error instanceof Error ? error : new Error(String(error));
    this.rec.error = { message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
    const untouched = status === 'failed' && !this.resumed && this.lock !== undefined && this.metrics.appended === 0 && onlyRunFiles(this.path);
    this.end(status);
    if (untouched) this.discard();
  }

  /**
   * Ends the run after `error`: "interrupted" when `signal` stopped it, else "failed" (see fail).
   * Returns the error to rethrow; an interruption's says where it is recorded and `howToContinue`.
   */
  stopped(error: unknown, signal: AbortSignal | undefined, howToContinue: string): unknown {
    if (!signal?.aborted) {
      this.fail(error);
      return error;
    }
    this.fail(error, 'interrupted');
    return new Error(`${join(this.path, RECORD_FILE)} records it (status "interrupted"); ${howToContinue}`);
  }

  private discard(): void {
    for (const f of [RECORD_FILE, METRICS_FILE]) fs.rmSync(join(this.path, f), { force: true });
    if (this.createdFrom === undefined) return;
    // Remove the folders mkdir created, innermost first, as long as they are empty.
    for (let d = this.path; ; d = dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        return;
      }
      if (d === resolve(this.createdFrom) || dirname(d) === d) return;
    }
  }

  private end(status: RunStatus): void {
    if (this.lock === undefined) return; // already ended
    const t = this.now();
    this.rec.status = status;
    this.rec.endedAt = t.toISOString();
    // Wall time of this session plus earlier sessions is not knowable after a crash;
    // record the span from the first start instead.
    this.rec.durationSeconds = Math.max(0, (t.getTime() - Date.parse(this.rec.startedAt)) / 1000);
    this.metrics.close();
    this.writeRecord();
    fs.rmSync(this.lock, { force: true });
    this.lock = undefined;
  }

  private writeRecord(): void {
    writeJsonAtomicSync(join(this.path, RECORD_FILE), this.rec);
  }

  /** Seconds since this process opened the run. */
  elapsedSeconds(): number {
    return (this.now().getTime() - this.startMs) / 1000;
  }
}

/** Convenience: `const run = openRunDir({ out, resume, info: { command: 'train', args } })`. */
export function openRunDir(opts: OpenRunOptions): RunDir {
  return RunDir.open(opts);
}
