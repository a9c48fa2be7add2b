import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LayerCurves } from '../../calibration/weight-mapping.ts';
import { ChipDevice } from '../../host/device/chip-device.ts';
import {
  carriesNeuronLevels,
  ChipMapping,
  chipNeuronLevels,
  missingNeuronLevels,
  chipTimeBase,
  curvesFromProfile,
  deviceHorizons,
  nominalCurves,
  unitTicksOf,
} from '../../calibration/chip-mapping.ts';
import { truthChipProfile } from '../../calibration/truth-score.ts';
import { deployNetwork } from '../../host/workflows/deploy.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';
import { nominalChipProfile } from '../../calibration/chip-profile.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig, SpikingNetwork } from '../../models/network/network.ts';
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

describe('chipNeuronLevels', () => {
  const profileOf = () => {
    const info = device.info;
    const p = nominalChipProfile({
      chipId: info.chipId,
      secondsPerTick: info.tickSeconds,
      layers: info.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, rows: l.rowInput.length, horizonTicks: l.horizonTicks })),
    });
    p.layers.forEach((l, k) => {
      l.thresholdScale = Float64Array.from({ length: l.outputs }, (_, i) => 1 + 0.01 * i + 0.1 * k);
      l.delay = Float64Array.from({ length: l.outputs }, (_, i) => 1e-3 * (i + 1));
    });
    return p;
  };

  it("gives twin neuron i chip neuron i's firing level and delay, the delay in the twin's time unit", () => {
    const p = profileOf();
    // The fixture's twin unit is half the chip's first window; the profile's delays are in whole windows.
    expect(unitTicksOf(net, device.info)).toBe(device.info.layers[0]!.horizonTicks / 2);
    const levels = chipNeuronLevels(p, net.config);
    expect(levels.map((l) => l!.thresholdScale.length)).toEqual([16, 4]);
    levels.forEach((l, k) => {
      for (let i = 0; i < l!.thresholdScale.length; i++) {
        expect(l!.thresholdScale[i]).toBeCloseTo(1 + 0.01 * i + 0.1 * k, 6);
        expect(l!.delay[i]).toBeCloseTo(2e-3 * (i + 1), 8);
      }
    });
    // The deployment reads the same neurons: the twin carrying them matches, the plain one does not.
    expect(carriesNeuronLevels(net, levels)).toBe(false);
    const fitted = net.withNeuronLevels(levels);
    expect(carriesNeuronLevels(fitted, levels)).toBe(true);
    // A nominal profile's levels (1) and delays (0) are what a network without any carries.
    const nominal = nominalChipProfile({ chipId: p.chipId, secondsPerTick: p.secondsPerTick, layers: p.layers });
    expect(carriesNeuronLevels(net, chipNeuronLevels(nominal, net.config))).toBe(true);
    // What deployment and fine-tuning put in: the levels a PNN lacks, nothing once it has them, nothing for the ideal model.
    expect(missingNeuronLevels(net, p)).toEqual(levels);
    expect(missingNeuronLevels(fitted, p)).toBeUndefined();
    const ideal = SpikingNetwork.fromStates({ ...net.config, model: 'ideal' }, net.layerStates());
    expect(missingNeuronLevels(ideal, p)).toBeUndefined();
    ideal.dispose();
    fitted.dispose();
  });

  it('refuses a network deeper or wider than the profiled chip, naming the layer', () => {
    const p = profileOf();
    const wide = { ...net.config, sizes: [10, 24, 4] };
    expect(() => chipNeuronLevels(p, wide)).toThrow(/layer 0 of the network has 24 neurons, the profile's chip 20/);
    const deep = { ...net.config, sizes: [10, 16, 4, 3], horizons: [...net.config.horizons, 8] };
    expect(() => chipNeuronLevels(p, deep)).toThrow(/describes 2 layers, the network has 3/);
  });
});

describe('a twin at the chip’s firing levels', () => {
  it('predicts a model-form die’s spikes, layer by layer on the die’s own inputs, several times closer than one at the nominal level', async () => {
    // A model-form die and the profile a perfect calibration would write: what is left between
    // twin and die is the levels (when the twin lacks them), the leak, the kicks and the tick.
    const sizes = [8, 16, 4];
    const chip = new BehavioralChip({ seed: 7, sizes, physics: 'ekv' });
    const p = truthChipProfile(chip);
    await chip.close();
    const die = await ChipDevice.open('mock:behavioral?seed=7&geometry=8-16-4&physics=ekv');
    try {
      const info = die.info;
      const config = defaultConfig(sizes, { ePlus: p.global.ePlus, eMinus: p.global.eMinus, ...chipTimeBase(info) });
      const rnd = mulberry(11);
      const n = 200;
      const x = Float32Array.from({ length: n * sizes[0]! }, () => rnd());
      const twin = initNetwork(config, { x, n }, createSolver('exact'), { seed: 3 });
      const d = await deployNetwork(die, twin, { curves: curvesFromProfile(p, info) });
      const levels = chipNeuronLevels(p, config);
      const atLevels = d.realised.withNeuronLevels(levels);
      const mapping = new ChipMapping(twin, info);
      const ticks = await die.run(mapping.encodeInputs(x, n), n);
      const exact = createSolver('exact');
      // Spike-time RMSE (ticks) of each layer, fed the die's own spikes of the layer below.
      const rmse = (net: SpikingNetwork) =>
        sizes.slice(1).map((nOut, l) =>
          tf.tidy(() => {
            const input = l === 0 ? net.encode(x, n) : tf.tensor2d(mapping.measuredTimes(l - 1, ticks[l - 1]!, n), [n, sizes[l]!]);
            const s = net.layers[l]!.forward(input, exact, { inputGrad: false, fixedGrid: true });
            const [t, m] = [s.times.dataSync(), s.mask.dataSync()];
            const measured = mapping.measuredTimes(l, ticks[l]!, n);
            let se = 0;
            let k = 0;
            for (let i = 0; i < n * nOut; i++) {
              if (m[i]! > 0 && Number.isFinite(measured[i]!)) {
                se += ((t[i]! - measured[i]!) * mapping.unitTicks) ** 2;
                k++;
              }
            }
            expect(k).toBeGreaterThan(0.5 * n * nOut);
            return Math.sqrt(se / k);
          }),
        );
      const [plain, fitted] = [rmse(d.realised), rmse(atLevels)];
      fitted.forEach((e, l) => expect(e).toBeLessThan(0.3 * plain[l]!));
      expect(carriesNeuronLevels(atLevels, levels)).toBe(true);
      for (const m of [twin, d.realised, atLevels]) m.dispose();
    } finally {
      await die.close();
    }
  }, 60_000);
});
