import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli as runCli } from './run-cli.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function outDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'spikeloop-bringup-'));
  dirs.push(d);
  return join(d, 'run');
}

async function cli(...argv: string[]) {
  const r = await runCli(...argv);
  return { ...r, json: JSON.parse(r.last || '{}') as Record<string, unknown> };
}

describe('spikeloop bringup', () => {
  it('a healthy chip: exit 0, the --json line has the required fields, the run folder has record, JSON and report', async () => {
    const out = outDir();
    const r = await cli('bringup', '--device', 'mock:behavioral?seed=3&geometry=16-8-4', '--out', out, '--jitter-runs', '8', '--json');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, command: 'bringup', dead_neurons: [], bad_synapses: [] });
    expect(typeof r.json.jitter_ticks).toBe('number');
    // Everything for people went to stderr: stdout is exactly one JSON line.
    expect(r.out.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/PASS +every neuron fires/);
    for (const f of ['record.json', 'bringup.json', 'report.html']) expect(existsSync(join(out, f))).toBe(true);
    const record = JSON.parse(readFileSync(join(out, 'record.json'), 'utf8'));
    expect(record).toMatchObject({ command: 'bringup', status: 'finished', summary: { ok: true } });
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/class="spikeloop-plot heat-map"/);
    expect(html).toMatch(/single-synapse spike times/);
    expect(html).toMatch(/timer jitter/);
  });

  it('a faulty chip: exit 1, a one-line summary, and the findings in the --json line', async () => {
    const faults = 'dead-neuron:0.2;weak-synapse:1.3.1.nmos';
    const r = await cli('bringup', '--device', `mock:behavioral?seed=4&geometry=16-8-4&faults=${faults}`, '--out', outDir(), '--jitter-runs', '8', '--json');
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({
      ok: false,
      command: 'bringup',
      kind: 'failed',
      dead_neurons: ['dead-neuron:0.2'],
      bad_synapses: ['weak-synapse:1.3.1.nmos'],
    });
    expect(typeof r.json.jitter_ticks).toBe('number');
    expect(r.err).toMatch(/spikeloop bringup: bring-up failed: every neuron fires: 1 of 12 neurons faulty: dead 0\.2/);
  });

  it('a bad fault list in the device URI is a usage error naming the token, before anything opens', async () => {
    const r = await cli('bringup', '--device', 'mock:behavioral?faults=broken-neuron:0.1', '--out', outDir(), '--json');
    expect(r.code).toBe(2);
    expect(r.json.ok).toBe(false);
    expect(r.err).toMatch(/unknown fault kind 'broken-neuron'/);
  });

  it('refuses a bad flag value with exit 2', async () => {
    const r = await cli('bringup', '--jitter-runs', '1', '--json');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/invalid --jitter-runs '1': must be >= 2/);
  });
});
