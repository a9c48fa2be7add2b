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
import { type ErrorSummary, mean, polarityAtCodeVolts, summariseErrors } from './truth-score.ts';
import { LayerCodeRule } from './weight-mapping.ts';

/** |fitted / true - 1| over every probed synapse and probe code. */
export interface SpiceDriveError extends ErrorSummary {
  /** Mean of fitted / true - 1 per polarity (signed): a bias one polarity carries against the other. */
  meanNmos: number;
  meanPmos: number;
}

/**
 * Every calibrated layer's driven synapses (`drivenPerLayer`, default all inputs) at each of the
 * profile's probe codes, one polarity at a time with the other off. Reprograms the chip's gates.
 */
export function spiceDriveError(chip: SpiceChip, profile: ChipProfile, drivenPerLayer?: readonly number[]): SpiceDriveError {
  const errs: number[] = [];
  const signed: [number[], number[]] = [[], []];
  const { ePlus, eMinus } = profile.global;
  chip.geometry.forEach((g, l) => {
    if (!profile.layers[l]?.calibrated) return;
    const driven = drivenPerLayer?.[l] ?? g.inputs;
    const rule = new LayerCodeRule({ geometry: g, dac: chip.dac, safe: chip.safe, t0: profile.t0Seconds }, profileLayerCurves(profile, l));
    const { vRest, vThreshold } = chip.neuronVoltages(l);
    const swing = vRest - vThreshold;
    const vMid = vRest - 0.5 * swing;
    // A profile fitted with the membrane's capacitance slope divides its drive by 1 + k u: at mid-swing, 1 + k / 2.
    const slopeAtMid = 1 + 0.5 * (profile.layers[l].capSlope ?? 0);
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      for (const code of profileProbeCodes(profile, l, name)) {
        chip.setGateVoltages(l, polarityAtCodeVolts(g, chip.dac, chip.safe, pol, code));
        const m = chip.tableModel(l);
        const perSecond = profile.t0Seconds / (membraneCapacitance(m, vMid) * swing);
        for (let r = 0; r < g.rowInput.length; r++) {
          if (g.rowPolarity[r] !== pol || g.rowInput[r] >= driven) continue;
          for (let i = 0; i < g.outputs; i++) {
            const k = r * g.outputs + i;
            // The current into the membrane lowers u: an NMOS (negative current) raises it.
            const truth = -synapseCurrent(m, k, vMid) * perSecond;
            if (truth === 0) continue;
            const e = (rule.conductanceAt(r, k, code) * ((pol === 0 ? ePlus : eMinus) - 0.5)) / slopeAtMid / truth - 1;
            errs.push(Math.abs(e));
            signed[pol].push(e);
          }
        }
      }
    }
  });
  return { ...summariseErrors(errs), meanNmos: mean(signed[0]), meanPmos: mean(signed[1]) };
}
