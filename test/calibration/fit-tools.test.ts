import { describe, expect, it } from 'vitest';
import { levenbergMarquardt } from '../../calibration/lm.ts';
import { familyFromMosfet, familyToMosfet, fitFamily, fitSynapse, logConductance } from '../../calibration/transfer-fit.ts';
import { floorTicks, jitterFromRepeats, normalCdf, repeatDifferenceMeanSquare } from '../../calibration/modelling-error.ts';
import { Rng } from '../../models/datasets/rng.ts';
import { NOMINAL_NMOS, NOMINAL_PMOS } from '../../models/chips/sky130-nominal.ts';
import { drainCurrent } from '../../models/neuron/transfer-curve.ts';

describe('Levenberg-Marquardt', () => {
  it('fits y = a exp(-b x) + c to noiseless data from a distant start', () => {
    const xs = Array.from({ length: 30 }, (_, k) => k / 10);
    const ys = xs.map((x) => 2.5 * Math.exp(-1.3 * x) + 0.4);
    const fit = levenbergMarquardt((p) => Float64Array.from(xs, (x, k) => p[0] * Math.exp(-p[1] * x) + p[2] - ys[k]), [1, 0.5, 0], {
      steps: [1e-6, 1e-6, 1e-6],
      maxIterations: 100,
      tolerance: 1e-14,
    });
    expect(fit.params[0]).toBeCloseTo(2.5, 6);
    expect(fit.params[1]).toBeCloseTo(1.3, 6);
    expect(fit.params[2]).toBeCloseTo(0.4, 6);
  });

  it('respects bounds', () => {
    const fit = levenbergMarquardt((p) => Float64Array.of(p[0] - 5), [0], { steps: [1e-6], upper: [2] });
    expect(fit.params[0]).toBe(2);
  });

  it('ignores residuals whose finite-difference probe failed and never returns non-finite parameters', () => {
    // Row 0 turns non-finite whenever p[0] is probed upward (a pattern that stops firing, say); the
    // other rows define the problem. Before, that row's finite entries leaked NaN into J^T J.
    const target = [1.5, -0.5];
    const base = [1, 0];
    const res = (p: Float64Array) =>
      Float64Array.of(
        p[0] > base[0] + 1e-9 && p[0] < base[0] + 0.02 ? Number.NaN : 0.1 * (p[0] - target[0]),
        p[0] - target[0],
        p[1] - target[1],
        p[0] + p[1] - target[0] - target[1],
      );
    const fit = levenbergMarquardt(res, base, { steps: [0.01, 0.01], maxIterations: 50, tolerance: 1e-14 });
    expect(Array.from(fit.params).every(Number.isFinite)).toBe(true);
    expect(fit.params[0]).toBeCloseTo(target[0], 6);
    expect(fit.params[1]).toBeCloseTo(target[1], 6);
  });
});

describe('transfer-curve fits', () => {
  const ctx = { supply: 1.8, temperatureC: 27 };
  const C = 103.3e-15;
  const t0 = 2e-6;

  it('the family reproduces drainCurrent through familyToMosfet (same conductance)', () => {
    for (const dev of [NOMINAL_NMOS, NOMINAL_PMOS]) {
      const f = familyFromMosfet(dev, ctx, C, t0);
      const m = familyToMosfet({ ...f, vth: f.vth + 0.01, lnScale: f.lnScale - 0.2 }, dev, dev.lambda, ctx, C, t0);
      for (const v of dev.polarity === 'nmos' ? [0.2, 0.35, 0.6] : [1.1, 1.4, 1.6]) {
        const g = (drainCurrent(m, v, 1.8, 27, { dVth: 0.005, gain: 1.1 }) * dev.lambda * t0) / C;
        expect(Math.log(g)).toBeCloseTo(logConductance({ ...f, vth: f.vth + 0.01, lnScale: f.lnScale - 0.2 }, v, ctx, 0.005, Math.log(1.1)), 10);
      }
    }
  });

  it('a transistor fit reproduces the conductance at the probed and nearby gates', () => {
    const f = familyFromMosfet(NOMINAL_NMOS, ctx, C, t0);
    const volts = Float64Array.of(0.36, 0.38, 0.4, 0.42);
    const truth = { dVth: 0.012, lnGain: Math.log(0.97) };
    const lnG = Float64Array.from(volts, (v) => logConductance(f, v, ctx, truth.dVth, truth.lnGain));
    const r = fitSynapse(f, ctx, { count: 4, volts, lnG, weight: new Float64Array(4).fill(1e6) }, 0, 0, 8);
    for (const v of [0.37, 0.41, 0.43]) {
      expect(Math.abs(logConductance(f, v, ctx, r.dVth, r.lnGain) - logConductance(f, v, ctx, truth.dVth, truth.lnGain))).toBeLessThan(2e-3);
    }
  });

  it('a family fit recovers slope and scale from mismatched transistors', () => {
    const truth = { ...familyFromMosfet(NOMINAL_NMOS, ctx, C, t0), n: 1.42, lnScale: -1.5 };
    const rng = new Rng(5);
    const volts: number[] = [];
    const lnG: number[] = [];
    const off: number[] = [];
    for (let s = 0; s < 50; s++) {
      const o = rng.normal(0, 0.3);
      for (const v of [0.38, 0.41, 0.44, 0.47]) {
        volts.push(v);
        lnG.push(logConductance(truth, v, ctx, 0, o));
        off.push(o);
      }
    }
    const f = fitFamily({ ...truth, n: 1.3, lnScale: 0 }, ctx, {
      volts: Float64Array.from(volts),
      lnG: Float64Array.from(lnG),
      weight: new Float64Array(volts.length).fill(100),
      dVth: new Float64Array(volts.length),
      lnGain: Float64Array.from(off),
    });
    expect(f.n).toBeCloseTo(1.42, 2);
    for (const v of [0.4, 0.45]) expect(logConductance(f, v, ctx)).toBeCloseTo(logConductance(truth, v, ctx), 2);
  });
});

describe('measurement floor', () => {
  it('normalCdf matches known values', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1)).toBeCloseTo(0.158655, 6);
  });

  it('recovers the jitter of a simulated floored timer from two readings per edge (Monte Carlo reference)', () => {
    const rng = new Rng(9);
    for (const sigma of [0.15, 0.25, 0.6]) {
      let s = 0;
      const n = 40000;
      for (let k = 0; k < n; k++) {
        const x = rng.uniform(0, 100);
        const d = Math.floor(x + rng.normal(0, sigma)) - Math.floor(x + rng.normal(0, sigma));
        s += d * d;
      }
      expect(repeatDifferenceMeanSquare(sigma)).toBeCloseTo(s / n, 1);
      expect(Math.abs(jitterFromRepeats(s / n) - sigma)).toBeLessThan(0.02);
    }
    expect(floorTicks(0)).toBeCloseTo(1 / Math.sqrt(12), 12);
  });
});
