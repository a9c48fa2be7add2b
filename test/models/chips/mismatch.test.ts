import { describe, expect, it } from 'vitest';
import { BehavioralChip } from '../../../models/chips/behavioral-chip.ts';
import { NMOS } from '../../../models/chips/chip-backend.ts';

// The documented magnitudes, written out here from the README table (not imported from the code):
// synapse W/L = 1/0.25 um; sky130 nfet_01v8 vth0_slope 3.356 mV um and voff_slope 7 mV um, pfet_01v8
// vth0_slope 5.856 mV um; A_beta 1 % um; MIM 2 fF/um^2 with A_C 1 % um; sensing inverter nfet 1/0.5,
// pfet 2/0.5 (trip point takes half of each vth0 shift).
const SIGMA_VTH_N = Math.sqrt(3.356 ** 2 + 7 ** 2) / Math.sqrt(0.25) / 1000;
const SIGMA_VTH_P = 5.856 / Math.sqrt(0.25) / 1000;
// The default (sky130) die takes its synapse threshold spread from the PDK Monte Carlo in
// models/chips/spice/data/sky130-devices.json: the median of mismatch.*.sdVgEquivalent over the
// operating gate windows (NMOS 0.30-0.70 V, PMOS 1.00-1.45 V), read off the file by hand.
const SIGMA_VTH_N_PDK = 0.0154802;
const SIGMA_VTH_P_PDK = 0.0162775;
const SIGMA_BETA = 0.01 / Math.sqrt(0.25);
const SIGMA_CAP = 0.01 / Math.sqrt(103.3 / 2);
const SIGMA_TRIP = (0.5 * Math.hypot(3.356 / Math.sqrt(0.5), 5.856 / Math.sqrt(1))) / 1000;

function stats(xs: ArrayLike<number>): { n: number; mean: number; std: number } {
  const n = xs.length;
  let s = 0;
  for (let k = 0; k < n; k++) s += xs[k];
  const mean = s / n;
  let v = 0;
  for (let k = 0; k < n; k++) v += (xs[k] - mean) ** 2;
  return { n, mean, std: Math.sqrt(v / (n - 1)) };
}

/** Sample mean within 4 standard errors of `mean`, sample std within `relTol` of `sigma`. */
function expectNormalish(xs: ArrayLike<number>, mean: number, sigma: number, relTol: number, what: string): void {
  const s = stats(xs);
  expect(Math.abs(s.mean - mean), `${what} mean ${s.mean}`).toBeLessThan((4 * sigma) / Math.sqrt(s.n));
  expect(Math.abs(s.std / sigma - 1), `${what} std ${s.std} vs ${sigma}`).toBeLessThan(relTol);
}

describe('behavioural chip: device statistics match the documented magnitudes', () => {
  // 40 000 transistors of each polarity, 20 000 neurons in layer 0; the model-form die has the hand-summed magnitudes.
  const chip = new BehavioralChip({ seed: 11, sizes: [2, 20000, 1], physics: 'ekv' });
  const truth = chip.hiddenTruth();

  it('Pelgrom threshold and current-factor mismatch per polarity', () => {
    const byPol = (l: number, pol: number, a: Float64Array) => {
      const g = chip.geometry[l];
      const out: number[] = [];
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== pol) continue;
        for (let i = 0; i < g.outputs; i++) out.push(a[r * g.outputs + i]);
      }
      return out;
    };
    for (const l of [0, 1]) {
      const loc = truth.layers[l].local;
      expectNormalish(byPol(l, NMOS, loc.dVth), 0, SIGMA_VTH_N, 0.03, `layer ${l} nmos dVth`);
      expectNormalish(byPol(l, 1, loc.dVth), 0, SIGMA_VTH_P, 0.03, `layer ${l} pmos dVth`);
      expectNormalish(byPol(l, NMOS, loc.beta), 1, SIGMA_BETA, 0.03, `layer ${l} nmos beta`);
      expectNormalish(byPol(l, 1, loc.beta), 1, SIGMA_BETA, 0.03, `layer ${l} pmos beta`);
    }
    // The magnitudes are what a designer would expect at W L = 0.25 um^2.
    expect(SIGMA_VTH_N * 1000).toBeCloseTo(15.5, 1);
    expect(SIGMA_VTH_P * 1000).toBeCloseTo(11.7, 1);
  });

  it("the default (sky130) die draws the PDK Monte Carlo's threshold spread; other draws unchanged", () => {
    const sky = new BehavioralChip({ seed: 11, sizes: [2, 20000, 1] });
    const t = sky.hiddenTruth();
    const g = sky.geometry[0];
    const loc = t.layers[0].local;
    const pick = (pol: number) => {
      const out: number[] = [];
      for (let r = 0; r < g.rowInput.length; r++) if (g.rowPolarity[r] === pol) for (let i = 0; i < g.outputs; i++) out.push(loc.dVth[r * g.outputs + i]);
      return out;
    };
    expectNormalish(pick(NMOS), 0, SIGMA_VTH_N_PDK, 0.03, 'sky130 nmos dVth');
    expectNormalish(pick(1), 0, SIGMA_VTH_P_PDK, 0.03, 'sky130 pmos dVth');
    expect(t.process).toEqual(truth.process);
    expect(loc.beta).toEqual(truth.layers[0].local.beta);
  });

  it('total threshold shift = chip-level shift of its polarity + local; gain folds kp, beta and C', () => {
    const l0 = truth.layers[0];
    const g = chip.geometry[0];
    const p = truth.process;
    for (let r = 0; r < g.rowInput.length; r++) {
      const nmos = g.rowPolarity[r] === NMOS;
      for (let i = 0; i < 50; i++) {
        const k = r * g.outputs + i;
        expect(l0.dVth[k]).toBeCloseTo((nmos ? p.dVthN : p.dVthP) + l0.local.dVth[k], 15);
        const cRatio = l0.capacitance[i] / 103.3e-15;
        expect(l0.gain[k]).toBeCloseTo(((nmos ? p.kpN : p.kpP) * l0.local.beta[k]) / cRatio, 12);
      }
    }
  });

  it('per-neuron capacitor, trip point, delay and leakage', () => {
    const l0 = truth.layers[0];
    expectNormalish(l0.local.capacitance, 1, SIGMA_CAP, 0.03, 'capacitor');
    expectNormalish(l0.local.trip, 0, SIGMA_TRIP, 0.03, 'trip point');
    // thresholdScale = (vRest - vTrip) / (vRest - vThreshold), vTrip = 0.9 V + chip shift + local.
    const ts = l0.model.thresholdScale!;
    const chipShift = 0.5 * (truth.process.dVthN - truth.process.dVthP) + 0.5 * (truth.supplyV - 1.8);
    for (let i = 0; i < 20; i++) expect(ts[i]).toBeCloseTo((1.3 - (0.9 + chipShift + l0.local.trip[i])) / 0.4, 12);
    expectNormalish(ts, 1 - chipShift / 0.4, SIGMA_TRIP / 0.4, 0.03, 'thresholdScale');
    // Delay: 0.35 ns + 2 ps per driven gate (layer 1 has 2 rows per input x 1 output), 10 % spread.
    const meanDelay = 0.35e-9 + 2e-12 * 2;
    expectNormalish(l0.delaySeconds, meanDelay, 0.1 * meanDelay, 0.03, 'delay');
    expectNormalish(
      Array.from(l0.leakAmps, (a) => Math.log(a / 5e-12)),
      0,
      0.7,
      0.03,
      'log leakage',
    );
  });

  it('chip-level draws over many dies', () => {
    const n = 1500;
    const q = {
      dVthN: [] as number[],
      dVthP: [] as number[],
      kpN: [] as number[],
      lambdaN: [] as number[],
      lambdaP: [] as number[],
      cap: [] as number[],
      supply: [] as number[],
      temp: [] as number[],
      tdc: [] as number[],
      ePlus: [] as number[],
    };
    for (let seed = 0; seed < n; seed++) {
      const t = new BehavioralChip({ seed, sizes: [1, 1], physics: 'ekv' }).hiddenTruth();
      q.dVthN.push(t.process.dVthN);
      q.dVthP.push(t.process.dVthP);
      q.kpN.push(t.process.kpN);
      q.lambdaN.push(t.lambdaN);
      q.lambdaP.push(t.lambdaP);
      q.cap.push(t.process.capacitance);
      q.supply.push(t.supplyV);
      q.temp.push(t.temperatureC);
      q.tdc.push(t.tdcOffsetSeconds);
      q.ePlus.push(t.layers[0].ePlus);
    }
    // std of a sample of 1500 has a relative standard error of 1.8 %: allow 7 %.
    expectNormalish(q.dVthN, 0, 0.012, 0.07, 'global dVthN');
    expectNormalish(q.dVthP, 0, 0.012, 0.07, 'global dVthP');
    expectNormalish(q.kpN, 1, 0.03, 0.07, 'global kpN');
    expectNormalish(q.lambdaN, 0.846, 0.846 * 0.08, 0.07, 'lambdaN');
    expectNormalish(q.lambdaP, 1.3, 1.3 * 0.08, 0.07, 'lambdaP');
    expectNormalish(q.cap, 1, 0.03, 0.07, 'MIM density');
    expectNormalish(q.supply, 1.8, 0.009, 0.07, 'supply');
    expectNormalish(q.temp, 27, 1.5, 0.07, 'temperature');
    expectNormalish(q.tdc, 1.5e-9, 0.3e-9, 0.07, 'TDC offset');
    // ePlus = (vRest + 1/lambdaN) / (vRest - vThreshold): finite, > 1, and different on every die.
    expect(new Set(q.ePlus).size).toBe(n);
    expect(Math.min(...q.ePlus)).toBeGreaterThan(4.5);
    expect(Math.max(...q.ePlus)).toBeLessThan(8.5);
  });

  it('a smaller geometry with the same seed sees the same devices in its corner', () => {
    const small = new BehavioralChip({ seed: 11, sizes: [2, 100, 1], physics: 'ekv' }).hiddenTruth();
    const big = truth.layers[0];
    for (let r = 0; r < 4; r++) {
      for (let i = 0; i < 100; i++) expect(small.layers[0].local.dVth[r * 100 + i]).toBe(big.local.dVth[r * 20000 + i]);
    }
    expect(small.process).toEqual(truth.process);
  });
});
