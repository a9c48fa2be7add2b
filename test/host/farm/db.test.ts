/** The chip database lands each job once, whatever the number of syncs, and keeps the current profile. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChipDb, type ResultRow } from '../../../host/farm/db.ts';
import { resultRow } from './result-row.ts';

// A completed full calibration unless overridden.
const row = (over: Partial<ResultRow>): ResultRow =>
  resultRow({ job_id: 'j1', kind: 'calibrate', mode: 'full', e_plus: 9, e_minus: -6, rmse_pnn_ticks: 0.5, rmse_ideal_ticks: 6, profile: '/p1', ...over });

describe('ChipDb', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a job once: a replayed result is ignored, a failed one may become completed, never the reverse', () => {
    dir = mkdtempSync(join(tmpdir(), 'spikeloop-db-'));
    const db = new ChipDb(join(dir, 'chips.db'));
    expect(db.recordResult(row({}))).toBe(true);
    expect(db.recordResult(row({ e_plus: 1 }))).toBe(false);
    expect(db.recordResult(row({ status: 'failed', error: 'x' }))).toBe(false);
    expect(db.results()).toHaveLength(1);
    expect(db.results()[0]!.e_plus).toBe(9);
    expect(db.recordResult(row({ job_id: 'j2', status: 'failed', error: 'board gone', profile: null }))).toBe(true);
    expect(db.recordResult(row({ job_id: 'j2', finished_at: '2026-01-02T00:00:00.000Z', profile: '/p2' }))).toBe(true);
    expect(db.results().map((r) => [r.job_id, r.status])).toEqual([
      ['j1', 'completed'],
      ['j2', 'completed'],
    ]);
    // The newest calibration is the chip's current profile, whatever order the rows arrive in.
    expect(db.chip('c1')).toMatchObject({ current_profile: '/p2', profile_job: 'j2' });
    db.recordResult(row({ job_id: 'j0', finished_at: '2025-12-31T00:00:00.000Z', profile: '/p0' }));
    expect(db.chip('c1')!.current_profile).toBe('/p2');
    db.close();
    // The unique key is in the file: a second process opening it sees the same rows.
    const again = new ChipDb(join(dir, 'chips.db'));
    expect(again.db.get('SELECT COUNT(*) AS n FROM results')).toEqual({ n: 3 });
    expect(() => again.db.run("INSERT INTO results (job_id, kind, status, attempts, stalls, summary) VALUES ('j1', 'x', 'completed', 1, 0, '{}')")).toThrow(
      /UNIQUE/,
    );
    again.close();
  });

  it('a command killed mid-write: the next one fails naming the lock folder and the fix; after the fix the half write is rolled back', () => {
    dir = mkdtempSync(join(tmpdir(), 'spikeloop-db-'));
    const file = join(dir, 'chips.db');
    const db = new ChipDb(file);
    db.recordResult(row({}));
    db.close();
    // A writer that exits inside its transaction leaves its lock folder and a hot journal.
    const killed = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import sqlite from 'node-sqlite3-wasm';
         const db = new sqlite.Database(${JSON.stringify(file)});
         db.exec('BEGIN IMMEDIATE');
         db.run("DELETE FROM results");
         db.run("INSERT INTO results (job_id, kind, status, attempts, stalls, summary) VALUES ('half', 'x', 'completed', 1, 0, '{}')");
         process.exit(0);`,
      ],
      { cwd: process.cwd(), encoding: 'utf8' },
    );
    expect(killed.stderr).toBe('');
    expect(existsSync(`${file}.lock`)).toBe(true);
    expect(() => new ChipDb(file, 50)).toThrow(`${file} is locked (folder ${file}.lock)`);
    expect(() => new ChipDb(file, 50)).toThrow('if no farm command is running, remove that folder and retry');
    rmSync(`${file}.lock`, { recursive: true });
    const again = new ChipDb(file, 50);
    expect(again.results().map((r) => r.job_id)).toEqual(['j1']);
    again.close();
  });
});
