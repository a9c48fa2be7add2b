/**
 * The chip database: SQLite (better-sqlite3) on the coordinating host, one file, queryable with
 * any SQLite client. Only the coordinator writes it (farm results / report / sync pull finished
 * jobs from Redis), so no host writes SQLite over a network file system.
 *
 * Idempotent by construction: `results.job_id` is the BullMQ job id and the primary key, so a
 * job that was retried, replayed after a Redis restart or synced twice lands once. The one update
 * allowed is a failed job that was later retried by hand and completed.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
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

export class ChipDb {
  readonly db: Database.Database;
  private readonly insertResult: Database.Statement;
  private readonly setProfile: Database.Statement;
  private readonly upsertChipStmt: Database.Statement;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
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

  upsertChip(c: ChipEntry): void {
    this.upsertChipStmt.run({
      chipId: c.chipId,
      geometry: c.geometry.join('-'),
      boardId: c.boardId,
      uri: c.uri,
      worker: c.worker,
      host: c.host,
      seenAt: c.seenAt,
    });
  }

  /** Records a finished job; true when the row was written (false: already there). */
  recordResult(row: ResultRow): boolean {
    return this.db.transaction(() => {
      const wrote = this.insertResult.run(row).changes > 0;
      if (wrote && row.status === 'completed' && row.kind === 'calibrate' && row.profile && row.chip_id) {
        this.upsertChipStmt.run({
          chipId: row.chip_id,
          geometry: null,
          boardId: null,
          uri: null,
          worker: row.worker,
          host: row.host,
          seenAt: row.finished_at ?? new Date().toISOString(),
        });
        this.setProfile.run(row);
      }
      return wrote;
    })();
  }

  results(filter: { chip?: string; kind?: string } = {}): ResultRow[] {
    const where: string[] = [];
    if (filter.chip) where.push('chip_id = @chip');
    if (filter.kind) where.push('kind = @kind');
    return this.db
      .prepare(`SELECT * FROM results ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY finished_at, job_id`)
      .all(filter) as ResultRow[];
  }

  chips(): ChipRow[] {
    return this.db.prepare('SELECT * FROM chips ORDER BY chip_id').all() as ChipRow[];
  }

  chip(id: string): ChipRow | undefined {
    return this.db.prepare('SELECT * FROM chips WHERE chip_id = ?').get(id) as ChipRow | undefined;
  }

  close(): void {
    this.db.close();
  }
}
