import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  crossingGradBuffers,
  excitatoryFromTime,
  excitatoryTime,
  inhibitoryFromPairTime,
  neuronCrossing,
  neuronCrossingGrad,
} from '../../calibration/neuron-model.ts';
import { makeLayer } from '../../models/neuron/layer.ts';
import { exactForward } from '../../models/solvers/exact.ts';

/** The exact solver on a one-neuron layer: the independent reference. */
function reference(times: number[], gE: number[], gI: number[], kick: number[], ePlus: number, eMinus: number, theta: number, ideal: boolean): number {
  const layer = makeLayer({
    nIn: times.length,
    nOut: 1,
    model: ideal ? 'ideal' : 'pnn',
    gE,
    gI,
    kick,
    ePlus,
    eMinus,
    horizon: Infinity,
    thresholdScale: theta,
  });
  return exactForward(layer, Float64Array.from(times), 1).times[0];
}

/** Random sorted-able inputs (time, gE in [gEMin, 3], gI in [0, gIMax], kick), E+, E-, theta, ideal flag. */
function neuronCase(gEMin: number, gIMax: number) {
  return [
    fc.array(
      fc.record({
        t: fc.double({ min: 0, max: 0.5, noNaN: true }),
        gE: fc.double({ min: gEMin, max: 3, noNaN: true }),
        gI: fc.double({ min: 0, max: gIMax, noNaN: true }),
        k: fc.double({ min: -0.01, max: 0.01, noNaN: true }),
      }),
      { minLength: 1, maxLength: 8 },
    ),
    fc.double({ min: 1.5, max: 20, noNaN: true }),
    fc.double({ min: -10, max: -0.5, noNaN: true }),
    fc.double({ min: 0.8, max: 1.2, noNaN: true }),
    fc.boolean(),
  ] as const;
}

/** The model's inputs from a case's (time-sorted) synapse records. */
function neuronInputs(s: readonly { t: number; gE: number; gI: number; k: number }[]) {
  return {
    count: s.length,
    times: Float64Array.from(s, (x) => x.t),
    gE: Float64Array.from(s, (x) => x.gE),
    gI: Float64Array.from(s, (x) => x.gI),
    kick: Float64Array.from(s, (x) => x.k),
  };
}

describe('single-neuron model', () => {
  it('matches the exact solver on random staggered E/I inputs (PNN and ideal)', () => {
    fc.assert(
      fc.property(...neuronCase(0, 1), (inputs, ePlus, eMinus, theta, ideal) => {
        const s = [...inputs].sort((a, b) => a.t - b.t);
        const ep = ideal ? 1 : ePlus;
        const em = ideal ? -1 : eMinus;
        const ref = reference(
          s.map((x) => x.t),
          s.map((x) => x.gE),
          s.map((x) => x.gI),
          s.map((x) => x.k),
          ep,
          em,
          theta,
          ideal,
        );
        const got = neuronCrossing(neuronInputs(s), { ePlus: ep, eMinus: em, theta, ideal });
        if (ref === Infinity) expect(got).toBe(Infinity);
        else expect(got).toBeCloseTo(ref, 9);
      }),
      { numRuns: 300 },
    );
  });

  it('analytic spike-time gradients match central finite differences of the crossing (PNN, with and without a capacitance slope, and ideal)', () => {
    const slopes = fc.oneof(fc.constant(0), fc.double({ min: -0.1, max: 0.1, noNaN: true }));
    fc.assert(
      fc.property(...neuronCase(0.05, 0.5), slopes, (inputs, ePlus, eMinus, theta, ideal, capSlope) => {
        const s = [...inputs].sort((a, b) => a.t - b.t);
        // Each input's own E (fE, fI) too: their derivatives go through the same reverse sweep.
        const inp = {
          ...neuronInputs(s),
          fE: Float64Array.from(s, (_, j) => 1 + 0.05 * Math.sin(j)),
          fI: Float64Array.from(s, (_, j) => 1 - 0.04 * Math.cos(j)),
        };
        const phys = { ePlus: ideal ? 1 : ePlus, eMinus: ideal ? -1 : eMinus, theta, ideal, capSlope };
        const buf = crossingGradBuffers(s.length);
        const T = neuronCrossingGrad(inp, phys, buf);
        expect(T).toBe(neuronCrossing(inp, phys));
        if (!Number.isFinite(T)) return;
        const h = 1e-6;
        const fd = (apply: (sign: number) => void): number => {
          apply(1);
          const a = neuronCrossing(inp, phys);
          apply(-1);
          const b = neuronCrossing(inp, phys);
          apply(0);
          return (a - b) / (2 * h);
        };
        // Skip samples sitting on a kink (the crossing interval changes within +-h): FD is meaningless there.
        const tol = (x: number, y: number) => Math.abs(x - y) <= 1e-4 * (1 + Math.abs(y));
        let kinks = 0;
        for (let k = 0; k < s.length; k++) {
          for (const [arr, grad] of [
            [inp.gE, buf.dgE],
            [inp.gI, buf.dgI],
            [inp.fE, buf.dfE],
            [inp.fI, buf.dfI],
          ] as const) {
            const g0 = arr[k];
            if (
              !tol(
                grad[k],
                fd((sg) => (arr[k] = g0 + sg * h)),
              )
            )
              kinks++;
          }
        }
        const t0 = phys.theta;
        const dth = fd((sg) => (phys.theta = t0 + sg * h));
        if (!tol(buf.dTheta, dth)) kinks++;
        if (!ideal) {
          const e0 = phys.ePlus;
          const dep = fd((sg) => (phys.ePlus = e0 + sg * h));
          if (!tol(buf.dEPlus, dep)) kinks++;
          const m0 = phys.eMinus;
          const dem = fd((sg) => (phys.eMinus = m0 + sg * h));
          if (!tol(buf.dEMinus, dem)) kinks++;
        }
        expect(kinks).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('with a sloped membrane capacitance, crosses where Runge-Kutta integration of (1 + k u) du/dt = A - G u does', () => {
    fc.assert(
      fc.property(...neuronCase(0, 1), fc.double({ min: -0.1, max: 0.1, noNaN: true }), (inputs, ePlus, eMinus, theta, _ideal, capSlope) => {
        const s = [...inputs].sort((a, b) => a.t - b.t);
        const got = neuronCrossing(neuronInputs(s), { ePlus, eMinus, theta, ideal: false, capSlope });
        // The reference: RK4 steps of at most 1e-3 between events, kicks at them, the crossing by linear interpolation of the last step.
        let u = 0;
        let G = 0;
        let A = 0;
        let crossed = Infinity;
        const rate = (x: number) => (A - G * x) / (1 + capSlope * x);
        const ends = [...s.map((x) => x.t), s[s.length - 1].t + 40];
        for (let j = 0; j < s.length && crossed === Infinity; j++) {
          G += s[j].gE + s[j].gI;
          A += s[j].gE * ePlus + s[j].gI * eMinus;
          u += s[j].k;
          if (u >= theta) {
            crossed = s[j].t;
            break;
          }
          const n = Math.ceil((ends[j + 1] - ends[j]) / 1e-3);
          const h = (ends[j + 1] - ends[j]) / n;
          for (let q = 0; q < n && h > 0; q++) {
            const a = rate(u);
            const b = rate(u + 0.5 * h * a);
            const c = rate(u + 0.5 * h * b);
            const e = rate(u + h * c);
            const next = u + (h / 6) * (a + 2 * b + 2 * c + e);
            if (next >= theta) {
              crossed = ends[j] + h * (q + (theta - u) / (next - u));
              break;
            }
            u = next;
          }
        }
        if (crossed === Infinity) expect(got).toBeGreaterThan(ends[ends.length - 2] + 39);
        else expect(Math.abs(got - crossed)).toBeLessThan(1e-5 * (1 + crossed));
      }),
      { numRuns: 200 },
    );
  });

  it("with each input's own E (fE, fI) matches the exact solver on synapses split between two wider reversal potentials", () => {
    // A synapse (g, E) acts as a at E1 plus b at E2 with a + b = g and a E1 + b E2 = g E (E2 <= E <= E1): the
    // exact solver, which knows one E+ and one E- per layer, is then the reference for per-input E.
    const [E1, E2] = [30, -30];
    fc.assert(
      fc.property(
        ...neuronCase(0.05, 1),
        fc.array(fc.double({ min: 0.7, max: 1.3, noNaN: true }), { minLength: 16, maxLength: 16 }),
        (inputs, ePlus, eMinus, theta, _ideal, f) => {
          const s = [...inputs].sort((a, b) => a.t - b.t);
          const fE = Float64Array.from(s, (_, k) => f[2 * k]!);
          const fI = Float64Array.from(s, (_, k) => f[2 * k + 1]!);
          const G = s.map((x) => x.gE + x.gI);
          const A = s.map((x, k) => x.gE * ePlus * fE[k]! + x.gI * eMinus * fI[k]!);
          const a = s.map((_, k) => (A[k]! - G[k]! * E2) / (E1 - E2));
          const ref = reference(
            s.map((x) => x.t),
            a,
            s.map((_, k) => G[k]! - a[k]!),
            s.map((x) => x.k),
            E1,
            E2,
            theta,
            false,
          );
          const inp = {
            ...neuronInputs(s),
            fE,
            fI,
          };
          const got = neuronCrossing(inp, { ePlus, eMinus, theta, ideal: false });
          if (ref === Infinity) expect(got).toBe(Infinity);
          else expect(got).toBeCloseTo(ref, 8);
          // The gradients carry the factors: dT/dgE, dT/dE+ against central differences.
          const buf = crossingGradBuffers(s.length);
          const T = neuronCrossingGrad(inp, { ePlus, eMinus, theta, ideal: false }, buf);
          if (!Number.isFinite(T)) return;
          const h = 1e-6;
          const at = (ep: number, em: number) => neuronCrossing(inp, { ePlus: ep, eMinus: em, theta, ideal: false });
          const dep = (at(ePlus + h, eMinus) - at(ePlus - h, eMinus)) / (2 * h);
          const dem = (at(ePlus, eMinus + h) - at(ePlus, eMinus - h)) / (2 * h);
          const g0 = inp.gE[0]!;
          inp.gE[0] = g0 + h;
          const up = at(ePlus, eMinus);
          inp.gE[0] = g0 - h;
          const down = at(ePlus, eMinus);
          inp.gE[0] = g0;
          const dg = (up - down) / (2 * h);
          // A crossing on a kink (its interval changes within +-h) has no derivative to compare.
          const ok = (x: number, y: number) => Math.abs(x - y) <= 1e-4 * (1 + Math.abs(y));
          if (Math.abs(at(ePlus + 1e-3, eMinus) - T) > 0.1) return;
          expect(ok(buf.dEPlus, dep) && ok(buf.dEMinus, dem) && ok(buf.dgE[0]!, dg)).toBe(true);
          // dT/dfE, dT/dfI of every input (what the card shape's strength k moves: d f / dk = f ln e).
          for (let k = 0; k < s.length; k++) {
            for (const [arr, ana] of [
              [fE, buf.dfE],
              [fI, buf.dfI],
            ] as const) {
              const f0 = arr[k]!;
              arr[k] = f0 + h;
              const a = at(ePlus, eMinus);
              arr[k] = f0 - h;
              const b = at(ePlus, eMinus);
              arr[k] = f0;
              expect(ok(ana[k]!, (a - b) / (2 * h))).toBe(true);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('inverts a single excitatory synapse exactly (closed form against the solver)', () => {
    for (const [g, ePlus, theta, u0] of [
      [0.7, 9.5, 1, 0],
      [2.3, 5.5, 1.04, -0.002],
      [0.05, 30, 0.97, 0.001],
    ]) {
      const t = reference([0], [g], [0], [u0], ePlus, -5, theta, false);
      expect(excitatoryFromTime(t, u0, { ePlus, eMinus: -5, theta, ideal: false })).toBeCloseTo(g, 10);
      const ti = reference([0], [g], [0], [u0], 1, -1, 1, true);
      expect(excitatoryFromTime(ti, u0, { ePlus: 1, eMinus: -1, theta: 1, ideal: true })).toBeCloseTo(g, 10);
    }
    expect(excitatoryFromTime(-1, 0, { ePlus: 9, eMinus: -5, theta: 1, ideal: false })).toBeNaN();
  });

  it('recovers an inhibitory conductance from its pair time with a known excitatory one', () => {
    for (const [gE, gI, ePlus, eMinus, u0] of [
      [1.2, 0.3, 9.5, -6.25, 0],
      [0.8, 0.5, 5.5, -4, -0.001],
      [2, 0.05, 12, -8, 0.002],
    ]) {
      const t = reference([0], [gE], [gI], [u0], ePlus, eMinus, 1, false);
      expect(inhibitoryFromPairTime(t, gE, u0, { ePlus, eMinus, theta: 1, ideal: false })).toBeCloseTo(gI, 8);
      const ti = reference([0], [gE], [gI], [u0], 1, -1, 1, true);
      expect(inhibitoryFromPairTime(ti, gE, u0, { ePlus: 1, eMinus: -1, theta: 1, ideal: true })).toBeCloseTo(gI, 10);
    }
    // Faster than the excitatory synapse alone allows: no solution.
    expect(inhibitoryFromPairTime(0.01, 1, 0, { ePlus: 9.5, eMinus: -6, theta: 1, ideal: false })).toBeNaN();
  });

  it('with a capacitance slope, inverts single and paired synapses against the sloped crossing', () => {
    const one = (g: number[], gi: number[], u0: number) => ({
      count: 1,
      times: Float64Array.of(0),
      gE: Float64Array.from(g),
      gI: Float64Array.from(gi),
      kick: Float64Array.of(u0),
    });
    for (const [gE, gI, ePlus, eMinus, theta, u0, capSlope] of [
      [1.2, 0.3, 9.5, -6.25, 1, 0, 0.025],
      [0.8, 0.5, 5.5, -4, 1.03, -0.5, 0.06],
      [2, 0.05, 12, -8, 0.97, 0.002, -0.04],
    ]) {
      const phys = { ePlus, eMinus, theta, ideal: false, capSlope };
      const tE = neuronCrossing(one([gE], [0], u0), phys);
      expect(excitatoryFromTime(tE, u0, phys)).toBeCloseTo(gE, 10);
      expect(excitatoryTime(gE, u0, phys)).toBeCloseTo(tE, 12);
      const tPair = neuronCrossing(one([gE], [gI], u0), phys);
      expect(inhibitoryFromPairTime(tPair, gE, u0, phys)).toBeCloseTo(gI, 8);
      // The slope matters at this precision: ignoring it misreads the conductance.
      expect(Math.abs(excitatoryFromTime(tE, u0, { ...phys, capSlope: 0 }) - gE)).toBeGreaterThan(1e-4);
    }
  });
});
