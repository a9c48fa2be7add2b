/**
 * Calibrating a chip: probe every selected layer (probe-plan.ts, probe-run.ts), fit the bottom-up
 * PNN and the ideal top-down model to the same measurements (layer-fit.ts), score both on the
 * held-out patterns (modelling-error.ts), and assemble the chip profile (chip-profile.ts).
 *
 * Optimiser: Levenberg-Marquardt throughout (lm.ts). The problem is a nonlinear least-squares fit
 * of spike times that separates per neuron once the globals are fixed (each neuron's own inputs
 * are measured), with two free parameters per neuron after the sweeps are projected out and four
 * globals (E+, E-, NMOS/PMOS kick per volt). Gauss-Newton steps with Marquardt damping converge in
 * a handful of iterations and need no learning rate; Adam on the twin would need hundreds of
 * passes over all probes for the same accuracy.
 *
 * `refitGlobals` (drift-refit.ts, the `--quick` refit) keeps every per-synapse and per-neuron value of
 * an existing profile and refits only E+, E- and the timer offset from pattern probes.
 *
 * About 800 lines in one module: probeLayer (the measurement order, 130 lines) and fitChip (fit,
 * score, profile) are the two stages of one calibration and share its option and result types;
 * the pure parts already live beside it (probe-plan, scan-analysis, pmos-follow-up, reversal-curve).
 */

import { NMOS, PMOS } from '../models/chips/chip-backend.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS } from '../models/chips/sky130-nominal.ts';
import type { NeuronCircuit } from '../models/neuron/units.ts';
import { codeToVolts } from '../wire/dac.ts';
import { REVERSAL_ANCHOR_VOLTS, reversalCurveFor } from './reversal-curve.ts';
import { lambdasFor, nominalChipProfile, probeCodesKey, PROFILE_SCHEMA_VERSION, reversalBounds, type ChipProfile } from './chip-profile.ts';
import { creepingPatterns, resolveAdaptive, type AdaptiveOptions } from './adaptive-patterns.ts';
import { buildDataset, LayerFitter, NOISE_TICKS, type GlobalParams } from './layer-fit.ts';
import { concatResiduals, levenbergMarquardtBatch } from './lm.ts';
import { TaskPool } from '../models/parallel/pool.ts';
import { allNeurons, FitPool, type NeuronJob } from './fit-pool.ts';
import { emptyResiduals, errorTail, floorTicks, jitterFromRepeats, perNeuron, rmseTicks, type NeuronResidual, type ResidualSet } from './modelling-error.ts';
import {
  DEFAULT_PROBE_SIZES,
  patternBlocks,
  pickCodes,
  referenceNmos,
  scanBlocks,
  scanGrid,
  sweepBlocks,
  type LayerProbeContext,
  type ProbeBlock,
  type ProbeSizes,
} from './probe-plan.ts';
import { fineGrid, median, monotoneRatios, pairDelayRatios, pairTransition, scanDelays } from './scan-analysis.ts';
import { pmosFollowUpBlocks, unmeasuredPmos, type RegularPmosSweeps } from './pmos-follow-up.ts';
import { drivenInputs, measureBlocks, type LayerSamples, type ProbeTarget } from './probe-run.ts';
import { familyFromMosfet, familyToMosfet, logConductance, type CurveContext, type CurveFamily } from './transfer-fit.ts';
import { MAX_CAP_SLOPE } from '../models/solvers/sloped-membrane.ts';

export { DEFAULT_ADAPTIVE, type AdaptiveOptions } from './adaptive-patterns.ts';

/**
 * Work budget of the globals fit per layer, in driven inputs x neurons: a layer contributes up to
 * `globalNeurons` neurons, fewer when they are wide (a 784-input neuron brings 784 inputs' worth of
 * sweeps, raised-precharge sweeps and patterns, so one pins the globals about as well as sixteen
 * 32-input ones), and at least one.
 */
const GLOBAL_FIT_BUDGET = 16 * 64;

/** Chips whose layers all have at most this many driven inputs get the full (slower) globals fit. */
const NARROW_INPUTS = 64;

/**
 * Default precharge steps of the raised-precharge sweeps, volts (1.3 V -> 1.4, 1.5, 1.6 and 1.7 V on the reference design).
 * The top step fits under every supply within 3 % of 1.8 V with PRECHARGE_HEADROOM_VOLTS to spare, so every die takes
 * the same steps: on sky130 the drive is not linear in the membrane voltage (the local E+ of a SPICE die's synapse runs
 * from 5.7 at 1.4 V to 6.7 at 1.6 V), so the fitted E+ depends on how far above rest the steps reach. The former top
 * step, 0.45 V, was dropped on dies whose supply is under 1.79 V: SPICE die 3 fitted E+ 6.52 with it and 6.34 without;
 * with these steps SPICE dies 3 and 7 (supply 1.792 and 1.784 V) fit 6.43 and 6.47 (docs/RESULTS.md, #29).
 */
export const REST_SHIFT_VOLTS: readonly number[] = [0.1, 0.2, 0.3, 0.4];

/** Raised precharge never comes closer than this to the supply (the PMOS synapses need headroom). */
const PRECHARGE_HEADROOM_VOLTS = 0.04;
/** Codes of the fine PMOS scan across the pair's step from silence to no effect (about 1.5 codes apart there). */
const FINE_SCAN_CODES = 16;

/**
 * The precharge steps this layer can take: none without the neuron-config feature, and only those
 * that keep the raised precharge PRECHARGE_HEADROOM_VOLTS below the supply.
 */
async function usableShifts(target: ProbeTarget, l: number, shifts: readonly number[], supplyV: number): Promise<number[]> {
  if (!shifts.length || !target.setNeuronVoltages || !target.neuronVoltages) return [];
  const { vRest } = await target.neuronVoltages(l);
  return shiftsWithHeadroom(shifts, vRest, supplyV);
}

function shiftsWithHeadroom(shifts: readonly number[], vRest: number, supplyV: number): number[] {
  return shifts.filter((dv) => dv > 0 && vRest + dv <= supplyV - PRECHARGE_HEADROOM_VOLTS);
}

/** The highest membrane voltage calibration starts from at this rest and supply: rest plus its largest usable precharge step. */
export function highestPrecharge(vRest: number, supplyV: number, shifts: readonly number[] = REST_SHIFT_VOLTS): number {
  return vRest + Math.max(0, ...shiftsWithHeadroom(shifts, vRest, supplyV));
}

export interface CalibrateChipOptions {
  chipId: string;
  boardId?: string;
  firmware?: string;
  /** Sensor readings at calibration time (from the board's STATUS). */
  temperatureC: number;
  supplyV: number;
  /** Layers to probe and fit (default all); the others keep nominal placeholders. */
  layers?: readonly number[];
  /** Seed of the probe patterns. */
  seed?: number;
  sizes?: Partial<ProbeSizes>;
  /** Neurons per layer used to fit the globals (default 16). */
  globalNeurons?: number;
  /** Joint per-neuron refinement of every transistor's gain runs on layers with at most this many driven inputs (default: every layer). */
  polishMaxInputs?: number;
  /** Precharge steps of the raised-precharge sweeps, volts (default REST_SHIFT_VOLTS; [] = none). Used when the device can program its precharge; steps that would bring it within 40 mV of the supply are skipped. */
  restShiftVolts?: readonly number[];
  /** The adaptive round after the first fit (adaptive-patterns.ts): default none (configs 0); DEFAULT_ADAPTIVE is what `--adaptive` asks for. */
  adaptive?: Partial<AdaptiveOptions>;
  /**
   * The PMOS pairs are also measured against the NMOS sweep codes other than the two references, and join the fit
   * once E+ and E- are fitted (default true; README.md "PMOS pairs against every NMOS sweep code"). false gives the
   * plan without them: fewer blocks and less fitting, and a larger held-out error on patterns that pair a PMOS code
   * with those codes.
   */
  allPairPartners?: boolean;
  /**
   * The PNN carries each transistor's E+ / E- at its own effective gate (the card's E(Vg) through the fitted scalars at
   * REVERSAL_ANCHOR_VOLTS; layer-fit.ts `gateReversal`) instead of one E+ and one E- per chip (default false; `spikeloop
   * calibrate --gate-reversal`); with it the strength of the card's shape per polarity is fitted with the globals (eq. (1b)).
   * Off by default: on behavioural sky130 dies it lowers the held-out error but doubles E+'s error and the fit's CPU
   * (docs/RESULTS.md, "The card shape's strength fitted per die").
   */
  gateReversal?: boolean;
  /**
   * Per layer index, the membrane capacitance's slope per unit of u, C(u) = C(0) (1 + k u) (docs/MODEL.md §2,
   * "Capacitance slope"), from the array's characterisation at the die's supply; absent or 0 = eq. (1)'s constant C.
   */
  capSlope?: readonly number[];
  /** Skip the global fit and use these (diagnostics: e.g. a mock's hidden truth). */
  fixedGlobals?: GlobalParams;
  /** Programmed precharge / threshold per layer, volts (default nominal). */
  neuronVoltages?: readonly { vRest: number; vThreshold: number }[];
  /**
   * Threads for the per-neuron fits (default 1: this thread). The result is identical for every
   * count. Ignored when `pool` is given.
   */
  workers?: number;
  /** A pool to run the per-neuron fits on (the caller closes it); default one of `workers` threads for this call. */
  pool?: TaskPool;
  signal?: AbortSignal;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface CurvePoint {
  layer: number;
  polarity: 'nmos' | 'pmos';
  volts: number;
  /** Median measured conductance over the layer's probed synapses at this code (normalised) and the fitted family's. */
  measured: number;
  fitted: number;
  nominal: number;
}

/** One held-out pair, ticks. */
export interface HeldOutSample {
  layer: number;
  neuron: number;
  /** Index into the neuron's held-out patterns. */
  pattern: number;
  /** Inputs that spiked in the pattern. */
  inputs: number;
  measuredTicks: number;
  predictedTicks: number;
  errorTicks: number;
  /** How far the predicted spike moves for a 0.1 % change of the neuron's threshold, ticks. */
  ticksPerPermilleThreshold: number;
}

export interface HeldOutTail {
  /** Fraction of the held-out pairs counted as the tail. */
  fraction: number;
  /** The tail's pairs, worst first. */
  samples: HeldOutSample[];
  /** Their share of the summed squared error, 0..1. */
  share: number;
  /** RMSE of every other pair, ticks. */
  rmseRestTicks: number;
}

/** Share of the held-out pairs the report lists as the worst. */
export const TAIL_FRACTION = 0.01;

/** What the adaptive round did: candidate rows measured and rows added to the fit set, in all and per layer. */
export interface AdaptiveRecord {
  candidates: number;
  kept: number;
  layers: { layer: number; candidates: number; kept: number }[];
}

export interface CalibrationResult {
  profile: ChipProfile;
  /** Held-out pairs, ticks. */
  heldOut: { pnn: ResidualSet; ideal: ResidualSet };
  perNeuron: { pnn: NeuronResidual[]; ideal: NeuronResidual[] };
  rmse: { pnnTicks: number; idealTicks: number; pnnSeconds: number; idealSeconds: number; ratio: number };
  noise: NoiseFigures;
  /** The held-out pairs that carry most of the PNN's squared error (see `heldOutTail`). */
  tail: HeldOutTail;
  curves: CurvePoint[];
  codes: { layer: number; nmos: number[]; pmos: number[] }[];
  /** Probe counts: fit patterns (adaptive ones included), held-out patterns, blocks; how many times each single-synapse sweep was measured; what the adaptive round did. */
  probes: { fit: number; heldOut: number; blocks: number; sweepRepeats: number; adaptive: AdaptiveRecord };
  globals: GlobalParams;
  seconds: { probing: number; fitting: number };
  /** The fitted layer models (diagnostics: per-neuron state and data). */
  fitters: { pnn: LayerFitter[]; ideal: LayerFitter[] };
}

function nominalGlobals(c: NeuronCircuit): GlobalParams {
  const dv = c.vRest - c.vThreshold;
  return {
    ePlus: (c.vRest + 1 / c.lambdaN) / dv,
    eMinus: (c.vRest - c.supply - 1 / c.lambdaP) / dv,
    kickNmos: 0,
    kickPmos: 0,
  };
}

export interface LayerRun {
  layer: number;
  ctx: LayerProbeContext;
  samples: LayerSamples[];
  /**
   * Blocks measured once every layer is probed (so the others' readings are the same with or without them), joining the
   * fit only once E+ and E- are fitted: the PMOS pairs against the other NMOS sweep codes.
   */
  lateBlocks: ProbeBlock[];
  nCodes: number[];
  pCodes: number[];
}

/** Probes one layer (scan, sweeps, patterns, held-out) and returns its measurements. */
export async function probeLayer(target: ProbeTarget, l: number, sizes: ProbeSizes, seed: number, opts: CalibrateChipOptions): Promise<LayerRun> {
  const g = target.layers[l];
  const perUnit = target.layers[0].horizonTicks;
  const ctx: LayerProbeContext = {
    layer: l,
    geometry: g,
    dac: target.dac,
    safe: target.safe,
    driven: drivenInputs(target.layers, l),
    windowTicks: target.layers[0].horizonTicks,
  };
  const progress = (stage: string) => (d: number, t: number) => opts.onProgress?.(`layer ${l}: ${stage}`, d, t);
  const run = (blocks: Parameters<typeof measureBlocks>[1], stage: string) =>
    measureBlocks(target, blocks, { signal: opts.signal, onProgress: progress(stage) });
  // Groups of blocks that do not depend on each other's readings, measured in one go (on a
  // pipelined device the line stays full across them); the readings come back per group.
  const runGroups = async (groups: [ProbeBlock[], string][]): Promise<LayerSamples[][]> => {
    const starts = groups.map((_, k) => groups.slice(0, k).reduce((s, [b]) => s + b.length, 0));
    const all = await measureBlocks(
      target,
      groups.flatMap(([b]) => b),
      {
        signal: opts.signal,
        onProgress: (d) => {
          let k = groups.length - 1;
          while (k > 0 && d <= starts[k]) k--;
          progress(groups[k][1])(d - starts[k], groups[k][0].length);
        },
      },
    );
    return groups.map(([b], k) => all.slice(starts[k], starts[k] + b.length));
  };

  const gridN = scanGrid(target.dac, target.safe, NMOS, sizes.scanCodes);
  const scanN = scanBlocks(ctx, NMOS, gridN, sizes.scanInputs);
  const scanNs = await run(scanN.blocks, 'NMOS scan');
  const delaysN = scanDelays(scanNs, scanN.codeOf, perUnit);
  const targetsN = [0.1, 0.17, 0.28, 0.45].slice(0, sizes.sweepN);
  const nCodes = pickCodes(delaysN, ctx.windowTicks, targetsN);
  if (nCodes.length === 0) {
    throw new Error(`layer ${l}: no NMOS gate code in the safe window made a single synapse fire inside the window; check the chip and its neuron voltages`);
  }
  // Sweeps are read sizes.sweepRepeats times; the first reading is kept apart because the code
  // picks and the PMOS follow-up below index into it.
  const laterReadings = (blocks: () => ProbeBlock[]) => Array.from({ length: Math.max(0, sizes.sweepRepeats - 1) }, blocks).flat();
  const nmosSweeps = () => sweepBlocks(ctx, NMOS, nCodes);
  const [sweepN, sweepNAgain] = await runGroups([
    [nmosSweeps(), 'NMOS sweeps'],
    [laterReadings(nmosSweeps), 'NMOS sweeps, repeated'],
  ]);
  // The same sweeps with the precharge raised: the membrane starts a known distance below rest,
  // which pins the reversal potentials and the threshold scale in absolute terms (spike times
  // alone leave E+, E- and the thresholds free along a valley; see README.md). One step alone pins
  // only each neuron's threshold (the E+ and threshold directions of a single step are nearly
  // parallel); E+ comes from how the delay changes across steps, a small effect (about 1 / E+ of
  // the drive), so every sweep code is repeated at every step: with two steps and three codes on
  // the second, jitter left E+ off by up to 8 % on some dies, with four steps on every code by at
  // most 2.5 % on the dies tried (calibration/README.md).
  const shifts = await usableShifts(target, l, opts.restShiftVolts ?? REST_SHIFT_VOLTS, opts.supplyV);
  const restSweeps = shifts.length
    ? await run(
        shifts.flatMap((dv) => sweepBlocks(ctx, NMOS, nCodes).map((b) => ({ ...b, restShiftVolts: dv }))),
        'NMOS sweeps, raised precharge',
      )
    : [];
  const ref = referenceNmos(nCodes);
  // Reference delay: NMOS alone at the reference code, median over the sweep.
  const refBlock = sweepN[nCodes.indexOf(ref)];
  const refDelays: number[] = [];
  {
    const nIn = g.inputs;
    const n = g.outputs;
    for (let b = 0; b < refBlock.batch; b++) {
      let tIn = Infinity;
      for (let j = 0; j < nIn; j++) tIn = Math.min(tIn, refBlock.inputs[b * nIn + j]);
      for (let i = 0; i < n; i++) refDelays.push((refBlock.out[b * n + i] - tIn) * perUnit);
    }
  }
  const tRef = median(refDelays);
  const gridP = scanGrid(target.dac, target.safe, PMOS, sizes.scanCodes);
  const scanP = scanBlocks(ctx, PMOS, gridP, sizes.scanInputs, ref);
  const scanPs = await run(scanP.blocks, 'PMOS scan');
  // PMOS codes by the pair's delay over its NMOS partner's alone, synapse by synapse, made monotone
  // in the code, with a fine scan across the step from silence to no effect (scan-analysis.ts: on
  // some dies that step fell between two coarse codes and every picked code was a transistor off).
  const targetsP = [1.2, 1.45, 1.8].slice(0, sizes.sweepP);
  const ratiosP = pairDelayRatios(scanPs, scanP.codeOf, refBlock);
  let smoothP = monotoneRatios(ratiosP);
  const span = targetsP.length ? pairTransition(smoothP, 2 * targetsP[targetsP.length - 1], 1 + (targetsP[0] - 1) / 2) : undefined;
  const fineScan: LayerSamples[] = [];
  if (span && Number.isFinite(tRef)) {
    const fine = fineGrid(span[0], span[1], FINE_SCAN_CODES);
    // The grid twice, the second time rotated by half: each code on at least two neurons.
    const h = fine.length >> 1;
    const scanF = scanBlocks(ctx, PMOS, [...fine, ...fine.slice(h), ...fine.slice(0, h)], sizes.scanInputs, ref);
    fineScan.push(...(await run(scanF.blocks, 'PMOS fine scan')));
    smoothP = monotoneRatios(new Map([...ratiosP, ...pairDelayRatios(fineScan, scanF.codeOf, refBlock)]));
  }
  const pCodes = Number.isFinite(tRef) ? pickCodes(smoothP, 1, targetsP) : [];
  // A second pass against the strongest NMOS code catches PMOS transistors strong enough to
  // silence their pair at the weak reference (they would otherwise have no sweep at all).
  const strongRef = Math.max(...nCodes);
  const partners = strongRef !== ref ? [ref, strongRef] : [ref];
  const pairSweeps = () => partners.flatMap((n) => sweepBlocks(ctx, PMOS, pCodes, n));
  const [sweepP, sweepPAgain] = pCodes.length
    ? await runGroups([
        [pairSweeps(), 'PMOS sweeps'],
        [laterReadings(pairSweeps), 'PMOS sweeps, repeated'],
      ])
    : [[], []];
  // Transistors outside every regular pair get codes of their own (pmos-follow-up.ts). sweepBlocks
  // returns one block per PMOS code, so block k pairs partner floor(k / pCodes) with code k mod pCodes.
  const regular: RegularPmosSweeps = {
    nmosAlone: new Map(nCodes.map((c, k) => [c, sweepN[k]])),
    pairs: sweepP.map((samples, k) => ({ nmosCode: partners[Math.floor(k / pCodes.length)], pmosCode: pCodes[k % pCodes.length], samples })),
    weakRef: ref,
    strongRef,
    perUnit,
  };
  // The weak-partner pairs again at every raised-precharge step. With E/I mixtures alone E+ and E-
  // trade along a valley (E+ up, |E-| down) by 1-2.5 % once the PMOS codes inhibit for real; how a
  // pair's delay changes with the starting depth pins E- the way the NMOS steps pin E+ (README.md).
  const pShift =
    sweepP.length && shifts.length
      ? await run(
          shifts.flatMap((dv) => sweepBlocks(ctx, PMOS, pCodes, ref).map((b) => ({ ...b, restShiftVolts: dv }))),
          'PMOS sweeps, raised precharge',
        )
      : [];
  const [followUp, patterns, held] = await runGroups([
    [sweepP.length ? pmosFollowUpBlocks(ctx, unmeasuredPmos(g, ctx.driven, regular), pCodes, regular) : [], 'PMOS follow-up sweeps'],
    [patternBlocks(ctx, nCodes, pCodes, sizes, seed, false), 'patterns'],
    [patternBlocks(ctx, nCodes, pCodes, sizes, seed, true), 'held-out patterns'],
  ]);
  // Every PMOS code against the other NMOS sweep codes too. A code strong enough to silence its
  // weak-partner pair is otherwise read against the strongest NMOS code alone, and a tick-quantised
  // reading without jitter is the same at every repeat, so patterns that pair it with another code
  // extrapolate its drive, which a pattern creeping up to threshold amplifies into tens of ticks.
  // They join once E+ and E- are fitted: in that fit they pulled E+ along its valley (README.md).
  const others = sweepP.length && opts.allPairPartners !== false ? nCodes.filter((c) => !partners.includes(c)) : [];
  const otherPairs = () => others.flatMap((n) => sweepBlocks(ctx, PMOS, pCodes, n));
  return {
    layer: l,
    ctx,
    samples: [
      ...scanNs,
      ...sweepN,
      ...sweepNAgain,
      ...restSweeps,
      ...scanPs,
      ...fineScan,
      ...sweepP,
      ...sweepPAgain,
      ...pShift,
      ...followUp,
      ...patterns,
      ...held,
    ],
    lateBlocks: [...otherPairs(), ...laterReadings(otherPairs)],
    nCodes,
    pCodes,
  };
}

function checkLayers(target: ProbeTarget, layers: readonly number[] | undefined): number[] {
  const all = target.layers.map((_, l) => l);
  if (!layers) return all;
  const out = [...new Set(layers)].sort((a, b) => a - b);
  for (const l of out) {
    if (!Number.isInteger(l) || l < 0 || l >= target.layers.length) {
      throw new RangeError(`layer ${l} does not exist: the chip has layers 0..${target.layers.length - 1}`);
    }
  }
  return out;
}

function subset(n: number, k: number): number[] {
  if (n <= k) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: k }, (_, q) => Math.floor((q * n) / k));
}

/** The neurons of each layer the globals fit uses (see GLOBAL_FIT_BUDGET); silent neurons excluded. */
function globalSubsets(fitters: LayerFitter[], perLayer: number): number[][] {
  return fitters.map((f) => {
    const k = Math.max(1, Math.min(perLayer, Math.floor(GLOBAL_FIT_BUDGET / Math.max(1, f.data.input.driven))));
    return subset(f.data.input.geometry.outputs, k).filter((i) => f.data.neurons[i].pat.count.length > 0);
  });
}

/** Starts every neuron outside the fitted subsets at its layer's median threshold and delay (they differ by a few % between neurons). */
function warmStart(fitters: LayerFitter[], subsets: number[][]): void {
  fitters.forEach((f, k) => {
    if (!subsets[k].length) return;
    const th = median(subsets[k].map((i) => f.state.theta[i]));
    const de = median(subsets[k].map((i) => f.state.delay[i]));
    const done = new Set(subsets[k]);
    for (let i = 0; i < f.state.theta.length; i++) {
      if (done.has(i)) continue;
      f.state.theta[i] = th;
      f.state.delay[i] = de;
    }
  });
}

/**
 * Prior of the card shape's strength k (GlobalParams.shapeN / shapeP, with gateReversal): centred on the card's own shape,
 * wide enough that the data moves it (SPICE die 25 wants about 1, die 6 about 0-0.5; docs/RESULTS.md), so that only a die
 * whose probes say nothing about it keeps 1.
 */
export const SHAPE_PRIOR = { mean: 1, sigma: 0.5 } as const;
/** Bounds of k: no shape (one E per polarity) to twice the card's. */
export const SHAPE_BOUNDS: readonly [number, number] = [0, 2];
/** Finite-difference step of k in the globals fit: about the per-cent change of E at the sweep codes' edges that E+-'s 0.05 is. */
export const SHAPE_STEP = 0.1;

/**
 * Fits globals on a subset of neurons of every layer (outer LM), the neurons refitted on the pool
 * inside each trial. When the PNN fitters carry each transistor's E at its gate (`gateReversal`), the card shape's
 * strength per polarity (GlobalParams.shapeN / shapeP) is fitted with them, under SHAPE_PRIOR and SHAPE_BOUNDS.
 * `holdReversals` keeps start's E+ and E- and fits the kicks and strengths (the refit once the pairs against the other
 * NMOS codes join).
 */
export async function fitGlobals(
  fitters: LayerFitter[],
  start: GlobalParams,
  perLayer: number,
  bounds: { ePlusMin: number; eMinusMax: number },
  fp: FitPool,
  polish = false,
  polishLimit = Infinity,
  maxIterations = 12,
  holdReversals = false,
): Promise<GlobalParams> {
  const pick = globalSubsets(fitters, perLayer);
  const shaped = fitters.some((f) => !f.state.ideal && f.data.input.gateReversal !== undefined);
  // The LM's parameters are the full vector [E+, E-, kicks, shapes] without E+ and E- when they are held.
  const free = holdReversals ? 2 : 0;
  const full = (q: Float64Array): Float64Array => (holdReversals ? Float64Array.of(start.ePlus, start.eMinus, ...q) : q);
  const toG = (q: Float64Array): GlobalParams => {
    const p = full(q);
    return { ePlus: p[0], eMinus: p[1], kickNmos: p[2], kickPmos: p[3], ...(shaped ? { shapeN: p[4], shapeP: p[5] } : {}) };
  };
  // Every trial starts the per-neuron fits from the same state, so the objective is a function of
  // the globals alone (warm starts from the previous trial would make it depend on the search path).
  const snaps = fitters.map((f) => f.snapshot());
  // The points of one batch (a Jacobian's, or one trial) go to the pool together, every point's
  // neurons starting from the snapshot; their states are written back point by point, so the
  // fitters end as after evaluating the points one after another.
  const res = async (points: Float64Array[]): Promise<Float64Array[]> => {
    fitters.forEach((f, k) => f.restore(snaps[k]));
    // Polished, each trial is scored with the jointly refined neuron: the projection alone leaves
    // conductance errors that the globals would otherwise absorb. The score is the down-weighted
    // residual the neurons minimise: plain squares are ruled by a few patterns that graze
    // threshold, and pulled E+ 3.5 % off on a die (32-16-8, seed 88, probe seed 2: 0.85 % with
    // this score) whose true globals gave the lower down-weighted cost.
    const results = await fp.run(
      points.flatMap((p) =>
        fitters.map((f, k) => ({
          fitter: f,
          neurons: pick[k],
          globals: toG(p),
          steps:
            polish && f.data.input.driven <= polishLimit
              ? [{ kind: 'fit', iterations: 6 }, { kind: 'polish', iterations: 6 }, { kind: 'score' }]
              : [{ kind: 'fit', iterations: 6 }],
        })),
      ) as NeuronJob[],
    );
    return points.map((point, q) => {
      const p = full(point);
      const parts = results
        .slice(q * fitters.length, (q + 1) * fitters.length)
        .flat()
        .map((r) => r.residuals ?? new Float64Array(0));
      if (shaped) parts.push(Float64Array.of((p[4] - SHAPE_PRIOR.mean) / SHAPE_PRIOR.sigma, (p[5] - SHAPE_PRIOR.mean) / SHAPE_PRIOR.sigma));
      return concatResiduals(parts);
    });
  };
  const [kLo, kHi] = SHAPE_BOUNDS;
  const clampK = (k: number | undefined) => Math.min(kHi, Math.max(kLo, k ?? SHAPE_PRIOR.mean));
  const fit = await levenbergMarquardtBatch(
    res,
    [start.ePlus, start.eMinus, start.kickNmos, start.kickPmos, ...(shaped ? [clampK(start.shapeN), clampK(start.shapeP)] : [])].slice(free),
    {
      // Steps well above the noise of the nested per-neuron solves, so the Jacobian sees the slope.
      steps: [0.05, 0.05, 1e-4, 1e-4, ...(shaped ? [SHAPE_STEP, SHAPE_STEP] : [])].slice(free),
      lower: [bounds.ePlusMin, -200, 0, 0, ...(shaped ? [kLo, kLo] : [])].slice(free),
      upper: [200, bounds.eMinusMax, 0.05, 0.05, ...(shaped ? [kHi, kHi] : [])].slice(free),
      maxIterations,
      tolerance: 1e-6,
    },
  );
  return toG(fit.params);
}

/** Collects held-out residuals (ticks) of every neuron of the fitted layers. */
function heldOutSet(fitters: LayerFitter[], layers: number[], globals: GlobalParams, horizons: number[], perUnit: number): ResidualSet {
  const r = emptyResiduals();
  fitters.forEach((f, k) => {
    const l = layers[k];
    const cap = horizons[l] / perUnit;
    for (let i = 0; i < f.data.input.geometry.outputs; i++) {
      const { predicted, measured } = f.heldOutResiduals(i, globals);
      for (let s = 0; s < predicted.length; s++) {
        const p = Math.min(Number.isFinite(predicted[s]) ? predicted[s] : cap, cap);
        r.predicted.push(p * perUnit);
        r.measured.push(measured[s] * perUnit);
        r.layer.push(l);
        r.neuron.push(i);
        r.pattern.push(s);
      }
    }
  });
  return r;
}

/** The worst held-out pairs of a fitted model and, for each, how sensitive its spike time is. */
export function heldOutTail(fitters: LayerFitter[], layers: number[], set: ResidualSet, globals: GlobalParams, fraction: number): HeldOutTail {
  const t = errorTail(set, fraction);
  const samples = t.worst.map((k): HeldOutSample => {
    const l = set.layer[k];
    const i = set.neuron[k];
    const s = set.pattern[k];
    const f = fitters[layers.indexOf(l)];
    const theta = f.state.ideal ? 1 : f.state.theta[i];
    return {
      layer: l,
      neuron: i,
      pattern: s,
      inputs: f.data.heldOut[i].pat.count[s],
      measuredTicks: set.measured[k],
      predictedTicks: set.predicted[k],
      errorTicks: set.predicted[k] - set.measured[k],
      ticksPerPermilleThreshold: Math.abs(f.heldOutThresholdSensitivity(i, s, globals)) * theta * 1e-3,
    };
  });
  return { fraction, samples, share: t.share, rmseRestTicks: t.rmseRestTicks };
}

export interface NoiseFigures {
  /** Layer 0's edge jitter (ticks rms) from the two readings of the held-out set, and its floor sqrt(1/12 + jitter^2). */
  jitterTicks: number;
  floorTicks: number;
  repeatPairs: number;
  /**
   * The same per probed layer. A deeper layer's readings also move with its inputs' jitter, amplified
   * where a pattern barely crosses threshold, so its noise is measured, not assumed to be layer 0's.
   */
  perLayer: { layer: number; jitterTicks: number; floorTicks: number; repeatPairs: number }[];
  /** The floor of the whole held-out set: per-layer floors pooled over its fired samples (rms). */
  pooledFloorTicks: number;
}

/** Edge noise per layer from the two readings of the held-out set. */
function noiseFromRepeats(runs: LayerRun[], perUnit: number, heldOut: ResidualSet): NoiseFigures {
  const perLayer: NoiseFigures['perLayer'] = [];
  for (const run of runs) {
    const reps = run.samples.filter((x) => x.kind === 'heldout');
    const a = reps.find((x) => x.repeat === 0);
    const b = reps.find((x) => x.repeat === 1);
    if (!a || !b) continue;
    let s = 0;
    let c = 0;
    for (let k = 0; k < a.out.length; k++) {
      if (Number.isFinite(a.out[k]) && Number.isFinite(b.out[k])) {
        const d = (a.out[k] - b.out[k]) * perUnit;
        s += d * d;
        c++;
      }
    }
    const jitter = c ? jitterFromRepeats(s / c) : 0;
    perLayer.push({ layer: run.layer, jitterTicks: jitter, floorTicks: floorTicks(jitter), repeatPairs: c });
  }
  // Layer 0 sees identical inputs in both readings: its figure is the chip's own edge jitter (when
  // `layers` starts deeper, the first probed layer stands in for it, slightly high).
  const first = perLayer[0] ?? { jitterTicks: 0, floorTicks: floorTicks(0), repeatPairs: 0 };
  const floorOf = new Map(perLayer.map((p) => [p.layer, p.floorTicks]));
  let sq = 0;
  for (const l of heldOut.layer) sq += (floorOf.get(l) ?? first.floorTicks) ** 2;
  const pooled = heldOut.layer.length ? Math.sqrt(sq / heldOut.layer.length) : first.floorTicks;
  return { jitterTicks: first.jitterTicks, floorTicks: first.floorTicks, repeatPairs: first.repeatPairs, perLayer, pooledFloorTicks: pooled };
}

/** Probes and fits a chip; returns the profile and the modelling-error figures. */
export async function calibrateChip(target: ProbeTarget, opts: CalibrateChipOptions): Promise<CalibrationResult> {
  const layers = checkLayers(target, opts.layers);
  const sizes: ProbeSizes = { ...DEFAULT_PROBE_SIZES, ...(opts.sizes ?? {}) };
  if (!(Number.isInteger(sizes.sweepRepeats) && sizes.sweepRepeats >= 1)) {
    throw new RangeError(`sizes.sweepRepeats must be an integer >= 1 (each sweep measured that many times), got ${sizes.sweepRepeats}`);
  }
  opts.capSlope?.forEach((k, l) => {
    if (!(Number.isFinite(k) && Math.abs(k) < MAX_CAP_SLOPE))
      throw new RangeError(`capSlope[${l}] must be finite and within (-${MAX_CAP_SLOPE}, ${MAX_CAP_SLOPE}) per unit of u, got ${k}`);
  });
  const seed = opts.seed ?? 1;
  const adaptive = resolveAdaptive({ configs: 0, ...(opts.adaptive ?? {}) });
  const perUnit = target.layers[0].horizonTicks;
  const t0 = perUnit * target.tickSeconds;
  const curveCtx: CurveContext = { supply: opts.supplyV, temperatureC: opts.temperatureC };
  const circuitOf = (l: number): NeuronCircuit => ({
    ...NOMINAL_CIRCUIT,
    ...(opts.neuronVoltages?.[l] ?? {}),
    supply: opts.supplyV,
  });

  // Started before probing, so the threads load while the device works.
  const pool = opts.pool ?? new TaskPool(opts.workers ?? 1);
  const tProbe = performance.now();
  const runs: LayerRun[] = [];
  const late: LayerSamples[][] = [];
  try {
    for (const l of layers) runs.push(await probeLayer(target, l, sizes, seed, opts));
    for (const run of runs) {
      const onProgress = (d: number, t: number) => opts.onProgress?.(`layer ${run.layer}: PMOS sweeps, other partners`, d, t);
      late.push(await measureBlocks(target, run.lateBlocks, { signal: opts.signal, onProgress }));
    }
  } catch (e) {
    if (!opts.pool) await pool.close();
    throw e;
  }
  const probingSeconds = (performance.now() - tProbe) / 1000;

  const tFit = performance.now();
  const g0 = nominalGlobals(circuitOf(layers[0]));
  const bounds = reversalBounds(layers.map(circuitOf));
  const nominalFamilies = (l: number) => {
    const c = circuitOf(l);
    return {
      nmos: familyFromMosfet({ ...NOMINAL_NMOS, lambda: c.lambdaN }, curveCtx, c.capacitance, t0),
      pmos: familyFromMosfet({ ...NOMINAL_PMOS, lambda: c.lambdaP }, curveCtx, c.capacitance, t0),
    };
  };
  // One dataset per layer, shared by the PNN and the ideal fitters (they only read it).
  const datasets = runs.map((run) =>
    buildDataset({
      layer: run.layer,
      geometry: target.layers[run.layer],
      dac: target.dac,
      ctx: curveCtx,
      perUnit,
      driven: run.ctx.driven,
      horizon: target.layers[run.layer].horizonTicks / perUnit,
      swingVolts: circuitOf(run.layer).vRest - circuitOf(run.layer).vThreshold,
      samples: run.samples,
      ...(opts.gateReversal ? { gateReversal: REVERSAL_ANCHOR_VOLTS } : {}),
      ...(opts.capSlope?.[run.layer] ? { capSlope: opts.capSlope[run.layer] } : {}),
    }),
  );
  try {
    return await fitChip(
      target,
      opts,
      { layers, sizes, seed, adaptive, perUnit, curveCtx, circuitOf, runs, late, datasets, nominalFamilies, g0, bounds, t0, tFit, probingSeconds },
      new FitPool(pool, opts.signal),
    );
  } finally {
    if (!opts.pool) await pool.close();
  }
}

interface FitContext {
  layers: number[];
  sizes: ProbeSizes;
  seed: number;
  adaptive: AdaptiveOptions;
  perUnit: number;
  curveCtx: CurveContext;
  circuitOf: (l: number) => NeuronCircuit;
  runs: LayerRun[];
  /** Per run, the readings of its lateBlocks. */
  late: LayerSamples[][];
  datasets: ReturnType<typeof buildDataset>[];
  nominalFamilies: (l: number) => { nmos: CurveFamily; pmos: CurveFamily };
  g0: GlobalParams;
  bounds: { ePlusMin: number; eMinusMax: number };
  t0: number;
  tFit: number;
  probingSeconds: number;
}

/**
 * The fit, scoring and profile of calibrateChip. Every per-neuron step runs on `fp` (whole layers
 * at a time); the families, the globals' outer loop and the scoring run here.
 */
async function fitChip(target: ProbeTarget, opts: CalibrateChipOptions, c: FitContext, fp: FitPool): Promise<CalibrationResult> {
  const { layers, sizes, seed, adaptive, perUnit, curveCtx, circuitOf, runs, late, datasets, nominalFamilies, g0, bounds, t0, tFit, probingSeconds } = c;
  const idealG: GlobalParams = { ePlus: 1, eMinus: -1, kickNmos: 0, kickPmos: 0 };
  const mkFitters = (ideal: boolean) => runs.map((run, k) => new LayerFitter(datasets[k], ideal, nominalFamilies(run.layer)));
  const step = (s: string, d: number, t: number) => opts.onProgress?.(s, d, t);

  // Bottom-up PNN.
  step('fit PNN', 0, 4);
  const pnn = mkFitters(false);
  // Initial families from the sweeps at nominal globals, theta 1, delay 0 (LayerFitter.initialiseFamilies).
  await fp.refitFamilies(pnn, g0);
  const polishLimit = opts.polishMaxInputs ?? Infinity;
  const polishes = (f: LayerFitter) => f.data.input.driven <= polishLimit;
  /** Projected fit of every neuron, then its polish where the layer allows it. */
  const fitAndPolish = (fs: LayerFitter[], g: GlobalParams, fitIts: number, polishIts: number) =>
    fp.run(
      fs.map((f) => ({
        fitter: f,
        neurons: allNeurons(f),
        globals: g,
        steps: [{ kind: 'fit', iterations: fitIts }, ...(polishes(f) ? [{ kind: 'polish', iterations: polishIts } as const] : [])],
      })),
    );
  /** Projected fit of the given neurons of every fitter (which[k] of fitter k). */
  const fitSome = (fs: LayerFitter[], which: number[][], g: GlobalParams, its: number) =>
    fp.run(fs.map((f, k) => ({ fitter: f, neurons: which[k], globals: g, steps: [{ kind: 'fit', iterations: its }] })));
  // Only the neurons the globals fit uses need a start at the nominal globals (and they alone feed
  // the family refit in between); every neuron is fitted once, at the final globals, then polished.
  const starts = globalSubsets(pnn, opts.globalNeurons ?? 16);
  if (!opts.fixedGlobals) await fitSome(pnn, starts, g0, 6);
  step('fit PNN', 1, 4);
  // First pass with the projected fit only (cheap: it gets the globals near), the second scores
  // each trial with the polished neurons (the projection alone leaves conductance errors that the
  // globals would absorb).
  // Narrow chips (every layer within NARROW_INPUTS) can afford the polished objective and more
  // outer steps in both passes, which walks further along the E+ / threshold valley.
  const narrow = pnn.every((f) => f.data.input.driven <= NARROW_INPUTS);
  const outerSteps = narrow ? 12 : 8;
  let globals = opts.fixedGlobals ?? (await fitGlobals(pnn, g0, opts.globalNeurons ?? 16, bounds, fp, narrow, polishLimit, outerSteps));
  step('fit PNN', 2, 4);
  if (!opts.fixedGlobals) {
    await fitSome(pnn, starts, globals, 8);
    await fp.refitFamilies(pnn, globals, starts);
    globals = await fitGlobals(pnn, globals, opts.globalNeurons ?? 16, bounds, fp, true, polishLimit, outerSteps);
  } else {
    await fitSome(pnn, pnn.map(allNeurons), globals, 8);
    await fp.refitFamilies(pnn, globals);
  }
  step('fit PNN', 3, 4);
  if (!opts.fixedGlobals) warmStart(pnn, starts);
  // Warm starts and the polish that follows make a short projected fit enough here.
  await fitAndPolish(pnn, globals, 6, 6);
  /** Layer k's fit with more samples, at the fixed globals: from the current state, optionally with its families refitted first. */
  const refitWith = async (k: number, samples: LayerSamples[], families: boolean) => {
    const run = runs[k];
    run.samples.push(...samples);
    datasets[k] = buildDataset({ ...datasets[k].input, samples: run.samples });
    const f = new LayerFitter(datasets[k], false, nominalFamilies(run.layer));
    f.adopt(pnn[k]);
    pnn[k] = f;
    if (families) await fp.refitFamilies([f], globals);
    await fitAndPolish([f], globals, 6, 6);
  };
  // The late samples (the PMOS pairs against the other NMOS codes) add sweep observations to each
  // transistor's curve, so the layer's families are refitted with them too; then the kicks and the
  // shape strengths (E+ and E- stay: the raised-precharge sweeps pinned them, and these pairs would
  // pull them along their valley), and every neuron again at those (README.md).
  if (late.some((x) => x.length)) {
    for (let k = 0; k < runs.length; k++) if (late[k].length) await refitWith(k, late[k], true);
    if (!opts.fixedGlobals) {
      globals = await fitGlobals(pnn, globals, opts.globalNeurons ?? 16, bounds, fp, true, polishLimit, outerSteps, true);
      await fitAndPolish(pnn, globals, 6, 6);
    }
  }
  const adaptiveRecord: AdaptiveRecord = { candidates: 0, kept: 0, layers: [] };
  if (adaptive.configs > 0) {
    // The adaptive round: patterns the fit predicts to creep up to threshold pin the conductance
    // combinations random patterns measure least well (adaptive-patterns.ts, README.md "Adaptive patterns").
    for (let k = 0; k < runs.length; k++) {
      const run = runs[k];
      const got = await creepingPatterns(target, run.ctx, { nmos: run.nCodes, pmos: run.pCodes }, pnn[k], globals, adaptive, seed, {
        signal: opts.signal,
        onProgress: (d, t) => opts.onProgress?.(`layer ${run.layer}: adaptive candidates`, d, t),
      });
      const kept = got.kept.reduce((a, e) => a + e.batch, 0);
      adaptiveRecord.layers.push({ layer: run.layer, candidates: got.candidates, kept });
      if (kept > 0) await refitWith(k, got.kept, false);
    }
    adaptiveRecord.candidates = adaptiveRecord.layers.reduce((a, x) => a + x.candidates, 0);
    adaptiveRecord.kept = adaptiveRecord.layers.reduce((a, x) => a + x.kept, 0);
  }
  step('fit PNN', 4, 4);

  // Ideal top-down model on the same data.
  step('fit ideal model', 0, 1);
  const ideal = mkFitters(true);
  await fp.refitFamilies(ideal, idealG);
  await fitSome(ideal, starts, idealG, 8);
  await fp.refitFamilies(ideal, idealG, starts);
  warmStart(ideal, starts);
  // The reference model converges in fewer steps (no reversal potentials: times are nearly linear in the gains).
  await fitAndPolish(ideal, idealG, 5, 5);
  step('fit ideal model', 1, 1);

  const horizons = target.layers.map((l) => l.horizonTicks);
  const hoPnn = heldOutSet(pnn, layers, globals, horizons, perUnit);
  const hoIdeal = heldOutSet(ideal, layers, idealG, horizons, perUnit);
  const rP = rmseTicks(hoPnn);
  const rI = rmseTicks(hoIdeal);
  const noise = noiseFromRepeats(runs, perUnit, hoPnn);
  const fitSeconds = (performance.now() - tFit) / 1000;

  // Profile.
  const profile = nominalChipProfile({
    chipId: opts.chipId,
    boardId: opts.boardId,
    firmware: opts.firmware,
    secondsPerTick: target.tickSeconds,
    temperatureC: opts.temperatureC,
    layers: target.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, rows: l.rowInput.length, horizonTicks: l.horizonTicks })),
  });
  profile.schemaVersion = PROFILE_SCHEMA_VERSION;
  profile.supplyV = opts.supplyV;
  // Layer 0's delays carry the timer offset (only their sum is observable): the smallest becomes the offset.
  const f0 = layers[0] === 0 ? pnn[0] : undefined;
  let offset = 0;
  if (f0) {
    let m = Infinity;
    for (let i = 0; i < f0.state.delay.length; i++) if (f0.data.neurons[i].pat.count.length) m = Math.min(m, f0.state.delay[i]);
    offset = Number.isFinite(m) ? m : 0;
  }
  profile.global = { ePlus: globals.ePlus, eMinus: globals.eMinus, timerOffsetTicks: offset * perUnit, kickNmos: globals.kickNmos, kickPmos: globals.kickPmos };
  const curves: CurvePoint[] = [];
  pnn.forEach((f, k) => {
    const l = layers[k];
    const c = { ...circuitOf(l), ...lambdasFor(globals.ePlus, globals.eMinus, circuitOf(l)) };
    const pl = profile.layers[l];
    const nIn = pl.inputs;
    const n = pl.outputs;
    const { rowN, rowP } = f.data;
    pl.calibrated = true;
    pl.circuit = c;
    if (f.data.input.capSlope) pl.capSlope = f.data.input.capSlope;
    pl.nmos = familyToMosfet(f.state.families.nmos, NOMINAL_NMOS, c.lambdaN, curveCtx, c.capacitance, t0);
    pl.pmos = familyToMosfet(f.state.families.pmos, NOMINAL_PMOS, c.lambdaP, curveCtx, c.capacitance, t0);
    const fired: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < nIn; j++) {
        pl.dVth[rowN[j] * n + i] = f.state.dVthN[i * nIn + j];
        pl.gain[rowN[j] * n + i] = Math.exp(f.state.lnGainN[i * nIn + j]);
        pl.dVth[rowP[j] * n + i] = f.state.dVthP[i * nIn + j];
        pl.gain[rowP[j] * n + i] = Math.exp(f.state.lnGainP[i * nIn + j]);
      }
      if (f.data.neurons[i].pat.count.length) fired.push(f.state.delay[i]);
    }
    const fallback = fired.length ? median(fired) : offset;
    for (let i = 0; i < n; i++) {
      const has = f.data.neurons[i].pat.count.length > 0;
      pl.thresholdScale[i] = has ? f.state.theta[i] : 1;
      const d = (has ? f.state.delay[i] : fallback) - (l === 0 ? offset : 0);
      pl.delay[i] = Math.max(0, d);
    }
    // E+ / E- against the gate: the card's shape at the fitted level over this layer's sweep codes (reversal-curve.ts;
    // the single-synapse sweeps, not the pairs' weak NMOS reference, carry the fitted scalar).
    const volts = (codes: readonly number[]) => codes.map((c) => codeToVolts(target.dac, c));
    // Beyond them, the card's conductance shape relative to the fitted family's (the networks sit far below the sweep codes).
    pl.reversal = reversalCurveFor(
      globals,
      { nmos: volts(runs[k].nCodes), pmos: volts(runs[k].pCodes) },
      { nmos: pl.nmos, pmos: pl.pmos, supply: curveCtx.supply, temperatureC: curveCtx.temperatureC, vMid: 0.5 * (pl.circuit.vRest + pl.circuit.vThreshold) },
      f.data.input.gateReversal,
    );
    // Calibration-curve data: measured (median over probed synapses) against the fitted family.
    for (const pol of ['nmos', 'pmos'] as const) {
      const volts = pol === 'nmos' ? f.data.voltsN : f.data.voltsP;
      const fam: CurveFamily = f.state.families[pol];
      const nomFam = nominalFamilies(l)[pol];
      for (let q = 0; q < volts.length; q++) {
        const gs: number[] = [];
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < f.data.input.driven; j++) {
            const kk = i * nIn + j;
            const dv = pol === 'nmos' ? f.state.dVthN[kk] : f.state.dVthP[kk];
            const lg = pol === 'nmos' ? f.state.lnGainN[kk] : f.state.lnGainP[kk];
            gs.push(Math.exp(logConductance(fam, volts[q], curveCtx, dv, lg)));
          }
        }
        curves.push({
          layer: l,
          polarity: pol,
          volts: volts[q],
          measured: median(gs),
          fitted: Math.exp(logConductance(fam, volts[q], curveCtx)),
          nominal: Math.exp(logConductance(nomFam, volts[q], curveCtx)),
        });
      }
    }
    profile.notes ??= {};
    profile.notes[probeCodesKey(l, 'nmos')] = runs[k].nCodes.join(',');
    profile.notes[probeCodesKey(l, 'pmos')] = runs[k].pCodes.join(',');
  });
  const nFit = runs.reduce((s, r) => s + r.samples.filter((x) => x.kind !== 'heldout').reduce((a, b) => a + b.batch, 0), 0);
  const nHeld = runs.reduce((s, r) => s + r.samples.filter((x) => x.kind === 'heldout').reduce((a, b) => a + b.batch, 0), 0);
  const ts = target.tickSeconds;
  profile.fit = {
    rmsePnnSeconds: rP * ts,
    rmsePnnTicks: rP,
    rmseIdealSeconds: rI * ts,
    rmseIdealTicks: rI,
    nProbes: nFit,
    nHeldOut: nHeld,
    floorTicks: noise.floorTicks,
  };
  profile.notes = { ...(profile.notes ?? {}), optimiser: 'levenberg-marquardt', probeSeed: seed, sweepRepeats: sizes.sweepRepeats, noiseTicks: NOISE_TICKS };
  return {
    profile,
    heldOut: { pnn: hoPnn, ideal: hoIdeal },
    perNeuron: { pnn: perNeuron(hoPnn), ideal: perNeuron(hoIdeal) },
    rmse: { pnnTicks: rP, idealTicks: rI, pnnSeconds: rP * ts, idealSeconds: rI * ts, ratio: rI / rP },
    noise,
    tail: heldOutTail(pnn, layers, hoPnn, globals, TAIL_FRACTION),
    curves,
    codes: runs.map((r) => ({ layer: r.layer, nmos: r.nCodes, pmos: r.pCodes })),
    probes: { fit: nFit, heldOut: nHeld, blocks: runs.reduce((s, r) => s + r.samples.length, 0), sweepRepeats: sizes.sweepRepeats, adaptive: adaptiveRecord },
    globals,
    seconds: { probing: probingSeconds, fitting: fitSeconds },
    fitters: { pnn, ideal },
  };
}
