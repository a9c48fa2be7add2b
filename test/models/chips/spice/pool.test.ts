/**
 * The worker pool: results return to their own callers whichever worker ran them, a run that
 * overstays its limit fails as a SpiceError (its worker is replaced), and failures carry the netlist.
 */
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { getVector } from '../../../../models/chips/spice/engine.ts';
import { SpiceError } from '../../../../models/chips/spice/errors.ts';
import { SpicePool } from '../../../../models/chips/spice/pool.ts';

const LONG = 120_000;
const pools: SpicePool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

/** RC low-pass with time constant R x 1 pF, stepped at t = 0; v(out) at 1 ns is 1 - exp(-1 ns / tau). */
const rc = (r: number, points = 200) =>
  `rc ${r}\nV1 in 0 PWL(0 0 1e-13 1)\nR1 in out ${r}\nC1 out 0 1p\n.option method=gear\n.tran ${1e-9 / points} 1e-9 0 ${1e-9 / points}\n.end\n`;

describe('SPICE worker pool', () => {
  it(
    'runs netlists on worker threads and returns each result to its caller',
    async () => {
      const pool = new SpicePool({ engine: 'wasm', workers: 2 });
      pools.push(pool);
      const rs = [500, 1000, 2000, 4000];
      const done: number[] = [];
      const res = await pool.runAll(
        rs.map((r) => rc(r)),
        (k) => done.push(k),
      );
      expect(done.sort()).toEqual([0, 1, 2, 3]);
      res.forEach((r, k) => {
        const v = getVector(r, 'v(out)');
        expect(v[v.length - 1]).toBeCloseTo(1 - Math.exp(-1e-9 / (rs[k] * 1e-12)), 3);
      });
      const err = await pool.run('bad\nQ1 a b c nomodel\n.tran 1n 10n\n.end\n').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SpiceError);
      expect((err as SpiceError).netlist).toContain('nomodel');
    },
    LONG,
  );

  it(
    'fails a run that overstays its limit and carries on with a fresh worker',
    async () => {
      const pool = new SpicePool({ engine: 'wasm', workers: 1, timeoutMs: 1500 });
      pools.push(pool);
      // Warm the worker first so the limit measures the run, not the engine start.
      await pool.run(rc(1000));
      const slow = rc(1000, 3_000_000);
      const err = await pool.run(slow).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SpiceError);
      expect((err as SpiceError).message).toMatch(/did not finish within 1500 ms/);
      expect((err as SpiceError).netlist).toBe(slow);
      const ok = await pool.run(rc(1000));
      expect(getVector(ok, 'v(out)').length).toBeGreaterThan(100);
    },
    LONG,
  );

  it('caps workers at the available parallelism and rejects nonsense', () => {
    expect(new SpicePool({ engine: 'wasm', workers: 10_000 }).size).toBe(availableParallelism());
    expect(new SpicePool({ engine: 'wasm' }).size).toBe(availableParallelism());
    expect(() => new SpicePool({ engine: 'wasm', workers: -1 })).toThrow(/non-negative integer/);
    expect(new SpicePool({ engine: 'wasm', workers: 0 }).size).toBe(0);
  });
});
