/**
 * A ProbeTarget straight over an in-process chip model (no board, no link): DAC codes become gate
 * voltages with the board's rule (models/chips/dac.ts). For tests and benchmarks; a real device goes
 * through host/'s ChipDevice adapter.
 */

import type { ChipBackend } from '../models/chips/chip-backend.ts';
import { codeToVolts } from '../wire/dac.ts';
import type { ProbeTarget } from './probe-run.ts';

export function backendTarget(chip: ChipBackend): ProbeTarget {
  return {
    layers: chip.geometry.map((g, l) => ({ ...g, horizonTicks: chip.timing.horizonTicks[l] })),
    dac: chip.dac,
    safe: chip.safe,
    tickSeconds: chip.timing.tickSeconds,
    async upload(layer, codes) {
      chip.setGateVoltages(
        layer,
        Float64Array.from(codes, (c) => codeToVolts(chip.dac, c)),
      );
    },
    run: (inputTicks, batch) => chip.run(inputTicks, batch),
    ...(chip.setNeuronVoltages
      ? {
          neuronVoltages: async (layer: number) => chip.neuronVoltages(layer),
          setNeuronVoltages: async (layer: number, vRest: number, vThreshold: number) => {
            chip.setNeuronVoltages!(layer, vRest, vThreshold);
            return chip.neuronVoltages(layer);
          },
        }
      : {}),
  };
}
