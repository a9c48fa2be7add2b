import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerCurves } from '../../calibration/weight-mapping.ts';
import { ChipDevice } from '../../host/device/chip-device.ts';
import { ChipMapping, deviceHorizons, nominalCurves } from '../../calibration/chip-mapping.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../models/network/network.ts';
import { createSolver } from '../../models/network/solver.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { mulberry } from '../models/rng.ts';

let device: ChipDevice;
let net: SpikingNetwork;
let curves: LayerCurves[];

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  device = await ChipDevice.open('mock:ideal?seed=1&geometry=12-20-5');
  const info = device.info;
  const rnd = mulberry(8);
  // Per-transistor mismatch, as a calibrated profile carries it.
  curves = info.layers.map((l) => {
    const n = l.rowInput.length * l.outputs;
    return {
      ...nominalCurves(),
      dVth: Float64Array.from({ length: n }, () => 0.03 * (rnd() - 0.5)),
      gain: Float64Array.from({ length: n }, () => 0.7 + 0.6 * rnd()),
    };
  });
  const x = Float32Array.from({ length: 40 * 10 }, () => rnd());
  net = initNetwork(
    defaultConfig([10, 16, 4], { inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2) }),
    { x, n: 40 },
    createSolver('exact'),
    { seed: 3 },
  );
  // Spread the weights over decades, with exact zeros and some far beyond the safe range.
  for (const v of net.trainableVariables()) {
    const w = Float32Array.from({ length: v.size }, () => {
      const u = rnd();
      return u < 0.15 ? 0 : u > 0.95 ? 1e3 : 10 ** (4 * rnd() - 3);
    });
    v.assign(tf.tensor(w, v.shape));
  }
});
afterAll(async () => {
  net.dispose();
  await device.close();
});

function mapped(): Uint16Array[] {
  return new ChipMapping(net, device.info, curves).map().layers.map((m) => m.codes);
}

describe('ChipMapping.codes', () => {
  it('gives the codes of mapLayer, and after small updates recomputes only the synapses that crossed a code', () => {
    const mapping = new ChipMapping(net, device.info, curves);
    const total = device.info.layers.reduce((s, l) => s + l.rowInput.length * l.outputs, 0);
    expect(mapping.codes().codes).toEqual(mapped());
    const rnd = mulberry(9);
    for (let step = 0; step < 5; step++) {
      for (const v of net.trainableVariables()) {
        const w = Float32Array.from(v.dataSync(), (p) => Math.max(0, p * (1 + 0.01 * (rnd() - 0.5))));
        v.assign(tf.tensor(w, v.shape));
      }
      const got = mapping.codes();
      expect(got.codes).toEqual(mapped());
      expect(got.recomputed).toBeLessThan(total / 4);
    }
  });
});

describe('ChipMapping.measuredTimes', () => {
  it("reads a captured tick at its centre in twin units, minus the timer offset, never below 0; the chip's extra outputs dropped", () => {
    const mapping = new ChipMapping(net, device.info, curves);
    const unit = device.info.layers[0]!.horizonTicks / net.config.horizons[0]!;
    expect(mapping.unitTicks).toBe(unit);
    // Layer 1: the chip has 5 outputs, the network 4; two samples.
    const ticks = Uint16Array.of(0, 9, 0xffff, 40, 7, 3, 0xffff, 0xffff, 1, 2);
    const offset = 2 / unit;
    const got = Array.from(mapping.measuredTimes(1, ticks, 2, offset));
    const want = [0, 9, Infinity, 40, 3, Infinity, Infinity, 1].map((t) => (t === Infinity ? t : Math.max(0, Math.fround((t + 0.5) / unit - offset))));
    expect(got).toEqual(want);
    expect(Array.from(mapping.classify(ticks, 2))).toEqual([0, 3]);
  });
});
