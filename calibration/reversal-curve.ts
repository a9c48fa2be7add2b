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

import { sky130DieCurves, sky130NominalCurves, type TransferCurves } from '../models/chips/sky130-curves.ts';
import { NOMINAL_CIRCUIT } from '../models/chips/sky130-nominal.ts';
import { drainCurrent, type MosfetParams } from '../models/neuron/transfer-curve.ts';

/** A layer's E+ (NMOS) and E- (PMOS) against gate voltage, units of u; linear between knots, held beyond. */
export interface ReversalCurve {
  vStart: number;
  vStep: number;
  ePlus: Float64Array;
  eMinus: Float64Array;
  /**
   * Per polarity (NMOS, PMOS), the card's conductance over the fitted family's on the same grid, relative to
   * their ratio at the nearer probed edge (1 between the edges); absent = 1 (profiles written before it).
   */
  gFactorN?: Float64Array;
  gFactorP?: Float64Array;
  /**
   * Present when the fit carried each transistor's E at its own effective gate (`reversalShape`): the gates (die volts)
   * the fitted scalars are E at, and the curve is the card's shape through them everywhere. Absent: the fitted scalar
   * across the probed gates (each conductance absorbed E there), the card beyond.
   */
  anchorN?: number;
  anchorP?: number;
  /**
   * With the anchors: the strength k of the card's shape per polarity the fit found (GlobalParams.shapeN / shapeP), the
   * curve being the scalar times the shape to the power k; absent = 1 (profiles written before it).
   */
  strengthN?: number;
  strengthP?: number;
}

/** The fitted transfer families and what evaluating them needs (for the conductance shape beyond the probed gates). */
export interface FittedFamilies {
  nmos: MosfetParams;
  pmos: MosfetParams;
  supply: number;
  temperatureC: number;
  /** The membrane's mid-swing, volts: where the card's conductance (drain slope) is taken. */
  vMid: number;
}

/** Half-width of the centred difference for the card's drain slope, volts (as models/chips/sky130-layer.ts). */
const SLOPE_DV = 0.1;
/** Process positions searched, in sigmas of the global spread (the PDK corners are +-3). */
const Z_RANGE = 4;

/**
 * The card's gate for a die gate `v`: the card's tables hold at the nominal supply, and a PMOS's source sits at the
 * supply, so a die at another supply has its PMOS at the card's gate shifted by the difference (its Vsg is what
 * matters); an NMOS's source is ground. Without it the process position absorbs the supply as a threshold shift,
 * and the card's shape at that wrong position is what the factor carries (die 706323, 13 mV above the nominal
 * supply: z_P 2.0 for its drawn 1.3, the mapping's PMOS drive +19 to +49 % over the die's 60-150 codes beyond the
 * sweep codes; docs/RESULTS.md, "Dies, this round").
 */
function cardGate(pmos: boolean, v: number, supply: number): number {
  return pmos ? v - (supply - NOMINAL_CIRCUIT.supply) : v;
}

/** ln of a curve set's conductance (drain slope at the membrane level vm), null where the device is off (below 1 pA); `v` is the card's gate. */
function lnCardConductance(card: TransferCurves, pmos: boolean, v: number, vm: number): number | null {
  const pol = pmos ? 'pmos' : 'nmos';
  const [gLo, gHi] = card.gateRange;
  const vg = Math.min(gHi, Math.max(gLo, v));
  const gc = Math.abs(card.current(pol, vg, vm + SLOPE_DV) - card.current(pol, vg, vm - SLOPE_DV)) / (2 * SLOPE_DV);
  return Math.abs(card.current(pol, vg, vm)) > 1e-12 && gc > 0 ? Math.log(gc) : null;
}

/** ln of the card's conductance over the fitted family's (drain slope I * lambda) at die gate `v`; null where either is off. */
function lnConductanceRatio(card: TransferCurves, pmos: boolean, v: number, fam: FittedFamilies): number | null {
  const p = pmos ? fam.pmos : fam.nmos;
  const lc = lnCardConductance(card, pmos, cardGate(pmos, v, fam.supply), cardMembrane(fam));
  const gf = drainCurrent(p, v, fam.supply, fam.temperatureC) * p.lambda;
  return lc !== null && gf > 0 ? lc - Math.log(gf) : null;
}

/** The membrane level the card's conductance is taken at, inside its table. */
function cardMembrane(fam: FittedFamilies): number {
  const [mLo, mHi] = sky130NominalCurves().membraneRange;
  return Math.min(mHi - SLOPE_DV, Math.max(mLo + SLOPE_DV, fam.vMid));
}

/**
 * The die's process position of one polarity (sigmas, sky130-curves.ts `DieProcess`): the z at which the card, at the
 * measured temperature, carries the fitted family's conductance at the probed gates (mean log difference zero;
 * bisection, the card's current rising with z). A global threshold shift moves a subthreshold current by about e per
 * 30 mV, the die's kp and capacitance by a few per cent, so the level places the die; the fitted slope does not (it
 * is what is off). 0 without probes.
 */
export function processPosition(pmos: boolean, probed: readonly number[], fam: FittedFamilies): number {
  if (probed.length === 0) return 0;
  const mismatch = (z: number): number => {
    const card = sky130DieCurves({ temperatureC: fam.temperatureC, zN: pmos ? 0 : z, zP: pmos ? z : 0 });
    let sum = 0;
    let n = 0;
    for (const v of probed) {
      const r = lnConductanceRatio(card, pmos, v, fam);
      if (r === null) continue;
      sum += r;
      n++;
    }
    return n ? sum / n : 0;
  };
  let lo = -Z_RANGE;
  let hi = Z_RANGE;
  if (mismatch(lo) >= 0) return lo;
  if (mismatch(hi) <= 0) return hi;
  for (let it = 0; it < 30; it++) {
    const mid = 0.5 * (lo + hi);
    if (mismatch(mid) < 0) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * The card's conductance over the fitted family's against the gate, relative to their ratio at the nearer
 * probed edge (1 between the edges). The fitted EKV family's subthreshold slope is pinned by the sweep codes
 * only; the networks sit 1/100 to 1/1000 of a sweep code's conductance below them, where the card's curve
 * bends away from a constant-slope exponential. Off knots (the card below 1 pA) hold the value next to them.
 */
function conductanceFactor(pmos: boolean, probed: readonly number[], fam: FittedFamilies, card: TransferCurves, vLo: number, count: number): Float64Array {
  const out = new Float64Array(count).fill(1);
  if (probed.length === 0) return out;
  fillBeyondProbes(
    out,
    vLo,
    probed,
    1,
    (v) => lnConductanceRatio(card, pmos, v, fam),
    (r, edge) => Math.exp(r - edge),
  );
  return out;
}

/**
 * Fills the knots of `out` (grid from `vLo`, STEP apart) below the lowest and above the highest probed
 * gate, outward from each edge: `relative(value at the knot, value at the nearer edge)` where both are
 * known, else the value of the knot before it (`start` next to the edge). The knots between the edges
 * stay as `out` holds them.
 */
function fillBeyondProbes(
  out: Float64Array,
  vLo: number,
  probed: readonly number[],
  start: number,
  valueAt: (v: number) => number | null,
  relative: (value: number, edge: number) => number,
): void {
  const lo = Math.min(...probed);
  const hi = Math.max(...probed);
  for (const [from, to, dir, edge] of [
    [Math.ceil((lo - vLo) / STEP) - 1, -1, -1, valueAt(lo)],
    [Math.floor((hi - vLo) / STEP) + 1, out.length, 1, valueAt(hi)],
  ] as const) {
    let last = start;
    for (let k = from; k !== to; k += dir) {
      const x = valueAt(vLo + k * STEP);
      if (x !== null && edge !== null) last = relative(x, edge);
      out[k] = last;
    }
  }
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
 * card's device off) take the nearest knot's value; a polarity without probes keeps its scalar. With `anchor`
 * (the fit carried each transistor's E at its own gate, `reversalShape`) the curve is the scalar times the card's
 * shape through the anchors, to the power of the fitted strength (`fitted.shapeN` / `shapeP`, default 1), everywhere,
 * and carries the anchors and the strengths.
 */
export function reversalCurveFor(
  fitted: { ePlus: number; eMinus: number; shapeN?: number; shapeP?: number },
  probeVolts: { nmos: readonly number[]; pmos: readonly number[] },
  families?: FittedFamilies,
  anchor?: { nmos: number; pmos: number },
): ReversalCurve {
  const [vLo, vHi] = sky130NominalCurves().gateRange;
  const count = Math.round((vHi - vLo) / STEP) + 1;
  const supply = families?.supply ?? NOMINAL_CIRCUIT.supply;
  if (anchor) {
    // The fit carried E per transistor (reversalShape): its conductances are the device's own, not E-absorbing ones.
    const sh = reversalShape(anchor, supply);
    const kN = fitted.shapeN ?? 1;
    const kP = fitted.shapeP ?? 1;
    return {
      ...sh,
      ePlus: sh.ePlus.map((x) => x ** kN * fitted.ePlus),
      eMinus: sh.eMinus.map((x) => x ** kP * fitted.eMinus),
      strengthN: kN,
      strengthP: kP,
      ...(families ? conductanceFactors(probeVolts, families, vLo, count) : {}),
    };
  }
  const curve = (pmos: boolean, probed: readonly number[], scalar: number): Float64Array => {
    const out = new Float64Array(count).fill(scalar);
    if (probed.length === 0) return out;
    // Outward from each edge, so an off knot holds the value next to it.
    fillBeyondProbes(
      out,
      vLo,
      probed,
      scalar,
      (v) => cardReversal(pmos, Math.min(vHi, Math.max(vLo, cardGate(pmos, v, supply)))),
      (e, edge) => (scalar * e) / edge,
    );
    return out;
  };
  return {
    vStart: vLo,
    vStep: STEP,
    ePlus: curve(false, probeVolts.nmos, fitted.ePlus),
    eMinus: curve(true, probeVolts.pmos, fitted.eMinus),
    ...(families ? conductanceFactors(probeVolts, families, vLo, count) : {}),
  };
}

/** Both polarities' conductance shapes, from the card moved to the die's estimated process point at its measured temperature. */
function conductanceFactors(
  probeVolts: { nmos: readonly number[]; pmos: readonly number[] },
  fam: FittedFamilies,
  vLo: number,
  count: number,
): { gFactorN: Float64Array; gFactorP: Float64Array } {
  const card = sky130DieCurves({
    temperatureC: fam.temperatureC,
    zN: processPosition(false, probeVolts.nmos, fam),
    zP: processPosition(true, probeVolts.pmos, fam),
  });
  return {
    gFactorN: conductanceFactor(false, probeVolts.nmos, fam, card, vLo, count),
    gFactorP: conductanceFactor(true, probeVolts.pmos, fam, card, vLo, count),
  };
}

/**
 * Gates (die volts) the fitted E+ and E- are the reversal potentials at when the fit carries E per transistor
 * (`LayerFitInput.gateReversal`): mid the sweep codes of the SPICE dies (NMOS 0.54-0.60 V, PMOS 1.07-1.12 V), so the
 * fitted scalars stay near what the scalar model fits. Fixed, so dies' scalars compare (the model's family of curves
 * does not depend on them: another anchor rescales the scalar by the card's ratio).
 */
export const REVERSAL_ANCHOR_VOLTS: Readonly<{ nmos: number; pmos: number }> = { nmos: 0.55, pmos: 1.1 };

/** The gate at which the nominal device conducts as a transistor with threshold shift `dVth` (transfer-fit.ts) does at `v`. */
export function effectiveGate(pmos: boolean, v: number, dVth: number): number {
  return pmos ? v + dVth : v - dVth;
}

/**
 * E against the gate relative to E at the anchor gates: the card's E(Vg) (local, at 1.1 V membrane) over its value at the
 * anchor, per polarity, on the whole grid; knots where the card's device is off hold the value next to them (outward
 * from the anchor). A fitted scalar times this is a transistor's E at its effective gate (`effectiveGate`), so a
 * transistor driven far from the anchor (a strong PMOS beside a weak NMOS, whose rows nearly cancel) gets its own E.
 * A PMOS reads the card at the gate shifted by the supply's deviation (`cardGate`).
 */
export function reversalShape(anchor: { nmos: number; pmos: number }, supply: number): ReversalCurve {
  const [vLo, vHi] = sky130NominalCurves().gateRange;
  const count = Math.round((vHi - vLo) / STEP) + 1;
  const clampGate = (v: number) => Math.min(vHi, Math.max(vLo, v));
  const shape = (pmos: boolean, a: number): Float64Array => {
    const out = new Float64Array(count).fill(1);
    const ref = cardReversal(pmos, clampGate(cardGate(pmos, a, supply)));
    if (ref === null) throw new RangeError(`the card's ${pmos ? 'PMOS' : 'NMOS'} is off at the reversal anchor ${a} V; pick an anchor inside the sweep codes`);
    const k0 = Math.min(count - 1, Math.max(0, Math.round((a - vLo) / STEP)));
    for (const dir of [-1, 1]) {
      let last = 1;
      for (let k = dir < 0 ? k0 : k0 + 1; k >= 0 && k < count; k += dir) {
        const e = cardReversal(pmos, clampGate(cardGate(pmos, vLo + k * STEP, supply)));
        if (e !== null) last = e / ref;
        out[k] = last;
      }
    }
    return out;
  };
  return { vStart: vLo, vStep: STEP, ePlus: shape(false, anchor.nmos), eMinus: shape(true, anchor.pmos), anchorN: anchor.nmos, anchorP: anchor.pmos };
}

/** E of a polarity at gate `v` (effective: the transistor's threshold shift applied). */
export function reversalAt(c: ReversalCurve, pmos: boolean, v: number): number {
  return onGrid(c, pmos ? c.eMinus : c.ePlus, v);
}

/** Linear interpolation on the curve's grid, held beyond it. */
function onGrid(c: ReversalCurve, e: Float64Array, v: number): number {
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
  const g = pmos ? c.gFactorP : c.gFactorN;
  return ((reversalAt(c, pmos, v) - uRef) / (eFit - uRef)) * (g ? onGrid(c, g, v) : 1);
}
