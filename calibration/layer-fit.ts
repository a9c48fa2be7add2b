/**
 * Fitting one layer's neurons to probe measurements (docs/MODEL.md §9).
 *
 * Per neuron the unknowns are its threshold scale and delay (for layer 0 the delay includes the
 * board's timer offset), and per synapse transistor a threshold shift and gain around the layer's
 * curve family; the chip shares E+, E- and the kick per volt of gate swing (NMOS, PMOS).
 *
 * Variable projection: for given (theta, delay) and globals, every single-synapse sweep spike time
 * inverts in closed form to that synapse's conductance at the swept code (neuron-model.ts); a MAP
 * curve fit per transistor (transfer-fit.ts) turns those into conductances at any code. The
 * remaining residuals -- sweeps through the fitted curves and every multi-input pattern, in ticks --
 * are then a function of (theta, delay) alone, which Levenberg-Marquardt minimises per neuron (two
 * parameters, many residuals: a handful of iterations). An outer Levenberg-Marquardt over the
 * globals re-runs the per-neuron fits for each trial value. Finite differences give the Jacobians:
 * the per-neuron problem has two parameters, so three solves per iteration cost less than carrying
 * analytic derivatives through the sweep inversion and the curve fits.
 *
 * E+ and the mean threshold scale are exactly degenerate (scaling E+, E- and every theta together
 * leaves all spike times unchanged), so thresholds carry a prior at 1 (sigma 1.5 %, the trip-point spread of one die) that fixes the
 * convention "the average neuron trips at the nominal threshold".
 *
 * The ideal (top-down) model is fitted through the same path: current sources (no dependence on
 * u), no kick, threshold 1 (it is degenerate with the weights there), delay free.
 *
 * One module of about 1000 lines: the dataset layout (buildDataset: flat typed arrays per neuron,
 * about 270 lines) and LayerFitter's steps (projection, per-neuron LM, the sparse polish, family
 * refits) index the same arrays, and fit-task.ts moves a neuron's slice of that state between
 * threads; a split would put the layout and its only reader in two files.
 */

import { NMOS, type DacSpec, type LayerGeometry } from '../models/chips/chip-backend.ts';
import { codeToVolts } from '../wire/dac.ts';
import { levenbergMarquardt, solveSpd } from './lm.ts';
import {
  crossingGradBuffers,
  excitatoryFromTime,
  excitatoryTime,
  inhibitoryFromPairTime,
  neuronCrossing,
  neuronCrossingGrad,
  type CrossingGrad,
  type NeuronInputs,
  type NeuronPhysics,
} from './neuron-model.ts';
import { effectiveGate, reversalAt, reversalShape, type ReversalCurve } from './reversal-curve.ts';
import { sparseNormalSolve } from './sparse-normal.ts';
import type { LayerSamples } from './probe-run.ts';
import { fitFamily, fitSynapse, logConductance, type CurveContext, type CurveFamily, type SynapseObservations } from './transfer-fit.ts';

/** Typical measurement noise of one spike time, ticks (quantisation and jitter); scales residuals. */
export const NOISE_TICKS = 0.4;
export const THETA_PRIOR_SIGMA = 0.015;
/** Threshold prior when raised-precharge sweeps measure the thresholds (chip-level trip shifts reach a few %). */
export const THETA_PRIOR_MEASURED = 0.08;
/** Residual (in noise units) of a sample the model says never fires but the chip fired. */
const MISS_PENALTY = 50;
/** Cauchy scale of the polish step's robust loss, noise units. */
const ROBUST = 4;
/** Prior sigma of the polish step's ln-gain corrections. */
const SHIFT_PRIOR = 0.1;
/** Unknowns up to which the polish solves its normal equations densely; wider neurons use conjugate gradients. */
const DENSE_POLISH_MAX = 2 + 2 * 64;

export interface GlobalParams {
  ePlus: number;
  eMinus: number;
  kickNmos: number;
  kickPmos: number;
  /**
   * With `gateReversal`, the strength k of the card's E(Vg) shape per polarity: a transistor's E is E+- times the shape at
   * its effective gate to the power k (docs/MODEL.md eq. (1b)); 0 = one E per polarity, 1 = the card's shape. Absent = 1.
   */
  shapeN?: number;
  shapeP?: number;
}

export interface LayerFitInput {
  layer: number;
  geometry: LayerGeometry;
  dac: DacSpec;
  ctx: CurveContext;
  /** Ticks per normalised time unit. */
  perUnit: number;
  /** Inputs the probes drove (0..driven-1); other synapses keep the family curve. */
  driven: number;
  /** The layer's window end, normalised: a fit sample the chip left silent says "no spike before this". */
  horizon: number;
  /** vRest - vThreshold of the layer (volts): the unit of u, to place raised-precharge samples. */
  swingVolts: number;
  samples: readonly LayerSamples[];
  /**
   * Carry each transistor's reversal potential at its own effective gate (its code's volts, its fitted threshold
   * shift applied): E = E+- times the card's E(Vg) over its E at these gates (die volts; reversal-curve.ts
   * `reversalShape`, REVERSAL_ANCHOR_VOLTS), instead of one E+ and one E- for every synapse. PNN only.
   */
  gateReversal?: { nmos: number; pmos: number };
  /**
   * The membrane capacitance's slope per unit of u, C(u) = C(0) (1 + capSlope u) (docs/MODEL.md §2), from the
   * array's characterisation at the die's supply; absent = eq. (1)'s constant C. PNN only.
   */
  capSlope?: number;
}

/** Everything fitted for a layer; synapse arrays are per input (nIn), one per polarity. */
export interface LayerFitState {
  ideal: boolean;
  families: { nmos: CurveFamily; pmos: CurveFamily };
  theta: Float64Array;
  delay: Float64Array;
  /** per neuron x input (row-major i * nIn + j). */
  dVthN: Float64Array;
  lnGainN: Float64Array;
  dVthP: Float64Array;
  lnGainP: Float64Array;
  /** Sweep observations behind each transistor's curve (0: prior only), per neuron x input. */
  obsN: Uint8Array;
  obsP: Uint8Array;
}

/**
 * Neuron i's own part of a LayerFitterState: everything a fit of that neuron reads and writes
 * besides the layer's families (per-transistor arrays are its nIn-long rows). Neurons are
 * independent problems once the families and globals are fixed, so this is what a fit of one
 * neuron on another thread takes and gives back (fit-pool.ts).
 */
export interface NeuronState extends Pick<LayerFitState, 'dVthN' | 'lnGainN' | 'dVthP' | 'lnGainP' | 'obsN' | 'obsP'> {
  i: number;
  theta: number;
  delay: number;
}

/** Sweep observations of one transistor pooled into a family refit (see `familyObservations`). */
export interface PooledObservations {
  pol: 'nmos' | 'pmos';
  volts: Float64Array;
  lnG: Float64Array;
  weight: Float64Array;
}

/** Per neuron, the measurements in a compact form (codes as indices into the layer's code list). */
interface NeuronData {
  /** sweep-n: input, code index, input time, output time. */
  sn: { j: Int32Array; c: Int32Array; tIn: Float64Array; tOut: Float64Array };
  /** sweep-p: input, NMOS code index, PMOS code index, times. */
  sp: { j: Int32Array; cn: Int32Array; cp: Int32Array; tIn: Float64Array; tOut: Float64Array };
  /**
   * patterns (fit only): per sample start/count into entries, output time, starting membrane (u),
   * and where it came from: the index of its block in the input's samples and its row in that block.
   */
  pat: { start: Int32Array; count: Int32Array; tOut: Float64Array; u0: Float64Array; block: Int32Array; row: Int32Array };
  ent: { j: Int32Array; t: Float64Array; cn: Int32Array; cp: Int32Array };
}

export interface LayerDataset {
  input: LayerFitInput;
  /** Distinct codes used per polarity, and their volts. */
  codesN: number[];
  codesP: number[];
  voltsN: Float64Array;
  voltsP: Float64Array;
  neurons: NeuronData[];
  heldOut: NeuronData[];
  rowN: Int32Array;
  rowP: Int32Array;
  /** Raised-precharge samples are present: thresholds are then measured, not just assumed near 1. */
  hasRestShift: boolean;
}

function rowsOf(g: LayerGeometry): { rowN: Int32Array; rowP: Int32Array } {
  const rowN = new Int32Array(g.inputs).fill(-1);
  const rowP = new Int32Array(g.inputs).fill(-1);
  for (let r = 0; r < g.rowInput.length; r++) {
    const j = g.rowInput[r];
    const target = g.rowPolarity[r] === NMOS ? rowN : rowP;
    if (target[j] !== -1)
      throw new RangeError(`input ${j} has more than one ${g.rowPolarity[r] === NMOS ? 'NMOS' : 'PMOS'} row; calibration handles dual-rail arrays only`);
    target[j] = r;
  }
  for (let j = 0; j < g.inputs; j++) {
    if (rowN[j] < 0 || rowP[j] < 0) throw new RangeError(`input ${j} lacks an NMOS or PMOS row; calibration handles dual-rail arrays only`);
  }
  return { rowN, rowP };
}

class Grow {
  a: number[] = [];
  push(x: number): void {
    this.a.push(x);
  }
}

/** Sorts measurements per neuron. Fit blocks: sweeps and patterns; held-out blocks go to `heldOut` (repeat 0). */
export function buildDataset(input: LayerFitInput): LayerDataset {
  const g = input.geometry;
  const n = g.outputs;
  const nIn = g.inputs;
  const { rowN, rowP } = rowsOf(g);
  const codesN: number[] = [];
  const codesP: number[] = [];
  const idx = (list: number[], c: number) => {
    let k = list.indexOf(c);
    if (k < 0) k = list.push(c) - 1;
    return k;
  };
  const mk = () => ({
    sn: { j: new Grow(), c: new Grow(), tIn: new Grow(), tOut: new Grow() },
    sp: { j: new Grow(), cn: new Grow(), cp: new Grow(), tIn: new Grow(), tOut: new Grow() },
    pat: { start: new Grow(), count: new Grow(), tOut: new Grow(), u0: new Grow(), block: new Grow(), row: new Grow() },
    ent: { j: new Grow(), t: new Grow(), cn: new Grow(), cp: new Grow() },
  });
  const fit = Array.from({ length: n }, mk);
  let hasRestShift = false;
  const held = Array.from({ length: n }, mk);
  for (let q = 0; q < input.samples.length; q++) {
    const s = input.samples[q];
    if (s.layer !== input.layer) continue;
    if (s.kind === 'scan-n' || s.kind === 'scan-p') continue;
    if (s.kind === 'heldout' && s.repeat !== 0) continue;
    const target = s.kind === 'heldout' ? held : fit;
    for (let b = 0; b < s.batch; b++) {
      const active: number[] = [];
      for (let j = 0; j < nIn; j++) if (Number.isFinite(s.inputs[b * nIn + j])) active.push(j);
      if (active.length === 0) continue;
      active.sort((x, y) => s.inputs[b * nIn + x] - s.inputs[b * nIn + y] || x - y);
      for (let i = 0; i < n; i++) {
        const tOut = s.out[b * n + i];
        // Silent fit samples stay as censored data (patterns only); held-out scores fired spikes.
        if (!Number.isFinite(tOut) && (s.kind !== 'pattern' || target === held)) continue;
        const d = target[i];
        const cn0 = s.codes[rowN[active[0]] * n + i];
        const cp0 = s.codes[rowP[active[0]] * n + i];
        const u0 = s.restShiftVolts ? -s.restShiftVolts / input.swingVolts : 0;
        if (u0 !== 0) hasRestShift = true;
        if (s.kind === 'sweep-n' && active.length === 1 && u0 === 0) {
          d.sn.j.push(active[0]);
          d.sn.c.push(idx(codesN, cn0));
          d.sn.tIn.push(s.inputs[b * nIn + active[0]]);
          d.sn.tOut.push(tOut);
          idx(codesP, cp0);
        } else if (s.kind === 'sweep-p' && active.length === 1 && u0 === 0) {
          d.sp.j.push(active[0]);
          d.sp.cn.push(idx(codesN, cn0));
          d.sp.cp.push(idx(codesP, cp0));
          d.sp.tIn.push(s.inputs[b * nIn + active[0]]);
          d.sp.tOut.push(tOut);
        }
        // Every fit sample (sweeps included) is also scored as a pattern through the fitted curves.
        d.pat.start.push(d.ent.j.a.length);
        d.pat.count.push(active.length);
        d.pat.tOut.push(tOut);
        d.pat.u0.push(u0);
        d.pat.block.push(q);
        d.pat.row.push(b);
        for (const j of active) {
          d.ent.j.push(j);
          d.ent.t.push(s.inputs[b * nIn + j]);
          d.ent.cn.push(idx(codesN, s.codes[rowN[j] * n + i]));
          d.ent.cp.push(idx(codesP, s.codes[rowP[j] * n + i]));
        }
      }
    }
  }
  const freeze = (d: ReturnType<typeof mk>): NeuronData => ({
    sn: { j: Int32Array.from(d.sn.j.a), c: Int32Array.from(d.sn.c.a), tIn: Float64Array.from(d.sn.tIn.a), tOut: Float64Array.from(d.sn.tOut.a) },
    sp: {
      j: Int32Array.from(d.sp.j.a),
      cn: Int32Array.from(d.sp.cn.a),
      cp: Int32Array.from(d.sp.cp.a),
      tIn: Float64Array.from(d.sp.tIn.a),
      tOut: Float64Array.from(d.sp.tOut.a),
    },
    pat: {
      start: Int32Array.from(d.pat.start.a),
      count: Int32Array.from(d.pat.count.a),
      tOut: Float64Array.from(d.pat.tOut.a),
      u0: Float64Array.from(d.pat.u0.a),
      block: Int32Array.from(d.pat.block.a),
      row: Int32Array.from(d.pat.row.a),
    },
    ent: { j: Int32Array.from(d.ent.j.a), t: Float64Array.from(d.ent.t.a), cn: Int32Array.from(d.ent.cn.a), cp: Int32Array.from(d.ent.cp.a) },
  });
  return {
    input,
    codesN,
    codesP,
    voltsN: Float64Array.from(codesN, (c) => codeToVolts(input.dac, c)),
    voltsP: Float64Array.from(codesP, (c) => codeToVolts(input.dac, c)),
    neurons: fit.map(freeze),
    heldOut: held.map(freeze),
    rowN,
    rowP,
    hasRestShift,
  };
}

/** Scratch buffers reused across evaluations of one neuron. */
class Scratch {
  inputs: NeuronInputs;
  obsN: SynapseObservations[];
  obsP: SynapseObservations[];
  grad: CrossingGrad;
  /** Per-sample physics of the sweep inversions (E at the swept transistors' gates). */
  phys: NeuronPhysics = { ePlus: 1, eMinus: -1, theta: 1, ideal: false };
  constructor(nIn: number, maxEntries: number, perSyn: number, gateE: boolean) {
    this.grad = crossingGradBuffers(maxEntries);
    this.inputs = {
      count: 0,
      times: new Float64Array(maxEntries),
      gE: new Float64Array(maxEntries),
      gI: new Float64Array(maxEntries),
      kick: new Float64Array(maxEntries),
      ...(gateE ? { fE: new Float64Array(maxEntries), fI: new Float64Array(maxEntries) } : {}),
    };
    const obs = () => ({ count: 0, volts: new Float64Array(perSyn), lnG: new Float64Array(perSyn), weight: new Float64Array(perSyn) });
    this.obsN = Array.from({ length: nIn }, obs);
    this.obsP = Array.from({ length: nIn }, obs);
  }
}

export interface NeuronEval {
  /** Residuals in noise units (ticks / NOISE_TICKS), fixed length per neuron; the last one is the theta prior (PNN). */
  residuals: Float64Array;
}

/** The fitting engine for one layer (PNN or ideal model). */
export class LayerFitter {
  readonly data: LayerDataset;
  readonly state: LayerFitState;
  private scratch: Scratch;
  private gN: Float64Array;
  private gP: Float64Array;
  /** E over E+- per input x code (gateReversal), else null: one E+ and one E- for every synapse. */
  private readonly shape: ReversalCurve | null;
  private fN: Float64Array;
  private fP: Float64Array;
  /** The shape strengths the E factor tables are at (GlobalParams.shapeN / shapeP; set by `useShape`). */
  private kN = 1;
  private kP = 1;
  private readonly thetaPrior: number;

  constructor(data: LayerDataset, ideal: boolean, families: { nmos: CurveFamily; pmos: CurveFamily }) {
    this.data = data;
    this.thetaPrior = data.hasRestShift ? THETA_PRIOR_MEASURED : THETA_PRIOR_SIGMA;
    const { outputs: n, inputs: nIn } = data.input.geometry;
    this.state = {
      ideal,
      families: { nmos: { ...families.nmos }, pmos: { ...families.pmos } },
      theta: new Float64Array(n).fill(1),
      delay: new Float64Array(n),
      dVthN: new Float64Array(n * nIn),
      lnGainN: new Float64Array(n * nIn),
      dVthP: new Float64Array(n * nIn),
      lnGainP: new Float64Array(n * nIn),
      obsN: new Uint8Array(n * nIn),
      obsP: new Uint8Array(n * nIn),
    };
    let maxEnt = 1;
    for (const d of [...data.neurons, ...data.heldOut]) {
      for (let s = 0; s < d.pat.count.length; s++) maxEnt = Math.max(maxEnt, d.pat.count[s]);
    }
    // Room for every sweep sample of a transistor (repeated sweeps included): none may be dropped.
    let perSyn = 1;
    const perInput = new Int32Array(nIn);
    for (const d of data.neurons) {
      for (const js of [d.sn.j, d.sp.j]) {
        perInput.fill(0);
        for (const j of js) perSyn = Math.max(perSyn, ++perInput[j]);
      }
    }
    const anchor = data.input.gateReversal;
    this.shape = !ideal && anchor ? reversalShape(anchor, data.input.ctx.supply) : null;
    this.scratch = new Scratch(nIn, maxEnt, perSyn, this.shape !== null);
    this.gN = new Float64Array(nIn * Math.max(1, data.codesN.length));
    this.gP = new Float64Array(nIn * Math.max(1, data.codesP.length));
    this.fN = new Float64Array(this.shape ? this.gN.length : 0).fill(1);
    this.fP = new Float64Array(this.shape ? this.gP.length : 0).fill(1);
  }

  /** E over the global E+- of a transistor with threshold shift `dVth` at gate `v` (1 without gateReversal): the shape to the power k. */
  private eFactor(pmos: boolean, v: number, dVth: number): number {
    if (!this.shape) return 1;
    const e = reversalAt(this.shape, pmos, effectiveGate(pmos, v, dVth));
    const k = pmos ? this.kP : this.kN;
    return k === 1 ? e : e ** k;
  }

  /** Takes the globals' shape strengths for the E factor tables filled after it (every entry point that takes globals calls it). */
  private useShape(globals: GlobalParams): void {
    this.kN = globals.shapeN ?? 1;
    this.kP = globals.shapeP ?? 1;
  }

  /** A copy of the per-neuron and per-transistor state (families excluded). */
  snapshot(): LayerFitState {
    const s = this.state;
    return {
      ...s,
      theta: s.theta.slice(),
      delay: s.delay.slice(),
      dVthN: s.dVthN.slice(),
      lnGainN: s.lnGainN.slice(),
      dVthP: s.dVthP.slice(),
      lnGainP: s.lnGainP.slice(),
      obsN: s.obsN.slice(),
      obsP: s.obsP.slice(),
    };
  }

  /** A copy of neuron i's state (see NeuronState). */
  neuronState(i: number): NeuronState {
    const s = this.state;
    const nIn = this.data.input.geometry.inputs;
    const a = i * nIn;
    const b = a + nIn;
    return {
      i,
      theta: s.theta[i],
      delay: s.delay[i],
      dVthN: s.dVthN.slice(a, b),
      lnGainN: s.lnGainN.slice(a, b),
      dVthP: s.dVthP.slice(a, b),
      lnGainP: s.lnGainP.slice(a, b),
      obsN: s.obsN.slice(a, b),
      obsP: s.obsP.slice(a, b),
    };
  }

  /** Writes back what neuronState() copied (after a fit elsewhere). */
  setNeuronState(n: NeuronState): void {
    const s = this.state;
    const a = n.i * this.data.input.geometry.inputs;
    s.theta[n.i] = n.theta;
    s.delay[n.i] = n.delay;
    s.dVthN.set(n.dVthN, a);
    s.lnGainN.set(n.lnGainN, a);
    s.dVthP.set(n.dVthP, a);
    s.lnGainP.set(n.lnGainP, a);
    s.obsN.set(n.obsN, a);
    s.obsP.set(n.obsP, a);
  }

  /** Takes over another fitter's state of the same layer (a dataset with more samples, say), families included. */
  adopt(other: LayerFitter): void {
    this.restore(other.snapshot());
    Object.assign(this.state.families.nmos, other.state.families.nmos);
    Object.assign(this.state.families.pmos, other.state.families.pmos);
  }

  /** Restores what snapshot() saved. */
  restore(snap: LayerFitState): void {
    const s = this.state;
    s.theta.set(snap.theta);
    s.delay.set(snap.delay);
    s.dVthN.set(snap.dVthN);
    s.lnGainN.set(snap.lnGainN);
    s.dVthP.set(snap.dVthP);
    s.lnGainP.set(snap.lnGainP);
    s.obsN.set(snap.obsN);
    s.obsP.set(snap.obsP);
  }

  physics(globals: GlobalParams, theta: number): NeuronPhysics {
    return this.state.ideal
      ? { ePlus: 1, eMinus: -1, theta: 1, ideal: true }
      : { ePlus: globals.ePlus, eMinus: globals.eMinus, theta, ideal: false, capSlope: this.data.input.capSlope ?? 0 };
  }

  private kicks(globals: GlobalParams): { kN: number; kP: number } {
    return this.state.ideal ? { kN: 0, kP: 0 } : { kN: globals.kickNmos, kP: globals.kickPmos };
  }

  /**
   * Infers the neuron's synapse curves from its sweeps at (theta, delay) and fills the conductance
   * tables gN/gP (per input x code). Updates the state's synapse parameters when `commit`.
   */
  private projectSynapses(i: number, globals: GlobalParams, theta: number, delay: number, commit: boolean): void {
    this.useShape(globals);
    const { data, state } = this;
    const d = data.neurons[i];
    const nIn = data.input.geometry.inputs;
    const { ctx, perUnit } = data.input;
    const phys = this.physics(globals, theta);
    const { kN, kP } = this.kicks(globals);
    const vdd = ctx.supply;
    const sigmaT = NOISE_TICKS / perUnit;
    const { obsN, obsP } = this.scratch;
    for (const o of obsN) o.count = 0;
    for (const o of obsP) o.count = 0;
    const offP = data.voltsP.length ? Math.max(...data.voltsP) : vdd;
    const fam = state.families;
    const base = i * nIn;
    const dVN = commit ? state.dVthN : Float64Array.from(state.dVthN.subarray(base, base + nIn));
    const lgN = commit ? state.lnGainN : Float64Array.from(state.lnGainN.subarray(base, base + nIn));
    const offN = commit ? base : 0;
    // With gateReversal each inversion sees the swept transistors' own E (at their current threshold shifts).
    const ph = this.scratch.phys;
    Object.assign(ph, phys);
    for (let s = 0; s < d.sn.j.length; s++) {
      const j = d.sn.j[s];
      const v = data.voltsN[d.sn.c[s]];
      const tau = d.sn.tOut[s] - d.sn.tIn[s] - delay;
      const u0 = -kN * v + kP * (vdd - offP);
      if (this.shape) ph.ePlus = phys.ePlus * this.eFactor(false, v, dVN[offN + j]);
      const g = excitatoryFromTime(tau, u0, ph);
      if (!(g > 0)) continue;
      const o = obsN[j];
      if (o.count >= o.volts.length) continue;
      o.volts[o.count] = v;
      o.lnG[o.count] = Math.log(g);
      o.weight[o.count] = (tau / sigmaT) ** 2;
      o.count++;
    }
    const driven = data.input.driven;
    const KN = data.codesN.length;
    this.fitCurves(fam.nmos, obsN, dVN, lgN, offN, data.voltsN, this.gN, this.fN);
    const dVP = commit ? state.dVthP : Float64Array.from(state.dVthP.subarray(base, base + nIn));
    const lgP = commit ? state.lnGainP : Float64Array.from(state.lnGainP.subarray(base, base + nIn));
    for (let s = 0; s < d.sp.j.length; s++) {
      const j = d.sp.j[s];
      const vN = data.voltsN[d.sp.cn[s]];
      const vP = data.voltsP[d.sp.cp[s]];
      const gE = this.gN[j * KN + d.sp.cn[s]];
      const tau = d.sp.tOut[s] - d.sp.tIn[s] - delay;
      const u0 = -kN * vN + kP * (vdd - vP);
      if (this.shape) {
        ph.ePlus = phys.ePlus * this.fN[j * KN + d.sp.cn[s]];
        ph.eMinus = phys.eMinus * this.eFactor(true, vP, dVP[offN + j]);
      }
      const gI = inhibitoryFromPairTime(tau, gE, u0, ph);
      if (!(gI > 0)) continue;
      const tauE = ph.ideal ? (ph.theta - u0) / gE : excitatoryTime(gE, u0, ph);
      const o = obsP[j];
      if (o.count >= o.volts.length) continue;
      o.volts[o.count] = vP;
      o.lnG[o.count] = Math.log(gI);
      o.weight[o.count] = (Math.max(tau - tauE, sigmaT) / sigmaT) ** 2;
      o.count++;
    }
    if (commit) {
      for (let j = 0; j < driven; j++) {
        state.obsN[base + j] = Math.min(255, obsN[j].count);
        state.obsP[base + j] = Math.min(255, obsP[j].count);
      }
    }
    this.fitCurves(fam.pmos, obsP, dVP, lgP, offN, data.voltsP, this.gP, this.fP);
  }

  /**
   * MAP curve of every driven transistor of one polarity from its observations (warm-started from
   * dV / lg at offset `off`), then the conductance table (input x code) of all inputs, and with
   * gateReversal their E factors (`eTable`).
   */
  private fitCurves(
    fam: CurveFamily,
    obs: SynapseObservations[],
    dV: Float64Array,
    lg: Float64Array,
    off: number,
    volts: Float64Array,
    table: Float64Array,
    eTable: Float64Array,
  ): void {
    const { ctx, driven } = this.data.input;
    const nIn = this.data.input.geometry.inputs;
    const K = volts.length;
    for (let j = 0; j < driven; j++) {
      const r = fitSynapse(fam, ctx, obs[j], dV[off + j], lg[off + j]);
      dV[off + j] = r.dVth;
      lg[off + j] = r.lnGain;
    }
    const pmos = fam.polarity === 'pmos';
    for (let j = 0; j < nIn; j++) {
      for (let c = 0; c < K; c++) {
        table[j * K + c] = Math.exp(logConductance(fam, volts[c], ctx, dV[off + j], lg[off + j]));
        if (this.shape) eTable[j * K + c] = this.eFactor(pmos, volts[c], dV[off + j]);
      }
    }
  }

  /** Loads sample s of `d` into the scratch inputs from the current conductance tables. */
  private loadSample(d: NeuronData, s: number, kN: number, kP: number): NeuronInputs {
    const { data } = this;
    const vdd = data.input.ctx.supply;
    const KN = data.codesN.length;
    const KP = data.codesP.length;
    const inp = this.scratch.inputs;
    const st = d.pat.start[s];
    const cnt = d.pat.count[s];
    for (let k = 0; k < cnt; k++) {
      const j = d.ent.j[st + k];
      const cn = d.ent.cn[st + k];
      const cp = d.ent.cp[st + k];
      inp.times[k] = d.ent.t[st + k];
      inp.gE[k] = this.gN[j * KN + cn];
      inp.gI[k] = this.gP[j * KP + cp];
      if (inp.fE && inp.fI) {
        inp.fE[k] = this.fN[j * KN + cn];
        inp.fI[k] = this.fP[j * KP + cp];
      }
      inp.kick[k] = -kN * data.voltsN[cn] + kP * (vdd - data.voltsP[cp]);
    }
    inp.count = cnt;
    // A raised precharge starts the membrane below rest; nothing moves before the first input.
    if (cnt > 0) inp.kick[0] += d.pat.u0[s];
    return inp;
  }

  /** Predicted spike times (normalised, delay included) of a neuron's samples with the current tables. */
  private predict(d: NeuronData, globals: GlobalParams, theta: number, delay: number, out: Float64Array): void {
    const phys = this.physics(globals, theta);
    const { kN, kP } = this.kicks(globals);
    for (let s = 0; s < d.pat.count.length; s++) out[s] = neuronCrossing(this.loadSample(d, s, kN, kP), phys) + delay;
  }

  private residualsOf(d: NeuronData, pred: Float64Array, theta: number, out: Float64Array, robust = true): void {
    const m = d.pat.count.length;
    for (let s = 0; s < m; s++) {
      const r = this.rawResidual(d, s, pred[s]);
      out[s] = Number.isFinite(r) ? (robust ? Math.sign(r) * ROBUST * Math.sqrt(Math.log1p((r / ROBUST) ** 2)) : r) : MISS_PENALTY;
    }
    if (!this.state.ideal) out[m] = (theta - 1) / this.thetaPrior;
  }

  /**
   * (predicted - measured) in noise units; for a sample the chip left silent, how far before the
   * window end the model fires (0 when it too is silent or late).
   */
  private rawResidual(d: NeuronData, s: number, pred: number): number {
    const { perUnit, horizon } = this.data.input;
    const t = d.pat.tOut[s];
    if (t === Infinity) return pred < horizon ? ((pred - horizon) * perUnit) / NOISE_TICKS : 0;
    return ((pred - t) * perUnit) / NOISE_TICKS;
  }

  /** Residual count of neuron i. */
  residualCount(i: number): number {
    return this.data.neurons[i].pat.count.length + (this.state.ideal ? 0 : 1);
  }

  /** Fits neuron i's theta and delay (and, through them, its synapse curves) at the given globals. */
  fitNeuron(i: number, globals: GlobalParams, iterations = 8, freeTheta = false): Float64Array {
    const { state } = this;
    const d = this.data.neurons[i];
    const m = d.pat.count.length;
    const pred = new Float64Array(m);
    const nRes = this.residualCount(i);
    const perUnit = this.data.input.perUnit;
    if (m === 0) return new Float64Array(nRes);
    // Without freeTheta the threshold stays where it is and only the delay moves: thresholds are
    // weakly identified next to the conductances (unless raised-precharge sweeps measure them), and
    // the polish step frees them from a good start.
    const fixTheta = state.ideal || !(freeTheta || this.data.hasRestShift);
    const res = (p: Float64Array): Float64Array => {
      const theta = fixTheta ? state.theta[i] : p[0];
      const delay = fixTheta ? p[0] : p[1];
      this.projectSynapses(i, globals, theta, delay, false);
      this.predict(d, globals, theta, delay, pred);
      const r = new Float64Array(nRes);
      this.residualsOf(d, pred, theta, r);
      return r;
    };
    const start = fixTheta ? [state.delay[i]] : [state.theta[i], state.delay[i]];
    const dStep = 0.05 / perUnit;
    const fit = levenbergMarquardt(res, start, {
      steps: fixTheta ? [dStep] : [1e-4, dStep],
      lower: fixTheta ? [-20 / perUnit] : [0.3, -20 / perUnit],
      upper: fixTheta ? [50 / perUnit] : [3, 50 / perUnit],
      maxIterations: iterations,
      tolerance: 1e-7,
    });
    if (fixTheta) state.delay[i] = fit.params[0];
    else {
      state.theta[i] = fit.params[0];
      state.delay[i] = fit.params[1];
    }
    this.projectSynapses(i, globals, state.theta[i], state.delay[i], true);
    return fit.residuals;
  }

  /** Held-out residuals in ticks (predicted - measured) of neuron i with the committed state. */
  heldOutResiduals(i: number, globals: GlobalParams): { predicted: Float64Array; measured: Float64Array } {
    return { predicted: this.predicted(i, globals, 'heldout'), measured: Float64Array.from(this.data.heldOut[i].pat.tOut) };
  }

  /** Predicted spike times (normalised, +Infinity = never) of neuron i's fit or held-out patterns with the committed state. */
  predicted(i: number, globals: GlobalParams, which: 'fit' | 'heldout' = 'fit'): Float64Array {
    this.useShape(globals);
    const d = which === 'fit' ? this.data.neurons[i] : this.data.heldOut[i];
    const pred = new Float64Array(d.pat.count.length);
    this.fillTables(i);
    this.predict(d, globals, this.state.theta[i], this.state.delay[i], pred);
    return pred;
  }

  /**
   * How far held-out pattern s of neuron i (`which` = 'fit': fit pattern s) moves for a change of
   * its threshold scale: d t / d theta in ticks per unit of theta (0 where the model leaves it silent
   * inside the window). A pattern whose membrane creeps
   * up to threshold has a large value, and so the same large sensitivity to every conductance in it:
   * that is what makes its prediction hard, not the measurement.
   */
  heldOutThresholdSensitivity(i: number, s: number, globals: GlobalParams, which: 'fit' | 'heldout' = 'heldout'): number {
    this.useShape(globals);
    const d = which === 'fit' ? this.data.neurons[i] : this.data.heldOut[i];
    if (!(s >= 0 && s < d.pat.count.length)) throw new RangeError(`neuron ${i} has no ${which === 'fit' ? 'fit' : 'held-out'} pattern ${s}`);
    this.fillTables(i);
    const { kN, kP } = this.kicks(globals);
    const T = neuronCrossingGrad(this.loadSample(d, s, kN, kP), this.physics(globals, this.state.theta[i]), this.scratch.grad);
    // A crossing after the window end is a silent reading: it does not move with the threshold.
    return T + this.state.delay[i] < this.data.input.horizon ? this.scratch.grad.dTheta * this.data.input.perUnit : 0;
  }

  /**
   * Joint refinement of one neuron: theta, delay and a ln-gain correction of each of its probed
   * transistors, against every fit sample (sweeps and patterns) at once. Gauss-Newton with
   * Marquardt damping. The Jacobian is analytic (`neuronCrossingGrad`: one reverse sweep per
   * sample gives the derivative with respect to every active conductance), stored sparse (a row
   * holds threshold, delay and the sample's active inputs: one for a sweep, at most ~50 for a
   * pattern), so building it costs O(active inputs) per sample. The normal equations are solved
   * densely (Cholesky) while the neuron has few transistors and by Jacobi-preconditioned conjugate
   * gradients on the sparse Jacobian otherwise, so a 784-input neuron (1570 unknowns) costs about
   * as much as a narrow one per sample. Residuals are down-weighted Cauchy-style beyond `ROBUST`
   * noise units: patterns that end close to the firing boundary are hypersensitive to every
   * conductance and must not dominate.
   */
  polishNeuron(i: number, globals: GlobalParams, iterations = 6): void {
    this.useShape(globals);
    const { data, state } = this;
    const d = data.neurons[i];
    const m = d.pat.count.length;
    if (m === 0) return;
    const nIn = data.input.geometry.inputs;
    const driven = data.input.driven;
    const perUnit = data.input.perUnit;
    const ideal = state.ideal;
    const P = 2 + 2 * driven;
    const base = i * nIn;
    const shift = new Float64Array(2 * driven);
    // A transistor no sweep measured (e.g. a PMOS strong enough to silence its pair) sits at its
    // family's curve; only the patterns can place it, so its correction is nearly unconstrained.
    const prior = new Float64Array(P);
    prior[0] = ideal ? 1 : this.thetaPrior;
    prior[1] = Infinity;
    for (let j = 0; j < driven; j++) {
      prior[2 + j] = state.obsN[base + j] > 0 ? SHIFT_PRIOR : 1;
      prior[2 + driven + j] = state.obsP[base + j] > 0 ? SHIFT_PRIOR : 1;
    }
    const pred = new Float64Array(m);
    const trial = new Float64Array(m);
    const inp = this.scratch.inputs;
    const gb = this.scratch.grad;
    const { kN, kP } = this.kicks(globals);
    const cost = (theta: number, delay: number, out: Float64Array): number => {
      let c = 0;
      const phys = this.physics(globals, theta);
      for (let s = 0; s < m; s++) {
        this.loadSample(d, s, kN, kP);
        out[s] = neuronCrossing(inp, phys) + delay;
        const r = this.rawResidual(d, s, out[s]);
        c += Number.isFinite(r) ? ROBUST * ROBUST * Math.log1p((r / ROBUST) ** 2) : 1e6;
      }
      for (let q = 0; q < shift.length; q++) c += (shift[q] / prior[2 + q]) ** 2;
      if (!ideal) c += ((theta - 1) / this.thetaPrior) ** 2;
      return c;
    };
    let theta = ideal ? 1 : state.theta[i];
    let delay = state.delay[i];
    this.fillTables(i);
    let c0 = cost(theta, delay, pred);
    let mu = 1e-2;
    // Sparse Jacobian (rows = samples), sqrt(weight) folded in.
    let nnzCap = 0;
    for (let s = 0; s < m; s++) nnzCap += 2 + 2 * d.pat.count[s];
    const rowPtr = new Int32Array(m + 1);
    const col = new Int32Array(nnzCap);
    const val = new Float64Array(nnzCap);
    const rw = new Float64Array(m);
    const b = new Float64Array(P);
    const diag = new Float64Array(P);
    const dense = P <= DENSE_POLISH_MAX;
    const A = dense ? new Float64Array(P * P) : null;
    const sc = perUnit / NOISE_TICKS;
    for (let it = 0; it < iterations; it++) {
      b.fill(0);
      diag.fill(0);
      const phys = this.physics(globals, theta);
      let nnz = 0;
      for (let s = 0; s < m; s++) {
        rowPtr[s] = nnz;
        const r = this.rawResidual(d, s, pred[s]);
        rw[s] = 0;
        if (!Number.isFinite(r) || (r === 0 && d.pat.tOut[s] === Infinity)) continue;
        const sw = 1 / Math.sqrt(1 + (r / ROBUST) ** 2);
        rw[s] = sw * r;
        this.loadSample(d, s, kN, kP);
        const T = neuronCrossingGrad(inp, phys, gb);
        if (!Number.isFinite(T)) continue;
        if (!ideal) {
          col[nnz] = 0;
          val[nnz++] = gb.dTheta * sc * sw;
        }
        col[nnz] = 1;
        val[nnz++] = sc * sw;
        const st = d.pat.start[s];
        for (let k = 0; k < inp.count; k++) {
          const j = d.ent.j[st + k];
          if (j >= driven) continue;
          // d t / d ln(gain) = g * d t / d g.
          const gE = inp.gE[k];
          if (gE > 1e-9 && gb.dgE[k] !== 0) {
            col[nnz] = 2 + j;
            val[nnz++] = gb.dgE[k] * gE * sc * sw;
          }
          const gI = inp.gI[k];
          if (gI > 1e-9 && gb.dgI[k] !== 0) {
            col[nnz] = 2 + driven + j;
            val[nnz++] = gb.dgI[k] * gI * sc * sw;
          }
        }
      }
      rowPtr[m] = nnz;
      for (let s = 0; s < m; s++) {
        const r = rw[s];
        for (let q = rowPtr[s]; q < rowPtr[s + 1]; q++) {
          b[col[q]] -= val[q] * r;
          diag[col[q]] += val[q] * val[q];
        }
      }
      // Priors (threshold at 1, ln-gain corrections at 0); the delay is free.
      if (!ideal) b[0] -= (theta - 1) / this.thetaPrior ** 2;
      for (let q = 0; q < shift.length; q++) b[2 + q] -= shift[q] / prior[2 + q] ** 2;
      for (let a = 0; a < P; a++) diag[a] += 1 / prior[a] ** 2;
      if (A) {
        A.fill(0);
        for (let s = 0; s < m; s++) {
          const e = rowPtr[s + 1];
          for (let x = rowPtr[s]; x < e; x++) {
            const a = col[x];
            const va = val[x];
            for (let y = rowPtr[s]; y < e; y++) A[a * P + col[y]] += va * val[y];
          }
        }
        for (let a = 0; a < P; a++) A[a * P + a] += 1 / prior[a] ** 2;
      }
      let accepted = false;
      for (let tries = 0; tries < 6 && !accepted; tries++) {
        let dx: Float64Array | null;
        if (A) {
          const Ad = Float64Array.from(A);
          for (let a = 0; a < P; a++) Ad[a * P + a] += mu * A[a * P + a] + 1e-12;
          dx = solveSpd(Ad, b, P);
        } else dx = sparseNormalSolve(rowPtr, col, val, m, diag, prior, mu, b, { maxIterations: 25, tolerance: 1e-3 });
        if (!dx) {
          mu *= 10;
          continue;
        }
        const nTheta = ideal ? 1 : Math.min(3, Math.max(0.3, theta + dx[0]));
        const nDelay = delay + dx[1];
        for (let q = 0; q < shift.length; q++) {
          const step = Math.max(-0.3, Math.min(0.3, dx[2 + q]));
          dx[2 + q] = step;
          if (step === 0) continue;
          shift[q] += step;
          this.applyShift(i, q, driven, step);
        }
        this.fillTables(i);
        const c1 = cost(nTheta, nDelay, trial);
        if (c1 < c0) {
          theta = nTheta;
          delay = nDelay;
          pred.set(trial);
          mu = Math.max(mu / 3, 1e-6);
          const rel = (c0 - c1) / c0;
          c0 = c1;
          accepted = true;
          if (rel < 1e-6) it = iterations;
        } else {
          for (let q = 0; q < shift.length; q++) {
            const step = dx[2 + q];
            if (step === 0) continue;
            shift[q] -= step;
            this.applyShift(i, q, driven, -step);
          }
          this.fillTables(i);
          mu *= 10;
        }
      }
      if (!accepted) break;
    }
    if (!ideal) state.theta[i] = theta;
    state.delay[i] = delay;
  }

  private applyShift(i: number, q: number, driven: number, step: number): void {
    const nIn = this.data.input.geometry.inputs;
    if (q < driven) this.state.lnGainN[i * nIn + q] += step;
    else this.state.lnGainP[i * nIn + q - driven] += step;
  }

  /**
   * Residuals (noise units, no prior) of neuron i's fit samples with the committed synapse state,
   * at the given globals and an extra delay shift: the fixed-synapse evaluation of a drift refit.
   * `robust` applies the Cauchy-style down-weighting the per-neuron fits minimise (see polishNeuron).
   */
  residualsFixed(i: number, globals: GlobalParams, delayShift = 0, which: 'fit' | 'heldout' = 'fit', robust = false): Float64Array {
    this.useShape(globals);
    const d = which === 'fit' ? this.data.neurons[i] : this.data.heldOut[i];
    const m = d.pat.count.length;
    const pred = new Float64Array(m);
    this.fillTables(i);
    const theta = this.state.theta[i];
    this.predict(d, globals, theta, this.state.delay[i] + delayShift, pred);
    const r = new Float64Array(m + (this.state.ideal ? 0 : 1));
    this.residualsOf(d, pred, theta, r, robust);
    return r.subarray(0, m);
  }

  /** Conductance tables of neuron i from the committed synapse state. */
  private fillTables(i: number): void {
    const { data, state } = this;
    const nIn = data.input.geometry.inputs;
    const { ctx } = data.input;
    const KN = data.codesN.length;
    const KP = data.codesP.length;
    for (let j = 0; j < nIn; j++) {
      const k = i * nIn + j;
      for (let c = 0; c < KN; c++) {
        this.gN[j * KN + c] = Math.exp(logConductance(state.families.nmos, data.voltsN[c], ctx, state.dVthN[k], state.lnGainN[k]));
        if (this.shape) this.fN[j * KN + c] = this.eFactor(false, data.voltsN[c], state.dVthN[k]);
      }
      for (let c = 0; c < KP; c++) {
        this.gP[j * KP + c] = Math.exp(logConductance(state.families.pmos, data.voltsP[c], ctx, state.dVthP[k], state.lnGainP[k]));
        if (this.shape) this.fP[j * KP + c] = this.eFactor(true, data.voltsP[c], state.dVthP[k]);
      }
    }
  }

  /**
   * Re-fits the curve families to every neuron's committed synapse observations, then moves the
   * mean transistor shift and ln gain into the family (so per-transistor values stay centred).
   */
  refitFamilies(globals: GlobalParams, maxObs = 20000, neurons?: readonly number[]): void {
    const plan = this.familyPlan(maxObs, neurons);
    this.fitFamilies(plan.pool.map((i, p) => this.familyObservations(i, globals, p, plan.step)));
    for (let i = 0; i < this.data.input.geometry.outputs; i++) this.projectNeuron(i, globals);
  }

  /**
   * The neurons a family refit pools (`neurons`, default all) and the sampling step over their
   * driven synapses (synapse k of the pool, counted neuron by neuron, is used when k % step is 0).
   */
  familyPlan(maxObs = 20000, neurons?: readonly number[]): { pool: number[]; step: number } {
    const pool = neurons ? [...neurons] : Array.from({ length: this.data.input.geometry.outputs }, (_, i) => i);
    return { pool, step: Math.max(1, Math.floor((pool.length * this.data.input.driven) / Math.max(1, maxObs / 6))) };
  }

  /**
   * The sweep observations neuron i (the p-th of the plan's pool) contributes to a family refit:
   * its synapses inferred at its own theta and delay (not committed), the sampled ones with two
   * readings or more, NMOS before PMOS per input.
   */
  familyObservations(i: number, globals: GlobalParams, p: number, step: number): PooledObservations[] {
    const { data, state } = this;
    const out: PooledObservations[] = [];
    this.projectSynapses(i, globals, state.theta[i], state.delay[i], false);
    const driven = data.input.driven;
    for (let j = 0; j < driven; j++) {
      if ((p * driven + j) % step) continue;
      for (const pol of ['nmos', 'pmos'] as const) {
        const o = (pol === 'nmos' ? this.scratch.obsN : this.scratch.obsP)[j];
        if (o.count < 2) continue;
        out.push({ pol, volts: o.volts.slice(0, o.count), lnG: o.lnG.slice(0, o.count), weight: o.weight.slice(0, o.count) });
      }
    }
    return out;
  }

  /**
   * Re-fits the curve families to pooled observations (familyObservations of the plan's neurons,
   * in pool order), then clears every per-transistor shift: each neuron must then be projected
   * again at the new families (projectNeuron).
   */
  fitFamilies(observations: readonly (readonly PooledObservations[])[]): void {
    // Fixed effects: every transistor gets a free ln-conductance offset while the family's slope
    // and threshold are fitted, alternating. A pooled fit without offsets is biased: at weak codes
    // only the stronger transistors fire inside the window, which flattens the apparent slope.
    // The pool is limited (familyPlan) to neurons whose theta and delay are already fitted.
    const { data, state } = this;
    const pooled = { nmos: [[], [], [], []] as number[][], pmos: [[], [], [], []] as number[][] };
    let syn = 0;
    for (const list of observations) {
      for (const o of list) {
        const [volts, lnG, weight, id] = pooled[o.pol];
        for (let q = 0; q < o.volts.length; q++) {
          volts.push(o.volts[q]);
          lnG.push(o.lnG[q]);
          weight.push(Math.min(o.weight[q], 1e4));
          id.push(syn);
        }
        syn++;
      }
    }
    const ctx = data.input.ctx;
    for (const pol of ['nmos', 'pmos'] as const) {
      const [volts, lnG, weight, id] = pooled[pol];
      if (volts.length < 3) continue;
      const off = new Float64Array(syn);
      const sw = new Float64Array(syn);
      let fam = state.families[pol];
      for (let round = 0; round < 5; round++) {
        off.fill(0);
        sw.fill(0);
        for (let q = 0; q < volts.length; q++) {
          off[id[q]] += weight[q] * (lnG[q] - logConductance(fam, volts[q], ctx));
          sw[id[q]] += weight[q];
        }
        let mean = 0;
        let cnt = 0;
        for (let a = 0; a < syn; a++) {
          if (sw[a] > 0) {
            off[a] /= sw[a];
            mean += off[a];
            cnt++;
          }
        }
        mean /= Math.max(1, cnt);
        fam = { ...fam, lnScale: fam.lnScale + mean };
        for (let a = 0; a < syn; a++) off[a] -= mean;
        fam = fitFamily(fam, ctx, {
          volts: Float64Array.from(volts),
          lnG: Float64Array.from(lnG),
          weight: Float64Array.from(weight),
          dVth: new Float64Array(volts.length),
          lnGain: Float64Array.from(id, (a) => off[a]),
        });
      }
      state.families[pol] = fam;
    }
    state.dVthN.fill(0);
    state.lnGainN.fill(0);
    state.dVthP.fill(0);
    state.lnGainP.fill(0);
  }

  /** Infers neuron i's transistor curves from its sweeps at its theta and delay and commits them. */
  projectNeuron(i: number, globals: GlobalParams): void {
    this.projectSynapses(i, globals, this.state.theta[i], this.state.delay[i], true);
  }

  /** Moves the mean per-transistor shift / ln gain of probed synapses into the families. */
  recentre(): void {
    const { data, state } = this;
    const nIn = data.input.geometry.inputs;
    const n = data.input.geometry.outputs;
    for (const [dv, lg, fam] of [
      [state.dVthN, state.lnGainN, state.families.nmos],
      [state.dVthP, state.lnGainP, state.families.pmos],
    ] as const) {
      let sd = 0;
      let sg = 0;
      let c = 0;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < data.input.driven; j++) {
          sd += dv[i * nIn + j];
          sg += lg[i * nIn + j];
          c++;
        }
      }
      if (!c) continue;
      sd /= c;
      sg /= c;
      fam.vth += sd;
      fam.lnScale += sg;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < data.input.driven; j++) {
          dv[i * nIn + j] -= sd;
          lg[i * nIn + j] -= sg;
        }
      }
    }
  }

  /** Initial families from the sweeps at nominal globals, theta 1, delay 0 (no per-transistor mismatch). */
  initialiseFamilies(globals: GlobalParams): void {
    this.refitFamilies(globals);
  }
}
