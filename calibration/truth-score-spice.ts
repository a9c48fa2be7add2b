/**
 * Scoring a fitted profile against a SPICE die in table mode (models/chips/spice): each probed
 * synapse's drive at mid-swing as the profile's mapping assumes it against what the die's own
 * current tables give. For benchmarks and tests only, like truth-score.ts for behavioural dies.
 *
 * Why the drive and not the conductance: a SPICE die has no conductance to compare with, only
 * currents I(Vg, v) and a membrane capacitance C(v). At u = 0.5 both sides are a rate of change of
 * u, so the comparison needs no model of the die: the profile's g (E - 0.5) (LayerCodeRule, the
 * drive the code mapping matches, over 1 + k / 2 when the fit carried the capacitance slope k), against
 * -I(v_mid) t0 / (C(v_mid) (V_rest - V_th)). Timing errors
 * on held-out patterns mix every synapse of a pattern; this says how right each one is.
 */

import type { SpiceChip } from '../models/chips/spice/spice-chip.ts';
import { membraneCapacitance, synapseCurrent } from '../models/chips/spice/table-neuron.ts';
import { profileLayerCurves, profileProbeCodes, type ChipProfile } from './chip-profile.ts';
import { NMOS } from '../models/chips/chip-backend.ts';
import { type DeployedDriveError, type ErrorSummary, mean, polarityAtCodeVolts, polarityCodesVolts, summariseErrors } from './truth-score.ts';
import { LayerCodeRule } from './weight-mapping.ts';

/** |fitted / true - 1| over every probed synapse and probe code. */
export interface SpiceDriveError extends ErrorSummary {
  /** Mean of fitted / true - 1 per polarity (signed): a bias one polarity carries against the other. */
  meanNmos: number;
  meanPmos: number;
}

/** How one layer's drive is compared: the profile's code rule, the die's mid-swing rate per ampere, and the profile's E at the rule's scale. */
interface LayerComparison {
  rule: LayerCodeRule;
  vMid: number;
  swing: number;
  slopeAtMid: number;
}

function layerComparison(chip: SpiceChip, profile: ChipProfile, l: number): LayerComparison {
  const g = chip.geometry[l]!;
  const rule = new LayerCodeRule({ geometry: g, dac: chip.dac, safe: chip.safe, t0: profile.t0Seconds }, profileLayerCurves(profile, l));
  const { vRest, vThreshold } = chip.neuronVoltages(l);
  const swing = vRest - vThreshold;
  // A profile fitted with the membrane's capacitance slope divides its drive by 1 + k u: at mid-swing, 1 + k / 2.
  return { rule, vMid: vRest - 0.5 * swing, swing, slopeAtMid: 1 + 0.5 * (profile.layers[l]!.capSlope ?? 0) };
}

/**
 * fitted / true - 1 at mid-swing for every synapse of polarity `pol` in layer `l` that `take(r, i)`
 * selects, the chip's gates at `volts` (the other polarity off) and synapse (r, i) at `codeOf(r, i)`, with that code.
 * Zero currents (a transistor off) are skipped.
 */
function driveRatios(
  chip: SpiceChip,
  profile: ChipProfile,
  l: number,
  c: LayerComparison,
  pol: number,
  volts: Float64Array,
  codeOf: (r: number, i: number) => number,
  take: (r: number, i: number) => boolean,
): { ratio: number; fit: number; truth: number; code: number }[] {
  const g = chip.geometry[l]!;
  const { ePlus, eMinus } = profile.global;
  chip.setGateVoltages(l, volts);
  const m = chip.tableModel(l);
  const perSecond = profile.t0Seconds / (membraneCapacitance(m, c.vMid) * c.swing);
  const out: { ratio: number; fit: number; truth: number; code: number }[] = [];
  for (let r = 0; r < g.rowInput.length; r++) {
    if (g.rowPolarity[r] !== pol) continue;
    for (let i = 0; i < g.outputs; i++) {
      if (!take(r, i)) continue;
      const k = r * g.outputs + i;
      // The current into the membrane lowers u: an NMOS (negative current) raises it.
      const truth = -synapseCurrent(m, k, c.vMid) * perSecond;
      if (truth === 0) continue;
      const code = codeOf(r, i);
      const fit = (c.rule.conductanceAt(r, k, code) * ((pol === 0 ? ePlus : eMinus) - 0.5)) / c.slopeAtMid;
      out.push({ ratio: fit / truth - 1, fit, truth, code });
    }
  }
  return out;
}

/**
 * Every calibrated layer's driven synapses (`drivenPerLayer`, default all inputs) at each of the
 * profile's probe codes, one polarity at a time with the other off. Reprograms the chip's gates.
 */
export function spiceDriveError(chip: SpiceChip, profile: ChipProfile, drivenPerLayer?: readonly number[]): SpiceDriveError {
  const errs: number[] = [];
  const signed: [number[], number[]] = [[], []];
  chip.geometry.forEach((g, l) => {
    if (!profile.layers[l]?.calibrated) return;
    const driven = drivenPerLayer?.[l] ?? g.inputs;
    const c = layerComparison(chip, profile, l);
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      for (const code of profileProbeCodes(profile, l, name)) {
        const volts = polarityAtCodeVolts(g, chip.dac, chip.safe, pol, code);
        for (const { ratio } of driveRatios(
          chip,
          profile,
          l,
          c,
          pol,
          volts,
          () => code,
          (r) => g.rowInput[r]! < driven,
        )) {
          errs.push(Math.abs(ratio));
          signed[pol].push(ratio);
        }
      }
    }
  });
  return { ...summariseErrors(errs), meanNmos: mean(signed[0]), meanPmos: mean(signed[1]) };
}

/** A layer and polarity's drive error at a deployed network's codes on a SPICE die (spiceDeployedDriveError). */
export interface SpiceDeployedDriveError extends DeployedDriveError {
  /** The mean of fitted / true - 1 (signed). */
  mean: number;
  /** Share of those synapses at a code weaker than the profile's weakest probe code of the polarity: where the curves extrapolate. */
  weakerThanProbes: number;
  /** The median of fitted / true - 1 over those synapses alone (NaN when there are none). */
  medianWeaker: number;
}

/**
 * The drive the code mapping assumes at a deployed network's `codes` (per layer, rows x outputs, as
 * uploaded) against the SPICE die's own tables, per calibrated layer and polarity, every synapse not
 * at the off code, one polarity at a time with the other off (the same comparison as
 * spiceDriveError). Where a network's codes lie beyond the probe codes, the profile's curves are
 * extrapolated: this says by how much they miss there. Reprograms the chip's gates.
 */
export function spiceDeployedDriveError(chip: SpiceChip, profile: ChipProfile, codes: readonly Uint16Array[]): SpiceDeployedDriveError[] {
  const out: SpiceDeployedDriveError[] = [];
  chip.geometry.forEach((g, l) => {
    const layerCodes = codes[l];
    if (!profile.layers[l]?.calibrated || !layerCodes) return;
    const c = layerComparison(chip, profile, l);
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      const probes = profileProbeCodes(profile, l, name);
      // An NMOS conducts less at a lower code, a PMOS at a higher one.
      const weakest = pol === NMOS ? Math.min(...probes) : Math.max(...probes);
      const weaker = (code: number) => probes.length > 0 && (pol === NMOS ? code < weakest : code > weakest);
      const volts = polarityCodesVolts(g, chip.dac, chip.safe, pol, layerCodes);
      const codeOf = (r: number, i: number) => layerCodes[r * g.outputs + i]!;
      const all = driveRatios(chip, profile, l, c, pol, volts, codeOf, (r, i) => codeOf(r, i) !== c.rule.off(r));
      const weak = all.filter((x) => weaker(x.code));
      const median = (x: number[]) => (x.length ? x.sort((a, b) => a - b)[x.length >> 1]! : NaN);
      const fitSum = all.reduce((t, x) => t + x.fit, 0);
      const trueSum = all.reduce((t, x) => t + x.truth, 0);
      out.push({
        layer: l,
        polarity: name,
        count: all.length,
        weighted: trueSum ? fitSum / trueSum - 1 : NaN,
        median: median(all.map((x) => x.ratio)),
        mean: mean(all.map((x) => x.ratio)),
        weakerThanProbes: all.length ? weak.length / all.length : 0,
        medianWeaker: median(weak.map((x) => x.ratio)),
      });
    }
  });
  return out;
}
