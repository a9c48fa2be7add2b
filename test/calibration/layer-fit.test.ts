/**
 * LayerFitter's residuals: the plain ones are what held-out scores use, the down-weighted ones are
 * what the globals fit and the drift refit minimise (the same Cauchy-style weighting the per-neuron
 * polish minimises, so one pattern that grazes threshold cannot pull E+).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { backendTarget } from '../../calibration/backend-target.ts';
import { calibrateChip, type CalibrationResult } from '../../calibration/calibrate-chip.ts';
import { NOISE_TICKS } from '../../calibration/layer-fit.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';

let res: CalibrationResult;
beforeAll(async () => {
  const chip = new BehavioralChip({ seed: 31337, sizes: [8, 4] });
  const sup = chip.supply();
  res = await calibrateChip(backendTarget(chip), {
    chipId: chip.chipId,
    temperatureC: sup.temperatureC,
    supplyV: sup.supplyV,
    layers: [0],
    sizes: { patternsPerConfig: 24, heldOutPatterns: 16 },
  });
}, 60_000);

describe('LayerFitter.residualsFixed', () => {
  it('down-weights as r -> 4 sign(r) sqrt(ln(1 + (r/4)^2)), and leaves small residuals nearly unchanged', () => {
    const f = res.fitters.pnn[0]!;
    const g = res.globals;
    // A disturbed E+ makes large residuals too, so both regimes of the weighting are exercised.
    let large = 0;
    let checked = 0;
    for (const globals of [g, { ...g, ePlus: g.ePlus * 1.3 }]) {
      for (let i = 0; i < f.data.input.geometry.outputs; i++) {
        const plain = f.residualsFixed(i, globals);
        const robust = f.residualsFixed(i, globals, 0, 'fit', true);
        expect(robust.length).toBe(plain.length);
        for (let s = 0; s < plain.length; s++) {
          const r = plain[s]!;
          // A sample the model cannot place at all carries the same fixed penalty in both.
          if (r === 50 && robust[s] === 50) continue;
          const expected = Math.sign(r) * 4 * Math.sqrt(Math.log1p((r / 4) ** 2));
          expect(robust[s]).toBeCloseTo(expected, 12);
          expect(Math.abs(robust[s]!)).toBeLessThanOrEqual(Math.abs(r) + 1e-12);
          if (Math.abs(r) < 0.5) expect(Math.abs(robust[s]! - r)).toBeLessThan(0.01);
          if (Math.abs(r) > 20) large++;
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(200);
    expect(large).toBeGreaterThan(0);
  });
});

describe('LayerFitter.heldOutThresholdSensitivity', () => {
  it('matches central differences of the held-out prediction in the threshold scale', () => {
    const f = res.fitters.pnn[0]!;
    const g = res.globals;
    const h = 1e-6;
    let checked = 0;
    for (let i = 0; i < f.data.input.geometry.outputs; i++) {
      const theta = f.state.theta[i]!;
      const at = (x: number): Float64Array => {
        f.state.theta[i] = x;
        const r = f.residualsFixed(i, g, 0, 'heldout');
        f.state.theta[i] = theta;
        return r;
      };
      const base = at(theta);
      const up = at(theta + h);
      const down = at(theta - h);
      for (let s = 0; s < base.length; s++) {
        const measured = f.data.heldOut[i]!.pat.tOut[s]!;
        // Silent readings score "how early the model fires", and a sample at the window edge has no derivative.
        if (!Number.isFinite(measured) || Math.abs(base[s]!) > 1000) continue;
        const fd = ((up[s]! - down[s]!) / (2 * h)) * NOISE_TICKS;
        const an = f.heldOutThresholdSensitivity(i, s, g);
        expect(an).toBeGreaterThan(0); // a higher threshold fires later
        expect(Math.abs(an - fd)).toBeLessThan(1e-4 * Math.abs(fd) + 1e-3);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect(() => f.heldOutThresholdSensitivity(0, 10_000, g)).toThrow(/no held-out pattern 10000/);
  });
});

describe('calibrateChip tail', () => {
  it('lists the worst 1 % of held-out pairs, worst first, with their share of the squared error', () => {
    const ho = res.heldOut.pnn;
    const t = res.tail;
    const n = ho.predicted.length;
    expect(t.samples.length).toBe(Math.max(1, Math.round(0.01 * n)));
    const err = ho.predicted.map((p, k) => p - ho.measured[k]!);
    const sorted = err.map(Math.abs).sort((a, b) => b - a);
    t.samples.forEach((x, q) => {
      expect(Math.abs(x.errorTicks)).toBeCloseTo(sorted[q]!, 9);
      expect(x.errorTicks).toBeCloseTo(x.predictedTicks - x.measuredTicks, 9);
      expect(x.inputs).toBe(res.fitters.pnn[0]!.data.heldOut[x.neuron]!.pat.count[x.pattern]);
      expect(x.ticksPerPermilleThreshold).toBeGreaterThanOrEqual(0);
    });
    const total = err.reduce((a, e) => a + e * e, 0);
    const top = t.samples.reduce((a, x) => a + x.errorTicks ** 2, 0);
    expect(t.share).toBeCloseTo(top / total, 9);
    expect(t.rmseRestTicks).toBeCloseTo(Math.sqrt((total - top) / (n - t.samples.length)), 9);
  });
});

describe('LayerFitter sweep observations', () => {
  it('keeps every repeated sweep reading of a transistor (none dropped for lack of room)', async () => {
    // 16 repeats: 3 PMOS codes x 2 partners x 16 readings per transistor, more than the room the
    // observation buffers once had ((distinct codes x 2 + 2) x 4), which silently dropped the rest.
    const chip = new BehavioralChip({ seed: 2718, sizes: [6, 3] });
    const sup = chip.supply();
    const r = await calibrateChip(backendTarget(chip), {
      chipId: chip.chipId,
      temperatureC: sup.temperatureC,
      supplyV: sup.supplyV,
      sizes: { patternsPerConfig: 16, heldOutPatterns: 8, sweepRepeats: 16 },
    });
    const f = r.fitters.pnn[0]!;
    const nIn = f.data.input.geometry.inputs;
    let most = 0;
    let transistors = 0;
    for (let i = 0; i < f.data.input.geometry.outputs; i++) {
      const d = f.data.neurons[i]!;
      for (let j = 0; j < f.data.input.driven; j++) {
        const rowsN = d.sn.j.filter((x) => x === j).length;
        const rowsP = d.sp.j.filter((x) => x === j).length;
        most = Math.max(most, rowsP);
        // A reading the model cannot invert (none expected here) is the only thing left out.
        expect(f.state.obsN[i * nIn + j]).toBeGreaterThanOrEqual(rowsN - 1);
        expect(f.state.obsN[i * nIn + j]).toBeLessThanOrEqual(rowsN);
        expect(f.state.obsP[i * nIn + j]).toBeGreaterThanOrEqual(rowsP - 1);
        expect(f.state.obsP[i * nIn + j]).toBeLessThanOrEqual(rowsP);
        transistors++;
      }
    }
    expect(transistors).toBe(6 * 3);
    expect(most).toBeGreaterThan((Math.max(f.data.codesN.length, f.data.codesP.length) * 2 + 2) * 4);
  }, 120_000);
});
