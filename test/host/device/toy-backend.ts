/**
 * A tiny deterministic ChipBackend for device tests: not physics, just a function of the gate
 * voltages and input ticks that any mistake in chunking, ordering or reassembly would change.
 */
import { dualRailLayer, type ChipBackend, type LayerGeometry } from '../../../models/chips/chip-backend.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

export class ToyBackend implements ChipBackend {
  readonly chipId = 'toy-1';
  readonly geometry: LayerGeometry[];
  readonly timing: { tickSeconds: number; horizonTicks: number[] };
  readonly dac = { bits: 12, vMin: 0, vMax: 1.8 };
  readonly safe = { nmos: [0.2, 1.2] as const, pmos: [0.6, 1.8] as const };
  private volts: Float64Array[];
  private neuron: { vRest: number; vThreshold: number }[];
  runs = 0;

  constructor(sizes: number[]) {
    this.geometry = sizes.slice(1).map((o, l) => dualRailLayer(sizes[l]!, o));
    this.timing = { tickSeconds: 1e-8, horizonTicks: this.geometry.map((_, l) => 1000 + 100 * l) };
    this.volts = this.geometry.map((g) => new Float64Array(g.rowInput.length * g.outputs));
    this.neuron = this.geometry.map(() => ({ vRest: 1.3, vThreshold: 0.9 }));
  }
  neuronVoltages(l: number) {
    return { ...this.neuron[l]! };
  }
  setNeuronVoltages(l: number, vRest: number, vThreshold: number) {
    if (vRest > 1.8 || vThreshold < 0) throw new RangeError(`voltages ${vRest}/${vThreshold} outside 0..1.8 V`);
    this.neuron[l] = { vRest, vThreshold };
  }
  setGateVoltages(l: number, v: Float64Array) {
    this.volts[l] = v.slice();
  }
  async run(inputTicks: Uint16Array, batch: number): Promise<Uint16Array[]> {
    this.runs++;
    const out: Uint16Array[] = [];
    let x = inputTicks;
    for (let l = 0; l < this.geometry.length; l++) {
      const g = this.geometry[l]!;
      const h = this.timing.horizonTicks[l]!;
      const y = new Uint16Array(batch * g.outputs);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < g.outputs; i++) {
          let acc = 0;
          for (let r = 0; r < g.rowInput.length; r++) {
            const t = x[b * g.inputs + g.rowInput[r]!]!;
            if (t !== SILENT_TICK) acc += (t + 1) * Math.round(this.volts[l]![r * g.outputs + i]! * 1000) * (g.rowPolarity[r] ? -1 : 1);
          }
          const m = ((acc % 1237) + 1237) % 1237;
          y[b * g.outputs + i] = m > h ? SILENT_TICK : m;
        }
      }
      out.push(y);
      x = y;
    }
    return out;
  }
  supply() {
    return { supplyV: 1.8, temperatureC: 27 };
  }
}
