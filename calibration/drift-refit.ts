/**
 * The quick (drift) recalibration: keep every per-synapse and per-neuron value of an existing
 * profile and refit only what drifts chip-wide with temperature and supply -- E+, E- and the timer
 * offset -- from a short run of pattern probes (the profile's own probe codes, a fresh pattern seed).
 * Levenberg-Marquardt over three parameters; every evaluation is one pass of
 * the exact single-neuron model over the probes, so it takes seconds.
 */

import { NOMINAL_NMOS, NOMINAL_PMOS } from '../models/chips/sky130-nominal.ts';
import { lambdasFor, profileProbeCodes, reversalBounds, type ChipProfile } from './chip-profile.ts';
import { buildDataset, LayerFitter, type GlobalParams } from './layer-fit.ts';
import { concatResiduals, levenbergMarquardtAsync } from './lm.ts';
import { pauser } from '../models/io/event-loop.ts';
import { emptyResiduals, rmseTicks, perNeuron, type NeuronResidual, type ResidualSet } from './modelling-error.ts';
import { DEFAULT_PROBE_SIZES, patternBlocks, type LayerProbeContext } from './probe-plan.ts';
import { drivenInputs, measureBlocks, type ProbeTarget } from './probe-run.ts';
import { familyFromMosfet, familyToMosfet, type CurveContext } from './transfer-fit.ts';

export interface DriftRefitOptions {
  temperatureC: number;
  supplyV: number;
  seed?: number;
  patternsPerConfig?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface DriftRefitResult {
  profile: ChipProfile;
  before: { rmseTicks: number };
  heldOut: ResidualSet;
  perNeuron: NeuronResidual[];
  rmse: { pnnTicks: number; pnnSeconds: number };
  globals: GlobalParams & { timerOffsetTicks: number };
  probes: number;
}

function codesFromNotes(profile: ChipProfile, l: number, pol: 'nmos' | 'pmos'): number[] {
  const codes = profileProbeCodes(profile, l, pol);
  if (codes.length === 0 && pol === 'nmos') {
    throw new RangeError(`the profile does not record layer ${l}'s probe codes; run a full calibration first (without --quick)`);
  }
  return codes;
}

/** Refits the globals of `profile` on the device; returns an updated copy (the input is not changed). */
export async function refitGlobals(target: ProbeTarget, profile: ChipProfile, opts: DriftRefitOptions): Promise<DriftRefitResult> {
  const perUnit = target.layers[0].horizonTicks;
  const t0 = perUnit * target.tickSeconds;
  const ctx: CurveContext = { supply: opts.supplyV, temperatureC: opts.temperatureC };
  const layers = profile.layers.map((l, k) => (l.calibrated ? k : -1)).filter((k) => k >= 0);
  if (layers.length === 0) throw new RangeError('the profile has no calibrated layer; run a full calibration first (without --quick)');
  const seed = (opts.seed ?? 1) + 7919;
  const sizes = { ...DEFAULT_PROBE_SIZES, patternConfigs: 2, patternsPerConfig: opts.patternsPerConfig ?? 64, heldOutPatterns: 48 };
  const offset0 = profile.global.timerOffsetTicks / perUnit;

  const fitters: LayerFitter[] = [];
  let probes = 0;
  for (const l of layers) {
    const pl = profile.layers[l];
    const g = target.layers[l];
    if (g.inputs !== pl.inputs || g.outputs !== pl.outputs || g.rowInput.length !== pl.rows) {
      throw new RangeError(`layer ${l} of the device (${g.inputs}x${g.outputs}) does not match the profile (${pl.inputs}x${pl.outputs})`);
    }
    const pctx: LayerProbeContext = { layer: l, geometry: g, dac: target.dac, safe: target.safe, driven: drivenInputs(target.layers, l), windowTicks: perUnit };
    const nCodes = codesFromNotes(profile, l, 'nmos');
    const pCodes = codesFromNotes(profile, l, 'pmos');
    const blocks = [...patternBlocks(pctx, nCodes, pCodes, sizes, seed, false), ...patternBlocks(pctx, nCodes, pCodes, sizes, seed, true)];
    const samples = await measureBlocks(target, blocks, {
      signal: opts.signal,
      onProgress: (d, t) => opts.onProgress?.(`layer ${l}: patterns`, d, t),
    });
    probes += samples.reduce((s, x) => s + x.batch, 0);
    const data = buildDataset({
      layer: l,
      geometry: g,
      dac: target.dac,
      ctx,
      perUnit,
      driven: pctx.driven,
      horizon: g.horizonTicks / perUnit,
      swingVolts: pl.circuit.vRest - pl.circuit.vThreshold,
      samples,
      // A profile fitted with each transistor's E at its gate is refitted with the same model.
      ...(pl.reversal?.anchorN !== undefined && pl.reversal.anchorP !== undefined
        ? { gateReversal: { nmos: pl.reversal.anchorN, pmos: pl.reversal.anchorP } }
        : {}),
      // So is one fitted with the membrane's capacitance slope (the slope is the array's; the drift refit keeps it).
      ...(pl.capSlope ? { capSlope: pl.capSlope } : {}),
    });
    const fams = {
      nmos: familyFromMosfet(pl.nmos, ctx, pl.circuit.capacitance, t0),
      pmos: familyFromMosfet(pl.pmos, ctx, pl.circuit.capacitance, t0),
    };
    const f = new LayerFitter(data, false, fams);
    const n = g.outputs;
    for (let i = 0; i < n; i++) {
      f.state.theta[i] = pl.thresholdScale[i];
      f.state.delay[i] = pl.delay[i] + (l === 0 ? offset0 : 0);
      for (let j = 0; j < g.inputs; j++) {
        const kn = data.rowN[j] * n + i;
        const kp = data.rowP[j] * n + i;
        f.state.dVthN[i * g.inputs + j] = pl.dVth[kn];
        f.state.lnGainN[i * g.inputs + j] = Math.log(pl.gain[kn]);
        f.state.dVthP[i * g.inputs + j] = pl.dVth[kp];
        f.state.lnGainP[i * g.inputs + j] = Math.log(pl.gain[kp]);
      }
    }
    fitters.push(f);
  }

  const g0 = profile.global;
  // The kicks (overlap over membrane capacitance) do not drift and are weakly determined by a short
  // run: they stay at the profile's values.
  // The card shape's strengths (gateReversal) are the die's transistors', held like the kicks; every layer carries the same.
  const shaped = layers.map((l) => profile.layers[l].reversal).find((r) => r?.anchorN !== undefined);
  const shape = shaped ? { shapeN: shaped.strengthN ?? 1, shapeP: shaped.strengthP ?? 1 } : {};
  const toG = (p: ArrayLike<number>): GlobalParams => ({ ePlus: p[0], eMinus: p[1], kickNmos: g0.kickNmos, kickPmos: g0.kickPmos, ...shape });
  const residuals = (p: Float64Array, which: 'fit' | 'heldout' = 'fit'): Float64Array => {
    opts.signal?.throwIfAborted();
    const g = toG(p);
    const parts: Float64Array[] = [];
    fitters.forEach((f, k) => {
      const shift = layers[k] === 0 ? p[2] / perUnit : 0;
      // The fit minimises the down-weighted residuals, as the full calibration does; held-out scores stay plain.
      for (let i = 0; i < f.data.input.geometry.outputs; i++) parts.push(Float64Array.from(f.residualsFixed(i, g, shift, which, which === 'fit')));
    });
    return concatResiduals(parts);
  };
  const start = [g0.ePlus, g0.eMinus, 0];
  const rms = (r: Float64Array) => Math.sqrt(r.reduce((s, x) => s + x * x, 0) / Math.max(1, r.length)) * 0.4;
  const before = rms(residuals(Float64Array.from(start), 'heldout'));
  opts.onProgress?.('refit globals', 0, 1);
  // The supply may have drifted too: the bounds hold for today's reading and the profile's.
  const bounds = reversalBounds(layers.flatMap((l) => [profile.layers[l].circuit, { ...profile.layers[l].circuit, supply: opts.supplyV }]));
  // Each evaluation is synchronous; between them the event loop gets a turn, so a signal can stop the refit.
  const pause = pauser(opts.signal, 0);
  const fit = await levenbergMarquardtAsync(
    async (p) => {
      await pause();
      return residuals(p);
    },
    start,
    {
      steps: [0.02, 0.02, 0.02],
      lower: [bounds.ePlusMin, -200, -50],
      upper: [200, bounds.eMinusMax, 50],
      maxIterations: 12,
    },
  );
  opts.onProgress?.('refit globals', 1, 1);
  const g = toG(fit.params);
  const dOffset = fit.params[2];

  // Held-out residuals with the refitted globals.
  const held = emptyResiduals();
  fitters.forEach((f, k) => {
    const l = layers[k];
    const shift = l === 0 ? dOffset / perUnit : 0;
    const cap = target.layers[l].horizonTicks / perUnit;
    for (let i = 0; i < f.data.input.geometry.outputs; i++) {
      const r = f.residualsFixed(i, g, shift, 'heldout');
      const meas = f.data.heldOut[i].pat.tOut;
      for (let s = 0; s < r.length; s++) {
        const m = meas[s] * perUnit;
        const p = Math.min(m + r[s] * 0.4, cap * perUnit);
        held.predicted.push(p);
        held.measured.push(m);
        held.layer.push(l);
        held.neuron.push(i);
        held.pattern.push(s);
      }
    }
  });
  const rP = rmseTicks(held);

  const out: ChipProfile = structuredClone(profile);
  out.createdAt = new Date().toISOString();
  out.temperatureC = opts.temperatureC;
  out.supplyV = opts.supplyV;
  out.global = { ePlus: g.ePlus, eMinus: g.eMinus, kickNmos: g.kickNmos, kickPmos: g.kickPmos, timerOffsetTicks: g0.timerOffsetTicks + dOffset };
  // Conductances are g = I0 lambda t0 / C: moving E+ moves lambda, so each family's kp is rescaled
  // to keep the conductances the probes pinned down.
  for (const l of layers) {
    const pl = out.layers[l];
    const lam = lambdasFor(g.ePlus, g.eMinus, pl.circuit);
    const curveCtx = ctx;
    const fn = familyFromMosfet(pl.nmos, curveCtx, pl.circuit.capacitance, t0);
    const fp = familyFromMosfet(pl.pmos, curveCtx, pl.circuit.capacitance, t0);
    pl.circuit = { ...pl.circuit, supply: opts.supplyV, ...lam };
    pl.nmos = familyToMosfet(fn, NOMINAL_NMOS, lam.lambdaN, curveCtx, pl.circuit.capacitance, t0);
    pl.pmos = familyToMosfet(fp, NOMINAL_PMOS, lam.lambdaP, curveCtx, pl.circuit.capacitance, t0);
    // The gate dependence keeps its shape; its level follows the refitted scalars.
    if (pl.reversal) {
      const r = pl.reversal;
      pl.reversal = { ...r, ePlus: r.ePlus.map((e) => (e * g.ePlus) / g0.ePlus), eMinus: r.eMinus.map((e) => (e * g.eMinus) / g0.eMinus) };
    }
  }
  out.fit = { ...out.fit, rmsePnnTicks: rP, rmsePnnSeconds: rP * target.tickSeconds, nHeldOut: held.predicted.length };
  out.notes = { ...(out.notes ?? {}), lastRefit: 'quick', quickProbes: probes };
  return {
    profile: out,
    before: { rmseTicks: before },
    heldOut: held,
    perNeuron: perNeuron(held),
    rmse: { pnnTicks: rP, pnnSeconds: rP * target.tickSeconds },
    globals: { ...g, timerOffsetTicks: out.global.timerOffsetTicks },
    probes,
  };
}
