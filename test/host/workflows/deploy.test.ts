import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { ChipMapping, chipNeuronLevels, classifyTicks, curvesFromProfile, deviceHorizons, fitProblems } from '../../../calibration/chip-mapping.ts';
import { loadChipProfile, saveChipProfile } from '../../../calibration/chip-profile.ts';
import { deployNetwork, evaluateOnDevice, runDeployWorkflow } from '../../../host/workflows/deploy.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { loadNetwork } from '../../../models/network/serialize.ts';
import { FINETUNE_DEVICE, useFinetuneFixture } from './finetune-fixture.ts';
import { Rng } from '../../../models/datasets/rng.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { exactNetworkForward } from '../../../models/solvers/exact.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

const N = 40;
let device: ChipDevice;
let net: SpikingNetwork;
let x: Float32Array;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  // The chip's array is larger than the network: 6 inputs and 5 outputs, the twin uses 4 and 3.
  device = await ChipDevice.open('mock:ideal?seed=3&geometry=6-8-5');
  const rng = new Rng(11);
  x = Float32Array.from({ length: N * 4 }, () => rng.next());
  net = initNetwork(
    defaultConfig([4, 8, 3], { inputWindow: 1, horizons: deviceHorizons(device.info, device.info.layers[0]!.horizonTicks / 2) }),
    { x, n: N },
    createSolver('exact'),
    { seed: 5 },
  );
});

afterAll(async () => {
  net?.dispose();
  await device?.close();
});

describe('deployNetwork', () => {
  it('uploads verified codes whose chip spike times match the twin on the realised weights', async () => {
    const d = await deployNetwork(device, net);
    expect(d.layers.map((l) => l.verified)).toEqual([true, true]);
    const ticks = new ChipMapping(net, device.info).encodeInputs(x, N);
    const chip = await device.run(ticks, N);
    // Independent path: the exact solver on the realised twin, times in ticks of 1 ns.
    const h0 = device.info.layers[0]!.horizonTicks / 2; // ticks per twin time unit
    const inputTimes = new Float64Array(N * 4);
    for (let s = 0; s < N; s++) {
      for (let j = 0; j < 4; j++) {
        const t = ticks[s * 6 + j]!;
        inputTimes[s * 4 + j] = t === SILENT_TICK ? Infinity : t / h0;
      }
    }
    const twin = exactNetworkForward(d.realised.toPnnLayers(), inputTimes, N);
    let fired = 0;
    for (let l = 0; l < 2; l++) {
      const outs = device.info.layers[l]!.outputs;
      const nOut = l === 0 ? 8 : 3;
      for (let s = 0; s < N; s++) {
        for (let i = 0; i < nOut; i++) {
          const tw = twin[l]![s * nOut + i]! * h0;
          const c = chip[l]![s * outs + i]!;
          if (c === SILENT_TICK) {
            expect(tw).toBeGreaterThan(device.info.layers[l]!.horizonTicks - 1);
          } else {
            fired++;
            expect(Math.abs(c - tw)).toBeLessThanOrEqual(1);
          }
        }
      }
    }
    expect(fired).toBeGreaterThan(N * 4);
  });

  it('scores the device like the twin scores the realised weights', async () => {
    const d = await deployNetwork(device, net);
    const y = Uint8Array.from({ length: N }, (_, k) => k % 3);
    const onDevice = await evaluateOnDevice(device, net, x, y, N, { batch: 7 });
    const twinPred = d.realised.predict(x, N, createSolver('exact'));
    let agree = 0;
    for (let s = 0; s < N; s++) if (twinPred[s] === onDevice.predictions[s]) agree++;
    // Tick quantisation may flip a near-tie; nothing more.
    expect(agree).toBeGreaterThanOrEqual(N - 2);
    expect(onDevice.noSpike).toBe(onDevice.predictions.filter((p) => p === -1).length);
    d.realised.dispose();
  });

  it('refuses a network that does not fit the chip, naming the difference', () => {
    const late = initNetwork(defaultConfig([4, 8, 3]), { x, n: N }, createSolver('exact'), { seed: 1 });
    // Twin windows 2, 3 against the chip's 2000, 4000 ticks: 1000 ticks per unit makes layer 1 end at 4.
    expect(fitProblems(late, device.info).join()).toMatch(/layer 1's window ends at 3 time units in the twin but at 4 on the chip/);
    late.dispose();
    const big = defaultConfig([7, 8, 3], { inputWindow: 0.5, horizons: deviceHorizons(device.info) });
    const tooWide = initNetwork(big, { x: new Float32Array(7 * 4).fill(0.5), n: 4 }, createSolver('exact'), { seed: 1 });
    expect(fitProblems(tooWide, device.info).join()).toMatch(/layer 0 is 7x8, the chip's array is 6x8/);
    tooWide.dispose();
  });
});

/** Inputs in the first half of layer 0's window, the layers' windows the device's. */
const chipTimes = () => ({ inputWindow: 1, horizons: deviceHorizons(device.info, device.info.layers[0]!.horizonTicks / 2) });

/** Deploys `net` and counts the samples of x on which the device and the twin on the realised weights predict alike. */
async function deviceTwinAgreement(net: SpikingNetwork): Promise<number> {
  const d = await deployNetwork(device, net);
  try {
    const y = Uint8Array.from({ length: N }, (_, k) => k % 3);
    const onDevice = await evaluateOnDevice(device, net, x, y, N);
    const twinPred = d.realised.predict(x, N, createSolver('exact'));
    let agree = 0;
    for (let s = 0; s < N; s++) if (twinPred[s] === onDevice.predictions[s]) agree++;
    return agree;
  } finally {
    d.realised.dispose();
  }
}

describe('ChipMapping.encodeInputs with a reference input', () => {
  it('puts the data features first, the reference spike at its tick in the next input, the rest silent; the device agrees with the twin', async () => {
    const cfg = defaultConfig([5, 8, 3], { ...chipTimes(), biasSpike: 0.25 });
    const biased = initNetwork(cfg, { x, n: N }, createSolver('exact'), { seed: 9 });
    try {
      expect(biased.features).toBe(4);
      const ticks = new ChipMapping(biased, device.info).encodeInputs(x, N);
      const unit = device.info.layers[0]!.horizonTicks / 2;
      for (let s = 0; s < N; s++) {
        for (let j = 0; j < 4; j++) expect(ticks[s * 6 + j]).toBe(Math.round(unit * (1 - x[s * 4 + j]!)));
        expect(ticks[s * 6 + 4]).toBe(Math.round(0.25 * unit));
        expect(ticks[s * 6 + 5]).toBe(SILENT_TICK);
      }
      expect(await deviceTwinAgreement(biased)).toBeGreaterThanOrEqual(N - 2);
    } finally {
      biased.dispose();
    }
  });
});

describe('ChipMapping.encodeInputs with a reference spike in place of a feature', () => {
  it('puts the reference tick where feature 2 was, keeps the others, and the device agrees with the twin', async () => {
    const cfg = defaultConfig([4, 8, 3], {
      ...chipTimes(),
      biasSpike: 0.25,
      biasReplaces: 2,
    });
    const net = initNetwork(cfg, { x, n: N }, createSolver('exact'), { seed: 9 });
    try {
      expect([net.features, net.referenceInput]).toEqual([4, 2]);
      const ticks = new ChipMapping(net, device.info).encodeInputs(x, N);
      const unit = device.info.layers[0]!.horizonTicks / 2;
      for (let s = 0; s < N; s++) {
        for (const j of [0, 1, 3]) expect(ticks[s * 6 + j]).toBe(Math.round(unit * (1 - x[s * 4 + j]!)));
        expect(ticks[s * 6 + 2]).toBe(Math.round(0.25 * unit));
        expect([ticks[s * 6 + 4], ticks[s * 6 + 5]]).toEqual([SILENT_TICK, SILENT_TICK]);
      }
      expect(await deviceTwinAgreement(net)).toBeGreaterThanOrEqual(N - 2);
    } finally {
      net.dispose();
    }
  });
});

describe('classifyTicks', () => {
  it('takes the earliest of the first classes and -1 when all are silent', () => {
    const t = Uint16Array.from([9, 3, 5, 1, SILENT_TICK, SILENT_TICK, SILENT_TICK, 0]);
    expect(Array.from(classifyTicks(t, 2, 4, 3))).toEqual([1, -1]);
  });
});

describe("runDeployWorkflow and the profile's firing levels", () => {
  const fx = useFinetuneFixture('deploy-levels-');
  it('warns when the network was trained without them, and scores the realised twin at them', async () => {
    const p = await loadChipProfile(fx.profile);
    p.layers.forEach((l) => {
      l.thresholdScale = Float64Array.from({ length: l.outputs }, (_, i) => 1.03 + 0.02 * i);
    });
    const profile = path.join(fx.dir, 'levels.slp');
    await saveChipProfile(profile, p);
    const warnings: string[] = [];
    const o = { device: FINETUNE_DEVICE, model: fx.model, dataset: 'iris', seed: 1, print: () => {}, warn: (l: string) => warnings.push(l) };
    const s = await runDeployWorkflow({ ...o, profile });
    expect(warnings.join('\n')).toMatch(/was trained without this chip's measured firing levels and output delays.*train it with --profile .*levels\.slp/);
    // The realised twin's accuracy is the one at the profile's levels.
    const { net: model } = await loadNetwork(fx.model);
    const chip = await ChipDevice.open(FINETUNE_DEVICE);
    const info = chip.info;
    await chip.close();
    const m = new ChipMapping(model, info, curvesFromProfile(p, info));
    const realised = m.realisedNetwork(m.map()).withNeuronLevels(chipNeuronLevels(p, model.config));
    const data = await loadDataset('iris', { seed: 1 });
    const pred = realised.predict(data.test.x, data.test.n, createSolver('exact'));
    expect(s.realised_twin_acc).toBe(pred.filter((c, i) => c === data.test.y[i]).length / data.test.n);
    realised.dispose();
    model.dispose();
    // At the nominal profile (levels 1, delays 0) the network already fires where the chip does: no warning.
    warnings.length = 0;
    await runDeployWorkflow({ ...o, profile: fx.profile });
    expect(warnings.join('\n')).not.toMatch(/firing levels/);
  }, 60_000);
});
