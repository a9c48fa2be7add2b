import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readMetrics } from '../../../host/runs/metrics-log.ts';
import { openRunDir } from '../../../host/runs/run-dir.ts';
import { RunDirError } from '../../../host/runs/run-dir-error.ts';
import { LOCK_FILE } from '../../../host/runs/run-lock.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'spikeloop-runs-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const info = { command: 'train', args: ['--dataset', 'iris'], device: 'mock:behavioral?seed=7' };
const readRecord = (dir: string) => JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8'));

function fakeClock(start = Date.parse('2024-06-01T12:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (s: number) => (t += s * 1000) };
}

describe('openRunDir: new runs', () => {
  it('creates the folder, a running record, and a lock', () => {
    const out = join(root, 'a', 'b');
    const c = fakeClock();
    const run = openRunDir({ out, info, now: c.now });
    expect(run.resumed).toBe(false);
    const rec = readRecord(out);
    expect(rec).toMatchObject({
      schema: 'spikeloop-run',
      schemaVersion: 1,
      command: 'train',
      args: ['--dataset', 'iris'],
      device: 'mock:behavioral?seed=7',
      startedAt: '2024-06-01T12:00:00.000Z',
      status: 'running',
      resumes: [],
    });
    expect(rec.runId).toMatch(/^20240601T120000Z-[0-9a-f]{6}$/);
    expect(rec.versions.node).toBe(process.version);
    expect(rec.versions.spikeloop).toMatch(/^\d+\.\d+\.\d+/);
    expect(existsSync(join(out, LOCK_FILE))).toBe(true);
    c.advance(90);
    run.finish({ accuracy: 0.95 });
    const done = readRecord(out);
    expect(done.status).toBe('finished');
    expect(done.endedAt).toBe('2024-06-01T12:01:30.000Z');
    expect(done.durationSeconds).toBe(90);
    expect(done.summary).toEqual({ accuracy: 0.95 });
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    expect(readdirSync(out).sort()).toEqual(['metrics.jsonl', 'record.json']);
  });

  it('accepts an existing empty folder and refuses a non-empty one, naming what is there', () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    openRunDir({ out: empty, info }).finish();
    const busy = join(root, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'keep me');
    expect(() => openRunDir({ out: busy, info })).toThrow(
      /--out .*busy: folder is not empty \(notes\.txt\); choose a new folder \(or delete .*busy to start over\)$/,
    );
    expect(readFileSync(join(busy, 'notes.txt'), 'utf8')).toBe('keep me');
    // a finished run's folder: the command's own way to continue, and only when it has one
    expect(() => openRunDir({ out: empty, info, continueHint: 'continue it with --resume DIR' })).toThrow(/or continue it with --resume DIR$/);
    expect(() => openRunDir({ out: empty, info })).not.toThrow(/--resume/);
    // and only for a run its own command made
    expect(() => openRunDir({ out: empty, info: { command: 'calibrate' }, continueHint: 'refit it with --quick' })).toThrow(
      /choose a new folder \(or delete .* to start over\)$/,
    );
  });

  it('refuses a path that is a file and a missing command', () => {
    const f = join(root, 'file');
    writeFileSync(f, 'x');
    expect(() => openRunDir({ out: f, info })).toThrow(/exists and is not a folder/);
    expect(() => openRunDir({ out: '', info })).toThrow(/--out: a folder path is required/);
    expect(() => openRunDir({ out: join(root, 'z'), info: { command: '' } })).toThrow(/command is required/);
  });

  it('records failures and interruptions with the error', () => {
    const out = join(root, 'f');
    const run = openRunDir({ out, info });
    run.fail(new Error('device timed out'), 'interrupted');
    const rec = readRecord(out);
    expect(rec.status).toBe('interrupted');
    expect(rec.error.message).toBe('device timed out');
    expect(rec.error.stack).toContain('device timed out');
    run.finish(); // already ended: no change
    expect(readRecord(out).status).toBe('interrupted');
  });

  it('file() stays inside the run folder', () => {
    const out = join(root, 'g');
    const run = openRunDir({ out, info });
    expect(run.file('plots/loss.svg')).toBe(join(out, 'plots', 'loss.svg'));
    expect(() => run.file('../escape')).toThrow(RunDirError);
    expect(() => run.file('/etc/passwd')).toThrow(/relative path/);
    expect(() => run.file('a/../../b')).toThrow(/relative path/);
    run.finish();
  });

  it('update() merges device, versions and summary into the record', () => {
    const out = join(root, 'u');
    const run = openRunDir({ out, info });
    run.update({ device: { uri: 'serial:/dev/ttyACM0', firmware: '1.0.3' }, versions: { tfjs: 'wasm 4.22' }, summary: { epochs: 1 } });
    run.update({ summary: { acc: 0.5 } });
    const rec = readRecord(out);
    expect(rec.device).toEqual({ uri: 'serial:/dev/ttyACM0', firmware: '1.0.3' });
    expect(rec.versions.tfjs).toBe('wasm 4.22');
    expect(rec.summary).toEqual({ epochs: 1, acc: 0.5 });
    run.finish();
  });
});

describe('metrics.jsonl', () => {
  it('one JSON object per line, readable while the run is still open', () => {
    const out = join(root, 'm');
    const run = openRunDir({ out, info });
    run.metrics.append({ epoch: 1, loss: 0.5, acc: Number.NaN, w: Float32Array.of(0.5, 1.5), big: 3n });
    run.metrics.append({ epoch: 2, loss: 0.25, time: 'fixed' });
    // no close/flush needed to see the lines
    const { records, skippedLines } = readMetrics(join(out, 'metrics.jsonl'));
    expect(skippedLines).toEqual([]);
    expect(records[0]).toMatchObject({ epoch: 1, loss: 0.5, acc: null, w: [0.5, 1.5], big: '3' });
    expect(typeof records[0]!.time).toBe('string');
    expect(records[1]).toEqual({ epoch: 2, loss: 0.25, time: 'fixed' });
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n');
    expect(lines.length).toBe(3);
    expect(lines[2]).toBe('');
    expect(() => run.metrics.append([1, 2] as never)).toThrow(/plain object/);
    run.finish();
    expect(() => run.metrics.append({ a: 1 })).toThrow(/closed/);
  });
});

describe('resume', () => {
  it('continues the recorded run, keeps its metrics, and notes the resume', () => {
    const out = join(root, 'r');
    const c = fakeClock();
    const first = openRunDir({ out, info, now: c.now });
    first.metrics.append({ epoch: 1 });
    const runId = first.record.runId;
    // simulate a crash: no finish(); the lock names a process that no longer exists
    // (a child that has exited), and the last metrics line was cut mid-write
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: Number(dead), host: hostname() }));
    appendFileSync(join(out, 'metrics.jsonl'), '{"epoch": 2, "lo');

    c.advance(60);
    const again = openRunDir({ out, info: { ...info, args: ['--resume'] }, resume: true, now: c.now });
    expect(again.resumed).toBe(true);
    again.metrics.append({ epoch: 2 });
    again.finish({ acc: 1 });
    const rec = readRecord(out);
    expect(rec.runId).toBe(runId);
    expect(rec.startedAt).toBe('2024-06-01T12:00:00.000Z');
    expect(rec.resumes).toEqual([{ at: '2024-06-01T12:01:00.000Z', args: ['--resume'], previousStatus: 'running' }]);
    expect(rec.status).toBe('finished');
    const { records, skippedLines } = readMetrics(join(out, 'metrics.jsonl'));
    expect(records.map((r) => r.epoch)).toEqual([1, 2]);
    expect(skippedLines).toEqual([2]);
  });

  it('refuses while another live process holds the run', () => {
    const out = join(root, 'busy');
    const run = openRunDir({ out, info });
    expect(() => openRunDir({ out, info, resume: true })).toThrow(new RegExp(`in use by process ${process.pid}`));
    run.finish();
    openRunDir({ out, info, resume: true }).finish();
  });

  it('refuses a folder without a record, a damaged record, or another command', () => {
    const empty = join(root, 'nothing');
    mkdirSync(empty);
    expect(() => openRunDir({ out: empty, info, resume: true })).toThrow(/holds no record\.json, so there is no run to resume/);
    const bad = join(root, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'record.json'), '{"schema": "other"}');
    expect(() => openRunDir({ out: bad, info, resume: true })).toThrow(/is not a valid run record/);
    const other = join(root, 'other');
    openRunDir({ out: other, info: { command: 'calibrate' } }).finish();
    expect(() => openRunDir({ out: other, info, resume: true })).toThrow(/was made by "calibrate", not "train"/);
    expect(existsSync(join(other, LOCK_FILE))).toBe(false);
  });
});

describe('what a run folder refuses', () => {
  it('refuses --out on a pseudo-filesystem at once, creating nothing', () => {
    for (const out of ['/proc/spikeloop-run', '/sys/spikeloop/run', '/dev/spikeloop-run']) {
      expect(() => openRunDir({ out, info })).toThrow(/is a system pseudo-filesystem, not storage; choose a folder on disk/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it.skipIf(process.getuid?.() === 0)('refuses a folder it cannot write, naming the flag and the fix', () => {
    const ro = join(root, 'ro');
    mkdirSync(ro, { mode: 0o555 });
    expect(() => openRunDir({ out: join(ro, 'run'), info })).toThrow(
      /--out .*ro\/run: its parent .*ro is not writable by this user; choose a folder you can write/,
    );
  });

  it('never appends metrics through a symbolic link planted in the run folder', () => {
    const out = join(root, 'linked');
    openRunDir({ out, info }).finish();
    const outside = join(root, 'outside.jsonl');
    writeFileSync(outside, '');
    rmSync(join(out, 'metrics.jsonl'));
    symlinkSync(outside, join(out, 'metrics.jsonl'));
    expect(() => openRunDir({ out, info, resume: true })).toThrow(/metrics\.jsonl is a symbolic link; .* remove the link/);
    expect(readFileSync(outside, 'utf8')).toBe('');
    // and the refusal leaves the folder free for the next attempt (no stale lock)
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('never hands out a run file path that goes through a symbolic link', () => {
    const out = join(root, 'files');
    const run = openRunDir({ out, info });
    const outside = join(root, 'elsewhere');
    mkdirSync(outside);
    symlinkSync(outside, join(out, 'fold-1'));
    symlinkSync(join(outside, 'x.svg'), join(out, 'plot.svg'));
    expect(() => run.file('fold-1/network.bin')).toThrow(/fold-1 is a symbolic link; .* remove the link/);
    expect(() => run.file('plot.svg')).toThrow(/plot\.svg is a symbolic link/);
    expect(run.file('report.html')).toBe(join(out, 'report.html'));
    run.finish();
  });

  it('removes a new run that failed before it wrote anything, and the folders it made', () => {
    const out = join(root, 'new', 'deep');
    const run = openRunDir({ out, info });
    run.fail(new Error('--dataset: no such data set'));
    expect(existsSync(join(root, 'new'))).toBe(false);
    // a run that did some work keeps its record
    const kept = join(root, 'kept');
    const r2 = openRunDir({ out: kept, info });
    r2.metrics.append({ epoch: 1 });
    r2.fail(new Error('device lost'));
    expect(readRecord(kept).status).toBe('failed');
  });

  it('takes the same --out again after a run left nothing but its record', () => {
    const out = join(root, 'stopped');
    openRunDir({ out, info }).fail(new Error('interrupted by SIGINT'), 'interrupted');
    expect(readRecord(out).status).toBe('interrupted');
    const again = openRunDir({ out, info });
    again.finish();
    expect(readRecord(out).status).toBe('finished');
  });
});
