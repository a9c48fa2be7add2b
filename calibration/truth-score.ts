/**
 * Scoring a fitted profile against a simulated die's hidden truth (models/chips/behavioral-chip.ts
 * hiddenTruth()). For tests and benchmarks only: calibration itself never sees the truth, and a real
 * chip has none to compare with.
 *
 * Conductances are compared at the probe codes: every synapse of a polarity at one code (the other
 * polarity off), the die's normalised gE / gI against profileLayerConductances() at the same gates.
 * E+ and E- are the die's own at the probe codes (BehavioralChip.trueReversal; on a sky130 die they move
 * with the gate, so the truth is their mean over the first calibrated layer's probe codes; on a
 * model-form die they are one value); the fitted side is the scalar, or, where the fit carried each transistor's E at its
 * gate, layer 0's reversal curve averaged over the same codes. They are compared both as fitted and as E / mean(thresholdScale): only the ratio of a reversal
 * potential to a neuron's trip level is observable in spike times (the profile fixes the convention
 * "mean threshold scale = 1"), so the second figure is the one a fit can get right on any die.
 */

import type { BehavioralChip } from '../models/chips/behavioral-chip.ts';
import { codeToVolts } from '../wire/dac.ts';
import { NMOS, type DacSpec, type LayerGeometry, type SafeRange } from '../models/chips/chip-backend.ts';
import { NOMINAL_NMOS, NOMINAL_PMOS } from '../models/chips/sky130-nominal.ts';
import { nominalChipProfile, profileLayerConductances, profileLayerCurves, profileProbeCodes, type ChipProfile } from './chip-profile.ts';
import { rowsAtCodes, selectRows } from './probe-configs.ts';
import { reversalAt } from './reversal-curve.ts';
import { LayerCodeRule } from './weight-mapping.ts';

/** Relative errors summarised: median, 95th percentile, max and how many (NaN where there are none). */
export interface ErrorSummary {
  median: number;
  p95: number;
  max: number;
  count: number;
}

export interface TruthScore {
  ePlus: { fitted: number; truth: number; relError: number; relErrorPerTheta: number };
  eMinus: { fitted: number; truth: number; relError: number; relErrorPerTheta: number };
  /** |g_fit / g_true - 1| over probed synapses at the probe codes. */
  conductance: ErrorSummary;
  timerOffsetTicks: { fitted: number; truth: number };
}

/** The mean, NaN for no values. */
export function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k];
  return s / a.length;
}

/** Summarises `errs` (sorted in place). */
export function summariseErrors(errs: number[]): ErrorSummary {
  errs.sort((x, y) => x - y);
  return {
    median: errs[errs.length >> 1] ?? NaN,
    p95: errs[Math.floor(errs.length * 0.95)] ?? NaN,
    max: errs[errs.length - 1] ?? NaN,
    count: errs.length,
  };
}

/** A layer's gate voltages (rows x outputs) with every row of polarity `pol` at `code`, every other synapse off. */
export function polarityAtCodeVolts(g: LayerGeometry, dac: DacSpec, safe: SafeRange, pol: number, code: number): Float64Array {
  return Float64Array.from(rowsAtCodes(g, dac, safe, selectRows(g, { polarity: pol }), code), (c) => codeToVolts(dac, c));
}

/** A layer's gate voltages (rows x outputs) with the rows of polarity `pol` at a network's `codes`, every other synapse off. */
export function polarityCodesVolts(g: LayerGeometry, dac: DacSpec, safe: SafeRange, pol: number, codes: Uint16Array): Float64Array {
  const volts = new Float64Array(g.rowInput.length * g.outputs);
  for (let r = 0; r < g.rowInput.length; r++) {
    for (let i = 0; i < g.outputs; i++) {
      const k = r * g.outputs + i;
      volts[k] = g.rowPolarity[r] === pol ? codeToVolts(dac, codes[k]!) : g.rowPolarity[r] === NMOS ? safe.nmos[0] : safe.pmos[1];
    }
  }
  return volts;
}

/** Scores `profile` against `chip`'s truth. Reprograms the chip's gates (restore them afterwards if needed). */
export function scoreAgainstTruth(chip: BehavioralChip, profile: ChipProfile, drivenPerLayer?: readonly number[]): TruthScore {
  const errs: number[] = [];
  chip.geometry.forEach((g, l) => {
    if (!profile.layers[l]?.calibrated) return;
    const driven = drivenPerLayer?.[l] ?? g.inputs;
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      for (const code of profileProbeCodes(profile, l, name)) {
        const volts = polarityAtCodeVolts(g, chip.dac, chip.safe, pol, code);
        chip.setGateVoltages(l, volts);
        const truth = chip.hiddenTruth().layers[l].model;
        const fit = profileLayerConductances(profile, l, volts, g);
        // A sky130 die's gE / gI are the solver's anchors: a synapse's conductance is its drain slope, gE + gI
        // (the other polarity, off, adds a few pA's worth).
        const a = chip.physics === 'sky130' ? truth.gE.map((x, k) => x + truth.gI[k]) : pol === 0 ? truth.gE : truth.gI;
        const b = pol === 0 ? fit.gE : fit.gI;
        for (let j = 0; j < driven; j++) {
          for (let i = 0; i < g.outputs; i++) {
            const k = j * g.outputs + i;
            if (a[k] > 0) errs.push(Math.abs(b[k] / a[k] - 1));
          }
        }
      }
    }
  });
  const t = chip.hiddenTruth();
  const cal = profile.layers.map((l, k) => (l.calibrated ? k : -1)).filter((k) => k >= 0);
  const thetaTrue = mean(cal.flatMap((k) => Array.from(t.layers[k].model.thresholdScale!)));
  const thetaFit = mean(cal.flatMap((k) => Array.from(profile.layers[k].thresholdScale)));
  const e = (fitted: number, truth: number) => ({
    fitted,
    truth,
    relError: Math.abs(fitted / truth - 1),
    relErrorPerTheta: Math.abs(fitted / thetaFit / (truth / thetaTrue) - 1),
  });
  // The truth's E+ / E-: the die's, averaged over layer 0's probe codes (a sky130 die's move with the gate).
  const trueE = (pol: 'nmos' | 'pmos', fallback: number) => {
    const codes = profileProbeCodes(profile, cal[0] ?? 0, pol);
    return codes.length ? mean(codes.map((c) => chip.trueReversal(pol, codeToVolts(chip.dac, c)))) : fallback;
  };
  // The fitted E over the same codes: the scalar where the fit had one E per polarity; where it carried each transistor's
  // E at its gate (the curve has anchors) the scalar is E at the anchor gate, so layer 0's curve, the scalar times the
  // shape, is read at the probe codes.
  const fittedE = (pol: 'nmos' | 'pmos', scalar: number) => {
    const curve = profile.layers[cal[0] ?? 0]?.reversal;
    const codes = profileProbeCodes(profile, cal[0] ?? 0, pol);
    return curve?.anchorN !== undefined && codes.length ? mean(codes.map((c) => reversalAt(curve, pol === 'pmos', codeToVolts(chip.dac, c)))) : scalar;
  };
  return {
    ePlus: e(fittedE('nmos', profile.global.ePlus), trueE('nmos', t.layers[0].ePlus)),
    eMinus: e(fittedE('pmos', profile.global.eMinus), trueE('pmos', t.layers[0].eMinus)),
    conductance: summariseErrors(errs),
    timerOffsetTicks: { fitted: profile.global.timerOffsetTicks, truth: t.tdcOffsetTicks },
  };
}

/** Codes below the weakest sweep code the weak-drive check visits: steps of 15 codes, about 1/100 of its conductance at the last. */
const WEAK_STEPS = [15, 30, 45, 60, 75, 90];

/**
 * How far the drive a profile's mapping assumes at codes weaker than the calibration swept lies from
 * the die's, where trained networks sit: per calibrated layer and polarity, every driven synapse at
 * each code of WEAK_STEPS below (NMOS) or above (PMOS) the sweep codes, the drive at u = 0.5 that
 * LayerCodeRule.conductanceAt implies, g (E - 0.5), against the die's a - 0.5 b; the median of
 * |fitted / true - 1|. `mode`: 'curve' maps with the profile's reversal curve as it is; 'reversal' without its
 * conductance shape (gFactorN / gFactorP); 'scalar' with the scalar E+ / E- alone (the reversal curve removed).
 */
export function weakDriveError(chip: BehavioralChip, profile: ChipProfile, mode: 'curve' | 'reversal' | 'scalar', drivenPerLayer?: readonly number[]): number {
  const errs: number[] = [];
  const { ePlus, eMinus } = profile.global;
  chip.geometry.forEach((g, l) => {
    if (!profile.layers[l]?.calibrated) return;
    const driven = drivenPerLayer?.[l] ?? g.inputs;
    const curves = profileLayerCurves(profile, l);
    if (mode === 'scalar') delete curves.reversal;
    else if (mode === 'reversal' && curves.reversal) {
      const { gFactorN: _n, gFactorP: _p, ...rest } = curves.reversal;
      curves.reversal = rest;
    }
    const rule = new LayerCodeRule({ geometry: g, dac: chip.dac, safe: chip.safe, t0: profile.t0Seconds }, curves);
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      const swept = profileProbeCodes(profile, l, name);
      if (!swept.length) continue;
      const edge = pol === 0 ? Math.min(...swept) : Math.max(...swept);
      for (const step of WEAK_STEPS) {
        const code = pol === 0 ? edge - step : edge + step;
        chip.setGateVoltages(l, polarityAtCodeVolts(g, chip.dac, chip.safe, pol, code));
        const t = chip.hiddenTruth().layers[l].model;
        for (let r = 0; r < g.rowInput.length; r++) {
          const j = g.rowInput[r];
          if (g.rowPolarity[r] !== pol || j >= driven) continue;
          for (let i = 0; i < g.outputs; i++) {
            const k = j * g.outputs + i;
            // The die's drive at u = 0.5 (both rows of the input; the other polarity is off, a few pA).
            const truth = t.gE[k] * (t.ePlus - 0.5) + t.gI[k] * (t.eMinus - 0.5);
            const fit = rule.conductanceAt(r, r * g.outputs + i, code) * ((pol === 0 ? ePlus : eMinus) - 0.5);
            if (Math.abs(truth) > 0) errs.push(Math.abs(fit / truth - 1));
          }
        }
      }
    }
  });
  return summariseErrors(errs).median;
}

/** One calibrated layer and polarity's drive error at a deployed network's codes (deployedDriveError). */
export interface DeployedDriveError {
  layer: number;
  polarity: 'nmos' | 'pmos';
  /** Synapses on (not at the off code). */
  count: number;
  /** sum of the drives the mapping assumes over the die's, minus 1: what a layer's balance sees. */
  weighted: number;
  /** Median of fitted / true - 1 over the synapses. */
  median: number;
}

/**
 * How far the drive the code mapping assumes at a deployed network's `codes` (per layer, rows x outputs, as
 * uploaded) lies from the die's: per calibrated layer and polarity, each synapse not at the off code, the drive at
 * u = 0.5 that LayerCodeRule.conductanceAt implies through the profile's curves, g (E - 0.5), against the die's
 * a - 0.5 b (each polarity read with the other switched off). Reprograms the chip's gates.
 */
export function deployedDriveError(chip: BehavioralChip, profile: ChipProfile, codes: readonly Uint16Array[]): DeployedDriveError[] {
  const out: DeployedDriveError[] = [];
  const { ePlus, eMinus } = profile.global;
  chip.geometry.forEach((g, l) => {
    if (!profile.layers[l]?.calibrated || !codes[l]) return;
    const rule = new LayerCodeRule({ geometry: g, dac: chip.dac, safe: chip.safe, t0: profile.t0Seconds }, profileLayerCurves(profile, l));
    for (const [pol, name] of [
      [0, 'nmos'],
      [1, 'pmos'],
    ] as const) {
      chip.setGateVoltages(l, polarityCodesVolts(g, chip.dac, chip.safe, pol, codes[l]));
      const t = chip.hiddenTruth().layers[l].model;
      const ratios: number[] = [];
      let fitSum = 0;
      let trueSum = 0;
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== pol) continue;
        for (let i = 0; i < g.outputs; i++) {
          const k = r * g.outputs + i;
          if (codes[l][k] === rule.off(r)) continue;
          const kk = g.rowInput[r] * g.outputs + i;
          const truth = t.gE[kk] * (t.ePlus - 0.5) + t.gI[kk] * (t.eMinus - 0.5);
          const fit = rule.conductanceAt(r, k, codes[l][k]) * ((pol === 0 ? ePlus : eMinus) - 0.5);
          if (!(Math.abs(truth) > 0)) continue;
          ratios.push(fit / truth - 1);
          fitSum += fit;
          trueSum += truth;
        }
      }
      ratios.sort((x, y) => x - y);
      out.push({ layer: l, polarity: name, count: ratios.length, weighted: trueSum ? fitSum / trueSum - 1 : NaN, median: ratios[ratios.length >> 1] ?? NaN });
    }
  });
  return out;
}

/**
 * The profile a perfect calibration of a behavioural die would write, read off its hidden truth:
 * its reversal potentials, timer offset and circuits, every transistor's (dVth, gain) against the
 * nominal curves, every neuron's firing level and delay. Exact for a model-form die (`physics:
 * 'ekv'`), whose curves are the nominal family; a sky130 die's curves are not, so there it is an
 * approximation. What a twin or a deployment is compared against when calibration's own error must
 * stay out of the figure.
 */
export function truthChipProfile(chip: BehavioralChip): ChipProfile {
  const truth = chip.hiddenTruth();
  const p = nominalChipProfile({
    chipId: chip.chipId,
    secondsPerTick: chip.timing.tickSeconds,
    layers: chip.geometry.map((g, l) => ({ inputs: g.inputs, outputs: g.outputs, rows: g.rowInput.length, horizonTicks: chip.timing.horizonTicks[l]! })),
    temperatureC: truth.temperatureC,
  });
  p.global = { ...p.global, ePlus: truth.layers[0]!.ePlus, eMinus: truth.layers[0]!.eMinus, timerOffsetTicks: truth.tdcOffsetTicks };
  p.layers = p.layers.map((l, i) => {
    const t = truth.layers[i]!;
    return {
      ...l,
      calibrated: true,
      circuit: { ...t.circuit },
      nmos: { ...NOMINAL_NMOS, lambda: t.circuit.lambdaN },
      pmos: { ...NOMINAL_PMOS, lambda: t.circuit.lambdaP },
      dVth: t.dVth,
      gain: t.gain,
      thresholdScale: t.model.thresholdScale!,
      delay: t.model.delay!,
    };
  });
  return p;
}
