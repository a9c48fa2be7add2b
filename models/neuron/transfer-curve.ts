/**
 * Gate voltage -> synapse current: the transistor transfer curve `f` of docs/MODEL.md §8, eq. (11).
 *
 * EKV-style interpolation between weak and strong inversion (saturation, forward current only):
 *   I0 = gain * Is * softplus(vov / (2 n UT))^2,    Is = 2 n kp (W/L) UT^2
 * with `vov` the gate overdrive (Vgs - Vth for NMOS, Vsg - |Vth| for PMOS). Above threshold this is
 * the square law (kp/2n)(W/L) vov^2; below it the exponential Is exp(vov / (n UT)). I0 is the current
 * extrapolated to Vds = 0; the drain current is I0 (1 + lambda Vds) (channel-length modulation),
 * which units.ts turns into a conductance and a reversal potential.
 */

import type { Polarity } from './units.ts';

export interface MosfetParams {
  polarity: Polarity;
  /** Threshold voltage, volts; signed as in SPICE cards (NMOS > 0, PMOS < 0). */
  vth: number;
  /** Process transconductance mu * Cox, A/V^2. */
  kp: number;
  /** Width and length, metres. */
  w: number;
  l: number;
  /** Subthreshold slope factor. */
  n: number;
  /** Channel-length modulation, 1/V. */
  lambda: number;
}

/** One transistor's deviation from nominal: threshold shift (volts, on |Vth|) and current gain factor. */
export interface MosfetMismatch {
  dVth: number;
  gain: number;
}

export const NO_MISMATCH: MosfetMismatch = Object.freeze({ dVth: 0, gain: 1 });

/** kT/q in volts. */
export function thermalVoltage(temperatureC: number): number {
  return (1.380649e-23 * (temperatureC + 273.15)) / 1.602176634e-19;
}

export function specificCurrent(p: MosfetParams, temperatureC: number): number {
  const ut = thermalVoltage(temperatureC);
  return 2 * p.n * p.kp * (p.w / p.l) * ut * ut;
}

/** log(1 + e^x) without overflow or loss of precision for large |x|. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** Gate overdrive for a gate voltage (referenced to ground; PMOS source at the supply). */
function overdrive(p: MosfetParams, vGate: number, supply: number, m: MosfetMismatch): number {
  const vthAbs = Math.abs(p.vth) + m.dVth;
  return p.polarity === 'nmos' ? vGate - vthAbs : supply - vGate - vthAbs;
}

/** I0 (amperes) at gate voltage `vGate`. Monotone: increasing in vGate for NMOS, decreasing for PMOS. */
export function drainCurrent(p: MosfetParams, vGate: number, supply: number, temperatureC: number, m: MosfetMismatch = NO_MISMATCH): number {
  const ut = thermalVoltage(temperatureC);
  const sp = softplus(overdrive(p, vGate, supply, m) / (2 * p.n * ut));
  return m.gain * specificCurrent(p, temperatureC) * sp * sp;
}

/**
 * Inverse of drainCurrent: the gate voltage that yields I0 = `current` (> 0). Used to map trained
 * conductances to gate voltages (and, through the DAC, to codes).
 */
export function gateVoltageFor(p: MosfetParams, current: number, supply: number, temperatureC: number, m: MosfetMismatch = NO_MISMATCH): number {
  if (!(current > 0) || !Number.isFinite(current)) {
    throw new RangeError(`current must be positive and finite, got ${current}`);
  }
  const ut = thermalVoltage(temperatureC);
  const y = Math.sqrt(current / (m.gain * specificCurrent(p, temperatureC)));
  // softplus^-1(y) = log(expm1(y)); for large y, y + log1p(-exp(-y)) avoids overflow.
  const x = y > 30 ? y + Math.log1p(-Math.exp(-y)) : Math.log(Math.expm1(y));
  const vov = 2 * p.n * ut * x;
  const vthAbs = Math.abs(p.vth) + m.dVth;
  return p.polarity === 'nmos' ? vthAbs + vov : supply - vthAbs - vov;
}
