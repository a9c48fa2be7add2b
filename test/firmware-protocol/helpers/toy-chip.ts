/**
 * A small deterministic chip for board tests: ideal non-leaky integrate-and-fire neurons whose
 * synaptic currents are proportional to the gate overdrive. Membrane voltage falls from vRest
 * by the summed drive of every active synapse each tick; a neuron fires in the first tick at
 * whose end it has fallen by at least vRest - vThreshold. Layers form a chain.
 */
import { dualRailLayer, NMOS, type ChipBackend, type LayerGeometry } from '../../../models/chips/chip-backend.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

export const VDD = 1.8;
/** Volts per tick per volt of overdrive. */
export const GAIN = 0.01;
export const VT_N = 0.4;
export const VT_P = 0.4;

export interface ToyChipOptions {
  layers?: [number, number][];
  horizonTicks?: number[];
  programmableNeurons?: boolean;
  supplyV?: number;
}

export class ToyChip implements ChipBackend {
  readonly chipId = 'toy-chip-1';
  readonly geometry: LayerGeometry[];
  readonly timing: { tickSeconds: number; horizonTicks: number[] };
  readonly dac = { bits: 10, vMin: 0, vMax: VDD };
  readonly safe = { nmos: [0.4, 1.2] as const, pmos: [0.6, 1.4] as const };
  readonly gates: (Float64Array | null)[];
  readonly setCalls: number[] = [];
  readonly neuron: { vRest: number; vThreshold: number }[];
  setNeuronVoltages?: (layer: number, vRest: number, vThreshold: number) => void;
  failRun: Error | null = null;
  supplyV: number;

  constructor(opts: ToyChipOptions = {}) {
    const layers = opts.layers ?? [
      [4, 3],
      [3, 2],
    ];
    this.geometry = layers.map(([i, o]) => dualRailLayer(i, o));
    this.timing = { tickSeconds: 1e-8, horizonTicks: opts.horizonTicks ?? layers.map(() => 200) };
    this.gates = layers.map(() => null);
    this.neuron = layers.map(() => ({ vRest: 1.3, vThreshold: 0.9 }));
    this.supplyV = opts.supplyV ?? 1.8;
    if (opts.programmableNeurons ?? true) {
      this.setNeuronVoltages = (layer, vRest, vThreshold) => {
        if (!(vThreshold < vRest) || vThreshold < 0 || vRest > VDD) {
          throw new RangeError(`need 0 <= vThreshold < vRest <= ${VDD}`);
        }
        this.neuron[layer] = { vRest, vThreshold };
      };
    }
  }

  neuronVoltages(layer: number) {
    return { ...this.neuron[layer]! };
  }

  setGateVoltages(layer: number, volts: Float64Array): void {
    const g = this.geometry[layer]!;
    if (volts.length !== g.rowInput.length * g.outputs) throw new RangeError('wrong gate count');
    this.gates[layer] = volts.slice();
    this.setCalls.push(layer);
  }

  /** Signed drive (volts per tick) of row r onto output i of a layer. */
  drive(layer: number, r: number, i: number): number {
    const g = this.geometry[layer]!;
    const vg = this.gates[layer]![r * g.outputs + i]!;
    return g.rowPolarity[r] === NMOS ? GAIN * Math.max(0, vg - VT_N) : -GAIN * Math.max(0, VDD - vg - VT_P);
  }

  async run(inputTicks: Uint16Array, batch: number): Promise<Uint16Array[]> {
    if (this.failRun) throw this.failRun;
    if (this.gates.some((g) => g === null)) throw new Error('gate voltages never set');
    const out: Uint16Array[] = [];
    let input = inputTicks;
    for (let l = 0; l < this.geometry.length; l++) {
      const g = this.geometry[l]!;
      const h = this.timing.horizonTicks[l]!;
      const theta = this.neuron[l]!.vRest - this.neuron[l]!.vThreshold;
      const res = new Uint16Array(batch * g.outputs).fill(SILENT_TICK);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < g.outputs; i++) {
          let drop = 0;
          for (let t = 0; t < h; t++) {
            for (let r = 0; r < g.rowInput.length; r++) {
              const tin = input[b * g.inputs + g.rowInput[r]!]!;
              if (tin !== SILENT_TICK && tin <= t) drop += this.drive(l, r, i);
            }
            if (drop >= theta) {
              res[b * g.outputs + i] = t;
              break;
            }
          }
        }
      }
      out.push(res);
      input = res;
    }
    return out;
  }

  supply() {
    return { supplyV: this.supplyV, temperatureC: 27 };
  }
}
