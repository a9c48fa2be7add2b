/**
 * The physics seam between a board and the chip behind it.
 *
 * The mock board (firmware-protocol/mock-board) keeps board state (DAC codes, counters)
 * and converts codes to gate voltages; a ChipBackend turns gate voltages and input spike
 * times into output spike times. Implementations: the ideal chip (ideal-chip.ts), the
 * behavioural chip with hidden mismatch, and SPICE on sky130 models. Everything here is
 * in SI units (volts, seconds) or board ticks; nothing of a backend's hidden truth is
 * exposed through this interface beyond what a real board could measure.
 */

/** Polarity of one synapse row: 0 = NMOS (excitatory, sinks current), 1 = PMOS (inhibitory). */
export const NMOS = 0;
export const PMOS = 1;

/**
 * One layer's synapse array. Weight memory is `rows x outputs` DAC codes, row-major
 * (index `r * outputs + i`). Row `r` is a transistor driven by input `rowInput[r]`
 * with polarity `rowPolarity[r]`. The usual "dual-rail" layout has rows = 2 * inputs:
 * row 2j is the NMOS synapse of input j and row 2j+1 its PMOS synapse.
 */
export interface LayerGeometry {
  inputs: number;
  outputs: number;
  rowInput: Uint16Array;
  rowPolarity: Uint8Array;
}

/** Linear DAC: code c drives vMin + c * (vMax - vMin) / (2^bits - 1) volts. */
export interface DacSpec {
  bits: number;
  vMin: number;
  vMax: number;
}

/** The gate-voltage window (volts, inclusive) a polarity may be driven with without harm. */
export interface SafeRange {
  nmos: readonly [number, number];
  pmos: readonly [number, number];
}

export interface ChipTiming {
  /** Seconds per timer tick. */
  tickSeconds: number;
  /** Per layer, the inference window in ticks (< SILENT_TICK); layer l's inputs arrive in [0, horizonTicks[l-1]]. */
  horizonTicks: number[];
}

export interface ChipSupply {
  supplyV: number;
  temperatureC: number;
}

export interface ChipRunOptions {
  /**
   * Called now and then during a long run with the work done so far (units are the backend's:
   * neurons simulated, samples...). A board forwards it as PROGRESS events, which tell the host
   * the request is still being served.
   */
  onProgress?: (p: { done: number; total: number }) => void;
}

export interface ChipBackend {
  /** A stable identifier of this chip (for a mock: derived from its kind and seed). */
  readonly chipId: string;
  readonly geometry: readonly LayerGeometry[];
  readonly timing: ChipTiming;
  readonly dac: DacSpec;
  readonly safe: SafeRange;
  /** Resting (precharge) and threshold voltages per layer, in volts. */
  neuronVoltages(layer: number): { vRest: number; vThreshold: number };
  /** Programmable precharge and threshold, if the chip supports it; throws RangeError otherwise. */
  setNeuronVoltages?(layer: number, vRest: number, vThreshold: number): void;
  /** Gate voltage of every synapse in a layer, `rows x outputs`, row-major, volts. */
  setGateVoltages(layer: number, volts: Float64Array): void;
  /**
   * One inference per sample. `inputTicks` is `batch x geometry[0].inputs` (SILENT_TICK = no spike).
   * Returns, per layer, `batch x outputs` spike ticks (SILENT_TICK when silent in the window).
   */
  run(inputTicks: Uint16Array, batch: number, opts?: ChipRunOptions): Promise<Uint16Array[]>;
  /** Supply and temperature as the board's sensors would read them. */
  supply(): ChipSupply;
  /** Releases workers or engines the backend holds. */
  close?(): Promise<void>;
}

/** Builds the dual-rail layout (NMOS and PMOS synapse per input) used by the reference design. */
export function dualRailLayer(inputs: number, outputs: number): LayerGeometry {
  const rows = 2 * inputs;
  const rowInput = new Uint16Array(rows);
  const rowPolarity = new Uint8Array(rows);
  for (let j = 0; j < inputs; j++) {
    rowInput[2 * j] = j;
    rowInput[2 * j + 1] = j;
    rowPolarity[2 * j] = NMOS;
    rowPolarity[2 * j + 1] = PMOS;
  }
  return { inputs, outputs, rowInput, rowPolarity };
}
