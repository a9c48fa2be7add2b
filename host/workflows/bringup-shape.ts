/**
 * Weak synapse or threshold-mismatch tail? The shape of a PMOS candidate's conductance across two
 * gate codes (no device here; bringup-recheck.ts measures).
 *
 * A threshold shift dV acts as a gate offset: ln g(c) = f(c + dV). Its deficit against the layer is
 * f'(c) dV, which shrinks as the gate moves toward strong inversion (f' falls: on the sky130 pfet
 * 18 / V at p2 against 14 / V at the stronger re-check code), so the deficits of natural synapses at
 * two codes lie on one line of slope rho = f'(p3) / f'(p2) < 1 through the layer's bulk. A weak
 * synapse (a current factor F) is down by ln F at every gate: it lies (1 - rho) ln F below that
 * line. So a candidate's residual from the line, over (1 - rho), is the current factor no threshold
 * shift explains: about 1 for a mismatch tail, F for a weak synapse.
 *
 * The line comes from reference synapses measured at both codes (the candidates excluded); where it
 * cannot tell (too few references, codes of the same slope, too much scatter) the candidate stays
 * flagged, as before the re-check.
 */

import { evalFit, median, robustQuadraticFit } from './bringup-analysis.ts';

/**
 * A current factor below this, not explained by a threshold shift, is a weak synapse: the middle (in
 * ln) of what bench:bringup read on 25 random 784-64-10 dies, 0.06-0.38 for weak synapses planted at
 * 0.1 and 1.11-2.58 for the natural candidates (a tail reads above 1: the line continued from the
 * bulk misses the curve's bend that far out); 25 further dies read 0.06-0.43 and 1.10-2.54.
 */
export const WEAK_FACTOR_MAX = 0.65;
/** A threshold shift beyond this many of the PDK's mismatch sigmas is no natural device of a die (P < 3e-12 each). */
export const PDK_SIGMA_MAX = 7;
/** The two codes must differ in slope by at least this (1 - rho) for the shape to say anything. */
export const MIN_CONTRAST = 0.08;
/** Largest uncertainty (sigma of ln F) at which the shape still decides. */
export const MAX_LN_FACTOR_SIGMA = 0.5;
/** The factor must lie this many of its sigmas from WEAK_FACTOR_MAX for a verdict. */
export const DECISION_SIGMAS = 2;
/** Fewest reference synapses for the line. */
export const MIN_REFERENCES = 20;

export type ShapeVerdict = 'weak' | 'tail' | 'inconclusive';

export interface ShapeInput {
  /** ln g at the flagging code (p2) and at the re-check code (p3) of the reference synapses (NaN = not measured). */
  refX: ArrayLike<number>;
  refY: ArrayLike<number>;
  /** The candidate's ln g at p2 and p3: -Infinity = no measurable conductance, +Infinity = held silent, NaN = not measured. */
  x: number;
  y: number;
  /** d ln g / dV at p2 (1/V, > 0: the layer's median curve), to turn the deficit into a gate offset. */
  slopePerVolt: number;
  /** The PDK's sigma of a synapse's threshold shift, volts (0 or NaN: no comparison). */
  pdkSigmaV: number;
}

export interface ShapeResult {
  verdict: ShapeVerdict;
  /** Slope of the references' line (p3 against p2). */
  rho: number;
  /** Candidate's ln g at p3 minus the line (negative: weaker than a threshold shift makes it). */
  residual: number;
  /** exp(residual / (1 - rho)): the current factor no threshold shift explains. */
  unexplainedFactor: number;
  /** Uncertainty of ln(unexplainedFactor) from the references' scatter. */
  lnFactorSigma: number;
  /** The gate offset that explains the deficit at p2 (volts; positive: weaker) and that in PDK sigmas. */
  shiftV: number;
  pdkSigmas: number;
  /** Why, in words. */
  reason: string;
}

export function classifyShape(s: ShapeInput): ShapeResult {
  const fit = robustQuadraticFit(s.refX, s.refY, 5, 4, 3, 1);
  const refs = fit?.used ?? 0;
  const rho = fit ? fit.coef[1] : NaN;
  const xc = median(s.refX);
  const shiftV = Number.isFinite(s.x) && s.slopePerVolt > 0 ? (xc - s.x) / s.slopePerVolt : NaN;
  const pdkSigmas = s.pdkSigmaV > 0 ? shiftV / s.pdkSigmaV : NaN;
  const residual = fit && !Number.isNaN(s.y) ? s.y - evalFit(fit, s.x) : NaN;
  const contrast = 1 - rho;
  const lnF = residual / contrast;
  const lnFactorSigma = fit ? fit.sigma / contrast : NaN;
  const out = { rho, residual, unexplainedFactor: Math.exp(lnF), lnFactorSigma, shiftV, pdkSigmas };
  const undecided = (reason: string): ShapeResult => ({ ...out, verdict: 'inconclusive', reason });
  if (!fit || refs < MIN_REFERENCES) return undecided(`${refs} reference synapses measured at both codes (need ${MIN_REFERENCES})`);
  if (!Number.isFinite(s.x) || Number.isNaN(s.y)) return undecided('not measured at both codes');
  if (!(contrast >= MIN_CONTRAST))
    return undecided(`the two codes scale the layer alike (slope ${rho.toFixed(2)}): a threshold shift and a current factor look the same`);
  if (s.y === Infinity) return undecided('held silent at the stronger code: its NMOS meter was too weak to measure it');
  if (s.y === -Infinity) return { ...out, unexplainedFactor: 0, verdict: 'weak', reason: 'no measurable conductance at the stronger code' };
  if (!(lnFactorSigma <= MAX_LN_FACTOR_SIGMA)) return undecided(`the layer's scatter about its line (${fit.sigma.toFixed(3)}) is too wide to tell`);
  const margin = DECISION_SIGMAS * lnFactorSigma;
  if (lnF < Math.log(WEAK_FACTOR_MAX) - margin)
    return { ...out, verdict: 'weak', reason: `a current factor ${Math.exp(lnF).toFixed(2)} no threshold shift explains` };
  if (pdkSigmas > PDK_SIGMA_MAX)
    return { ...out, verdict: 'weak', reason: `a threshold shift of ${pdkSigmas.toFixed(1)} PDK sigmas, beyond any natural device` };
  if (lnF > Math.log(WEAK_FACTOR_MAX) + margin) return { ...out, verdict: 'tail', reason: 'its deficit shrinks with gate drive as a threshold shift does' };
  return undecided(`its factor ${Math.exp(lnF).toFixed(2)} lies within ${DECISION_SIGMAS} of its sigmas of ${WEAK_FACTOR_MAX}`);
}
