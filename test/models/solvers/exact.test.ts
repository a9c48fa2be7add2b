import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeLayer, type LayerSpec, type PnnLayer } from '../../../models/neuron/layer.ts';
import { exactBackward, exactForward, exactNetworkBackward, exactNetworkForward } from '../../../models/solvers/exact.ts';
import { mulberry } from '../rng.ts';

const one = (spec: Partial<LayerSpec> & { gE?: number[]; gI?: number[] }): PnnLayer =>
  makeLayer({ nIn: spec.gE?.length ?? 1, nOut: 1, ePlus: 4, eMinus: -2, ...spec } as LayerSpec);

const run = (layer: PnnLayer, x: number[]): number => exactForward(layer, Float64Array.from(x), 1).times[0];

/** Closed form (2)-(3) for one input switched on at t0 from u = 0, textbook (log) form. */
function closedForm(gE: number, gI: number, ePlus: number, eMinus: number, gL: number, t0: number, theta = 1): number {
  const G = gE + gI + gL;
  const U = (gE * ePlus + gI * eMinus) / G;
  return U > theta ? t0 + Math.log(U / (U - theta)) / G : Infinity;
}

/** Independent reference: classic RK4 on eq. (1) with fine steps, crossing by linear interpolation. */
function rk4Reference(layer: PnnLayer, x: Float64Array, steps: number): Float64Array {
  const { nIn, nOut, gE, gI, ePlus, eMinus, horizon } = layer;
  const out = new Float64Array(nOut).fill(Infinity);
  const h = horizon / steps;
  for (let i = 0; i < nOut; i++) {
    const theta = layer.thresholdScale?.[i] ?? 1;
    const gl = layer.gL?.[i] ?? 0;
    const f = (t: number, u: number) => {
      let du = -gl * u;
      for (let j = 0; j < nIn; j++) {
        if (!(x[j] <= t)) continue;
        const ge = gE[j * nOut + i];
        const gi = gI[j * nOut + i];
        du += layer.model === 'pnn' ? ge * (ePlus - u) + gi * (eMinus - u) : ge * ePlus + gi * eMinus;
      }
      return du;
    };
    let u = 0;
    for (let n = 0; n < steps; n++) {
      const t = n * h;
      // Inputs switching inside a step would make RK4 first order: the tests put inputs on the grid.
      const k1 = f(t, u);
      const k2 = f(t + h / 2, u + (h / 2) * k1);
      const k3 = f(t + h / 2, u + (h / 2) * k2);
      const k4 = f(t + h - 1e-12, u + h * k3);
      const next = u + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4);
      if (next >= theta) {
        out[i] = t + (h * (theta - u)) / (next - u);
        break;
      }
      u = next;
    }
  }
  return out;
}

describe('exactForward: one neuron against closed forms', () => {
  it('one excitatory input matches eq. (3)', () => {
    for (const [gE, ePlus, t0] of [
      [0.5, 4, 0],
      [2, 1.5, 0.1],
      [0.3, 9.5, 0.25],
    ]) {
      const t = run(one({ gE: [gE], ePlus, horizon: 100 }), [t0]);
      expect(t).toBeCloseTo(closedForm(gE, 0, ePlus, -2, 0, t0), 12);
    }
  });

  it('mixed E/I on one input, with leak and threshold scale', () => {
    const layer = one({ gE: [1.2], gI: [0.3], ePlus: 5, eMinus: -3, gL: [0.4], thresholdScale: [1.3], horizon: 50 });
    expect(run(layer, [0.2])).toBeCloseTo(closedForm(1.2, 0.3, 5, -3, 0.4, 0.2, 1.3), 12);
  });

  it('two inputs: piecewise closed form', () => {
    const layer = one({ gE: [0.4, 0.8], ePlus: 3, horizon: 10 });
    // Input 0 from 0.1 to 0.5 alone, then both.
    const u1 = 3 * (1 - Math.exp(-0.4 * 0.4));
    const G = 1.2;
    const expected = 0.5 + Math.log((3 - u1) / (3 - 1)) / G;
    expect(run(layer, [0.1, 0.5])).toBeCloseTo(expected, 12);
  });

  it('the ideal model is piecewise linear', () => {
    const layer = one({ model: 'ideal', gE: [0.5, 0], gI: [0, 0.25], ePlus: 2, eMinus: -2 });
    // Slopes: +1 from 0.2, then +0.5 from 0.6: u(0.6) = 0.4, fires at 0.6 + 0.6/0.5 = 1.8 > horizon 1.
    expect(run(layer, [0.2, 0.6])).toBe(Infinity);
    const long = one({ model: 'ideal', gE: [0.5, 0], gI: [0, 0.25], ePlus: 2, eMinus: -2, horizon: 2 });
    expect(run(long, [0.2, 0.6])).toBeCloseTo(1.8, 13);
  });

  it('approaches the ideal model as the reversal potentials go to infinity', () => {
    const w = [0.9, -0.3, 0.6];
    const ideal = one({ model: 'ideal', gE: w.map((x) => Math.max(x, 0)), gI: w.map((x) => Math.max(-x, 0)), ePlus: 1, eMinus: -1, horizon: 5 });
    const x = [0.05, 0.3, 0.4];
    const tIdeal = run(ideal, x);
    let prevErr = Infinity;
    for (const big of [1e2, 1e4, 1e6, 1e8]) {
      const pnn = one({ gE: w.map((v) => Math.max(v, 0) / big), gI: w.map((v) => Math.max(-v, 0) / big), ePlus: big, eMinus: -big, horizon: 5 });
      const err = Math.abs(run(pnn, x) - tIdeal);
      expect(err).toBeLessThan(prevErr);
      prevErr = err;
    }
    expect(prevErr).toBeLessThan(1e-7);
  });

  it('a neuron that never reaches threshold is silent', () => {
    // U = ePlus * gE / (gE + gI) = 1: approaches threshold only asymptotically.
    expect(run(one({ gE: [1], ePlus: 1, horizon: Infinity }), [0])).toBe(Infinity);
    expect(run(one({ gE: [3], gI: [3], ePlus: 4, eMinus: -2, horizon: Infinity }), [0])).toBe(Infinity);
    expect(run(one({ gE: [0], gI: [5], horizon: Infinity }), [0])).toBe(Infinity);
    expect(run(one({ gE: [1] }), [Infinity])).toBe(Infinity);
    // Would fire at ~0.288 + 0.9: past the horizon.
    expect(run(one({ gE: [1] }), [0.9])).toBe(Infinity);
    // With an infinite horizon the same neuron fires.
    expect(run(one({ gE: [1], horizon: Infinity }), [0.9])).toBeCloseTo(closedForm(1, 0, 4, -2, 0, 0.9), 12);
  });

  it('the delay shifts the output and counts against the horizon', () => {
    const t = closedForm(1, 0, 4, -2, 0, 0.2);
    expect(run(one({ gE: [1], delay: [0.1] }), [0.2])).toBeCloseTo(t + 0.1, 12);
    expect(run(one({ gE: [1], delay: [1 - t + 1e-9] }), [0.2])).toBe(Infinity);
  });

  it('inputs after the neuron fired change nothing', () => {
    const layer = one({ gE: [1, 0], gI: [0, 50], horizon: 10 });
    const t = run(layer, [0, Infinity]);
    expect(run(layer, [0, t + 1e-6])).toBe(t);
    expect(run(layer, [0, t - 0.01])).toBeGreaterThan(t);
  });

  it('a kick that crosses threshold fires at the input time; a smaller one shortens the path', () => {
    expect(run(one({ gE: [0.1], kick: [1.2] }), [0.3])).toBe(0.3);
    const G = 1;
    const u0 = 0.5;
    const expected = 0.3 + Math.log((4 - u0) / (4 - 1)) / G;
    expect(run(one({ gE: [1], kick: [u0] }), [0.3])).toBeCloseTo(expected, 12);
  });

  it('is stable as G -> 0 (no NaN, tends to the ideal ramp)', () => {
    for (const g of [1e-8, 1e-12, 1e-20, 1e-300]) {
      // A = 1, G = g: t = 0.5 - log1p(-g)/g = 0.5 + 1 + g/2 + O(g^2).
      const t = run(one({ gE: [g], ePlus: 1 / g, horizon: 10 }), [0.5]);
      expect(Math.abs(t - (1.5 + g / 2))).toBeLessThan(1e-14);
    }
    expect(run(one({ gE: [0], ePlus: 4 }), [0])).toBe(Infinity);
    expect(run(one({ gE: [1e-300], ePlus: 4, gL: [1e-300] }), [0])).toBe(Infinity);
  });

  it('agrees with fine-step RK4 on random layers (pnn and ideal)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.constantFrom<'pnn' | 'ideal'>('pnn', 'ideal'), (seed, model) => {
        const rnd = mulberry(seed);
        const nIn = 5;
        const nOut = 3;
        const steps = 4000;
        const layer = makeLayer({
          nIn,
          nOut,
          model,
          gE: Array.from({ length: nIn * nOut }, () => rnd() * 1.5),
          gI: Array.from({ length: nIn * nOut }, () => rnd() * 0.5),
          ePlus: 2 + 4 * rnd(),
          eMinus: -1 - 3 * rnd(),
          gL: Array.from({ length: nOut }, () => rnd() * 0.5),
          thresholdScale: Array.from({ length: nOut }, () => 0.8 + 0.4 * rnd()),
        });
        // Inputs on the RK4 grid so its steps never straddle a switch.
        const x = Float64Array.from({ length: nIn }, () => (rnd() < 0.2 ? Infinity : Math.floor(rnd() * 0.6 * steps) / steps));
        const ref = rk4Reference(layer, x, steps);
        const got = exactForward(layer, x, 1).times;
        for (let i = 0; i < nOut; i++) {
          if (ref[i] === Infinity || got[i] === Infinity) {
            // Both silent, or a crossing within a hair of the horizon.
            expect(Math.min(ref[i], got[i])).toSatisfy((t: number) => t === Infinity || t > 0.999);
          } else {
            expect(Math.abs(got[i] - ref[i])).toBeLessThan(2e-6);
          }
        }
      }),
      { numRuns: 30 },
    );
  });
});

function randomSpec(rnd: () => number, nIn: number, nOut: number, model: 'pnn' | 'ideal'): LayerSpec {
  return {
    nIn,
    nOut,
    model,
    gE: Array.from({ length: nIn * nOut }, () => rnd() * 0.5),
    gI: Array.from({ length: nIn * nOut }, () => rnd() * 0.2),
    ePlus: 4,
    eMinus: -2,
    horizon: 2,
    gL: Array.from({ length: nOut }, () => rnd() * 0.3),
    kick: Array.from({ length: nIn * nOut }, () => (rnd() - 0.5) * 0.05),
    thresholdScale: Array.from({ length: nOut }, () => 0.8 + rnd() * 0.4),
    delay: Array.from({ length: nOut }, () => rnd() * 0.1),
  };
}

describe('exactBackward against central finite differences', () => {
  for (const model of ['pnn', 'ideal'] as const) {
    it(`${model}: every parameter and input time`, () => {
      const rnd = mulberry(model === 'pnn' ? 3 : 4);
      const nIn = 10;
      const nOut = 4;
      const batch = 3;
      const spec = randomSpec(rnd, nIn, nOut, model);
      const arrays = {
        gE: Float64Array.from(spec.gE as number[]),
        gI: Float64Array.from(spec.gI as number[]),
        gL: Float64Array.from(spec.gL as number[]),
        kick: Float64Array.from(spec.kick as number[]),
        thresholdScale: Float64Array.from(spec.thresholdScale as number[]),
        delay: Float64Array.from(spec.delay as number[]),
      };
      const scalars = { ePlus: spec.ePlus, eMinus: spec.eMinus };
      const x = Float64Array.from({ length: batch * nIn }, () => (rnd() < 0.15 ? Infinity : rnd()));
      const build = () => makeLayer({ ...spec, ...arrays, ...scalars });
      const t = exactForward(build(), x, batch).times;
      const fired = t.filter(Number.isFinite).length;
      expect(fired).toBeGreaterThan(batch * nOut * 0.5);
      const w = Float64Array.from(t, (v) => (Number.isFinite(v) ? rnd() - 0.5 : 0));
      const loss = () => {
        const tt = exactForward(build(), x, batch).times;
        let s = 0;
        for (let k = 0; k < tt.length; k++) if (Number.isFinite(tt[k])) s += w[k] * tt[k];
        return s;
      };
      const { grads } = exactBackward(build(), x, batch, w);
      const h = 1e-6;
      const fd = (get: () => number, set: (v: number) => void) => {
        const o = get();
        set(o + h);
        const lp = loss();
        set(o - h);
        const lm = loss();
        set(o);
        return (lp - lm) / (2 * h);
      };
      const check = (name: string, arr: Float64Array, g: Float64Array) => {
        for (let k = 0; k < arr.length; k++) {
          if (!Number.isFinite(arr[k])) continue;
          const d = fd(
            () => arr[k],
            (v) => (arr[k] = v),
          );
          expect(Math.abs(d - g[k]), `${name}[${k}]`).toBeLessThan(1e-7 + 1e-6 * Math.abs(d));
        }
      };
      for (const key of Object.keys(arrays) as (keyof typeof arrays)[]) check(key, arrays[key], grads[key]);
      check('inputTimes', x, grads.inputTimes);
      for (const key of ['ePlus', 'eMinus'] as const) {
        const d = fd(
          () => scalars[key],
          (v) => (scalars[key] = v),
        );
        expect(Math.abs(d - grads[key]), key).toBeLessThan(1e-7 + 1e-6 * Math.abs(d));
      }
    });
  }

  it('network backward equals finite differences through two layers', () => {
    const rnd = mulberry(11);
    const s0 = randomSpec(rnd, 6, 5, 'pnn');
    const s1 = randomSpec(rnd, 5, 3, 'pnn');
    s0.horizon = 1.5;
    s1.horizon = 3;
    s1.gE = (s1.gE as number[]).map((v) => v * 2);
    const g0 = Float64Array.from(s0.gE as number[]);
    const batch = 2;
    const x = Float64Array.from({ length: batch * 6 }, () => rnd() * 0.8);
    const build = () => [makeLayer({ ...s0, gE: g0 }), makeLayer(s1)];
    const times = exactNetworkForward(build(), x, batch);
    expect(times[1].filter(Number.isFinite).length).toBeGreaterThan(3);
    const w1 = Float64Array.from(times[1], (v) => (Number.isFinite(v) ? rnd() : 0));
    const w0 = Float64Array.from(times[0], (v) => (Number.isFinite(v) ? rnd() - 0.5 : 0));
    const loss = () => {
      const t = exactNetworkForward(build(), x, batch);
      let s = 0;
      for (let k = 0; k < w1.length; k++) if (Number.isFinite(t[1][k])) s += w1[k] * t[1][k];
      for (let k = 0; k < w0.length; k++) if (Number.isFinite(t[0][k])) s += w0[k] * t[0][k];
      return s;
    };
    const r = exactNetworkBackward(build(), x, batch, [w0, w1]);
    const h = 1e-6;
    // Central difference of the loss in a[k].
    const central = (a: { [k: number]: number }, k: number) => {
      const o = a[k];
      a[k] = o + h;
      const lp = loss();
      a[k] = o - h;
      const lm = loss();
      a[k] = o;
      return (lp - lm) / (2 * h);
    };
    for (let k = 0; k < g0.length; k++) {
      const d = central(g0, k);
      expect(Math.abs(d - r.grads[0].gE[k])).toBeLessThan(1e-7 + 1e-6 * Math.abs(d));
    }
    for (let k = 0; k < x.length; k++) expect(Math.abs(central(x, k) - r.inputTimes[k])).toBeLessThan(1e-6);
  });

  it('gradients are finite for any input pattern, including all-silent (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.array(fc.oneof(fc.constant(Infinity), fc.double({ min: -0.5, max: 3, noNaN: true })), { minLength: 8, maxLength: 8 }),
        fc.constantFrom<'pnn' | 'ideal'>('pnn', 'ideal'),
        (seed, xs, model) => {
          const rnd = mulberry(seed);
          const spec = randomSpec(rnd, 4, 3, model);
          spec.gE = (spec.gE as number[]).map((v) => (rnd() < 0.3 ? 0 : v * 8));
          const layer = makeLayer(spec);
          const x = Float64Array.from(xs);
          const gOut = Float64Array.from({ length: 6 }, () => rnd() - 0.5);
          const { times, grads } = exactBackward(layer, x, 2, gOut);
          for (const v of times) expect(Number.isNaN(v) || v === -Infinity).toBe(false);
          for (const arr of [grads.gE, grads.gI, grads.gL, grads.kick, grads.thresholdScale, grads.delay, grads.inputTimes]) {
            for (const v of arr) expect(Number.isFinite(v)).toBe(true);
          }
          expect(Number.isFinite(grads.ePlus) && Number.isFinite(grads.eMinus)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('input validation', () => {
  const layer = one({ gE: [1] });
  it('rejects NaN and -Infinity times and wrong lengths, naming the index', () => {
    expect(() => exactForward(layer, Float64Array.of(NaN), 1)).toThrow(/inputTimes\[0\]/);
    expect(() => exactForward(layer, Float64Array.of(-Infinity), 1)).toThrow(/inputTimes\[0\]/);
    expect(() => exactForward(layer, Float64Array.of(0, 1), 1)).toThrow(/length 2/);
  });
  it('rejects negative conductances and mismatched layers', () => {
    expect(() => makeLayer({ nIn: 1, nOut: 1, gE: [-1], ePlus: 4, eMinus: -2 })).toThrow(/gE\[0\] = -1/);
    expect(() => makeLayer({ nIn: 1, nOut: 1, ePlus: Infinity, eMinus: -2 })).toThrow(/ideal/);
    const a = makeLayer({ nIn: 2, nOut: 3, ePlus: 4, eMinus: -2 });
    expect(() => exactNetworkForward([a, a], new Float64Array(2), 1)).toThrow(/layer 1 has nIn = 2/);
  });
});
