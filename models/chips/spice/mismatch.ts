/**
 * Per-device threshold mismatch of one chip, drawn from its seed (Pelgrom: sigma = A_VT / sqrt(W L)).
 * Shifts are in volts on |Vth| (positive = weaker device), for every synapse transistor and for
 * both transistors of every neuron's sensing inverter. The same seed gives the same chip in every
 * mode and engine, so transients and tables describe the same silicon.
 */

import { deriveSeed, Rng } from '../../datasets/rng.ts';
import { NMOS, type LayerGeometry } from '../chip-backend.ts';
import { sigmaVth, type RcSpikeDesign } from './design.ts';

export interface LayerMismatch {
  /** rows x outputs (row-major, like the weight memory). */
  synapseDvth: Float64Array;
  /** outputs x 2: [NMOS, PMOS] of each neuron's inverter. */
  inverterDvth: Float64Array;
}

export function drawMismatch(seed: number, geometry: readonly LayerGeometry[], design: RcSpikeDesign): LayerMismatch[] {
  const sN = sigmaVth(design.avtN, design.synapse);
  const sP = sigmaVth(design.avtP, design.synapse);
  const sIn = sigmaVth(design.avtN, design.inverterN);
  const sIp = sigmaVth(design.avtP, design.inverterP);
  return geometry.map((g, l) => {
    const rows = g.rowInput.length;
    const rng = new Rng(deriveSeed(seed, l, 1));
    const synapseDvth = new Float64Array(rows * g.outputs);
    for (let r = 0; r < rows; r++) {
      const s = g.rowPolarity[r] === NMOS ? sN : sP;
      for (let i = 0; i < g.outputs; i++) synapseDvth[r * g.outputs + i] = rng.normal(0, s);
    }
    const inv = new Rng(deriveSeed(seed, l, 2));
    const inverterDvth = new Float64Array(2 * g.outputs);
    for (let i = 0; i < g.outputs; i++) {
      inverterDvth[2 * i] = inv.normal(0, sIn);
      inverterDvth[2 * i + 1] = inv.normal(0, sIp);
    }
    return { synapseDvth, inverterDvth };
  });
}
