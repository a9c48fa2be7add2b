/** One neuron netlist spec shared by the SPICE tests: a dual-rail layer of `inputs` with the given rows. */
import { dualRailLayer } from '../../../../../models/chips/chip-backend.ts';
import type { NeuronNetlistSpec } from '../../../../../models/chips/spice/netlist.ts';

export function dualRailNeuronSpec(
  inputs: number,
  rows: { rowGate: Float64Array; rowDvth: Float64Array; inputTimes: Float64Array; inverterDvth: readonly [number, number] },
): NeuronNetlistSpec {
  const g = dualRailLayer(inputs, 1);
  return {
    capacitance: 103.3e-15,
    vRest: 1.3,
    supply: 1.8,
    horizon: 2e-6,
    maxStep: 1e-9,
    rowPolarity: g.rowPolarity,
    rowInput: g.rowInput,
    ...rows,
  };
}
