/**
 * The SPICE chip: an RC-Spike array on sky130 simulated in ngspice, behind the ChipBackend seam.
 *
 * - `transient` mode: every neuron of every sample is its own netlist (netlist.ts), a transient
 *   over its layer's window on the pool's engines (pool.ts); the spike is where the inverter output
 *   crosses VDD/2 (transient.ts). Faithful and slow (about a second per neuron on the wasm engine).
 * - `table` mode: the synapse transistors, the membrane's parasitics and each neuron's inverter are
 *   characterised once with SPICE sweeps (cached on disk), then the membrane equation is integrated
 *   with those tables (table-neuron.ts): milliseconds per neuron, for calibration and in-situ runs
 *   on large arrays.
 *
 * Both modes see the same chip: mismatch comes from the seed (mismatch.ts). Inputs arrive as ticks;
 * spikes pass between layers as continuous times, as on silicon; only what the board reports is
 * quantised (floor to ticks, silent past the layer's window). A neuron with no input spike before
 * its window ends is reported silent without simulation (only leakage would act on it).
 */

import { checkGateVoltages, checkLayerIndex, checkRunInputs, checkSeed, checkSizes, resolveTiming } from '../chip-checks.ts';
import { NMOS, dualRailLayer, type ChipBackend, type ChipSupply, type ChipTiming, type DacSpec, type LayerGeometry, type SafeRange } from '../chip-backend.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, NOMINAL_CIRCUIT } from '../sky130-nominal.ts';
import { DEFAULT_DESIGN, type RcSpikeDesign } from './design.ts';
import { findNgspice, spiceEngineVersion, type EngineKind } from './engine.ts';
import { drawDie, drawMismatch, NOMINAL_DIE, type DieDraw, type LayerMismatch } from './mismatch.ts';
import { neuronNetlist } from './netlist.ts';
import { SpicePool } from './pool.ts';
import { spiceCacheDir, type CacheStats } from './table-cache.ts';
import { tableLayerForward, type TableLayerModel } from './table-neuron.ts';
import { buildTableLayer, characteriseDevices, characteriseTripPoints, deviceJobCount, type DeviceTables, type TableSetup } from './tables.ts';
import { spikeTimeOf } from './transient.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

export type SpiceMode = 'transient' | 'table';
export const SPICE_MODES: readonly SpiceMode[] = Object.freeze(['transient', 'table']);

/** The default array: small enough for full transients (12 neurons per sample). */
export const DEFAULT_SPICE_SIZES: readonly number[] = Object.freeze([16, 8, 4]);

export interface SpiceProgress {
  phase: 'characterise' | 'simulate';
  layer: number;
  done: number;
  total: number;
  /** Characterisation: the job that just ended, and whether it came from the cache (no simulation). */
  job?: string;
  cached?: boolean;
}

export interface SpiceChipOptions {
  seed?: number;
  engine?: EngineKind;
  mode?: SpiceMode;
  /** Layer widths, inputs first (default 16-8-4). */
  sizes?: readonly number[];
  tickSeconds?: number;
  horizonTicks?: readonly number[];
  /** Worker threads for transients (default: available parallelism; 0 = this thread). */
  workers?: number;
  /** Table cache folder; default $SPIKELOOP_CACHE/spice or <repo>/.cache/spice; null = no cache. */
  cacheDir?: string | null;
  design?: RcSpikeDesign;
  /**
   * Draw the die's MIM capacitance, supply and temperature from the seed (default true); false =
   * the nominal die (103.3 fF, 1.8 V, the design's temperature or 27 C).
   */
  dieSpread?: boolean;
  /** Largest transient time step, seconds (default one tick). */
  maxStep?: number;
  /** Per-simulation time limit, milliseconds. */
  timeoutMs?: number;
  ngspicePath?: string;
  onProgress?: (p: SpiceProgress) => void;
}

function checkSpiceSizes(sizes: readonly number[], mode: SpiceMode): void {
  checkSizes(sizes);
  if (mode === 'transient' && sizes[0] > 4096) {
    throw new RangeError(`transient mode simulates every synapse of a neuron in one netlist; ${sizes[0]} inputs is too many (use mode=table)`);
  }
}

export class SpiceChip implements ChipBackend {
  readonly chipId: string;
  readonly geometry: readonly LayerGeometry[];
  readonly timing: ChipTiming;
  readonly dac: DacSpec = DEFAULT_DAC;
  readonly safe: SafeRange = DEFAULT_SAFE;
  readonly mode: SpiceMode;
  readonly engine: EngineKind;
  readonly design: RcSpikeDesign;
  /** This die's MIM capacitance multiplier, true supply and temperature (drawn from the seed). */
  readonly die: DieDraw;
  /** Per-device threshold shifts of this chip (diagnostics; a real board cannot see them). */
  readonly mismatch: readonly LayerMismatch[];
  /** Table-mode cache hits and misses so far. */
  readonly cacheStats: CacheStats = { hits: 0, misses: 0 };
  private readonly volts: Float64Array[];
  /** Programmed precharge and threshold per layer (NEURON_CONFIG). */
  private readonly neuron: { vRest: number; vThreshold: number }[];
  private pool: SpicePool;
  private readonly poolOptions: ConstructorParameters<typeof SpicePool>[0];
  private readonly maxStep: number;
  private readonly onProgress?: (p: SpiceProgress) => void;
  private tables?: DeviceTables;
  private trips: Float64Array[] = [];
  private readonly tableModels: (TableLayerModel | undefined)[];
  private closed = false;

  private constructor(opts: SpiceChipOptions) {
    const seed = opts.seed ?? 0;
    checkSeed(seed);
    const mode = opts.mode ?? 'transient';
    if (!SPICE_MODES.includes(mode)) throw new RangeError(`mode must be one of ${SPICE_MODES.join(', ')}, got '${String(mode)}'`);
    const engine = opts.engine ?? 'wasm';
    if (engine !== 'wasm' && engine !== 'ngspice') throw new RangeError(`engine must be 'wasm' or 'ngspice', got '${String(engine)}'`);
    const sizes = opts.sizes ?? DEFAULT_SPICE_SIZES;
    checkSpiceSizes(sizes, mode);
    const nLayers = sizes.length - 1;
    const timing = resolveTiming(nLayers, opts);
    const tickSeconds = timing.tickSeconds;
    const maxStep = opts.maxStep ?? tickSeconds;
    if (!(Number.isFinite(maxStep) && maxStep > 0)) throw new RangeError(`maxStep must be positive and finite, got ${maxStep}`);
    this.mode = mode;
    this.engine = engine;
    this.die = opts.dieSpread === false ? { ...NOMINAL_DIE, temperatureC: opts.design?.temperatureC ?? NOMINAL_DIE.temperatureC } : drawDie(seed);
    this.design = { ...(opts.design ?? DEFAULT_DESIGN), temperatureC: opts.dieSpread === false ? opts.design?.temperatureC : this.die.temperatureC };
    this.maxStep = maxStep;
    this.onProgress = opts.onProgress;
    this.chipId = `spice-${seed}`;
    this.geometry = Object.freeze(Array.from({ length: nLayers }, (_, l) => dualRailLayer(sizes[l], sizes[l + 1])));
    this.timing = timing;
    this.mismatch = Object.freeze(drawMismatch(seed, this.geometry, this.design));
    // Power-on state: every synapse off (NMOS gates at ground, PMOS gates at the supply).
    this.volts = this.geometry.map((g) => {
      const v = new Float64Array(g.rowInput.length * g.outputs);
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== NMOS) v.fill(NOMINAL_CIRCUIT.supply, r * g.outputs, (r + 1) * g.outputs);
      }
      return v;
    });
    this.neuron = this.geometry.map(() => ({ vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold }));
    this.tableModels = this.geometry.map(() => undefined);
    this.poolOptions = { engine, workers: opts.workers, ngspicePath: opts.ngspicePath, timeoutMs: opts.timeoutMs };
    this.pool = new SpicePool(this.poolOptions);
  }

  /**
   * Builds a chip; in table mode this characterises the devices (or loads them from the cache).
   * Throws RangeError for malformed options and when engine 'ngspice' is asked for but absent.
   */
  static async create(opts: SpiceChipOptions = {}): Promise<SpiceChip> {
    if (opts.engine === 'ngspice' && !(opts.ngspicePath ?? findNgspice())) {
      throw new RangeError("engine 'ngspice' needs an ngspice executable on the PATH (e.g. apt-get install ngspice); use engine=wasm otherwise");
    }
    const chip = new SpiceChip(opts);
    if (chip.mode === 'table') {
      try {
        await chip.characterise(opts.cacheDir === null ? undefined : spiceCacheDir(opts.cacheDir));
        // Table mode needs no simulator after this: release the workers (a new pool starts none).
        await chip.pool.close();
        chip.pool = new SpicePool(chip.poolOptions);
      } catch (e) {
        await chip.close();
        throw e;
      }
    }
    return chip;
  }

  private async characterise(cacheDir: string | undefined): Promise<void> {
    const setup: TableSetup = {
      run: (n) => this.pool.run(n),
      engineVersion: await spiceEngineVersion(this.engine, this.poolOptions.ngspicePath),
      cacheDir,
      design: this.design,
      supply: this.die.supplyV,
      vRest: NOMINAL_CIRCUIT.vRest,
      dac: this.dac,
      stats: this.cacheStats,
    };
    // One event per characterisation job: a first run simulates for minutes, a cached one reads files.
    const total = deviceJobCount(this.design) + this.geometry.length;
    let done = 0;
    let layer = -1;
    setup.onJob = (job, cached) => this.onProgress?.({ phase: 'characterise', layer, done: ++done, total, job, cached });
    this.onProgress?.({ phase: 'characterise', layer, done, total });
    this.tables = await characteriseDevices(setup);
    this.trips = [];
    for (layer = 0; layer < this.geometry.length; layer++) {
      this.trips.push(await characteriseTripPoints(setup, this.mismatch[layer].inverterDvth));
    }
  }

  private horizonSeconds(l: number): number {
    return this.timing.horizonTicks[l] * this.timing.tickSeconds;
  }

  private checkLayerIndex(layer: number): void {
    checkLayerIndex(layer, this.geometry.length);
  }

  neuronVoltages(layer: number): { vRest: number; vThreshold: number } {
    this.checkLayerIndex(layer);
    return { ...this.neuron[layer] };
  }

  /**
   * NEURON_CONFIG: the precharge level (the precharge switch's source) and the threshold (a level
   * shift of the sensing inverter's input by the nominal threshold minus this one, so each inverter
   * keeps its own mismatch offset). Refuses a pair with a neuron whose trip point would not lie
   * below the precharge, or a precharge the table mode's drain grid cannot start from.
   */
  setNeuronVoltages(layer: number, vRest: number, vThreshold: number): void {
    this.checkLayerIndex(layer);
    const supply = this.die.supplyV;
    if (!(Number.isFinite(vRest) && Number.isFinite(vThreshold) && vThreshold > 0 && vThreshold < vRest && vRest < supply)) {
      throw new RangeError(`need 0 < vThreshold (${vThreshold} V) < vRest (${vRest} V) < supply (${supply} V)`);
    }
    if (vRest > supply - 0.02)
      throw new RangeError(`vRest ${vRest} V: the precharge switch needs 20 mV of headroom below the ${supply} V supply; program at most ${supply - 0.02} V`);
    if (this.trips.length) {
      const shift = vThreshold - NOMINAL_CIRCUIT.vThreshold;
      const trips = this.trips[layer];
      for (let i = 0; i < trips.length; i++) {
        if (!(trips[i] + shift < vRest - 0.01)) {
          throw new RangeError(
            `neuron ${layer}.${i}: its trip point ${(trips[i] + shift).toFixed(4)} V would not lie below vRest ${vRest} V; lower vThreshold`,
          );
        }
      }
    }
    this.neuron[layer] = { vRest, vThreshold };
    this.tableModels[layer] = undefined;
  }

  setGateVoltages(layer: number, volts: Float64Array): void {
    this.checkLayerIndex(layer);
    checkGateVoltages(layer, this.geometry[layer], this.dac, volts);
    this.volts[layer] = Float64Array.from(volts);
    this.tableModels[layer] = undefined;
  }

  /** The programmed gate voltages of a layer (a copy). */
  gateVoltages(layer: number): Float64Array {
    this.checkLayerIndex(layer);
    return Float64Array.from(this.volts[layer]);
  }

  /** The transient netlist of one neuron for given input times (seconds, Infinity = silent). */
  neuronNetlist(layer: number, output: number, inputSeconds: Float64Array, opts: { saveMembrane?: boolean; title?: string } = {}): string {
    this.checkLayerIndex(layer);
    const g = this.geometry[layer];
    if (!Number.isInteger(output) || output < 0 || output >= g.outputs) throw new RangeError(`layer ${layer} has outputs 0..${g.outputs - 1}, got ${output}`);
    if (inputSeconds.length !== g.inputs) throw new RangeError(`layer ${layer} takes ${g.inputs} input times, got ${inputSeconds.length}`);
    const rows = g.rowInput.length;
    const rowGate = new Float64Array(rows);
    const rowDvth = new Float64Array(rows);
    const mm = this.mismatch[layer];
    for (let r = 0; r < rows; r++) {
      rowGate[r] = this.volts[layer][r * g.outputs + output];
      rowDvth[r] = mm.synapseDvth[r * g.outputs + output];
    }
    return neuronNetlist({
      title: opts.title ?? `${this.chipId} layer ${layer} neuron ${output}`,
      capacitance: NOMINAL_CIRCUIT.capacitance * this.die.capacitanceScale,
      vRest: this.neuron[layer].vRest,
      supply: this.die.supplyV,
      thresholdShift: this.neuron[layer].vThreshold - NOMINAL_CIRCUIT.vThreshold,
      horizon: this.horizonSeconds(layer),
      maxStep: Math.min(this.maxStep, this.horizonSeconds(layer) / 100),
      rowPolarity: g.rowPolarity,
      rowInput: g.rowInput,
      rowGate,
      rowDvth,
      inputTimes: inputSeconds,
      inverterDvth: [mm.inverterDvth[2 * output], mm.inverterDvth[2 * output + 1]],
      design: this.design,
      saveMembrane: opts.saveMembrane,
    });
  }

  /** Table mode's integrator model of a layer (built from the current gate voltages). */
  tableModel(layer: number): TableLayerModel {
    this.checkLayerIndex(layer);
    if (!this.tables) throw new Error(`this chip runs in ${this.mode} mode; tables exist only in table mode`);
    let m = this.tableModels[layer];
    if (!m) {
      m = buildTableLayer(this.tables, {
        geometry: this.geometry[layer],
        gates: this.volts[layer],
        synapseDvth: this.mismatch[layer].synapseDvth,
        vTrip: this.trips[layer].map((v) => v + this.neuron[layer].vThreshold - NOMINAL_CIRCUIT.vThreshold),
        capacitance: NOMINAL_CIRCUIT.capacitance * this.die.capacitanceScale,
        vRest: this.neuron[layer].vRest,
        horizon: this.horizonSeconds(layer),
        delay: 0,
        // A MOS precharge switch is off about half-way up its gate edge.
        kickAfter: this.design.switches === 'mos' ? this.design.prechargeEdge / 2 : undefined,
      });
      this.tableModels[layer] = m;
    }
    return m;
  }

  /**
   * One layer's spike times in seconds (Infinity = silent), `batch x outputs`, for input times in
   * seconds, `batch x inputs`: the continuous values, before the board's tick quantisation.
   */
  async layerSpikeTimes(layer: number, inputSeconds: Float64Array, batch: number, onDone?: (done: number, total: number) => void): Promise<Float64Array> {
    this.checkLayerIndex(layer);
    if (this.closed) throw new Error('this SPICE chip is closed');
    const g = this.geometry[layer];
    if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
    if (inputSeconds.length !== batch * g.inputs)
      throw new RangeError(`layer ${layer} needs batch*inputs = ${batch * g.inputs} input times, got ${inputSeconds.length}`);
    for (let k = 0; k < inputSeconds.length; k++) {
      if (!(inputSeconds[k] >= 0)) throw new RangeError(`input time [${k}] = ${inputSeconds[k]} s must be >= 0 (Infinity = silent)`);
    }
    if (this.mode === 'table') {
      const out = tableLayerForward(this.tableModel(layer), inputSeconds, batch);
      onDone?.(batch * g.outputs, batch * g.outputs);
      return out;
    }
    const horizon = this.horizonSeconds(layer);
    const out = new Float64Array(batch * g.outputs).fill(Infinity);
    const jobs: { k: number; netlist: string }[] = [];
    for (let b = 0; b < batch; b++) {
      const x = inputSeconds.subarray(b * g.inputs, (b + 1) * g.inputs);
      let any = false;
      for (let j = 0; j < x.length && !any; j++) any = x[j] < horizon;
      if (!any) continue;
      for (let i = 0; i < g.outputs; i++)
        jobs.push({ k: b * g.outputs + i, netlist: this.neuronNetlist(layer, i, x, { title: `${this.chipId} layer ${layer} sample ${b} neuron ${i}` }) });
    }
    let done = 0;
    const total = jobs.length;
    await Promise.all(
      jobs.map(async (job) => {
        const res = await this.pool.run(job.netlist);
        out[job.k] = spikeTimeOf(res, this.die.supplyV, horizon, job.netlist);
        onDone?.(++done, total);
      }),
    );
    return out;
  }

  /**
   * One inference per sample; per layer, `batch x outputs` spike ticks. An optional `onProgress`
   * (here or at construction) reports neurons simulated per layer.
   */
  async run(inputTicks: Uint16Array, batch: number, opts: { onProgress?: (p: SpiceProgress) => void } = {}): Promise<Uint16Array[]> {
    checkRunInputs(this.geometry[0], inputTicks, batch);
    const progress = opts.onProgress ?? this.onProgress;
    const ts = this.timing.tickSeconds;
    let x: Float64Array = new Float64Array(inputTicks.length);
    for (let k = 0; k < x.length; k++) x[k] = inputTicks[k] === SILENT_TICK ? Infinity : inputTicks[k] * ts;
    const out: Uint16Array[] = [];
    for (let l = 0; l < this.geometry.length; l++) {
      const y = await this.layerSpikeTimes(l, x, batch, (done, total) => progress?.({ phase: 'simulate', layer: l, done, total }));
      const h = this.timing.horizonTicks[l];
      const ticks = new Uint16Array(y.length);
      for (let k = 0; k < y.length; k++) {
        const t = y[k] / ts;
        ticks[k] = t <= h ? Math.max(0, Math.floor(t)) : SILENT_TICK;
      }
      out.push(ticks);
      x = y;
    }
    return out;
  }

  supply(): ChipSupply {
    return { supplyV: this.die.supplyV, temperatureC: this.die.temperatureC };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }
}
