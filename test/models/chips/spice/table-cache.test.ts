import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CharacterisationJob } from '../../../../models/chips/spice/characterise.ts';
import type { SpiceVectors } from '../../../../models/chips/spice/engine.ts';
import { cachedJob, jobKey } from '../../../../models/chips/spice/table-cache.ts';

const dir = mkdtempSync(join(tmpdir(), 'spikeloop-spice-cache-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function job(netlist: string): CharacterisationJob<Float64Array> {
  return {
    name: 'demo',
    netlist,
    parse: (r) => Float64Array.from(r.data[0]),
    toArrays: (v) => ({ v }),
    fromArrays: (a) => a.v,
  };
}

function counter() {
  const calls: string[] = [];
  const run = async (n: string): Promise<SpiceVectors> => {
    calls.push(n);
    return { names: ['x'], data: [Float64Array.from([1, 2, calls.length])] };
  };
  return { calls, run };
}

describe('characterisation cache', () => {
  it('runs once, then serves the stored arrays for the same engine and netlist', async () => {
    const { calls, run } = counter();
    const stats = { hits: 0, misses: 0 };
    const a = await cachedJob(job('netlist A'), run, 'engine-1', dir, stats);
    const b = await cachedJob(job('netlist A'), run, 'engine-1', dir, stats);
    expect(calls).toEqual(['netlist A']);
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(stats).toEqual({ hits: 1, misses: 1 });
    // No temporary files left behind by the atomic writes.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('keys on the netlist text and the engine identity', async () => {
    const { calls, run } = counter();
    await cachedJob(job('netlist B'), run, 'engine-1', dir);
    await cachedJob(job('netlist B '), run, 'engine-1', dir);
    await cachedJob(job('netlist B'), run, 'engine-2', dir);
    expect(calls.length).toBe(3);
    expect(jobKey('e', 'n')).not.toBe(jobKey('e', 'n2'));
    expect(jobKey('e', 'n')).toBe(jobKey('e', 'n'));
  });

  it('recomputes and replaces a damaged cache file', async () => {
    const { calls, run } = counter();
    await cachedJob(job('netlist C'), run, 'engine-1', dir);
    const file = readdirSync(dir).find((f) => f.includes(jobKey('engine-1', 'netlist C')))!;
    writeFileSync(join(dir, file), 'not a tensor file');
    const v = await cachedJob(job('netlist C'), run, 'engine-1', dir);
    expect(calls.length).toBe(2);
    expect(Array.from(v)).toEqual([1, 2, 2]);
    await cachedJob(job('netlist C'), run, 'engine-1', dir);
    expect(calls.length).toBe(2);
  });

  it('runs every time without a cache folder', async () => {
    const { calls, run } = counter();
    await cachedJob(job('netlist D'), run, 'engine-1', undefined);
    await cachedJob(job('netlist D'), run, 'engine-1', undefined);
    expect(calls.length).toBe(2);
  });
});
