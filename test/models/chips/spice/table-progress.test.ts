/**
 * Characterisation reports each job as it ends, and whether the cache served it: a build that
 * simulates (minutes on first use) can show a bar, one served from the cache need not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_DESIGN } from '../../../../models/chips/spice/design.ts';
import { createEngine, type SpiceEngine } from '../../../../models/chips/spice/engine.ts';
import { characteriseTripPoints, type TableSetup } from '../../../../models/chips/spice/tables.ts';

const dir = mkdtempSync(join(tmpdir(), 'spikeloop-table-progress-'));
let engine: SpiceEngine | undefined;
afterAll(async () => {
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('characterisation progress', () => {
  it('reports a simulated job as not cached, the same job again as cached, and keeps the shared counts', async () => {
    engine = await createEngine('wasm');
    const jobs: [string, boolean][] = [];
    const stats = { hits: 0, misses: 0 };
    let runs = 0;
    const setup: TableSetup = {
      run: (n) => {
        runs++;
        return engine!.run(n);
      },
      engineVersion: 'test-engine',
      cacheDir: dir,
      design: DEFAULT_DESIGN,
      supply: 1.8,
      vRest: 0,
      dac: { bits: 8, vMin: 0.3, vMax: 0.7 },
      stats,
      onJob: (name, cached) => jobs.push([name, cached]),
    };
    const dvth = Float64Array.from([0, 0, 0.02, 0, 0, 0.02]);
    const first = await characteriseTripPoints(setup, dvth);
    const second = await characteriseTripPoints(setup, dvth);
    expect(Array.from(second)).toEqual(Array.from(first));
    expect(runs).toBe(1);
    expect(jobs.map(([, cached]) => cached)).toEqual([false, true]);
    expect(jobs[0][0]).toBe(jobs[1][0]);
    expect(jobs[0][0].length).toBeGreaterThan(0);
    expect(stats).toEqual({ hits: 1, misses: 1 });
  }, 120_000);
});
