import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArrays, saveArrays } from '../../../models/io/tensor-file.ts';
import { archPreset, architectureSchema, compileArchitecture, type ArchitectureInput } from '../../../models/network/arch.ts';
import { ConvSpikeLayer } from '../../../models/network/conv-layer.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { archConfig, checkConfig, defaultConfig, windowStart } from '../../../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { resolveLoss, trainStep } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';
import { bars } from './bar-images.ts';

const dir = mkdtempSync(join(tmpdir(), 'spikeloop-conv-'));
beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY_INPUT: ArchitectureInput = {
  input: { height: 8, width: 8, channels: 1 },
  layers: [
    { type: 'conv', channels: 4, kernel: 3 },
    { type: 'pool', size: 2 },
    { type: 'dense', units: 6 },
    { type: 'dense', units: 3 },
  ],
};
const TINY = architectureSchema.parse(TINY_INPUT);

describe('architecture descriptions', () => {
  it('compiles the presets to the widths their comments state', () => {
    expect(compileArchitecture(archPreset('mnist-conv')).sizes).toEqual([784, 3136, 1568, 128, 10]);
    expect(compileArchitecture(archPreset('cifar-vgg5')).sizes).toEqual([3072, 16384, 8192, 4096, 256, 10]);
    expect(compileArchitecture(archPreset('mnist-conv-s2')).sizes).toEqual([784, 1568, 784, 64, 10]);
    const c = compileArchitecture(TINY);
    expect(c.sizes).toEqual([64, 64, 6, 3]);
    expect(c.layers[0]).toMatchObject({ kind: 'conv', pool: 2, nIn: 64, nOut: 64, geometry: { inH: 8, channels: 4, stride: 1, padding: 'same' } });
  });

  it('rejects descriptions that cannot be built, naming the entry and the fix', () => {
    const input = { height: 8, width: 8, channels: 1 };
    expect(() =>
      compileArchitecture({
        input,
        layers: [
          { type: 'pool', size: 2 },
          { type: 'dense', units: 3 },
        ],
      }),
    ).toThrow(/layers\.0 \(pool\).*right after a conv/);
    expect(() =>
      compileArchitecture({
        input,
        layers: [
          { type: 'dense', units: 3 },
          { type: 'conv', channels: 2, kernel: 3 },
        ],
      }),
    ).toThrow(/layers\.1 \(conv\).*cannot follow a dense/);
    expect(() => compileArchitecture({ input, layers: [{ type: 'conv', channels: 2, kernel: 9, padding: 'valid' }] })).toThrow(
      /layers\.0 \(conv\).*kernel height 9/,
    );
    expect(() => compileArchitecture({ input, layers: [{ type: 'conv', channels: 0, kernel: 3 }] })).toThrow(/layers\.0\.channels/);
    expect(() => archPreset('vgg16')).toThrow(/unknown architecture preset 'vgg16'; use one of mnist-conv, mnist-conv-s2, mnist-conv-valid, cifar-vgg5/);
  });

  it('a network config with an architecture must carry its widths; an appended reference input is refused', () => {
    const arch = archPreset('mnist-conv');
    expect(() => checkConfig({ ...defaultConfig([784, 100, 10]), arch })).toThrow(/sizes .*compiles to widths 784-3136-1568-128-10/);
    expect(() => archConfig(arch, { biasSpike: 0 })).toThrow(/biasReplaces/);
    expect(archConfig(arch, { biasSpike: 0, biasReplaces: 0 }).sizes[0]).toBe(784);
  });
});

describe('a convolutional spiking network', () => {
  it('initialises with every layer spiking inside its window, trains (DSTD) and round-trips through the network file', async () => {
    const solver = createSolver('dstd', { bins: 16 });
    const { x, y } = bars(1, 48);
    const config = archConfig(TINY, { model: 'pnn' });
    const net = initNetwork(config, { x, n: 48 }, solver, { seed: 3 });
    expect(net.layers.map((l) => l.kind)).toEqual(['conv', 'dense', 'dense']);
    // Initialisation put each layer's median spike inside its window.
    tf.tidy(() => {
      const f = net.forward(net.encode(x, 48), solver);
      f.spikes.forEach((s, l) => {
        const t = Float32Array.from(s.times.dataSync()).sort();
        const med = t[Math.floor(t.length / 2)]!;
        expect(med).toBeGreaterThan(windowStart(config, l));
        expect(med).toBeLessThan(config.horizons[l]!);
      });
    });
    // Gradients reach the shared kernels, and a few steps on one batch lower its loss.
    const cfg = resolveLoss({ tauSoft: 0.2 });
    const opt = tf.train.adam(0.01);
    const before = Float32Array.from(net.layers[0]!.trainableVariables()[0]!.dataSync());
    const losses: number[] = [];
    for (let k = 0; k < 8; k++) losses.push(trainStep(net, opt, x, y, solver, cfg).loss);
    const after = net.layers[0]!.trainableVariables()[0]!.dataSync();
    expect(after.some((v, k) => v !== before[k])).toBe(true);
    expect(losses[losses.length - 1]!).toBeLessThan(losses[0]!);
    opt.dispose();

    const file = join(dir, 'conv.bin');
    await saveNetwork(file, net, { run: 'conv-test' });
    const raw = await loadArrays(file);
    expect((raw.meta as { version: number }).version).toBe(2);
    expect(raw.arrays['l0.pE']).toBeInstanceOf(Float32Array);
    const { net: back } = await loadNetwork(file);
    expect(back.config).toEqual(net.config);
    expect(back.layers[0]).toBeInstanceOf(ConvSpikeLayer);
    expect(Array.from(back.predict(x, 48, solver))).toEqual(Array.from(net.predict(x, 48, solver)));
    const a = net.outputs(x, 48, solver).times;
    const b = back.outputs(x, 48, solver).times;
    expect(Array.from(b)).toEqual(Array.from(a));

    // A file whose architecture disagrees with its layers is refused, naming the mismatch.
    const meta = raw.meta as unknown as { config: { arch: { layers: { kernel?: number }[] } } };
    meta.config.arch.layers[0]!.kernel = 5;
    const bad = join(dir, 'bad.bin');
    const arrays = Object.fromEntries(Object.entries(raw.arrays).map(([k, v]) => [k, { data: v, shape: raw.shapes[k]! }]));
    await saveArrays(bad, raw.meta, arrays);
    await expect(loadNetwork(bad)).rejects.toThrow(/layer 0's geometry .*differs from the architecture's/);
    net.dispose();
    back.dispose();
  });

  it('dense-only networks are still written as version 1', async () => {
    const solver = createSolver('dstd', { bins: 8 });
    const rnd = mulberry(2);
    const x = Float32Array.from({ length: 20 * 6 }, () => rnd());
    const net = initNetwork(defaultConfig([6, 4, 3]), { x, n: 20 }, solver, { seed: 1 });
    const file = join(dir, 'dense.bin');
    await saveNetwork(file, net);
    expect(((await loadArrays(file)).meta as { version: number }).version).toBe(1);
    net.dispose();
  });

  it('the exact and Euler solvers run a conv network and agree with DSTD on most predictions', () => {
    const dstd = createSolver('dstd', { bins: 32 });
    const { x } = bars(5, 24);
    const net = initNetwork(archConfig(TINY), { x, n: 24 }, dstd, { seed: 9 });
    const p = net.predict(x, 24, dstd);
    for (const s of [createSolver('exact'), createSolver('euler', { eulerSteps: 256 })]) {
      const q = net.predict(x, 24, s);
      const same = p.filter((v, k) => v === q[k]).length;
      expect(same).toBeGreaterThanOrEqual(20);
    }
    net.dispose();
  });
});
