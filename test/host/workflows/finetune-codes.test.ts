import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerCurves } from '../../../calibration/weight-mapping.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { deviceHorizons, mapNetwork, nominalCurves, unitTicksOf } from '../../../host/workflows/deploy.ts';
import { CodeMapper } from '../../../host/workflows/finetune-codes.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../../models/rng.ts';

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
  return mapNetwork(net, device.info, curves).layers.map((m) => m.codes);
}

describe('CodeMapper', () => {
  it('gives the codes of mapLayer, and after small updates recomputes only the synapses that crossed a code', () => {
    const t0 = unitTicksOf(net, device.info) * device.info.tickSeconds;
    const mapper = new CodeMapper(device.info, curves, t0);
    const total = device.info.layers.reduce((s, l) => s + l.rowInput.length * l.outputs, 0);
    expect(mapper.codes(net)).toEqual(mapped());
    const rnd = mulberry(9);
    for (let step = 0; step < 5; step++) {
      for (const v of net.trainableVariables()) {
        const w = Float32Array.from(v.dataSync(), (p) => Math.max(0, p * (1 + 0.01 * (rnd() - 0.5))));
        v.assign(tf.tensor(w, v.shape));
      }
      const got = mapper.codes(net);
      expect(got).toEqual(mapped());
      expect(mapper.recomputed).toBeLessThan(total / 4);
    }
  });
});
