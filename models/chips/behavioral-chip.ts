/**
 * The behavioural chip: the nominal circuit of the ideal chip plus everything that makes a real die
 * different from its schematic, drawn from a seed (magnitudes and sources: README.md, "Behavioural
 * chip: hidden parameters").
 *
 * - per synapse transistor: threshold shift and current factor, through the SPICE-characterised
 *   sky130 curves at the die's process point and temperature (sky130-curves.ts, sky130-layer.ts: each
 *   synapse's reversal potential moves with its gate), or with `physics: 'ekv'` through the EKV
 *   transfer curve with a chip-level channel-length modulation per polarity (the model's own form);
 * - per neuron: MIM capacitance, inverter trip point (-> thresholdScale), comparator delay, leakage;
 * - per synapse: the capacitive kick of its gate switching on (gate-drain overlap charge over C);
 * - per run: Gaussian jitter on every output edge from a run-counter stream, so the same seed replays
 *   the same sequence of runs exactly; the board's timer adds a fixed path offset and floors to ticks;
 * - planted faults (faults.ts).
 *
 * Spike times come from the exact solver on these hidden parameters, layer by layer (an edge's
 * jitter moves the inputs of the next layer too). Nothing of the truth is reachable through the
 * ChipBackend fields (private fields); `hiddenTruth()` returns a copy for tests and calibration
 * targets, in the twin's normalised parametrisation.
 *
 * About 600 lines in one class: the hidden truth is private fields (so nothing reaches it through
 * the backend), and the draw, the gate -> layer rebuild, the run with jitter and faults, and
 * hiddenTruth() all read them; the physics itself lives in mismatch.ts, sky130-layer.ts and faults.ts.
 */

import { deriveSeed, fmix32, Rng } from '../datasets/rng.ts';
import { checkLayer, type PnnLayer } from '../neuron/layer.ts';
import { drainCurrent } from '../neuron/transfer-curve.ts';
import { checkCircuit, reversalPotentials, type NeuronCircuit } from '../neuron/units.ts';
import { exactForward } from '../solvers/exact.ts';
import { dualRailLayer, NMOS, type ChipBackend, type ChipSupply, type ChipTiming, type DacSpec, type LayerGeometry, type SafeRange } from './chip-backend.ts';
import { checkFaults, formatFaults, synapseRow, type ChipFault } from './faults.ts';
import { gateVoltagesToLayer } from './gate-to-layer.ts';
import { sky130DieCurves, sky130NominalCurves, type TransferCurves } from './sky130-curves.ts';
import { sky130GateVoltagesToLayer, synapseDrive } from './sky130-layer.ts';
import { checkGateVoltages, checkLayerIndex, checkRunInputs, checkSeed, checkSizes, resolveTiming } from './chip-checks.ts';
import { drawChip, pdkMismatchMagnitudes, RUN_STREAM, SKY130_MAGNITUDES, type ChipDraw, type MismatchMagnitudes, type ProcessDraw } from './mismatch.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, DEFAULT_SIZES, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from './sky130-nominal.ts';
import { ticksToTimes } from '../../wire/ticks.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

export interface BehavioralChipOptions {
  /** Which die: same seed and geometry, same chip. Default 0. */
  seed?: number;
  /** Layer widths, inputs first (default 784-256-128-10). */
  sizes?: readonly number[];
  /** Planted faults (parse a `faults=` string with parseFaults). */
  faults?: readonly ChipFault[];
  tickSeconds?: number;
  /** Window per layer in ticks (default 2000 (l + 1)). */
  horizonTicks?: readonly number[];
  /** Overrides of the documented magnitudes (in-process only: e.g. jitterSeconds: 0 for a noiseless die). */
  magnitudes?: Partial<MismatchMagnitudes>;
  /**
   * Synapse transistor physics: `sky130` (default) the SPICE-characterised curves of the bundled
   * card (sky130-curves.ts) at the die's corner and temperature, with the gate-dependent reversal
   * potentials solved exactly (sky130-layer.ts) and the PDK Monte Carlo's threshold mismatch;
   * `ekv` the model's own form (the EKV fit of sky130-nominal.ts, one lambda per polarity), so a
   * fit can be tested on a chip it can represent exactly. The die's draws come from the same streams.
   */
  physics?: BehavioralPhysics;
}

export type BehavioralPhysics = 'ekv' | 'sky130';
export const BEHAVIORAL_PHYSICS: readonly BehavioralPhysics[] = Object.freeze(['ekv', 'sky130']);

/** Neuron fault codes. */
const OK = 0;
const DEAD = 1;
const STUCK = 2;

/** One layer of the hidden truth. Arrays are copies; rows x outputs arrays are row-major like gate voltages. */
export interface BehavioralLayerTruth {
  /** The normalised model run() solves for this layer (gE, gI, ePlus, eMinus, gL, kick, thresholdScale, delay). */
  model: PnnLayer;
  ePlus: number;
  eMinus: number;
  /**
   * What `gateVoltagesToLayer(geometry, gateVolts, { nmos: NOMINAL_NMOS, pmos: NOMINAL_PMOS, circuit,
   * temperatureC, t0, horizon, dVth, gain })` needs to reproduce model.gE / model.gI: the circuit with
   * the die's lambdas and supply at the nominal capacitance, ...
   */
  circuit: NeuronCircuit;
  /** ... the gate voltages the devices see (the programmed ones; shorted synapses at their on rail), ... */
  gateVolts: Float64Array;
  /** ... per-transistor threshold shift on |Vth| (chip-level + local), volts, ... */
  dVth: Float64Array;
  /** ... and per-transistor current factor referred to the nominal capacitance (kp, beta, C; dead 0, weak x F). */
  gain: Float64Array;
  /** Per synapse conductance over the ideal chip's at the current gate voltages (faults included). */
  conductanceGain: Float64Array;
  /** Per neuron: membrane capacitance (F), trip point (V), leakage toward rest (A), delay (s). */
  capacitance: Float64Array;
  vTrip: Float64Array;
  leakAmps: Float64Array;
  delaySeconds: Float64Array;
  /** Per neuron fault: 'dead', 'stuck' or '' (none). */
  neuronFaults: string[];
  /** The raw local draws (Pelgrom parts without the chip-level shifts), for statistics. */
  local: { dVth: Float64Array; beta: Float64Array; capacitance: Float64Array; trip: Float64Array };
}

export interface BehavioralTruth {
  seed: number;
  chipId: string;
  /** The network's time unit (layer 0's window), seconds. */
  t0: number;
  /** Chip-level draws: global threshold shifts and kp per polarity, lambdas, capacitance factor, supply, temperature, TDC offset. */
  process: ProcessDraw;
  lambdaN: number;
  lambdaP: number;
  supplyV: number;
  temperatureC: number;
  /** Added to every output edge before the timer floors it: normalised, seconds and ticks. */
  tdcOffset: number;
  tdcOffsetSeconds: number;
  tdcOffsetTicks: number;
  /** Edge jitter rms: normalised and seconds. */
  jitter: number;
  jitterSeconds: number;
  magnitudes: MismatchMagnitudes;
  faults: ChipFault[];
  /** How many runs the chip has done (the index of the next run's jitter stream). */
  runs: number;
  layers: BehavioralLayerTruth[];
}

function checkMagnitudes(m: MismatchMagnitudes): void {
  for (const [k, v] of Object.entries(m)) {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`magnitude ${k} = ${v} must be finite and >= 0`);
  }
  if (!(m.capDensity > 0)) throw new RangeError(`magnitude capDensity must be > 0, got ${m.capDensity}`);
}

/** A short stable hash of a string (for chip ids). */
function hash8(s: string): string {
  let h = 0x811c9dc5;
  for (let k = 0; k < s.length; k++) h = fmix32((h ^ s.charCodeAt(k)) >>> 0);
  return h.toString(16).padStart(8, '0');
}

export class BehavioralChip implements ChipBackend {
  readonly chipId: string;
  readonly geometry: readonly LayerGeometry[];
  readonly timing: ChipTiming;
  readonly dac: DacSpec = DEFAULT_DAC;
  readonly safe: SafeRange = DEFAULT_SAFE;

  // The hidden truth lives in private fields: not enumerable, not reachable from outside the class.
  readonly #seed: number;
  readonly #physics: BehavioralPhysics;
  /** physics=sky130: the die's transistor curves (its temperature and process point); null for ekv. */
  readonly #curves: TransferCurves | null;
  readonly #m: MismatchMagnitudes;
  readonly #draw: ChipDraw;
  readonly #faults: readonly ChipFault[];
  /** Programmed precharge / threshold per layer (what neuronVoltages reports). */
  readonly #programmed: { vRest: number; vThreshold: number }[];
  readonly #volts: Float64Array[];
  /** Chip-level + local threshold shift, rows x outputs. */
  readonly #dVth: Float64Array[];
  /** Current factor referred to nominal C, faults folded in, rows x outputs. */
  readonly #gain: Float64Array[];
  /** Per layer: rows x outputs, 1 where the synapse is shorted to its on rail. */
  readonly #shorted: (Uint8Array | null)[];
  readonly #neuronFault: (Uint8Array | null)[];
  readonly #layers: PnnLayer[];
  #runs = 0;
  #reads = 0;

  constructor(opts: BehavioralChipOptions = {}) {
    const seed = checkSeed(opts.seed ?? 0);
    const sizes = opts.sizes ?? DEFAULT_SIZES;
    checkSizes(sizes);
    const nLayers = sizes.length - 1;
    const timing = resolveTiming(nLayers, opts);
    this.geometry = Object.freeze(Array.from({ length: nLayers }, (_, l) => dualRailLayer(sizes[l], sizes[l + 1])));
    const faults = [...(opts.faults ?? [])];
    checkFaults(faults, this.geometry);

    const physics = opts.physics ?? 'sky130';
    if (!BEHAVIORAL_PHYSICS.includes(physics)) throw new RangeError(`physics '${String(physics)}' is not one of ${BEHAVIORAL_PHYSICS.join(', ')}`);
    const m: MismatchMagnitudes = { ...(physics === 'sky130' ? pdkMismatchMagnitudes() : SKY130_MAGNITUDES), ...(opts.magnitudes ?? {}) };
    checkMagnitudes(m);
    this.#physics = physics;
    const defaultSizes = sizes.length === DEFAULT_SIZES.length && sizes.every((n, k) => n === DEFAULT_SIZES[k]);
    this.chipId =
      `behavioral-${seed}` +
      (defaultSizes ? '' : `-${sizes.join('x')}`) +
      (faults.length ? `-f${hash8(formatFaults(faults))}` : '') +
      (physics === 'ekv' ? '-ekv' : '');
    this.timing = timing;
    this.#seed = seed;
    this.#m = m;
    this.#faults = faults;
    this.#draw = drawChip(seed, this.geometry, m);
    // sky130: the chip-level threshold draws place the die between the PDK corners (12 mV = 1 sigma).
    const z = (dv: number) => (m.globalVthSigma > 0 ? dv / m.globalVthSigma : 0);
    this.#curves =
      physics === 'sky130'
        ? sky130DieCurves({ temperatureC: this.#draw.process.temperatureC, zN: -z(this.#draw.process.dVthN), zP: -z(this.#draw.process.dVthP) })
        : null;
    this.#programmed = this.geometry.map(() => ({ vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold }));

    const p = this.#draw.process;
    this.#dVth = [];
    this.#gain = [];
    this.#shorted = [];
    this.#neuronFault = [];
    for (const [l, g] of this.geometry.entries()) {
      const d = this.#draw.layers[l];
      const rows = g.rowInput.length;
      const n = g.outputs;
      const dVth = new Float64Array(rows * n);
      const gain = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++) {
        const nmos = g.rowPolarity[r] === NMOS;
        const shift = nmos ? p.dVthN : p.dVthP;
        const kp = nmos ? p.kpN : p.kpP;
        for (let i = 0; i < n; i++) {
          const k = r * n + i;
          dVth[k] = shift + d.dVthLocal[k];
          // Only g/C is observable: the capacitor's deviation folds into the current factor.
          gain[k] = (kp * d.betaLocal[k]) / (p.capacitance * d.capLocal[i]);
        }
      }
      this.#dVth.push(dVth);
      this.#gain.push(gain);
      this.#shorted.push(null);
      this.#neuronFault.push(null);
    }
    for (const f of faults) {
      const g = this.geometry[f.layer];
      if ('neuron' in f) {
        const nf = (this.#neuronFault[f.layer] ??= new Uint8Array(g.outputs));
        nf[f.neuron] = f.kind === 'dead-neuron' ? DEAD : STUCK;
      } else {
        const k = synapseRow(g, f.input, f.polarity) * g.outputs + f.output;
        if (f.kind === 'shorted-synapse') (this.#shorted[f.layer] ??= new Uint8Array(g.rowInput.length * g.outputs))[k] = 1;
        else this.#gain[f.layer][k] *= f.kind === 'dead-synapse' ? 0 : f.fraction;
      }
    }

    // Power-on state: every synapse off (NMOS gates at ground, PMOS gates at the top of the DAC).
    this.#volts = this.geometry.map((g) => {
      const v = new Float64Array(g.rowInput.length * g.outputs);
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== NMOS) v.fill(NOMINAL_CIRCUIT.supply, r * g.outputs, (r + 1) * g.outputs);
      }
      return v;
    });
    this.#layers = this.geometry.map((_, l) => this.#buildLayer(l));
  }

  /** Which transistor physics the die has (a getter, so the chip's enumerable fields stay the board's). */
  get physics(): BehavioralPhysics {
    return this.#physics;
  }

  /**
   * The die's reversal potential (u units, nominal precharge and threshold) of a synapse transistor
   * of `polarity` at gate `volts`, without its local mismatch: for scoring a calibration's E+ / E-
   * (calibration/truth-score.ts); a real chip has no such view. A model-form (ekv) die has one per
   * polarity, from its lambdas and supply; a sky130 die's moves with the gate.
   */
  trueReversal(polarity: 'nmos' | 'pmos', volts: number): number {
    const p = this.#draw.process;
    if (this.#physics === 'ekv') {
      const e = reversalPotentials({ ...NOMINAL_CIRCUIT, supply: p.supplyV, lambdaN: p.lambdaN, lambdaP: p.lambdaP });
      return polarity === 'nmos' ? e.ePlus : e.eMinus;
    }
    // The curves hold at 1.8 V: a PMOS sees the supply deviation as a gate offset (as in #sky130Shift).
    const vg = polarity === 'pmos' ? volts - (p.supplyV - NOMINAL_CIRCUIT.supply) : volts;
    const e = this.#curves!.reversal(polarity, vg);
    if (e === null) throw new RangeError(`a ${polarity} at ${volts} V is off (below 1 pA): no reversal potential`);
    return e;
  }

  /** Seconds per normalised time unit: layer 0's window. */
  get t0(): number {
    return this.timing.tickSeconds * this.timing.horizonTicks[0];
  }

  /** The circuit gate-to-layer sees: the die's lambdas and supply, conductances referred to nominal C. */
  #circuit(l: number): NeuronCircuit {
    const p = this.#draw.process;
    return {
      capacitance: NOMINAL_CIRCUIT.capacitance,
      vRest: this.#programmed[l].vRest,
      vThreshold: this.#programmed[l].vThreshold,
      supply: p.supplyV,
      lambdaN: p.lambdaN,
      lambdaP: p.lambdaP,
    };
  }

  /** The gate voltages the devices see: programmed, except shorted synapses at their on rail. */
  #gateVolts(l: number): Float64Array {
    const shorted = this.#shorted[l];
    if (!shorted) return this.#volts[l];
    const g = this.geometry[l];
    const v = Float64Array.from(this.#volts[l]);
    for (let r = 0; r < g.rowInput.length; r++) {
      const rail = g.rowPolarity[r] === NMOS ? this.#draw.process.supplyV : 0;
      for (let i = 0; i < g.outputs; i++) if (shorted[r * g.outputs + i]) v[r * g.outputs + i] = rail;
    }
    return v;
  }

  /** Per neuron: capacitance (F) and the trip point at the programmed threshold (V). */
  #neuronElectrics(l: number): { capacitance: Float64Array; vTrip: Float64Array } {
    const p = this.#draw.process;
    const d = this.#draw.layers[l];
    const n = this.geometry[l].outputs;
    // Ratioed inverter, V_M = (Vtn + r (VDD - |Vtp|)) / (1 + r), r ~ 1: half of each shift reaches V_M.
    const shift = 0.5 * (p.dVthN - p.dVthP) + 0.5 * (p.supplyV - NOMINAL_CIRCUIT.supply);
    const capacitance = new Float64Array(n);
    const vTrip = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      capacitance[i] = NOMINAL_CIRCUIT.capacitance * p.capacitance * d.capLocal[i];
      vTrip[i] = this.#programmed[l].vThreshold + shift + d.tripLocal[i];
    }
    return { capacitance, vTrip };
  }

  /**
   * sky130 physics: the chip-level shift is in the die's curves (its process point), so only the
   * local threshold shift remains; the curves hold at the nominal 1.8 V, so a PMOS sees a supply
   * deviation as a gate offset (its Vsg moves with VDD), folded in here.
   */
  #sky130Shift(l: number): Float64Array {
    const g = this.geometry[l];
    const dSupply = this.#draw.process.supplyV - NOMINAL_CIRCUIT.supply;
    const out = Float64Array.from(this.#draw.layers[l].dVthLocal);
    for (let r = 0; r < g.rowInput.length; r++) {
      if (g.rowPolarity[r] === NMOS) continue;
      for (let i = 0; i < g.outputs; i++) out[r * g.outputs + i] -= dSupply;
    }
    return out;
  }

  #buildLayer(l: number): PnnLayer {
    const g = this.geometry[l];
    const d = this.#draw.layers[l];
    const p = this.#draw.process;
    const m = this.#m;
    const n = g.outputs;
    const t0 = this.t0;
    const circuit = this.#circuit(l);
    const swing = circuit.vRest - circuit.vThreshold;
    const { capacitance, vTrip } = this.#neuronElectrics(l);
    const thresholdScale = new Float64Array(n);
    const delay = new Float64Array(n);
    const gL = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      thresholdScale[i] = (circuit.vRest - vTrip[i]) / swing;
      if (!(thresholdScale[i] > 0)) {
        throw new RangeError(`neuron ${l}.${i}: its trip point ${vTrip[i].toFixed(4)} V is not below vRest ${circuit.vRest} V; widen vRest - vThreshold`);
      }
      delay[i] = d.delaySeconds[i] / t0;
      // Subthreshold leakage saturates above a few UT: linearised as a conductance at mid-swing.
      gL[i] = (d.leakAmps[i] / (0.5 * swing) / capacitance[i]) * t0;
    }
    const volts = this.#gateVolts(l);
    const horizon = this.timing.horizonTicks[l] / this.timing.horizonTicks[0];
    const base =
      this.#physics === 'sky130'
        ? sky130GateVoltagesToLayer(g, volts, {
            curves: this.#curves!,
            capacitance: NOMINAL_CIRCUIT.capacitance,
            vRest: circuit.vRest,
            vThreshold: circuit.vThreshold,
            t0,
            horizon,
            dVth: this.#sky130Shift(l),
            gain: this.#gain[l],
            thresholdScale,
            delay,
          })
        : gateVoltagesToLayer(g, volts, {
            nmos: NOMINAL_NMOS,
            pmos: NOMINAL_PMOS,
            circuit,
            temperatureC: p.temperatureC,
            t0,
            horizon,
            dVth: this.#dVth[l],
            gain: this.#gain[l],
            thresholdScale,
            delay,
          });
    // Switching a synapse on moves its gate from the off rail to Vg; the gate-drain overlap couples
    // C_ov * dVg onto the membrane: NMOS gates rise (membrane up, u down), PMOS gates fall (u up).
    const kick = new Float64Array(g.inputs * n);
    const gain = this.#gain[l];
    for (let r = 0; r < g.rowInput.length; r++) {
      const nmos = g.rowPolarity[r] === NMOS;
      const cov = nmos ? m.overlapCapNmos : m.overlapCapPmos;
      const row = g.rowInput[r] * n;
      for (let i = 0; i < n; i++) {
        const k = r * n + i;
        if (gain[k] === 0) continue; // open drain: no current, no coupling
        const dv = nmos ? -volts[k] : p.supplyV - volts[k];
        kick[row + i] += (cov * dv) / (capacitance[i] * swing);
      }
    }
    const layer: PnnLayer = { ...base, gL, kick };
    checkLayer(layer);
    return layer;
  }

  #checkLayerIndex(layer: number): void {
    checkLayerIndex(layer, this.geometry.length);
  }

  neuronVoltages(layer: number): { vRest: number; vThreshold: number } {
    this.#checkLayerIndex(layer);
    return { ...this.#programmed[layer] };
  }

  /** Programs precharge and threshold reference; each neuron keeps its own trip-point offset. */
  setNeuronVoltages(layer: number, vRest: number, vThreshold: number): void {
    this.#checkLayerIndex(layer);
    const c = { ...NOMINAL_CIRCUIT, vRest, vThreshold };
    checkCircuit(c);
    if (!(vThreshold > 0 && vRest < c.supply)) {
      throw new RangeError(`need 0 < vThreshold (${vThreshold} V) < vRest (${vRest} V) < supply (${c.supply} V)`);
    }
    const before = this.#programmed[layer];
    this.#programmed[layer] = { vRest, vThreshold };
    try {
      this.#layers[layer] = this.#buildLayer(layer);
    } catch (e) {
      this.#programmed[layer] = before;
      throw e;
    }
  }

  setGateVoltages(layer: number, volts: Float64Array): void {
    this.#checkLayerIndex(layer);
    checkGateVoltages(layer, this.geometry[layer], this.dac, volts);
    this.#volts[layer] = Float64Array.from(volts);
    this.#layers[layer] = this.#buildLayer(layer);
  }

  async run(inputTicks: Uint16Array, batch: number): Promise<Uint16Array[]> {
    checkRunInputs(this.geometry[0], inputTicks, batch);
    const perUnit = this.timing.horizonTicks[0];
    const t0 = this.t0;
    const sigma = this.#m.jitterSeconds / t0;
    const offset = this.#draw.process.tdcOffsetSeconds / t0;
    // One stream per run index: run k of this seed always sees the same noise.
    const rng = new Rng(deriveSeed(this.#seed, RUN_STREAM.jitter, this.#runs++));
    const out: Uint16Array[] = [];
    let x = ticksToTimes(inputTicks, perUnit);
    for (let l = 0; l < this.#layers.length; l++) {
      const layer = this.#layers[l];
      const t = exactForward(layer, x, batch, { validate: false }).times;
      const nOut = layer.nOut;
      const nf = this.#neuronFault[l];
      const hTicks = this.timing.horizonTicks[l];
      const ticks = new Uint16Array(t.length);
      for (let k = 0; k < t.length; k++) {
        // Draw for every edge, fired or not, so a neuron's noise does not depend on the others.
        const noise = sigma > 0 ? rng.normal(0, sigma) : 0;
        const fault = nf ? nf[k % nOut] : OK;
        if (fault === STUCK) {
          t[k] = 0;
          ticks[k] = 0;
          continue;
        }
        let tk = fault === DEAD ? Infinity : t[k];
        if (tk < Infinity) {
          tk = Math.max(0, tk + noise);
          if (tk > layer.horizon) tk = Infinity;
        }
        t[k] = tk;
        const xk = (tk + offset) * perUnit;
        ticks[k] = xk <= hTicks ? Math.floor(xk) : SILENT_TICK;
      }
      out.push(ticks);
      x = t;
    }
    return out;
  }

  /** Supply and die temperature as the board's sensors read them: the truth plus read noise, ADC-rounded. */
  supply(): ChipSupply {
    const p = this.#draw.process;
    const r = new Rng(deriveSeed(this.#seed, RUN_STREAM.sensors, this.#reads++));
    const v = p.supplyV + r.normal(0, this.#m.supplySensorSigmaV);
    const t = p.temperatureC + r.normal(0, this.#m.temperatureSensorSigmaC);
    return { supplyV: Math.round(v * 1000) / 1000, temperatureC: Math.round(t * 10) / 10 };
  }

  async close(): Promise<void> {}

  /**
   * The hidden parameters (copies), for tests and calibration targets; a real board has no such view
   * and nothing here travels through ChipBackend or the protocol.
   */
  hiddenTruth(): BehavioralTruth {
    const p = this.#draw.process;
    const t0 = this.t0;
    const perUnit = this.timing.horizonTicks[0];
    const layers = this.geometry.map((g, l): BehavioralLayerTruth => {
      const model = this.#layers[l];
      const d = this.#draw.layers[l];
      const circuit = this.#circuit(l);
      const volts = this.#gateVolts(l);
      const dVth = this.#dVth[l];
      const gain = this.#gain[l];
      const n = g.outputs;
      const conductanceGain = new Float64Array(volts.length);
      const mm = { dVth: 0, gain: 1 };
      if (this.#physics === 'sky130') {
        const curves = this.#curves!;
        const nominal = sky130NominalCurves();
        const shift = this.#sky130Shift(l);
        const ctx = { capacitance: NOMINAL_CIRCUIT.capacitance, vRest: circuit.vRest, vThreshold: circuit.vThreshold, t0 };
        for (let r = 0; r < g.rowInput.length; r++) {
          const pmos = g.rowPolarity[r] !== NMOS;
          for (let i = 0; i < n; i++) {
            const k = r * n + i;
            const bTrue = synapseDrive(curves, pmos, volts[k], ctx, shift[k], gain[k]).b;
            const bNom = synapseDrive(nominal, pmos, this.#volts[l][k], ctx).b;
            conductanceGain[k] = bNom > 0 ? bTrue / bNom : 0;
          }
        }
      }
      for (let r = 0; r < g.rowInput.length && this.#physics === 'ekv'; r++) {
        const nmos = g.rowPolarity[r] === NMOS;
        const dev = nmos ? NOMINAL_NMOS : NOMINAL_PMOS;
        const lamTrue = nmos ? p.lambdaN : p.lambdaP;
        const lamNom = nmos ? NOMINAL_CIRCUIT.lambdaN : NOMINAL_CIRCUIT.lambdaP;
        for (let i = 0; i < n; i++) {
          const k = r * n + i;
          mm.dVth = dVth[k];
          mm.gain = gain[k];
          const iTrue = drainCurrent(dev, volts[k], p.supplyV, p.temperatureC, mm);
          const iNom = drainCurrent(dev, this.#volts[l][k], NOMINAL_CIRCUIT.supply, NOMINAL_TEMPERATURE_C);
          conductanceGain[k] = (iTrue * lamTrue) / (iNom * lamNom);
        }
      }
      const { capacitance, vTrip } = this.#neuronElectrics(l);
      const nf = this.#neuronFault[l];
      return {
        model: {
          ...model,
          gE: Float64Array.from(model.gE),
          gI: Float64Array.from(model.gI),
          gL: Float64Array.from(model.gL!),
          kick: Float64Array.from(model.kick!),
          thresholdScale: Float64Array.from(model.thresholdScale!),
          delay: Float64Array.from(model.delay!),
        },
        ePlus: model.ePlus,
        eMinus: model.eMinus,
        circuit,
        gateVolts: Float64Array.from(volts),
        dVth: Float64Array.from(dVth),
        gain: Float64Array.from(gain),
        conductanceGain,
        capacitance,
        vTrip,
        leakAmps: Float64Array.from(d.leakAmps),
        delaySeconds: Float64Array.from(d.delaySeconds),
        neuronFaults: Array.from({ length: n }, (_, i) => (nf?.[i] === DEAD ? 'dead' : nf?.[i] === STUCK ? 'stuck' : '')),
        local: {
          dVth: Float64Array.from(d.dVthLocal),
          beta: Float64Array.from(d.betaLocal),
          capacitance: Float64Array.from(d.capLocal),
          trip: Float64Array.from(d.tripLocal),
        },
      };
    });
    return {
      seed: this.#seed,
      chipId: this.chipId,
      t0,
      process: { ...p },
      lambdaN: p.lambdaN,
      lambdaP: p.lambdaP,
      supplyV: p.supplyV,
      temperatureC: p.temperatureC,
      tdcOffset: p.tdcOffsetSeconds / t0,
      tdcOffsetSeconds: p.tdcOffsetSeconds,
      tdcOffsetTicks: (p.tdcOffsetSeconds / t0) * perUnit,
      jitter: this.#m.jitterSeconds / t0,
      jitterSeconds: this.#m.jitterSeconds,
      magnitudes: { ...this.#m },
      faults: this.#faults.map((f) => ({ ...f })),
      runs: this.#runs,
      layers,
    };
  }
}
