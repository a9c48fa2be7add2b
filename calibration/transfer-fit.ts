/**
 * Fitting transfer curves to measured conductances: a per-chip curve family per polarity and layer
 * (threshold, slope factor, current scale), and per-transistor mismatch (threshold shift, gain)
 * around it. Works in log-conductance, where the EKV curve of models/neuron/transfer-curve.ts reads
 *
 *   ln g = lnScale + ln(gain) + 2 ln softplus(vov / (2 n UT)),  vov = Vg - |Vth| - dVth   (NMOS)
 *                                                              vov = VDD - Vg - |Vth| - dVth (PMOS)
 *
 * with g the normalised conductance (g t0 / C, units.ts) and lnScale = ln(Is lambda t0 / C).
 * In weak inversion a threshold shift and a gain are the same thing (both scale the exponential),
 * so per-transistor fits carry Gaussian priors (the sky130 mismatch magnitudes) and the MAP
 * estimate splits them; the conductance they predict is what the data pins down.
 */

import type { MosfetParams } from '../models/neuron/transfer-curve.ts';
import { thermalVoltage } from '../models/neuron/transfer-curve.ts';
import { levenbergMarquardt } from './lm.ts';

export interface CurveFamily {
  polarity: 'nmos' | 'pmos';
  /** |Vth|, volts. */
  vth: number;
  n: number;
  /** ln of the normalised conductance scale Is * lambda * t0 / C. */
  lnScale: number;
}

export interface CurveContext {
  supply: number;
  temperatureC: number;
}

/** Priors of the per-transistor fit: sigma of the threshold shift (V) and of ln(gain). */
export const SYNAPSE_PRIOR = { dVth: 0.02, lnGain: 0.05 };

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function overdrive(f: CurveFamily, v: number, ctx: CurveContext, dVth: number): number {
  return f.polarity === 'nmos' ? v - f.vth - dVth : ctx.supply - v - f.vth - dVth;
}

/** ln g at gate voltage v for one transistor. */
export function logConductance(f: CurveFamily, v: number, ctx: CurveContext, dVth = 0, lnGain = 0): number {
  const ut = thermalVoltage(ctx.temperatureC);
  return f.lnScale + lnGain + 2 * Math.log(softplus(overdrive(f, v, ctx, dVth) / (2 * f.n * ut)));
}

export interface SynapseObservations {
  count: number;
  volts: Float64Array;
  /** ln of the measured conductance. */
  lnG: Float64Array;
  /** 1 / variance of lnG. */
  weight: Float64Array;
}

/**
 * MAP (dVth, ln gain) of one transistor around its family: Gauss-Newton on the weighted log
 * residuals plus the priors. Starts from (dVth0, lnGain0); with no observations returns the priors' mean.
 */
export function fitSynapse(
  f: CurveFamily,
  ctx: CurveContext,
  obs: SynapseObservations,
  dVth0 = 0,
  lnGain0 = 0,
  iterations = 4,
): { dVth: number; lnGain: number } {
  if (obs.count === 0) return { dVth: 0, lnGain: 0 };
  const ut = thermalVoltage(ctx.temperatureC);
  const pv = 1 / (SYNAPSE_PRIOR.dVth * SYNAPSE_PRIOR.dVth);
  const pg = 1 / (SYNAPSE_PRIOR.lnGain * SYNAPSE_PRIOR.lnGain);
  let d = dVth0;
  let g = lnGain0;
  for (let it = 0; it < iterations; it++) {
    let a11 = pv;
    let a12 = 0;
    let a22 = pg;
    let b1 = -pv * d;
    let b2 = -pg * g;
    for (let k = 0; k < obs.count; k++) {
      const x = overdrive(f, obs.volts[k], ctx, d) / (2 * f.n * ut);
      // softplus and sigmoid share one exponential (this loop is the projection's hot spot).
      const e = Math.exp(-Math.abs(x));
      const sp = (x > 0 ? x : 0) + Math.log1p(e);
      const sig = x >= 0 ? 1 / (1 + e) : e / (1 + e);
      const r = obs.lnG[k] - (f.lnScale + g + 2 * Math.log(sp));
      const jd = -sig / (sp * f.n * ut);
      const w = obs.weight[k];
      a11 += w * jd * jd;
      a12 += w * jd;
      a22 += w;
      b1 += w * jd * r;
      b2 += w * r;
    }
    const det = a11 * a22 - a12 * a12;
    if (!(det > 0)) break;
    const dd = (a22 * b1 - a12 * b2) / det;
    const dg = (a11 * b2 - a12 * b1) / det;
    d += Math.max(-0.05, Math.min(0.05, dd));
    g += Math.max(-0.5, Math.min(0.5, dg));
    if (Math.abs(dd) < 1e-7 && Math.abs(dg) < 1e-6) break;
  }
  return { dVth: d, lnGain: g };
}

export interface PooledObservations {
  volts: Float64Array;
  lnG: Float64Array;
  weight: Float64Array;
  /** The transistor's current shift and ln gain (held fixed while the family moves). */
  dVth: Float64Array;
  lnGain: Float64Array;
}

/** Fits a family's (vth, n, lnScale) to pooled observations with the transistors' mismatch held fixed. */
export function fitFamily(start: CurveFamily, ctx: CurveContext, obs: PooledObservations): CurveFamily {
  const m = obs.volts.length;
  if (m < 3) return { ...start };
  const sw = obs.weight.map(Math.sqrt);
  const res = (p: Float64Array): Float64Array => {
    const f: CurveFamily = { polarity: start.polarity, vth: p[0], n: p[1], lnScale: p[2] };
    const r = new Float64Array(m + 1);
    for (let k = 0; k < m; k++) r[k] = sw[k] * (logConductance(f, obs.volts[k], ctx, obs.dVth[k], obs.lnGain[k]) - obs.lnG[k]);
    // A weak prior keeps |Vth| where the weak-inversion data cannot place it (it trades with lnScale).
    r[m] = (p[0] - start.vth) / 0.2;
    return r;
  };
  const fit = levenbergMarquardt(res, [start.vth, start.n, start.lnScale], {
    steps: [1e-5, 1e-5, 1e-6],
    lower: [-0.5, 0.8, -60],
    upper: [1.5, 3, 60],
    maxIterations: 30,
  });
  return { polarity: start.polarity, vth: fit.params[0], n: fit.params[1], lnScale: fit.params[2] };
}

/** The family at the nominal device (its conductance scale at the given lambda, C and t0). */
export function familyFromMosfet(p: MosfetParams, ctx: CurveContext, capacitance: number, t0: number): CurveFamily {
  const ut = thermalVoltage(ctx.temperatureC);
  const is = 2 * p.n * p.kp * (p.w / p.l) * ut * ut;
  return { polarity: p.polarity, vth: Math.abs(p.vth), n: p.n, lnScale: Math.log((is * p.lambda * t0) / capacitance) };
}

/** MosfetParams reproducing a family (W, L from `like`; kp absorbs the scale at the given lambda). */
export function familyToMosfet(f: CurveFamily, like: MosfetParams, lambda: number, ctx: CurveContext, capacitance: number, t0: number): MosfetParams {
  const ut = thermalVoltage(ctx.temperatureC);
  const kp = (Math.exp(f.lnScale) * capacitance) / (2 * f.n * (like.w / like.l) * ut * ut * lambda * t0);
  return { polarity: f.polarity, vth: f.polarity === 'nmos' ? f.vth : -f.vth, kp, w: like.w, l: like.l, n: f.n, lambda };
}
