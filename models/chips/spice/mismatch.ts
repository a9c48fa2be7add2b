/**
 * Per-device threshold mismatch of one chip, drawn from its seed (Pelgrom: sigma = A_VT / sqrt(W L)).
 * Shifts are in volts on |Vth| (positive = weaker device), for every synapse transistor and for
 * both transistors of every neuron's sensing inverter. The same seed gives the same chip in every
 * mode and engine, so transients and tables describe the same silicon.
 */

import { deriveSeed, Rng } from '../../datasets/rng.ts';
import { NMOS, type LayerGeometry } from '../chip-backend.ts';
import { SKY130_MAGNITUDES } from '../mismatch.ts';
import { NOMINAL_CIRCUIT } from '../sky130-nominal.ts';
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

/** A die's own circuit: MIM capacitance multiplier, true supply and temperature. */
export interface DieDraw {
  capacitanceScale: number;
  supplyV: number;
  temperatureC: number;
}

/** The nominal die (no spread). */
export const NOMINAL_DIE: Readonly<DieDraw> = Object.freeze({ capacitanceScale: 1, supplyV: NOMINAL_CIRCUIT.supply, temperatureC: 27 });

/**
 * Die-level spread from the seed, with the behavioural chip's magnitudes (models/chips/mismatch.ts:
 * MIM density 3 %, supply 0.5 %, temperature 1.5 C, one sigma), rounded so netlists stay short
 * (0.1 mV, 0.01 C, 1e-5). Its own stream: device draws do not move when this is added.
 */
export function drawDie(seed: number): DieDraw {
  const m = SKY130_MAGNITUDES;
  const r = new Rng(deriveSeed(seed, 1000, 3));
  const round = (x: number, q: number) => Math.round(x / q) * q;
  return {
    capacitanceScale: round(Math.max(0.5, 1 + r.normal(0, m.globalCapSigma)), 1e-5),
    supplyV: round(NOMINAL_CIRCUIT.supply * (1 + Math.max(-0.03, Math.min(0.03, r.normal(0, m.supplySigma)))), 1e-4),
    temperatureC: round(27 + r.normal(0, m.temperatureSigmaC), 0.01),
  };
}
