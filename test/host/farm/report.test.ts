/** `farm report` from a chip database: yield, findings per die, distributions, current profiles, failures. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChipDb } from '../../../host/farm/db.ts';
import { resultRow } from './result-row.ts';
import { writeFarmReport } from '../../../host/farm/report.ts';

const base = resultRow;

describe('writeFarmReport', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reports yield over the dies that went through bring-up, their findings, and each chip's current profile", async () => {
    dir = mkdtempSync(join(tmpdir(), 'spikeloop-report-'));
    const db = new ChipDb(join(dir, 'chips.db'));
    db.recordResult(base({ job_id: 'b1', chip_id: 'c1', ok: 1, summary: JSON.stringify({ ok: true, dead_neurons: [], bad_synapses: [] }) }));
    db.recordResult(
      base({
        job_id: 'b2',
        chip_id: 'c2',
        ok: 0,
        summary: JSON.stringify({
          ok: false,
          dead_neurons: ['dead-neuron:0.5'],
          bad_synapses: ['weak-synapse:1.2.3.pmos'],
          failed_checks: ['every neuron fires: 1 dead'],
        }),
      }),
    );
    db.recordResult(base({ job_id: 'b3', chip_id: 'c3', ok: 1 }));
    for (const [i, c] of ['c1', 'c3'].entries())
      db.recordResult(
        base({
          job_id: `cal${i}`,
          chip_id: c,
          kind: 'calibrate',
          mode: 'full',
          e_plus: 9 + i,
          e_minus: -6 - i,
          rmse_pnn_ticks: 0.5,
          rmse_ideal_ticks: 6,
          profile: join(dir, `p${i}.slp`),
        }),
      );
    db.recordResult(
      base({ job_id: 'd1', chip_id: 'c3', kind: 'deploy', status: 'failed', ok: 0, error: 'board pty:/dev/pts/9 of chip c3 does not answer: gone' }),
    );
    const out = join(dir, 'report.html');
    const r = await writeFarmReport(db, out);
    expect(r).toEqual({ chips: 3, jobs: 6, yield: 2 / 3, calibrated: 2 });
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('2/3');
    expect(html).toContain('dead-neuron:0.5');
    expect(html).toContain('weak-synapse:1.2.3.pmos');
    expect(html).toContain('p1.slp');
    expect(html).toContain('does not answer: gone');
    expect(html.match(/<svg/g)?.length).toBe(3);
    db.close();
  });
});
