import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { drainCurrent, gateVoltageFor, specificCurrent, thermalVoltage, type MosfetParams } from '../../../models/neuron/transfer-curve.ts';

const nmos: MosfetParams = { polarity: 'nmos', vth: 0.5, kp: 250e-6, w: 1e-6, l: 0.25e-6, n: 1.3, lambda: 0.4 };
const pmos: MosfetParams = { polarity: 'pmos', vth: -0.45, kp: 60e-6, w: 1e-6, l: 0.25e-6, n: 1.35, lambda: 0.5 };

describe('EKV transfer curve', () => {
  it('thermal voltage at 27 C is about 25.85 mV', () => {
    expect(thermalVoltage(27)).toBeCloseTo(0.025865, 5);
  });

  it('is the square law far above threshold and exponential far below', () => {
    const square = (vov: number) => (nmos.kp / (2 * nmos.n)) * (nmos.w / nmos.l) * vov * vov;
    // softplus(x)^2 -> x^2 for large x: within a few percent at 0.8 V of overdrive.
    expect(drainCurrent(nmos, 1.3, 1.8, 27) / square(0.8)).toBeCloseTo(1, 1);
    const ut = thermalVoltage(27);
    const weak = (vov: number) => specificCurrent(nmos, 27) * Math.exp(vov / (nmos.n * ut));
    expect(drainCurrent(nmos, 0.1, 1.8, 27) / weak(-0.4)).toBeCloseTo(1, 2);
    // About one decade per n UT ln 10 = 77 mV in weak inversion.
    expect(drainCurrent(nmos, 0.1, 1.8, 27) / drainCurrent(nmos, 0.1 - nmos.n * ut * Math.LN10, 1.8, 27)).toBeCloseTo(10, 1);
  });

  it('PMOS conducts more as its gate goes down', () => {
    expect(drainCurrent(pmos, 1.2, 1.8, 27)).toBeGreaterThan(drainCurrent(pmos, 1.4, 1.8, 27));
    expect(drainCurrent(pmos, 1.8, 1.8, 27)).toBeLessThan(1e-11);
  });

  it('mismatch: a threshold shift moves the curve, gain scales it', () => {
    const i = drainCurrent(nmos, 0.3, 1.8, 27);
    expect(drainCurrent(nmos, 0.35, 1.8, 27, { dVth: 0.05, gain: 1 })).toBeCloseTo(i, 20);
    expect(drainCurrent(nmos, 0.3, 1.8, 27, { dVth: 0, gain: 1.1 }) / i).toBeCloseTo(1.1, 12);
  });

  it('gateVoltageFor inverts drainCurrent (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1.8, noNaN: true }), fc.boolean(), (v, isN) => {
        const p = isN ? nmos : pmos;
        const i = drainCurrent(p, v, 1.8, 27, { dVth: 0.01, gain: 0.9 });
        expect(gateVoltageFor(p, i, 1.8, 27, { dVth: 0.01, gain: 0.9 })).toBeCloseTo(v, 9);
      }),
    );
    expect(() => gateVoltageFor(nmos, 0, 1.8, 27)).toThrow(/current/);
  });
});
