/**
 * From a synapse array's gate voltages (SI) to a normalised PNN layer for the solvers.
 *
 * Every row is one transistor per output, driven by input `rowInput[r]`; rows of the same input and
 * polarity switch on together, so their conductances add. NMOS rows add to gE, PMOS rows to gI.
 */

import { makeLayer, type PnnLayer } from '../neuron/layer.ts';
import { drainCurrent, type MosfetParams } from '../neuron/transfer-curve.ts';
import { reversalPotentials, synapseConductance, type NeuronCircuit } from '../neuron/units.ts';
import { NMOS, type LayerGeometry } from './chip-backend.ts';

/** What a gate-voltage -> layer mapping takes besides its device physics: the time base and each transistor's spread. */
export interface LayerSpreadParams {
  /** The network's time unit, seconds. */
  t0: number;
  /** This layer's window end in units of t0. */
  horizon: number;
  /** Per-transistor threshold shifts (volts, rows x outputs); absent = nominal. */
  dVth?: Float64Array;
  /** Per-transistor current gain factors (rows x outputs); absent = 1. */
  gain?: Float64Array;
  thresholdScale?: Float64Array;
  delay?: Float64Array;
}

export interface GateMappingParams extends LayerSpreadParams {
  nmos: MosfetParams;
  pmos: MosfetParams;
  circuit: NeuronCircuit;
  temperatureC: number;
}

export function gateVoltagesToLayer(geometry: LayerGeometry, volts: Float64Array, p: GateMappingParams): PnnLayer {
  const { inputs, outputs, rowInput, rowPolarity } = geometry;
  const rows = rowInput.length;
  if (volts.length !== rows * outputs) {
    throw new RangeError(`gate voltages have length ${volts.length}, expected rows*outputs = ${rows}*${outputs}`);
  }
  const gE = new Float64Array(inputs * outputs);
  const gI = new Float64Array(inputs * outputs);
  const mismatch = { dVth: 0, gain: 1 };
  for (let r = 0; r < rows; r++) {
    const nmos = rowPolarity[r] === NMOS;
    const dev = nmos ? p.nmos : p.pmos;
    const target = nmos ? gE : gI;
    const base = rowInput[r] * outputs;
    for (let i = 0; i < outputs; i++) {
      const k = r * outputs + i;
      mismatch.dVth = p.dVth ? p.dVth[k] : 0;
      mismatch.gain = p.gain ? p.gain[k] : 1;
      const i0 = drainCurrent(dev, volts[k], p.circuit.supply, p.temperatureC, mismatch);
      target[base + i] += synapseConductance(i0, dev.polarity, p.circuit, p.t0);
    }
  }
  const { ePlus, eMinus } = reversalPotentials(p.circuit);
  return makeLayer({
    nIn: inputs,
    nOut: outputs,
    model: 'pnn',
    gE,
    gI,
    ePlus,
    eMinus,
    horizon: p.horizon,
    thresholdScale: p.thresholdScale,
    delay: p.delay,
  });
}
