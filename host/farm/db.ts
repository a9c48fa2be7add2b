/**
 * The chip database: SQLite (node-sqlite3-wasm: SQLite compiled to WebAssembly, so it installs
 * wherever npm does, with no compiler) on the coordinating host, one file, queryable with any
 * SQLite client. Only the coordinator writes it (farm results / report / sync pull finished
 * jobs from Redis), so no host writes SQLite over a network file system.
 *
 * Its file system layer locks with a folder `chips.db.lock` (SQLite's dot-file locking) and has no
 * shared memory, hence the rollback journal rather than WAL. Another client must use the same
 * locking (`sqlite3 -vfs unix-dotfile`). A process killed mid-write leaves the lock folder behind;
 * the error then names it.
 *
 * Idempotent by construction: `results.job_id` is the BullMQ job id and the primary key, so a
 * job that was retried, replayed after a Redis restart or synced twice lands once. The one update
 * allowed is a failed job that was later retried by hand and completed.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import sqlite from 'node-sqlite3-wasm';
import type { ChipEntry } from './registry.ts';

export const DB_FILE = 'chips.db';

export interface ResultRow {
  job_id: string;
  chip_id: string | null;
  kind: string;
  status: 'completed' | 'failed';
  attempts: number;
  stalls: number;
  worker: string | null;
  host: string | null;
  submitted_at: string | null;
  finished_at: string | null;
  seconds: number | null;
  error: string | null;
  artifacts: string | null;
  summary: string;
  ok: number | null;
  mode: string | null;
  e_plus: number | null;
  e_minus: number | null;
  rmse_pnn_ticks: number | null;
  rmse_ideal_ticks: number | null;
  accuracy: number | null;
  profile: string | null;
}

export interface ChipRow {
  chip_id: string;
  geometry: string | null;
  board_id: string | null;
  uri: string | null;
  worker: string | null;
  host: string | null;
  first_seen: string;
  last_seen: string;
  current_profile: string | null;
  profile_job: string | null;
  profile_at: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS chips (
  chip_id TEXT PRIMARY KEY,
  geometry TEXT, board_id TEXT, uri TEXT, worker TEXT, host TEXT,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
  current_profile TEXT, profile_job TEXT, profile_at TEXT
);
CREATE TABLE IF NOT EXISTS results (
  job_id TEXT PRIMARY KEY,
  chip_id TEXT,
  kind TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
  attempts INTEGER NOT NULL, stalls INTEGER NOT NULL,
  worker TEXT, host TEXT, submitted_at TEXT, finished_at TEXT, seconds REAL,
  error TEXT, artifacts TEXT,
  summary TEXT NOT NULL,
  ok INTEGER, mode TEXT, e_plus REAL, e_minus REAL, rmse_pnn_ticks REAL, rmse_ideal_ticks REAL, accuracy REAL, profile TEXT
);
CREATE INDEX IF NOT EXISTS results_by_chip ON results (chip_id, kind, finished_at);
`;

const COLUMNS: (keyof ResultRow)[] = [
  'job_id',
  'chip_id',
  'kind',
  'status',
  'attempts',
  'stalls',
  'worker',
  'host',
  'submitted_at',
  'finished_at',
  'seconds',
  'error',
  'artifacts',
  'summary',
  'ok',
  'mode',
  'e_plus',
  'e_minus',
  'rmse_pnn_ticks',
  'rmse_ideal_ticks',
  'accuracy',
  'profile',
];

type Params = Record<string, string | number | null>;

/** node-sqlite3-wasm binds named parameters by their full name, prefix included; a missing value is NULL. */
const named = (values: object): Params => Object.fromEntries(Object.entries(values).map(([k, v]) => [`@${k}`, (v ?? null) as string | number | null]));

export class ChipDb {
  readonly db: sqlite.Database;
  private readonly insertResult: sqlite.Statement;
  private readonly setProfile: sqlite.Statement;
  private readonly upsertChipStmt: sqlite.Statement;

  /** `busyMs`: how long a command waits for another one's write before failing. */
  constructor(
    readonly path: string,
    busyMs = 5000,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    // Created here so it gets the usual permissions (the wasm layer would create it owner-only).
    closeSync(openSync(path, 'a'));
    this.db = new sqlite.Database(path);
    try {
      this.db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(busyMs))}`);
      this.locked(() => this.db.exec(SCHEMA));
    } catch (err) {
      this.db.close();
      throw err;
    }
    const cols = COLUMNS.join(', ');
    const vals = COLUMNS.map((c) => `@${c}`).join(', ');
    const updates = COLUMNS.filter((c) => c !== 'job_id')
      .map((c) => `${c} = excluded.${c}`)
      .join(', ');
    this.insertResult = this.db.prepare(
      `INSERT INTO results (${cols}) VALUES (${vals})
       ON CONFLICT (job_id) DO UPDATE SET ${updates} WHERE results.status = 'failed' AND excluded.status = 'completed'`,
    );
    this.setProfile = this.db.prepare(
      `UPDATE chips SET current_profile = @profile, profile_job = @job_id, profile_at = @finished_at
       WHERE chip_id = @chip_id AND (profile_at IS NULL OR profile_at <= @finished_at)`,
    );
    this.upsertChipStmt = this.db.prepare(
      `INSERT INTO chips (chip_id, geometry, board_id, uri, worker, host, first_seen, last_seen)
       VALUES (@chipId, @geometry, @boardId, @uri, @worker, @host, @seenAt, @seenAt)
       ON CONFLICT (chip_id) DO UPDATE SET geometry = excluded.geometry, board_id = excluded.board_id, uri = excluded.uri,
         worker = excluded.worker, host = excluded.host, last_seen = MAX(chips.last_seen, excluded.last_seen)`,
    );
  }

  /** Runs `fn`; a lock still held after the busy timeout becomes an error naming the lock folder and the fix. */
  private locked<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof Error && /database is locked/.test(err.message)) {
        throw new Error(
          `chip database ${this.path} is locked (folder ${this.path}.lock): another farm command is writing it, ` +
            `or one was killed while writing; if no farm command is running, remove that folder and retry`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** `fn` in one transaction: all of it or nothing. */
  private transaction<T>(fn: () => T): T {
    return this.locked(() => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const out = fn();
        this.db.exec('COMMIT');
        return out;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  upsertChip(c: ChipEntry): void {
    this.locked(() =>
      this.upsertChipStmt.run(
        named({
          chipId: c.chipId,
          geometry: c.geometry.join('-'),
          boardId: c.boardId,
          uri: c.uri,
          worker: c.worker,
          host: c.host,
          seenAt: c.seenAt,
        }),
      ),
    );
  }

  /** Records a finished job; true when the row was written (false: already there). */
  recordResult(row: ResultRow): boolean {
    return this.transaction(() => {
      const wrote = this.insertResult.run(named(row)).changes > 0;
      if (wrote && row.status === 'completed' && row.kind === 'calibrate' && row.profile && row.chip_id) {
        this.upsertChipStmt.run(
          named({
            chipId: row.chip_id,
            geometry: null,
            boardId: null,
            uri: null,
            worker: row.worker,
            host: row.host,
            seenAt: row.finished_at ?? new Date().toISOString(),
          }),
        );
        this.setProfile.run(named({ profile: row.profile, job_id: row.job_id, finished_at: row.finished_at, chip_id: row.chip_id }));
      }
      return wrote;
    });
  }

  results(filter: { chip?: string; kind?: string } = {}): ResultRow[] {
    const where: string[] = [];
    const params: Params = {};
    if (filter.chip) {
      where.push('chip_id = @chip');
      params['@chip'] = filter.chip;
    }
    if (filter.kind) {
      where.push('kind = @kind');
      params['@kind'] = filter.kind;
    }
    const sql = `SELECT * FROM results ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY finished_at, job_id`;
    return this.locked(() => this.db.all(sql, params)) as unknown as ResultRow[];
  }

  chips(): ChipRow[] {
    return this.locked(() => this.db.all('SELECT * FROM chips ORDER BY chip_id')) as unknown as ChipRow[];
  }

  chip(id: string): ChipRow | undefined {
    return (this.locked(() => this.db.get('SELECT * FROM chips WHERE chip_id = ?', id)) ?? undefined) as ChipRow | undefined;
  }

  /** Frees the statements (the wasm heap is not garbage-collected) and closes the file. */
  close(): void {
    if (!this.db.isOpen) return;
    for (const s of [this.insertResult, this.setProfile, this.upsertChipStmt]) if (!s.isFinalized) s.finalize();
    this.db.close();
  }
}
