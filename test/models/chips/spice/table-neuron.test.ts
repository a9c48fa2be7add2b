import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NMOS, PMOS } from '../../../../models/chips/chip-backend.ts';
import type { Grid } from '../../../../models/chips/spice/characterise-netlists.ts';
import type { IvTable, KickTable } from '../../../../models/chips/spice/characterise.ts';
import {
  cellTime,
  gateColumn,
  membraneCapacitance,
  synapseCurrent,
  tableLayerForward,
  type TableLayerModel,
} from '../../../../models/chips/spice/table-neuron.ts';

const VD: Grid = { start: 0, step: 0.01, count: 181 };
const VG: Grid = { start: -0.1, step: 0.01, count: 201 };

function table(f: (vg: number, v: number) => number): IvTable {
  const current = new Float64Array(VG.count * VD.count);
  for (let a = 0; a < VG.count; a++) for (let b = 0; b < VD.count; b++) current[a * VD.count + b] = f(VG.start + a * VG.step, VD.start + b * VD.step);
  return { vg: VG, vd: VD, current };
}

interface Synthetic {
  polarity: number[]; // per row, row r reads input r
  gates: number[]; // per row (one output)
  nmos?: (vg: number, v: number) => number;
  pmos?: (vg: number, v: number) => number;
  cap?: (v: number) => number;
  vTrip?: number;
  kick?: number; // constant switch-on charge for both kinds
  horizon?: number;
}

function model(s: Synthetic): TableLayerModel {
  const rows = s.polarity.length;
  const nm = table(s.nmos ?? (() => 0));
  const pm = table(s.pmos ?? (() => 0));
  const column = new Int32Array(rows);
  const fraction = new Float64Array(rows);
  s.gates.forEach((g, r) => {
    const c = gateColumn(VG, g);
    column[r] = c.column;
    fraction[r] = c.fraction;
  });
  const kt: KickTable | undefined =
    s.kick === undefined ? undefined : { vg: { start: 0, step: 1, count: 2 }, vd: { start: 0, step: 1, count: 2 }, charge: new Float64Array(4).fill(s.kick) };
  return {
    nIn: rows,
    nOut: 1,
    rowInput: Uint16Array.from({ length: rows }, (_, r) => r),
    rowPolarity: Uint8Array.from(s.polarity),
    nmos: nm,
    pmos: pm,
    kickN: kt,
    kickP: kt,
    kickAfter: 1e-12,
    gateEff: Float64Array.from(s.gates),
    column,
    fraction,
    capacitance: Float64Array.from({ length: VD.count }, (_, k) => (s.cap ?? (() => 100e-15))(VD.start + k * VD.step)),
    leak: new Float64Array(VD.count),
    vTrip: Float64Array.of(s.vTrip ?? 0.9),
    vRest: 1.3,
    horizon: s.horizon ?? 1e-5,
    delay: 0,
  };
}

const fire = (m: TableLayerModel, times: number[]) => tableLayerForward(m, Float64Array.from(times), 1)[0];

describe('table-mode membrane integrator', () => {
  it('constant current into constant C: t = C dV / I', () => {
    const m = model({ polarity: [NMOS], gates: [0.5], nmos: (vg) => -20e-9 * vg });
    expect(fire(m, [0])).toBeCloseTo((100e-15 * 0.4) / 10e-9, 18);
  });

  it('channel-length modulation gives the reversal-potential exponential', () => {
    // C dv/dt = -I0 (1 + lambda v) = g (E - v), g = I0 lambda, E = -1/lambda.
    const lambda = 0.3;
    const i0 = 15e-9;
    const m = model({ polarity: [NMOS], gates: [0.5], nmos: (vg, v) => -(i0 / 0.5) * vg * (1 + lambda * v) });
    const E = -1 / lambda;
    const expected = (100e-15 / (i0 * lambda)) * Math.log((1.3 - E) / (0.9 - E));
    expect(fire(m, [0])).toBeCloseTo(expected, 16);
  });

  it('a voltage-dependent capacitance: t = integral of C(v)/I', () => {
    const c = (v: number) => 100e-15 + 20e-15 * v;
    const m = model({ polarity: [NMOS], gates: [0.3], nmos: () => -10e-9, cap: c });
    // int_0.9^1.3 (100f + 20f v) dv / 10n
    const expected = (100e-15 * 0.4 + 10e-15 * (1.3 ** 2 - 0.9 ** 2)) / 10e-9;
    expect(fire(m, [0])).toBeCloseTo(expected, 16);
  });

  it('inputs switching on later change the slope at their time', () => {
    const m = model({ polarity: [NMOS, NMOS], gates: [0.5, 0.5], nmos: () => -10e-9 });
    // First input alone for 1 us moves 0.1 V; then both: 0.3 V at 20 nA.
    expect(fire(m, [0, 1e-6])).toBeCloseTo(1e-6 + (100e-15 * 0.3) / 20e-9, 16);
    // Silent inputs and inputs after the horizon do nothing.
    expect(fire(model({ polarity: [NMOS], gates: [0.5], nmos: () => -10e-9, horizon: 3e-6 }), [Infinity])).toBe(Infinity);
    expect(fire(model({ polarity: [NMOS], gates: [0.5], nmos: () => -10e-9, horizon: 3e-6 }), [3.5e-6])).toBe(Infinity);
  });

  it('a PMOS synapse holds the membrane at the balance point: silent', () => {
    // NMOS sinks 10 nA (1 + 0.2 v); PMOS sources 10 nA (1 + 0.2 (1.8 - v)): balance at v = 0.9 + ... > trip.
    const m = model({ polarity: [NMOS, PMOS], gates: [0.5, 1.2], nmos: (_, v) => -10e-9 * (1 + 0.2 * v), pmos: (_, v) => 12e-9 * (1 + 0.2 * (1.8 - v)) });
    expect(fire(m, [0, 0])).toBe(Infinity);
    // The same PMOS arriving later delays the spike instead.
    const alone = fire(model({ polarity: [NMOS], gates: [0.5], nmos: (_, v) => -10e-9 * (1 + 0.2 * v) }), [0]);
    const m2 = model({ polarity: [NMOS, PMOS], gates: [0.5, 1.2], nmos: (_, v) => -10e-9 * (1 + 0.2 * v), pmos: () => 5e-9 });
    expect(fire(m2, [0, 1e-6])).toBeGreaterThan(alone);
  });

  it('interpolates bilinearly in the gate voltage', () => {
    // Current linear in vg: interpolation between grid columns is exact.
    const m = model({ polarity: [NMOS], gates: [0.4237], nmos: (vg) => -40e-9 * vg });
    expect(fire(m, [0])).toBeCloseTo((100e-15 * 0.4) / (40e-9 * 0.4237), 16);
  });

  it('switch-on kicks move the membrane by Q / C, except while the precharge holds it', () => {
    const q = 1e-15; // 10 mV on 100 fF
    const base = { polarity: [NMOS, NMOS], gates: [0.5, 0], nmos: (vg: number) => -20e-9 * vg, kick: q };
    // Second row carries no current; its kick at 1 us pushes the membrane up by 10 mV.
    expect(fire(model(base), [0, 1e-6])).toBeCloseTo((100e-15 * 0.41) / 10e-9, 16);
    // At t = 0 the precharge absorbs both kicks.
    expect(fire(model(base), [0, 0])).toBeCloseTo((100e-15 * 0.4) / 10e-9, 16);
    // A kick that carries the membrane through the trip point fires at once.
    expect(fire(model({ polarity: [PMOS], gates: [1.0], kick: -50e-15 }), [2e-7])).toBeCloseTo(2e-7, 18);
  });

  it('agrees with fine quadrature for random piecewise-linear current and capacitance', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 2e-9, max: 50e-9, noNaN: true }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.double({ min: 60e-15, max: 200e-15, noNaN: true }), { minLength: 6, maxLength: 6 }),
        (iKnots, cKnots) => {
          // Knots every 0.1 V from 0.8 to 1.3; functions interpolate them linearly.
          const pl = (k: number[]) => (v: number) => {
            const x = Math.min(5, Math.max(0, (v - 0.8) / 0.1));
            const j = Math.min(4, Math.floor(x));
            return k[j] + (x - j) * (k[j + 1] - k[j]);
          };
          const I = pl(iKnots);
          const C = pl(cKnots);
          const m = model({ polarity: [NMOS], gates: [0.5], nmos: (_, v) => -I(v), cap: C, horizon: 1 });
          // Reference: composite Simpson on 40000 panels of C/I over [0.9, 1.3].
          const n = 40000;
          const h = 0.4 / n;
          let sum = 0;
          for (let k = 0; k <= n; k++) {
            const v = 0.9 + k * h;
            const w = k === 0 || k === n ? 1 : k % 2 ? 4 : 2;
            sum += w * (C(v) / I(v));
          }
          const ref = (sum * h) / 3;
          expect(fire(m, [0]) / ref).toBeCloseTo(1, 9);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the per-cell travel time is finite up to an equilibrium and infinite past it', () => {
    // I = I0 + dI D reaches zero at D = -I0/dI.
    expect(cellTime(-0.01, -1e-9, 1e-13, -2e-7, 0)).toBe(Infinity);
    expect(cellTime(-0.004, -1e-9, 1e-13, -2e-7, 0)).toBeCloseTo((1e-13 / 2e-7) * Math.log(1 / (1 - 0.8)), 18);
    expect(cellTime(0, 1e-9, 1e-13, 0, 0)).toBe(0);
  });

  it("reads a synapse's current and the membrane's capacitance off the tables as the integrator does", () => {
    // Bilinear functions are reproduced exactly by bilinear interpolation, between knots too.
    const nmos = (vg: number, v: number) => -(2e-9 + 40e-9 * vg) * (1 + 0.8 * v);
    const pmos = (vg: number, v: number) => (30e-9 - 15e-9 * vg) * (1 + 1.3 * (1.8 - v));
    const m = model({ polarity: [NMOS, PMOS], gates: [0.4537, 1.2263], nmos, pmos, cap: (v) => 100e-15 + 5e-15 * v });
    for (const v of [0.9, 1.0137, 1.2, 1.2991]) {
      expect(synapseCurrent(m, 0, v)).toBeCloseTo(nmos(0.4537, v), 20);
      expect(synapseCurrent(m, 1, v)).toBeCloseTo(pmos(1.2263, v), 20);
      expect(membraneCapacitance(m, v) / (100e-15 + 5e-15 * v)).toBeCloseTo(1, 12);
    }
    expect(synapseCurrent(m, 0, 1.1)).toBeLessThan(0);
    expect(synapseCurrent(m, 1, 1.1)).toBeGreaterThan(0);
  });
});
