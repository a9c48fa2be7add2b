// The sloped-capacitance interval against an independent reference: (1 + k u) du/dt = A - G u
// integrated by classical Runge-Kutta in fine steps, and its partials against central differences.
import { describe, expect, it } from 'vitest';
import { phi1, timeToThreshold } from '../../../models/solvers/exact.ts';
import { dhLog, hLog, slopedAdvance, slopedPartials, slopedTime, slopedTimeToThreshold } from '../../../models/solvers/sloped-membrane.ts';
import { mulberry } from '../rng.ts';

/** u after time d by RK4 with n steps. */
function rk4(u0: number, d: number, G: number, A: number, k: number, n = 4000): number {
  const f = (u: number) => (A - G * u) / (1 + k * u);
  const h = d / n;
  let u = u0;
  for (let i = 0; i < n; i++) {
    const a = f(u);
    const b = f(u + 0.5 * h * a);
    const c = f(u + 0.5 * h * b);
    const e = f(u + h * c);
    u += (h / 6) * (a + 2 * b + 2 * c + e);
  }
  return u;
}

/** Random intervals: strong and weak G (down to 0), drives up and down, slopes of either sign. */
function cases(seed: number, count: number) {
  const r = mulberry(seed);
  return Array.from({ length: count }, () => {
    const G = r() < 0.15 ? 0 : r() < 0.3 ? 1e-7 * r() : 3 * r();
    const A = (r() - 0.3) * 4;
    return { u0: (r() - 0.5) * 1.5, d: 0.05 + r() * 1.5, G, A, k: (r() - 0.5) * 0.2 };
  });
}

describe('hLog', () => {
  it('joins its series and closed form at the switch', () => {
    for (const y of [0.0499999, 0.05, 0.0500001]) {
      expect(hLog(y)).toBeCloseTo((-Math.log1p(-y) - y) / (y * y), 12);
      expect(dhLog(y)).toBeCloseTo((hLog(y + 1e-6) - hLog(y - 1e-6)) / 2e-6, 7);
    }
    expect(hLog(0)).toBe(0.5);
    expect(dhLog(0)).toBeCloseTo(1 / 3, 15);
  });
});

describe('slopedAdvance', () => {
  it('follows Runge-Kutta integration of (1 + k u) du/dt = A - G u', () => {
    for (const c of cases(1, 200)) {
      const u1 = slopedAdvance(c.u0, c.d, c.G, c.A, c.k);
      expect(Math.abs(u1 - rk4(c.u0, c.d, c.G, c.A, c.k))).toBeLessThan(1e-9 * (1 + Math.abs(u1)));
      // and its time is the interval's
      if (u1 !== c.u0) expect(slopedTime(c.u0, u1 - c.u0, c.G, c.A, c.k)).toBeCloseTo(c.d, 9);
    }
  });

  it('is eq. (2) exactly without a slope', () => {
    for (const c of cases(2, 50)) {
      const ref = c.u0 * Math.exp(-c.G * c.d) + c.A * c.d * phi1(c.G * c.d);
      expect(Math.abs(slopedAdvance(c.u0, c.d, c.G, c.A, 0) - ref)).toBeLessThan(1e-14 * (1 + Math.abs(ref)));
    }
  });
});

describe('slopedTimeToThreshold', () => {
  it('is the time at which the integrated membrane reaches theta', () => {
    let crossed = 0;
    for (const c of cases(3, 200)) {
      const theta = c.u0 + 0.05 + Math.abs(c.A) * 0.3;
      const T = slopedTimeToThreshold(c.u0, c.G, c.A, theta, c.k);
      if (T === Infinity) {
        // never: the asymptote is below theta (or the drive points down)
        expect(c.G > 0 ? c.A / c.G <= theta : c.A <= 0).toBe(true);
        continue;
      }
      crossed++;
      expect(rk4(c.u0, T, c.G, c.A, c.k)).toBeCloseTo(theta, 8);
      // k = 0 agrees with eq. (3)
      expect(slopedTimeToThreshold(c.u0, c.G, c.A, theta, 0)).toBeCloseTo(timeToThreshold(c.u0, c.G, c.A, theta), 10);
    }
    expect(crossed).toBeGreaterThan(80);
  });
});

describe('slopedPartials', () => {
  it('match central differences of slopedAdvance', () => {
    const out = { du0: 0, dA: 0, dG: 0 };
    for (const c of cases(4, 150)) {
      const u1 = slopedAdvance(c.u0, c.d, c.G, c.A, c.k);
      if (u1 === c.u0) continue;
      slopedPartials(c.u0, u1, c.G, c.A, c.k, out);
      const e = 1e-6;
      const fd = (f: (x: number) => number, x: number) => (f(x + e) - f(x - e)) / (2 * e);
      const tol = (v: number) => 1e-5 * (1 + Math.abs(v));
      const du0 = fd((x) => slopedAdvance(x, c.d, c.G, c.A, c.k), c.u0);
      const dA = fd((x) => slopedAdvance(c.u0, c.d, c.G, x, c.k), c.A);
      expect(Math.abs(out.du0 - du0)).toBeLessThan(tol(du0));
      expect(Math.abs(out.dA - dA)).toBeLessThan(tol(dA));
      if (c.G > e) {
        const dG = fd((x) => slopedAdvance(c.u0, c.d, x, c.A, c.k), c.G);
        expect(Math.abs(out.dG - dG)).toBeLessThan(tol(dG));
      }
    }
  });
});
