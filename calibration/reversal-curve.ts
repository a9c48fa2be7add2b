/**
 * Reversal potentials as a function of the gate (docs/MODEL.md §8): a calibrated layer's E+(Vg) and
 * E-(Vg), and the drive match the code mapping makes with them.
 *
 * On sky130 a synapse's reversal potential moves with its gate (E+ 5.8 at Vg 0.35 V to 6.9 at 0.65 V,
 * E- -2.9 to -3.3), while the twin has one E+ and one E- per network. Calibration fits the scalar at
 * the codes it probes (strong ones: a lone synapse must fire inside the window), and each fitted
 * conductance absorbs it: g_fit (E_fit - u) matches the device there. Deployment uses weaker codes,
 * where the device's E is lower and its drive g (E(code) - u) falls short of the fit's. The layer's
 * curve is the fitted scalar across the probed gates and, beyond them, the bundled card's E(Vg)
 * (sky130-curves.ts) relative to its value at the nearer probed edge; the mapping then makes a
 * synapse's drive at a representative membrane level uRef match the twin's:
 * g_fit(code) (E(code) - uRef) / (E_fit - uRef) = g_twin (docs/MODEL.md §8 compares the variants).
 */

import { sky130NominalCurves } from '../models/chips/sky130-curves.ts';

/** A layer's E+ (NMOS) and E- (PMOS) against gate voltage, units of u; linear between knots, held beyond. */
export interface ReversalCurve {
  vStart: number;
  vStep: number;
  ePlus: Float64Array;
  eMinus: Float64Array;
}

/**
 * The membrane level the mapping matches drives at: mid-way from rest to threshold. On Iris (16-8-4,
 * behavioural die 5) 0.5 deployed at the twin's accuracy, 0.3 and 0.8 two points below.
 */
export const DRIVE_MATCH_UREF = 0.5;
/** Knot spacing, volts (the card's E is smooth on it; a DAC code is about 1.8 mV). */
const STEP = 0.01;

/** The card's E at `v`, null where the device is off. */
function cardReversal(pmos: boolean, v: number): number | null {
  return sky130NominalCurves().reversal(pmos ? 'pmos' : 'nmos', v);
}

/**
 * A layer's reversal curve: the fitted scalar between the lowest and highest probed gate of each
 * polarity (`probeVolts`), where each fitted conductance has absorbed the device's E; beyond them the
 * card's E(Vg) relative to its value at the nearer probed edge, times the scalar. `null` ratios (the
 * card's device off) take the nearest knot's value; a polarity without probes keeps its scalar.
 */
export function reversalCurveFor(fitted: { ePlus: number; eMinus: number }, probeVolts: { nmos: readonly number[]; pmos: readonly number[] }): ReversalCurve {
  const [vLo, vHi] = sky130NominalCurves().gateRange;
  const count = Math.round((vHi - vLo) / STEP) + 1;
  const curve = (pmos: boolean, probed: readonly number[], scalar: number): Float64Array => {
    const out = new Float64Array(count).fill(scalar);
    if (probed.length === 0) return out;
    const lo = Math.min(...probed);
    const hi = Math.max(...probed);
    const atLo = cardReversal(pmos, lo);
    const atHi = cardReversal(pmos, hi);
    // Outward from each edge, so an off knot holds the value next to it.
    for (const [from, to, dir, edge] of [
      [Math.ceil((lo - vLo) / STEP) - 1, -1, -1, atLo],
      [Math.floor((hi - vLo) / STEP) + 1, count, 1, atHi],
    ] as const) {
      let last = scalar;
      for (let k = from; k !== to; k += dir) {
        const e = cardReversal(pmos, Math.min(vHi, vLo + k * STEP));
        if (e !== null && edge !== null) last = (scalar * e) / edge;
        out[k] = last;
      }
    }
    return out;
  };
  return {
    vStart: vLo,
    vStep: STEP,
    ePlus: curve(false, probeVolts.nmos, fitted.ePlus),
    eMinus: curve(true, probeVolts.pmos, fitted.eMinus),
  };
}

/** E of a polarity at gate `v` (effective: the transistor's threshold shift applied). */
export function reversalAt(c: ReversalCurve, pmos: boolean, v: number): number {
  const e = pmos ? c.eMinus : c.ePlus;
  const x = Math.min(e.length - 1, Math.max(0, (v - c.vStart) / c.vStep));
  const j = Math.min(e.length - 2, Math.floor(x));
  const t = x - j;
  return e[j]! + t * (e[j + 1]! - e[j]!);
}

/**
 * The drive factor of a synapse at effective gate `v` against the fitted scalar `eFit`: its drive at
 * uRef over what g_fit (eFit - uRef) says. 1 where the curve equals the scalar.
 */
export function driveFactor(c: ReversalCurve, pmos: boolean, v: number, eFit: number, uRef = DRIVE_MATCH_UREF): number {
  return (reversalAt(c, pmos, v) - uRef) / (eFit - uRef);
}
