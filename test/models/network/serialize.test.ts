import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArrays } from '../../../models/io/tensor-file.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

const dir = mkdtempSync(join(tmpdir(), 'spikeloop-net-'));
beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function data(seed: number, n: number, f: number): Float32Array {
  const rnd = mulberry(seed);
  return Float32Array.from({ length: n * f }, () => rnd());
}

describe('saveNetwork / loadNetwork', () => {
  it('round-trips a network: same parameters, same config, identical predictions and times', async () => {
    const solver = createSolver('dstd', { bins: 8 });
    const x = data(1, 40, 6);
    const net = initNetwork(defaultConfig([6, 5, 3], { model: 'pnn' }), { x, n: 40 }, solver, { seed: 4 });
    const file = join(dir, 'net.bin');
    await saveNetwork(file, net, { run: 'unit-test' });
    const { net: back, info } = await loadNetwork(file);
    expect(info).toEqual({ run: 'unit-test' });
    expect(back.config).toEqual(net.config);
    net.states().forEach((s, l) => {
      const b = back.states()[l]!;
      expect(b.scale).toBe(s.scale);
      expect(b.timeOffset).toBe(s.timeOffset);
      expect(Buffer.from(b.pE.buffer).equals(Buffer.from(s.pE.buffer))).toBe(true);
      expect(Buffer.from(b.pI.buffer).equals(Buffer.from(s.pI.buffer))).toBe(true);
    });
    expect(Array.from(back.predict(x, 40, solver))).toEqual(Array.from(net.predict(x, 40, solver)));
    expect(Array.from(back.outputs(x, 40, solver).times)).toEqual(Array.from(net.outputs(x, 40, solver).times));
    // The conductances stored for other tools are gE = pE * scale / ePlus.
    const raw = await loadArrays(file);
    const s0 = net.states()[0]!;
    expect(raw.arrays['l0.gE']![3]).toBeCloseTo((s0.pE[3]! * s0.scale) / s0.ePlus, 6);
    net.dispose();
    back.dispose();
  });

  it('keeps a reference spike that replaces a feature: same inputs, same predictions', async () => {
    const solver = createSolver('exact');
    const x = data(3, 20, 4);
    const net = initNetwork(defaultConfig([4, 5, 3], { biasSpike: 0, biasReplaces: 0 }), { x, n: 20 }, solver, { seed: 2 });
    const file = join(dir, 'replaces.bin');
    await saveNetwork(file, net);
    const { net: back } = await loadNetwork(file);
    expect([back.config.biasReplaces, back.features, back.referenceInput]).toEqual([0, 4, 0]);
    expect(Array.from(back.outputs(x, 20, solver).times)).toEqual(Array.from(net.outputs(x, 20, solver).times));
    net.dispose();
    back.dispose();
  });

  it('refuses a damaged file and a file of another kind, naming the problem', async () => {
    const solver = createSolver('exact');
    const net = initNetwork(defaultConfig([3, 2], {}), { x: data(2, 8, 3), n: 8 }, solver, { seed: 1 });
    const file = join(dir, 'damaged.bin');
    await saveNetwork(file, net);
    net.dispose();
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0xff;
    writeFileSync(file, bytes);
    await expect(loadNetwork(file)).rejects.toThrow(/CRC/);
    const { saveArrays } = await import('../../../models/io/tensor-file.ts');
    const other = join(dir, 'other.bin');
    await saveArrays(other, { name: 'calibration-table' }, { a: new Float32Array(2) });
    await expect(loadNetwork(other)).rejects.toThrow(/not a spikeloop network file.*name/);
  });
});
