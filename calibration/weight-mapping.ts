/**
 * Trained conductances -> gate voltages -> DAC codes, and back to the conductances the codes
 * really yield (docs/MODEL.md §8, eq. (12): the twin works with the conductance the code really yields).
 *
 * The twin's layer l is embedded in the chip's layer l: twin input j drives the chip rows of
 * input j, twin neuron i is chip neuron i. Chip synapses the twin does not use are switched off
 * (NMOS gate at the bottom, PMOS gate at the top of their safe ranges), so a small network runs on
 * a large array. Several rows of one input and polarity share its conductance equally.
 *
 * One rule (LayerCodeRule) turns a target conductance into a code and a code into the conductance
 * it yields; mapLayer maps a whole layer with it, IncrementalLayerCodes keeps a layer's codes for
 * a network whose conductances move a little every batch (fine-tuning).
 */

import type { DacSpec, LayerGeometry, SafeRange } from '../models/chips/chip-backend.ts';
import { NMOS } from '../models/chips/chip-backend.ts';
import { codeToVolts, dacMaxCode, safeCodeRange } from '../wire/dac.ts';
import { drainCurrent, gateVoltageFor, type MosfetMismatch, type MosfetParams } from '../models/neuron/transfer-curve.ts';
import { conductanceToSiemens, reversalPotentials, siemensToConductance, type NeuronCircuit } from '../models/neuron/units.ts';
import { driveFactor, effectiveGate, type ReversalCurve } from './reversal-curve.ts';

/** What maps a conductance to a gate voltage on one chip layer: nominal curves or a calibrated profile. */
export interface LayerCurves {
  nmos: MosfetParams;
  pmos: MosfetParams;
  circuit: NeuronCircuit;
  temperatureC: number;
  /** Per-transistor threshold shift (volts) and gain factor, rows x outputs; absent = nominal. */
  dVth?: Float64Array;
  gain?: Float64Array;
  /**
   * A calibrated layer's E+ / E- against gate voltage (reversal-curve.ts): a code's conductance is the
   * family's scaled so its drive at DRIVE_MATCH_UREF matches; absent = the circuit's one E+ and E-.
   */
  reversal?: ReversalCurve;
}

export interface ChipLayerTarget {
  geometry: LayerGeometry;
  dac: DacSpec;
  safe: SafeRange;
  /** The twin's time unit in seconds (layer 0's window). */
  t0: number;
}

export interface MappedLayer {
  /** rows x outputs DAC codes, ready to upload. */
  codes: Uint16Array;
  /** The conductances the codes realise, in the twin's layout (nIn x nOut, normalised). */
  gE: Float64Array;
  gI: Float64Array;
  /** Synapses whose target conductance lay beyond the safe range (realised at the range's edge). */
  clipped: number;
  /** Non-zero targets that fall below the smallest realisable step and were switched off. */
  zeroed: number;
}

/** The safe code window of a polarity; throws when the DAC cannot reach the range at all. */
export function safeCodes(dac: DacSpec, range: readonly [number, number]): [number, number] {
  const w = safeCodeRange(dac, range);
  if (!w) throw new RangeError(`no DAC code lies in the safe range ${range[0]}..${range[1]} V`);
  return w;
}

/** The code of a synapse switched off: least drive inside the safe range. */
export function offCode(dac: DacSpec, safe: SafeRange, polarity: number): number {
  return polarity === NMOS ? safeCodes(dac, safe.nmos)[0] : safeCodes(dac, safe.pmos)[1];
}

/**
 * One chip layer's conductance <-> code rule: target g (shared between the rows of one input and
 * polarity) -> I0 -> gate voltage through the inverse curve (with the synapse's mismatch) ->
 * nearest code, clamped to the polarity's safe window; g <= 0 is the off code.
 */
export class LayerCodeRule {
  /** How many rows share each (input, polarity), so their conductances add up to the target. */
  private readonly share: Uint16Array;
  private readonly nmosCodes: [number, number];
  private readonly pmosCodes: [number, number];
  private readonly step: number;
  private readonly m: MosfetMismatch = { dVth: 0, gain: 1 };
  /** The circuit's scalar reversal potentials, what the fitted conductances were fitted with. */
  private readonly eFit: { ePlus: number; eMinus: number };

  constructor(
    readonly target: ChipLayerTarget,
    readonly curves: LayerCurves,
  ) {
    const { dac, safe, geometry } = target;
    const { inputs, rowInput, rowPolarity } = geometry;
    this.share = new Uint16Array(inputs * 2);
    for (let r = 0; r < rowInput.length; r++) this.share[rowInput[r]! * 2 + (rowPolarity[r] === NMOS ? 0 : 1)]!++;
    this.nmosCodes = safeCodes(dac, safe.nmos);
    this.pmosCodes = safeCodes(dac, safe.pmos);
    this.step = (dac.vMax - dac.vMin) / dacMaxCode(dac);
    this.eFit = reversalPotentials(curves.circuit);
  }

  isNmos(r: number): boolean {
    return this.target.geometry.rowPolarity[r] === NMOS;
  }

  /** The safe code window of row r's polarity. */
  window(r: number): readonly [number, number] {
    return this.isNmos(r) ? this.nmosCodes : this.pmosCodes;
  }

  /** The code of a synapse switched off: least drive inside the window (NMOS bottom, PMOS top). */
  off(r: number): number {
    return this.isNmos(r) ? this.nmosCodes[0] : this.pmosCodes[1];
  }

  /** Row r's share of the twin conductance of (its input, neuron i); gE, gI are nIn x nOut. */
  rowTarget(r: number, i: number, gE: Float64Array, gI: Float64Array, nOut: number): number {
    const j = this.target.geometry.rowInput[r]!;
    const nmos = this.isNmos(r);
    return (nmos ? gE : gI)[j * nOut + i]! / this.share[j * 2 + (nmos ? 0 : 1)]!;
  }

  /** The code nearest to the gate voltage that gives synapse k (of row r) the conductance g > 0, not clamped. */
  nearestCode(r: number, k: number, g: number): number {
    const { circuit, temperatureC, reversal } = this.curves;
    const dev = this.device(r, k);
    const i0 = conductanceToSiemens(g, circuit.capacitance, this.target.t0) / dev.lambda;
    let v = gateVoltageFor(dev, i0, circuit.supply, temperatureC, this.m);
    // With a reversal curve the family must give g / factor(v): a fixed point, the factor moving slowly with the gate.
    if (reversal) for (let it = 0; it < 4; it++) v = gateVoltageFor(dev, i0 / this.factorAt(r, v), circuit.supply, temperatureC, this.m);
    return Math.round((v - this.target.dac.vMin) / this.step);
  }

  /** The drive factor (reversal-curve.ts) of the transistor loaded in this.m at gate `v`; 1 without a reversal curve. */
  private factorAt(r: number, v: number): number {
    const { reversal } = this.curves;
    if (!reversal) return 1;
    const pmos = !this.isNmos(r);
    // A threshold shift acts as a gate offset (|Vgs| smaller for a positive shift), as on the die.
    return driveFactor(reversal, pmos, effectiveGate(pmos, v, this.m.dVth), pmos ? this.eFit.eMinus : this.eFit.ePlus);
  }

  /** The nearest code clamped to the window, and whether the target lay beyond the window's far end. */
  code(r: number, k: number, g: number): { code: number; clipped: boolean } {
    const [lo, hi] = this.window(r);
    const c = this.nearestCode(r, k, g);
    const code = Math.min(hi, Math.max(lo, c));
    return { code, clipped: c !== code && (this.isNmos(r) ? c > hi : c < lo) };
  }

  /** The conductance (twin units) synapse k of row r yields at `code` (a fractional code: the voltage between). */
  conductanceAt(r: number, k: number, code: number): number {
    const { circuit, temperatureC } = this.curves;
    const dev = this.device(r, k);
    const v = codeToVolts(this.target.dac, code);
    const i0 = drainCurrent(dev, v, circuit.supply, temperatureC, this.m);
    return siemensToConductance(i0 * dev.lambda, circuit.capacitance, this.target.t0) * this.factorAt(r, v);
  }

  /**
   * Visits every synapse the twin layer (gE, gI: nIn x nOut) uses, with its row's target g; the
   * chip's other synapses get the off code in `codes`.
   */
  eachSynapse(codes: Uint16Array, gE: Float64Array, gI: Float64Array, nIn: number, nOut: number, visit: (r: number, k: number, g: number) => void): void {
    const { rowInput, outputs } = this.target.geometry;
    for (let r = 0; r < rowInput.length; r++) {
      const j = rowInput[r]!;
      for (let i = 0; i < outputs; i++) {
        const k = r * outputs + i;
        if (j >= nIn || i >= nOut) codes[k] = this.off(r);
        else visit(r, k, this.rowTarget(r, i, gE, gI, nOut));
      }
    }
  }

  /** Row r's transistor with synapse k's mismatch loaded into this.m. */
  private device(r: number, k: number): MosfetParams {
    const { curves } = this;
    this.m.dVth = curves.dVth ? curves.dVth[k]! : 0;
    this.m.gain = curves.gain ? curves.gain[k]! : 1;
    return this.isNmos(r) ? curves.nmos : curves.pmos;
  }
}

function checkLayerFits(gE: Float64Array, gI: Float64Array, nIn: number, nOut: number, geometry: LayerGeometry): void {
  const { inputs, outputs } = geometry;
  if (nIn > inputs || nOut > outputs) {
    throw new RangeError(`a ${nIn}x${nOut} layer does not fit the chip's ${inputs}x${outputs} array`);
  }
  if (gE.length !== nIn * nOut || gI.length !== nIn * nOut) {
    throw new RangeError(`gE and gI must have nIn*nOut = ${nIn * nOut} values`);
  }
}

/**
 * Maps one twin layer (`gE`, `gI`: nIn x nOut, normalised) onto a chip layer. The twin layer may
 * be smaller than the chip layer; it may not be larger.
 */
export function mapLayer(gE: Float64Array, gI: Float64Array, nIn: number, nOut: number, target: ChipLayerTarget, curves: LayerCurves): MappedLayer {
  checkLayerFits(gE, gI, nIn, nOut, target.geometry);
  const { rowInput, outputs } = target.geometry;
  const rule = new LayerCodeRule(target, curves);
  const rows = rowInput.length;
  const codes = new Uint16Array(rows * outputs);
  const realE = new Float64Array(nIn * nOut);
  const realI = new Float64Array(nIn * nOut);
  let clipped = 0;
  let zeroed = 0;
  rule.eachSynapse(codes, gE, gI, nIn, nOut, (r, k, g) => {
    const off = rule.off(r);
    let code = off;
    if (g > 0) {
      const c = rule.code(r, k, g);
      code = c.code;
      if (c.clipped) clipped++;
      if (code === off) zeroed++;
    }
    codes[k] = code;
    const i = k % outputs;
    (rule.isNmos(r) ? realE : realI)[rowInput[r]! * nOut + i]! += rule.conductanceAt(r, k, code);
  });
  return { codes, gE: realE, gI: realI, clipped, zeroed };
}

/**
 * A layer's codes for conductances that move a little every call, without mapping every synapse
 * again (mapping a 784x256 layer through the curves costs more than its gradient). The gate
 * voltage is monotonic in g, so a code stands for an interval of targets, bounded by the
 * conductances at the code's two half-step voltages; each synapse keeps its interval, and a call
 * recomputes only the synapses whose target left it (a few per cent at fine-tuning rates).
 */
export class IncrementalLayerCodes {
  private readonly rule: LayerCodeRule;
  readonly codes: Uint16Array;
  /** Target interval [lo, hi) the current code covers; NaN = unknown (recompute). */
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;

  constructor(target: ChipLayerTarget, curves: LayerCurves) {
    this.rule = new LayerCodeRule(target, curves);
    const n = target.geometry.rowInput.length * target.geometry.outputs;
    this.codes = new Uint16Array(n);
    this.lo = new Float64Array(n).fill(NaN);
    this.hi = new Float64Array(n).fill(NaN);
  }

  /** Brings `codes` up to date with gE, gI (nIn x nOut); returns how many synapses it recomputed. */
  update(gE: Float64Array, gI: Float64Array, nIn: number, nOut: number): number {
    const { rule, codes, lo, hi } = this;
    checkLayerFits(gE, gI, nIn, nOut, rule.target.geometry);
    let recomputed = 0;
    rule.eachSynapse(codes, gE, gI, nIn, nOut, (r, k, g) => {
      const off = rule.off(r);
      if (!(g > 0)) {
        codes[k] = off;
        lo[k] = NaN;
        return;
      }
      if (g >= lo[k]! && g < hi[k]!) return;
      recomputed++;
      const nmos = rule.isNmos(r);
      const [wLo, wHi] = rule.window(r);
      const code = rule.code(r, k, g).code;
      codes[k] = code;
      // NMOS: more conductance = higher gate; PMOS: lower gate. The window's ends take every target beyond them.
      lo[k] = code === off ? 0 : rule.conductanceAt(r, k, nmos ? code - 0.5 : code + 0.5);
      hi[k] = code === (nmos ? wHi : wLo) ? Infinity : rule.conductanceAt(r, k, nmos ? code + 0.5 : code - 0.5);
    });
    return recomputed;
  }
}
