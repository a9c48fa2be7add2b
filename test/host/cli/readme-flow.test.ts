/**
 * The README's command table, walked as a user would: the rows from `calibrate` to `finetune` (one
 * flow for one chip) run in order through bin/spikeloop.js, with URI set to a small mock chip and
 * the optional [flags] left out. The device accuracy after calibration must be reported and lie
 * within 5 points of the twin's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli } from './spawn-cli.ts';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const CHIP = 'mock:behavioral?seed=5&geometry=16-8-4';
const FLOW = ['calibrate', 'train', 'deploy', 'finetune'];

/** The command cells of the README's "Command line" table, as written. */
function commandRows(): string[] {
  const text = fs.readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('## Command line'), text.indexOf('Device addresses:'));
  return [...section.matchAll(/^\| `(spikeloop [^`]+)` \|/gm)].map((m) => m[1]!);
}

/** The chip flow's rows: from the calibrate row that writes runs/cal to the finetune row, in table order. */
function flowRows(rows: string[]): string[] {
  return rows.filter((r) => /runs\/cal\b|runs\/iris-chip\b/.test(r));
}

/** A row as argv: the command without `spikeloop`, URI set to the chip, [optional flags] left out. */
function argv(row: string): string[] {
  return row
    .replace(/\s*\[[^\]]*\]/g, '')
    .split(/\s+/)
    .slice(1)
    .map((w) => (w === 'URI' ? CHIP : w));
}

const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-readme-'));
afterAll(() => fs.rmSync(cwd, { recursive: true, force: true }));

describe('the README command table', () => {
  it('lists the chip flow in order: calibrate, train for the chip, deploy, finetune', () => {
    const rows = flowRows(commandRows());
    expect(rows.map((r) => r.split(' ')[1])).toEqual(FLOW);
    // and nothing in those rows is left for the reader to fill in but the device
    for (const r of rows) expect(argv(r).join(' ')).not.toMatch(/\b(FILE|DIR|D|N)\b/);
  });

  it('runs the flow end to end on a small mock chip; the device scores within 5 points of the twin', async () => {
    const results: Record<string, Record<string, unknown>> = {};
    for (const row of flowRows(commandRows())) {
      const args = [...argv(row), '--json'];
      const r = await spawnCli(args, { cwd, timeoutMs: 240_000 });
      expect(r.code, `${row}\n${r.err.slice(-3000)}`).toBe(0);
      results[args[0]!] = JSON.parse(r.out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    }
    expect(results.train).toMatchObject({ ok: true, sizes: [5, 8, 3], chip: { chip_id: 'behavioral-5-16x8x4' } });
    const dep = results.deploy!;
    expect(dep).toMatchObject({ ok: true, curves: 'calibrated', weights_verified: true, test_samples: 45 });
    expect(typeof dep.deployed_acc).toBe('number');
    expect(typeof dep.twin_acc).toBe('number');
    expect(Math.abs((dep.deployed_acc as number) - (dep.twin_acc as number))).toBeLessThanOrEqual(0.05 + 1e-9);
    expect(results.finetune).toMatchObject({ ok: true, epochs: 3, curves: 'calibrated' });
    expect(typeof results.finetune!.finetuned_acc).toBe('number');
    expect(fs.existsSync(path.join(cwd, 'runs', 'iris-ft', 'record.json'))).toBe(true);
  }, 400_000);
});
