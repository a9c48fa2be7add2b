/**
 * Trained conductances -> gate voltages -> DAC codes, and back to the conductances the codes
 * really yield (docs/MODEL.md §8, eq. (12): the twin works with the conductance the code really yields).
 *
 * The twin's layer l is embedded in the chip's layer l: twin input j drives the chip rows of
 * input j, twin neuron i is chip neuron i. Chip synapses the twin does not use are switched off
 * (NMOS gate at the bottom, PMOS gate at the top of their safe ranges), so a small network runs on
 * a large array. Several rows of one input and polarity share its conductance equally.
 */

import type { DacSpec, LayerGeometry, SafeRange } from '../models/chips/chip-backend.ts';
import { NMOS } from '../models/chips/chip-backend.ts';
import { codeToVolts, dacMaxCode, safeCodeRange } from '../wire/dac.ts';
import { drainCurrent, gateVoltageFor, type MosfetMismatch, type MosfetParams } from '../models/neuron/transfer-curve.ts';
import { conductanceToSiemens, siemensToConductance, type NeuronCircuit } from '../models/neuron/units.ts';

/** What maps a conductance to a gate voltage on one chip layer: nominal curves or a calibrated profile. */
export interface LayerCurves {
  nmos: MosfetParams;
  pmos: MosfetParams;
  circuit: NeuronCircuit;
  temperatureC: number;
  /** Per-transistor threshold shift (volts) and gain factor, rows x outputs; absent = nominal. */
  dVth?: Float64Array;
  gain?: Float64Array;
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
 * Maps one twin layer (`gE`, `gI`: nIn x nOut, normalised) onto a chip layer. The twin layer may
 * be smaller than the chip layer; it may not be larger.
 */
export function mapLayer(gE: Float64Array, gI: Float64Array, nIn: number, nOut: number, target: ChipLayerTarget, curves: LayerCurves): MappedLayer {
  const { geometry, dac, safe, t0 } = target;
  const { inputs, outputs, rowInput, rowPolarity } = geometry;
  if (nIn > inputs || nOut > outputs) {
    throw new RangeError(`a ${nIn}x${nOut} layer does not fit the chip's ${inputs}x${outputs} array`);
  }
  if (gE.length !== nIn * nOut || gI.length !== nIn * nOut) {
    throw new RangeError(`gE and gI must have nIn*nOut = ${nIn * nOut} values`);
  }
  const rows = rowInput.length;
  // How many rows share each (input, polarity), so their conductances add up to the target.
  const share = new Uint16Array(inputs * 2);
  for (let r = 0; r < rows; r++) share[rowInput[r] * 2 + (rowPolarity[r] === NMOS ? 0 : 1)]++;

  const nmosCodes = safeCodes(dac, safe.nmos);
  const pmosCodes = safeCodes(dac, safe.pmos);
  const codes = new Uint16Array(rows * outputs);
  const realE = new Float64Array(nIn * nOut);
  const realI = new Float64Array(nIn * nOut);
  const m: MosfetMismatch = { dVth: 0, gain: 1 };
  const { circuit, temperatureC } = curves;
  let clipped = 0;
  let zeroed = 0;

  for (let r = 0; r < rows; r++) {
    const j = rowInput[r];
    const nmos = rowPolarity[r] === NMOS;
    const dev = nmos ? curves.nmos : curves.pmos;
    const [lo, hi] = nmos ? nmosCodes : pmosCodes;
    const off = nmos ? lo : hi;
    const n = share[j * 2 + (nmos ? 0 : 1)];
    for (let i = 0; i < outputs; i++) {
      const k = r * outputs + i;
      if (j >= nIn || i >= nOut) {
        codes[k] = off;
        continue;
      }
      m.dVth = curves.dVth ? curves.dVth[k] : 0;
      m.gain = curves.gain ? curves.gain[k] : 1;
      const g = (nmos ? gE : gI)[j * nOut + i] / n;
      let code = off;
      if (g > 0) {
        const i0 = conductanceToSiemens(g, circuit.capacitance, t0) / dev.lambda;
        const v = gateVoltageFor(dev, i0, circuit.supply, temperatureC, m);
        const step = (dac.vMax - dac.vMin) / dacMaxCode(dac);
        const c = Math.round((v - dac.vMin) / step);
        code = Math.min(hi, Math.max(lo, c));
        if (c !== code && (nmos ? c > hi : c < lo)) clipped++;
        if (code === off) zeroed++;
      }
      codes[k] = code;
      const i0 = drainCurrent(dev, codeToVolts(dac, code), circuit.supply, temperatureC, m);
      const real = siemensToConductance(i0 * dev.lambda, circuit.capacitance, t0);
      (nmos ? realE : realI)[j * nOut + i] += real;
    }
  }
  return { codes, gE: realE, gI: realI, clipped, zeroed };
}
