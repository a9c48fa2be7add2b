/**
 * The ideal chip: the nominal circuit with no mismatch, no noise and no supply drift. Gate voltages
 * go through the nominal EKV transfer curves to conductances; the exact solver (float64) computes
 * the network's spike times, which the board's timer quantises to ticks.
 *
 * Spikes travel between layers as continuous times (on chip they are edges, not tick counts);
 * only what the board reports is quantised.
 */

import type { PnnLayer } from '../neuron/layer.ts';
import { checkCircuit, type NeuronCircuit } from '../neuron/units.ts';
import { exactNetworkForward } from '../solvers/exact.ts';
import { dualRailLayer, NMOS, type ChipBackend, type ChipSupply, type ChipTiming, type DacSpec, type LayerGeometry, type SafeRange } from './chip-backend.ts';
import { checkGateVoltages, checkLayerIndex, checkRunInputs, checkSeed, checkSizes, resolveTiming } from './chip-checks.ts';
import { gateVoltagesToLayer } from './gate-to-layer.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, DEFAULT_SIZES, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from './sky130-nominal.ts';
import { ticksToTimes, timesToTicks } from '../../wire/ticks.ts';

export interface IdealChipOptions {
  /** Only names the chip: the ideal chip has nothing random. */
  seed?: number;
  /** Layer widths, inputs first (default 784-256-128-10). */
  sizes?: readonly number[];
  tickSeconds?: number;
  /** Window per layer in ticks (default 2000 (l + 1)). */
  horizonTicks?: readonly number[];
}

export class IdealChip implements ChipBackend {
  readonly chipId: string;
  readonly geometry: readonly LayerGeometry[];
  readonly timing: ChipTiming;
  readonly dac: DacSpec = DEFAULT_DAC;
  readonly safe: SafeRange = DEFAULT_SAFE;
  private readonly circuits: NeuronCircuit[];
  private readonly volts: Float64Array[];
  private readonly layers: PnnLayer[];

  constructor(opts: IdealChipOptions = {}) {
    const seed = checkSeed(opts.seed ?? 0);
    const sizes = opts.sizes ?? DEFAULT_SIZES;
    checkSizes(sizes);
    const nLayers = sizes.length - 1;
    const timing = resolveTiming(nLayers, opts);
    this.chipId = `ideal-${seed}`;
    this.geometry = Object.freeze(Array.from({ length: nLayers }, (_, l) => dualRailLayer(sizes[l], sizes[l + 1])));
    this.timing = timing;
    this.circuits = Array.from({ length: nLayers }, () => ({ ...NOMINAL_CIRCUIT }));
    // Power-on state: every synapse off (NMOS gates at ground, PMOS gates at the supply).
    this.volts = this.geometry.map((g) => {
      const v = new Float64Array(g.rowInput.length * g.outputs);
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== NMOS) v.fill(NOMINAL_CIRCUIT.supply, r * g.outputs, (r + 1) * g.outputs);
      }
      return v;
    });
    this.layers = this.geometry.map((_, l) => this.buildLayer(l));
  }

  /** Seconds per normalised time unit: layer 0's window. */
  get t0(): number {
    return this.timing.tickSeconds * this.timing.horizonTicks[0];
  }

  private buildLayer(l: number): PnnLayer {
    return gateVoltagesToLayer(this.geometry[l], this.volts[l], {
      nmos: NOMINAL_NMOS,
      pmos: NOMINAL_PMOS,
      circuit: this.circuits[l],
      temperatureC: NOMINAL_TEMPERATURE_C,
      t0: this.t0,
      horizon: this.timing.horizonTicks[l] / this.timing.horizonTicks[0],
    });
  }

  private checkLayerIndex(layer: number): void {
    checkLayerIndex(layer, this.geometry.length);
  }

  /** The normalised model the chip currently runs (for tests and diagnostics; a real board has no such view). */
  modelLayers(): readonly PnnLayer[] {
    return this.layers;
  }

  neuronVoltages(layer: number): { vRest: number; vThreshold: number } {
    this.checkLayerIndex(layer);
    const c = this.circuits[layer];
    return { vRest: c.vRest, vThreshold: c.vThreshold };
  }

  setNeuronVoltages(layer: number, vRest: number, vThreshold: number): void {
    this.checkLayerIndex(layer);
    const c = { ...this.circuits[layer], vRest, vThreshold };
    checkCircuit(c);
    if (!(vThreshold > 0 && vRest < c.supply)) {
      throw new RangeError(`need 0 < vThreshold (${vThreshold} V) < vRest (${vRest} V) < supply (${c.supply} V)`);
    }
    this.circuits[layer] = c;
    this.layers[layer] = this.buildLayer(layer);
  }

  setGateVoltages(layer: number, volts: Float64Array): void {
    this.checkLayerIndex(layer);
    checkGateVoltages(layer, this.geometry[layer], this.dac, volts);
    this.volts[layer] = Float64Array.from(volts);
    this.layers[layer] = this.buildLayer(layer);
  }

  async run(inputTicks: Uint16Array, batch: number): Promise<Uint16Array[]> {
    checkRunInputs(this.geometry[0], inputTicks, batch);
    const perUnit = this.timing.horizonTicks[0];
    const times = exactNetworkForward(this.layers, ticksToTimes(inputTicks, perUnit), batch, { validate: false });
    return times.map((t, l) => timesToTicks(t, perUnit, this.timing.horizonTicks[l]));
  }

  supply(): ChipSupply {
    return { supplyV: NOMINAL_CIRCUIT.supply, temperatureC: NOMINAL_TEMPERATURE_C };
  }

  async close(): Promise<void> {}
}
