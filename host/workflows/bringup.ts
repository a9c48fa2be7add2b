/**
 * Bring-up of a board and its chip (`spikeloop bringup`): is the link up, does the firmware speak
 * our protocol, does the weight memory hold what is written, does every neuron fire, does every
 * synapse conduct as a synapse should, are identical runs repeatable, and what are the supply and
 * temperature. Steps run in that order; the run stops early only where going on could harm the
 * chip or mean nothing (no link, an incompatible protocol, a memory that does not hold the gate
 * codes, a failed supply or DAC self-test, a brown-out or over-temperature alert).
 *
 * How the chip is probed (weight configurations from calibration/probe-configs.ts):
 *   neurons    every layer off, no input: a neuron that fires is stuck; every NMOS synapse at its
 *              strongest safe code, every input at t = 0: a neuron that stays silent is dead.
 *   synapses   layer by layer; one RUN sample per input j of the layer under test measures the
 *              synapses on j's rows for every neuron at once. Deeper layers get their inputs through
 *              relays (layer m: input k fires neuron k alone), so one external input fires exactly
 *              one neuron per layer, and the measured relay spikes are the inputs' times.
 *              off       all synapses off: a neuron that fires has a shorted NMOS synapse on j
 *              full      NMOS at the strongest safe code, PMOS off: silent = dead NMOS or shorted PMOS
 *              n1, n2    NMOS alone at two codes: times at the two codes lie on one curve for natural
 *                        synapses; a weak one lies above it (bringup-analysis.ts). At n1 input j is
 *                        also paired with a second input: a shorted PMOS on j holds the neuron down
 *                        against it, a dead NMOS on j does not
 *              eq        NMOS alone at a code per synapse that gives every synapse about the same time
 *              p1, p2    eq plus PMOS at two codes: the delay the PMOS adds, turned into an
 *                        inhibitory conductance: none = dead PMOS, off the curve = weak PMOS
 *   jitter     one sample repeated: spread of each neuron's tick over identical runs.
 * Codes n0, n1, n2, p1, p2 are found on the chip itself (bisection on a few inputs of layer 0 for a
 * target median time or delay), so nothing here assumes a particular transistor.
 */

import type { Subscription } from 'rxjs';
import type { SelfTestResult, StatusResponse } from '../../firmware-protocol/index.ts';
import {
  allOffCodes,
  codeWindow,
  fullOnCode,
  memoryPatternCodes,
  MEMORY_PATTERNS,
  relayCodes,
  rowsAtCodes,
  selectRows,
  withInputsOff,
  type MemoryPattern,
} from '../../calibration/probe-configs.ts';
import { NMOS, PMOS, type DacSpec, type LayerGeometry, type SafeRange } from '../../models/chips/chip-backend.ts';
import type { ChipDevice, DeviceInfo } from '../device/chip-device.ts';
import { VersionMismatchError } from '../device/hello-check.ts';
import { ProtocolViolationError } from '../link/errors.ts';
import {
  analyseLayer,
  equalisingCodes,
  PROBE_NAMES,
  type LayerDiagnosis,
  type LayerMeasurements,
  type ProbeName,
  type SynapseFlag,
} from './bringup-diagnosis.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import { layerGeometry } from '../../calibration/chip-mapping.ts';

export type StepId = 'link' | 'protocol' | 'memory' | 'health' | 'neurons' | 'synapses' | 'jitter' | 'supply';

export const STEP_TITLES: Record<StepId, string> = {
  link: 'link and HELLO',
  protocol: 'protocol version',
  memory: 'weight memory write and CRC read-back',
  health: 'board self-test before driving the chip',
  neurons: 'every neuron fires',
  synapses: 'every synapse conducts',
  jitter: 'repeatability of identical runs',
  supply: 'supply and temperature',
};

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skipped';

export interface CheckResult {
  step: StepId;
  title: string;
  status: CheckStatus;
  detail: string;
  seconds: number;
}

export interface BringupProgress {
  step: StepId;
  label: string;
  done: number;
  total: number;
}

export interface BringupOptions {
  signal?: AbortSignal;
  onProgress?: (p: BringupProgress) => void;
  /** One line per finished step (for people). */
  log?: (line: string) => void;
  /** Seed of the random memory pattern. Default 1. */
  seed?: number;
  /** Identical runs for the jitter check. Default 32. */
  jitterRepeats?: number;
  /** Largest acceptable timer jitter (rms, ticks). Default 2. */
  maxJitterTicks?: number;
}

export interface NeuronRef {
  layer: number;
  neuron: number;
  kind: 'dead' | 'stuck';
}

export interface ProbeCodes {
  full: number;
  /** NMOS base under the PMOS probes: slow, so the delay a PMOS adds spans many ticks. */
  n0: number;
  n1: number;
  n2: number;
  p1: number;
  p2: number;
}

export interface JitterResult {
  repeats: number;
  /** Root-mean-square spread of a neuron's tick over identical runs, pooled over neurons that fired every time. */
  rmsTicks: number;
  /** Largest spread (max - min) of one neuron's tick. */
  maxSpreadTicks: number;
  /** Each tick minus its neuron's mean, for the histogram. */
  deviations: number[];
  neurons: number;
}

export interface BringupRecord {
  ok: boolean;
  /** Set when the run stopped before the end: the step and why. */
  stoppedEarly?: { step: StepId; reason: string };
  device: {
    uri: string;
    chipId?: string;
    firmware?: string;
    boardId?: string;
    protocol?: number;
    minProtocol?: number;
    negotiatedProtocol?: number;
    geometry?: number[];
    features?: string[];
    tickSeconds?: number;
  };
  checks: CheckResult[];
  memory: { pattern: MemoryPattern | 'off'; layer: number; ok: boolean; detail: string }[];
  neurons: NeuronRef[];
  codes?: ProbeCodes;
  layers: LayerDiagnosis[];
  synapses: SynapseFlag[];
  jitter?: JitterResult;
  status?: { before?: StatusResponse; after?: StatusResponse };
  selfTest?: SelfTestResult[];
  alerts: { kind: string; value: number; text: string }[];
  /** Fault tokens in the `faults=` grammar of the behavioural chip (models/chips/faults.ts). */
  dead_neurons: string[];
  bad_synapses: string[];
  jitter_ticks: number | null;
  seconds: number;
}

/** Thrown inside the workflow to stop early; becomes record.stoppedEarly. */
class StopEarly extends Error {
  constructor(
    readonly step: StepId,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULTS = { seed: 1, jitterRepeats: 32, maxJitterTicks: 2 };

/**
 * Runs bring-up on a device. `device` is an open ChipDevice (the caller closes it) or a function
 * that opens one (then the link and HELLO are part of the check, and the device is closed here).
 * Never throws for what it finds on the chip: failures are in the record (ok false); it throws only
 * when aborted or on a host-side bug.
 */
export async function runBringup(device: ChipDevice | (() => Promise<ChipDevice>), opts: BringupOptions = {}): Promise<BringupRecord> {
  const started = performance.now();
  const o = { ...DEFAULTS, ...stripUndefined(opts) };
  const rec: BringupRecord = {
    ok: false,
    device: { uri: typeof device === 'function' ? '' : device.uri },
    checks: [],
    memory: [],
    neurons: [],
    layers: [],
    synapses: [],
    alerts: [],
    dead_neurons: [],
    bad_synapses: [],
    jitter_ticks: null,
    seconds: 0,
  };
  let stepStart = performance.now();
  const check = (step: StepId, status: CheckStatus, detail: string) => {
    const r: CheckResult = { step, title: STEP_TITLES[step], status, detail, seconds: (performance.now() - stepStart) / 1000 };
    rec.checks.push(r);
    opts.log?.(`${status.toUpperCase().padEnd(7)} ${r.title}: ${detail}`);
    stepStart = performance.now();
  };
  const progress = (step: StepId, done: number, total: number) => opts.onProgress?.({ step, label: STEP_TITLES[step], done, total });

  // 1-2. Link, HELLO and protocol version.
  let dev: ChipDevice;
  progress('link', 0, 1);
  try {
    dev = typeof device === 'function' ? await device() : device;
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    const msg = (err as Error)?.message ?? String(err);
    if (err instanceof VersionMismatchError) {
      check('link', 'pass', `the device answered HELLO (protocol ${err.deviceMinProtocol}..${err.deviceProtocol})`);
      rec.device.protocol = err.deviceProtocol;
      rec.device.minProtocol = err.deviceMinProtocol;
      check('protocol', 'fail', msg);
      return finish(rec, started, { step: 'protocol', reason: msg });
    }
    const hello = err instanceof ProtocolViolationError;
    check('link', 'fail', hello ? `the device's HELLO is not usable: ${msg}` : msg);
    return finish(rec, started, { step: 'link', reason: msg });
  }
  const owned = typeof device === 'function';
  rec.device.uri = dev.uri;
  const alertSub = watchAlerts(dev, rec);
  try {
    const info = dev.info;
    describeDevice(rec, info);
    const ping = await dev.ping(new Uint8Array(64).map((_, k) => (k * 37) & 0xff));
    progress('link', 1, 1);
    check(
      'link',
      'pass',
      `${info.chipId} on ${info.boardId}, firmware ${info.firmware}; layers ${rec.device.geometry!.join('-')}; PING round trip ${ping.rttMs.toFixed(1)} ms`,
    );
    check('protocol', 'pass', `device speaks ${info.minProtocol}..${info.protocol}, session uses protocol ${info.negotiatedProtocol}`);

    const bench = new Bench(dev, opts.signal);
    await stepMemory(bench, rec, o.seed, check, (d, t) => progress('memory', d, t));
    await stepHealth(dev, rec, check, () => progress('health', 1, 1));
    stopOnAlert(rec);
    const neuronFaults = await stepNeurons(bench, rec, check, (d, t) => progress('neurons', d, t));
    stopOnAlert(rec);
    await stepSynapses(bench, rec, neuronFaults, check, (d, t) => progress('synapses', d, t));
    stopOnAlert(rec);
    await stepJitter(bench, rec, o.jitterRepeats, o.maxJitterTicks, check, (d, t) => progress('jitter', d, t));
    await stepSupply(dev, rec, check);
    // Leave the chip as it powers up: every synapse off.
    for (let l = 0; l < info.layers.length; l++) await bench.set(l, bench.off(l));
    stopOnAlert(rec);
    return finish(rec, started);
  } catch (err) {
    if (err instanceof StopEarly) {
      check(err.step, 'fail', err.message);
      return finish(rec, started, { step: err.step, reason: err.message });
    }
    throw err;
  } finally {
    alertSub.unsubscribe();
    if (owned) await dev.close().catch(() => {});
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function finish(rec: BringupRecord, started: number, stopped?: { step: StepId; reason: string }): BringupRecord {
  if (stopped) rec.stoppedEarly = stopped;
  rec.dead_neurons = rec.neurons.map((n) => `${n.kind}-neuron:${n.layer}.${n.neuron}`);
  rec.bad_synapses = rec.synapses.map((s) => `${s.kind}-synapse:${s.layer}.${s.input}.${s.neuron}.${s.polarity}`);
  rec.jitter_ticks = rec.jitter ? round3(rec.jitter.rmsTicks) : null;
  rec.ok = !stopped && rec.checks.every((c) => c.status === 'pass' || c.status === 'skipped' || c.status === 'warn');
  rec.seconds = (performance.now() - started) / 1000;
  return rec;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function describeDevice(rec: BringupRecord, info: DeviceInfo): void {
  Object.assign(rec.device, {
    chipId: info.chipId,
    firmware: info.firmware,
    boardId: info.boardId,
    protocol: info.protocol,
    minProtocol: info.minProtocol,
    negotiatedProtocol: info.negotiatedProtocol,
    geometry: [info.layers[0].inputs, ...info.layers.map((l) => l.outputs)],
    features: [...info.features],
    tickSeconds: info.tickSeconds,
  });
}

/** ALERT events during the run; brown-out and over-temperature stop it at the next step. */
function watchAlerts(dev: ChipDevice, rec: BringupRecord): Subscription {
  return dev.events$.subscribe((e) => {
    if (e.type === 'ALERT') rec.alerts.push({ kind: e.event.kind, value: e.event.value, text: e.event.text });
  });
}

function stopOnAlert(rec: BringupRecord): void {
  const a = rec.alerts.find((x) => x.kind === 'brown-out' || x.kind === 'over-temperature');
  if (a) throw new StopEarly('health', `the board raised a ${a.kind} alert (${a.value}: ${a.text}); driving the chip further could harm it`);
}

// ------------------------------------------------------------------------------------ device access

/** The device plus what its weight memory holds, so a new configuration sends only what changed. */
class Bench {
  readonly info: DeviceInfo;
  readonly geometry: LayerGeometry[];
  readonly dac: DacSpec;
  readonly safe: SafeRange;
  private readonly held: (Uint16Array | undefined)[];

  constructor(
    readonly dev: ChipDevice,
    readonly signal: AbortSignal | undefined,
  ) {
    this.info = dev.info;
    this.geometry = this.info.layers.map(layerGeometry);
    this.dac = this.info.dac;
    this.safe = { nmos: this.info.safe.nmos as [number, number], pmos: this.info.safe.pmos as [number, number] };
    this.held = this.geometry.map(() => undefined);
  }

  get layers(): number {
    return this.geometry.length;
  }

  off(layer: number): Uint16Array {
    return allOffCodes(this.geometry[layer], this.dac, this.safe);
  }

  /** Makes the device hold `codes` in a layer (only changed runs are sent once the content is known). */
  async set(layer: number, codes: Uint16Array): Promise<void> {
    this.signal?.throwIfAborted();
    const prev = this.held[layer];
    if (prev) await this.dev.uploadChanged(layer, prev, codes, { signal: this.signal });
    else await this.dev.uploadWeights(layer, codes, { signal: this.signal });
    this.held[layer] = codes;
  }

  /** Uploads and checks the CRC; the content is known afterwards only if it matched. */
  async setVerified(layer: number, codes: Uint16Array): Promise<{ ok: boolean; detail: string }> {
    this.held[layer] = undefined;
    await this.dev.uploadWeights(layer, codes, { signal: this.signal });
    const v = await this.dev.verifyWeights(layer, codes);
    if (v.ok) this.held[layer] = codes;
    return v;
  }

  async run(inputs: Uint16Array, batch: number, onProgress?: (done: number) => void): Promise<Uint16Array[]> {
    this.signal?.throwIfAborted();
    return this.dev.run(inputs, batch, { signal: this.signal, onProgress: onProgress && ((p) => onProgress(p.done)) });
  }

  /** Samples with the given external inputs active at tick 0 (each entry: the inputs of one sample). */
  samples(active: readonly (readonly number[])[]): Uint16Array {
    const n = this.geometry[0].inputs;
    const x = new Uint16Array(active.length * n).fill(SILENT_TICK);
    active.forEach((ins, s) => ins.forEach((j) => (x[s * n + j] = 0)));
    return x;
  }
}

type Check = (step: StepId, status: CheckStatus, detail: string) => void;
type Tick = (done: number, total: number) => void;

// ------------------------------------------------------------------------------------ steps

async function stepMemory(bench: Bench, rec: BringupRecord, seed: number, check: Check, tick: Tick): Promise<void> {
  const { geometry, dac, safe } = bench;
  const total = (MEMORY_PATTERNS.length + 1) * bench.layers;
  let done = 0;
  tick(0, total);
  const patterns: (MemoryPattern | 'off')[] = [...MEMORY_PATTERNS, 'off'];
  for (const pattern of patterns) {
    for (let l = 0; l < bench.layers; l++) {
      const codes = pattern === 'off' ? bench.off(l) : memoryPatternCodes(geometry[l], dac, safe, pattern, seed + 7919 * l);
      const v = await bench.setVerified(l, codes);
      rec.memory.push({ pattern, layer: l, ok: v.ok, detail: v.detail });
      tick(++done, total);
    }
  }
  const bad = rec.memory.filter((m) => !m.ok);
  if (bad.length > 0) {
    throw new StopEarly(
      'memory',
      `${bad.length} of ${rec.memory.length} pattern read-backs failed (${bad
        .slice(0, 3)
        .map((m) => `${m.pattern} layer ${m.layer}: ${m.detail}`)
        .join('; ')}); the gate voltages the chip would see are unknown, so nothing is run`,
    );
  }
  const [nLo, nHi] = codeWindow(dac, safe, NMOS);
  const [pLo, pHi] = codeWindow(dac, safe, PMOS);
  check(
    'memory',
    'pass',
    `${patterns.join(', ')} written and read back (CRC-32C) in all ${bench.layers} layers; safe code windows NMOS ${nLo}..${nHi}, PMOS ${pLo}..${pHi}`,
  );
}

async function stepHealth(dev: ChipDevice, rec: BringupRecord, check: Check, done: () => void): Promise<void> {
  const features = dev.info.features;
  const parts: string[] = [];
  if (features.includes('status')) {
    const s = await dev.status();
    rec.status = { before: s };
    parts.push(`supply ${s.supplyV.toFixed(3)} V, ${s.temperatureC.toFixed(1)} C`);
  }
  if (!features.includes('self-test')) {
    done();
    check('health', 'skipped', `the device has no self-test${parts.length ? `; ${parts.join('; ')}` : ''}`);
    return;
  }
  const results = await dev.selfTest();
  rec.selfTest = results;
  done();
  const failed = results.filter((r) => !r.ok);
  // A DAC that does not drive what memory holds, or a supply out of range, could harm the chip.
  const harmful = failed.filter((r) => r.name === 'dac' || r.name === 'supply');
  if (harmful.length > 0) {
    throw new StopEarly('health', `self-test failed: ${harmful.map((r) => `${r.name}: ${r.detail}`).join('; ')}; the chip is not driven`);
  }
  const summary = results.map((r) => `${r.name} ${r.ok ? 'ok' : 'FAILED'}`).join(', ');
  check(
    'health',
    failed.length ? 'fail' : 'pass',
    `self-test ${summary}${failed.length ? ` (${failed.map((r) => r.detail).join('; ')})` : ''}${parts.length ? `; ${parts.join('; ')}` : ''}`,
  );
}

interface NeuronFaults {
  dead: Set<number>[];
  stuck: Set<number>[];
}

async function stepNeurons(bench: Bench, rec: BringupRecord, check: Check, tick: Tick): Promise<NeuronFaults> {
  const { geometry, dac, safe } = bench;
  const L = bench.layers;
  const nIn = geometry[0].inputs;
  tick(0, 2);
  // No input, every synapse off: only a neuron stuck high fires. Several samples: stuck means always.
  for (let l = 0; l < L; l++) await bench.set(l, bench.off(l));
  const quiet = await bench.run(bench.samples([[], [], []]), 3);
  tick(1, 2);
  // Every NMOS synapse at its strongest safe code and every input at t = 0: every live neuron fires.
  for (let l = 0; l < L; l++) {
    await bench.set(l, rowsAtCodes(geometry[l], dac, safe, selectRows(geometry[l], { polarity: NMOS }), fullOnCode(dac, safe, NMOS)));
  }
  const all = Array.from({ length: nIn }, (_, j) => j);
  const loud = await bench.run(bench.samples([all, all, all]), 3);
  tick(2, 2);
  const faults: NeuronFaults = { dead: [], stuck: [] };
  for (let l = 0; l < L; l++) {
    const n = geometry[l].outputs;
    const dead = new Set<number>();
    const stuck = new Set<number>();
    for (let i = 0; i < n; i++) {
      const firesQuiet = [0, 1, 2].every((s) => quiet[l][s * n + i] !== SILENT_TICK);
      const silentLoud = [0, 1, 2].every((s) => loud[l][s * n + i] === SILENT_TICK);
      if (firesQuiet) stuck.add(i);
      else if (silentLoud) dead.add(i);
    }
    faults.dead.push(dead);
    faults.stuck.push(stuck);
    for (const i of stuck) rec.neurons.push({ layer: l, neuron: i, kind: 'stuck' });
    for (const i of dead) rec.neurons.push({ layer: l, neuron: i, kind: 'dead' });
  }
  rec.neurons.sort((a, b) => a.layer - b.layer || a.neuron - b.neuron);
  const total = geometry.reduce((s, g) => s + g.outputs, 0);
  const bad = rec.neurons.length;
  check(
    'neurons',
    bad ? 'fail' : 'pass',
    bad
      ? `${bad} of ${total} neurons faulty: ${rec.neurons.map((n) => `${n.kind} ${n.layer}.${n.neuron}`).join(', ')}`
      : `all ${total} neurons fire under full drive and stay silent without input`,
  );
  return faults;
}

// ------------------------------------------------------------------------------------ synapses

/**
 * Bisection over integer codes [lo, hi] for the code whose statistic (a median time or delay) is
 * closest to `target` in ratio. The statistic falls as the code rises (more NMOS drive, less PMOS
 * inhibition) unless `increasing`; Infinity (silent) means the code is on the weak side.
 */
async function searchCode(lo: number, hi: number, target: number, increasing: boolean, stat: (code: number) => Promise<number>): Promise<number> {
  let a = lo;
  let b = hi;
  let best = a;
  let bestErr = Infinity;
  while (a <= b) {
    const mid = (a + b) >> 1;
    const v = await stat(mid);
    const err = Number.isFinite(v) && v > 0 ? Math.abs(Math.log(v / target)) : Infinity;
    if (err < bestErr) {
      bestErr = err;
      best = mid;
    }
    if (err < 0.05) break;
    const below = !(v >= target); // NaN / Infinity: too slow or silent
    const goUp = increasing ? below : !below;
    if (!Number.isFinite(v)) {
      // Silent: NMOS too weak or PMOS too strong; both mean a higher code.
      a = mid + 1;
    } else if (goUp) a = mid + 1;
    else b = mid - 1;
  }
  return best;
}

/** Finds the probe codes on layer 0 with a few inputs. */
async function chooseCodes(bench: Bench): Promise<ProbeCodes> {
  const { geometry, dac, safe } = bench;
  const g = geometry[0];
  const h0 = bench.info.layers[0].horizonTicks;
  const k = Math.min(16, g.inputs);
  const inputs = Array.from({ length: k }, (_, m) => Math.floor((m * g.inputs) / k));
  const x = bench.samples(inputs.map((j) => [j]));
  const nRows = selectRows(g, { inputs, polarity: NMOS });
  const allRows = selectRows(g, { inputs });
  const [nLo, nHi] = codeWindow(dac, safe, NMOS);
  const [pLo, pHi] = codeWindow(dac, safe, PMOS);
  for (let l = 1; l < bench.layers; l++) await bench.set(l, bench.off(l));

  const times = async (codes: Uint16Array): Promise<Float64Array> => {
    await bench.set(0, codes);
    const t = (await bench.run(x, k))[0];
    return Float64Array.from(t, (v) => (v === SILENT_TICK ? Infinity : v));
  };
  const medianTime = async (code: number) => medianWithInf(await times(rowsAtCodes(g, dac, safe, nRows, code)));
  const n0 = await searchCode(nLo, nHi, h0 / 6, false, medianTime);
  const n1 = await searchCode(n0, nHi, h0 / 20, false, medianTime);
  const n2 = await searchCode(n1, nHi, Math.max(12, h0 / 100), false, medianTime);
  const base = await times(rowsAtCodes(g, dac, safe, nRows, n0));
  const relDelay = async (code: number) => {
    const t = await times(rowsAtCodes(g, dac, safe, allRows, { nmos: n0, pmos: code }));
    const r = Array.from(t, (v, m) => (Number.isFinite(base[m]) ? (v - base[m]) / base[m] : NaN)).filter((v) => !Number.isNaN(v));
    return medianWithInf(Float64Array.from(r));
  };
  // PMOS: inhibition grows as the gate code falls from the top of its window.
  const p1 = await searchCode(pLo, pHi, 0.15, false, async (c) => relDelayOrZero(await relDelay(c)));
  const p2 = await searchCode(pLo, p1, 0.5, false, async (c) => relDelayOrZero(await relDelay(c)));
  return { full: fullOnCode(dac, safe, NMOS), n0, n1, n2, p1, p2 };
}

function relDelayOrZero(v: number): number {
  return v === 0 ? 1e-6 : v;
}

function medianWithInf(v: Float64Array): number {
  const s = Float64Array.from(v).sort();
  if (s.length === 0) return NaN;
  return s[s.length >> 1];
}

/**
 * The probe whose samples also pair each input with a second one. At the weak NMOS code a shorted
 * PMOS (gate at ground, full current) holds the neuron down against the second input, while a dead
 * NMOS leaves the second input's own time; under full NMOS drive both would fire.
 */
const PAIR_PROBE = 'n1';

interface Probe {
  name: ProbeName;
  codes: Uint16Array;
}

async function stepSynapses(bench: Bench, rec: BringupRecord, nf: NeuronFaults, check: Check, tick: Tick): Promise<void> {
  const { geometry, dac, safe } = bench;
  const L = bench.layers;
  const codes = await chooseCodes(bench);
  rec.codes = codes;
  const totalSamples = geometry.reduce((s, g) => s + g.inputs * 9, 0);
  let done = 0;
  tick(0, totalSamples);
  for (let l = 0; l < L; l++) {
    const g = geometry[l];
    const stuckIn = l > 0 ? nf.stuck[l - 1] : new Set<number>();
    const nRows = selectRows(g, { polarity: NMOS });
    const pRows = selectRows(g, { polarity: PMOS });
    const stuckOff = (c: Uint16Array) => (stuckIn.size ? withInputsOff(c, g, dac, safe, stuckIn) : c);
    const probes: Probe[] = [
      { name: 'off', codes: bench.off(l) },
      { name: 'full', codes: rowsAtCodes(g, dac, safe, nRows, codes.full) },
      { name: 'n0', codes: rowsAtCodes(g, dac, safe, nRows, codes.n0) },
      { name: 'n1', codes: rowsAtCodes(g, dac, safe, nRows, codes.n1) },
      { name: 'n2', codes: rowsAtCodes(g, dac, safe, nRows, codes.n2) },
    ].map((p) => ({ ...p, codes: stuckOff(p.codes) }) as Probe);
    const tickSamples = (n: number) => tick((done += n), totalSamples);
    const m = await measureLayer(bench, l, probes, nf, tickSamples);
    // PMOS probes sit on an NMOS drive equalised synapse by synapse, so every PMOS delay spans many ticks.
    const per = equalisingCodes(m, codes, codeWindow(dac, safe, NMOS), bench.info.layers[0].horizonTicks / 6);
    const eq = bench.off(l);
    for (const r of nRows) {
      const j = g.rowInput[r];
      for (let i = 0; i < g.outputs; i++) if (per[j * g.outputs + i] >= 0) eq[r * g.outputs + i] = per[j * g.outputs + i];
    }
    const withPmos = (p: number) => {
      const c = eq.slice();
      for (const r of pRows) c.fill(p, r * g.outputs, (r + 1) * g.outputs);
      return c;
    };
    const pmosProbes: Probe[] = [
      { name: 'eq', codes: eq },
      { name: 'p1', codes: withPmos(codes.p1) },
      { name: 'p2', codes: withPmos(codes.p2) },
    ].map((p) => ({ ...p, codes: stuckOff(p.codes) }) as Probe);
    const mp = await measureLayer(bench, l, pmosProbes, nf, tickSamples, m.reached);
    for (const p of pmosProbes) m.times[p.name] = mp.times[p.name];
    rec.layers.push(analyseLayer(m, nf.dead[l], nf.stuck[l]));
  }
  tick(totalSamples, totalSamples);
  rec.synapses = rec.layers.flatMap((d) => d.flags);
  const measured = rec.layers.reduce((s, d) => s + d.measuredNmos + d.measuredPmos, 0);
  const unmeasured = rec.layers.reduce((s, d) => s + d.unmeasured, 0);
  const bad = rec.synapses.length;
  const kinds = countBy(rec.synapses.map((s) => `${s.kind} ${s.polarity}`));
  check(
    'synapses',
    bad ? 'fail' : unmeasured ? 'warn' : 'pass',
    (bad
      ? `${bad} faulty synapses (${Object.entries(kinds)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}) among ${measured} measured`
      : `all ${measured} measured synapses within the chip's own spread`) +
      (unmeasured ? `; ${unmeasured} not measurable (behind a faulty neuron or relay)` : '') +
      `; codes full ${codes.full}, NMOS ${codes.n0}/${codes.n1}/${codes.n2}, PMOS ${codes.p1}/${codes.p2} on equalised NMOS`,
  );
}

function countBy(xs: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of xs) c[x] = (c[x] ?? 0) + 1;
  return c;
}

/**
 * Runs every probe on layer l. Inputs of layer l > 0 come through relays; each target input is
 * measured in a pass whose relay chain fired exactly as planned (one neuron per relay layer),
 * trying other routes for targets whose chain misbehaved (a shorted synapse firing a second neuron).
 */
async function measureLayer(
  bench: Bench,
  l: number,
  probes: Probe[],
  nf: NeuronFaults,
  onSamples: (n: number) => void,
  only?: Uint8Array,
): Promise<LayerMeasurements> {
  const { geometry, dac, safe } = bench;
  const g = geometry[l];
  const nIn = g.inputs;
  const nOut = g.outputs;
  const size = nIn * nOut;
  const m: LayerMeasurements = {
    layer: l,
    inputs: nIn,
    outputs: nOut,
    horizonTicks: bench.info.layers[0].horizonTicks,
    times: Object.fromEntries(PROBE_NAMES.map((p) => [p, new Float64Array(size).fill(NaN)])) as LayerMeasurements['times'],
    pair: new Float64Array(size).fill(NaN),
    buddyTime: new Float64Array(size).fill(NaN),
    reached: new Uint8Array(nIn),
    unreachable: {},
  };
  for (let k = l + 1; k < bench.layers; k++) await bench.set(k, bench.off(k));

  // Which inputs can be driven at all, and by which external input.
  let pending: number[] = [];
  for (let j = 0; j < nIn; j++) {
    if (l > 0 && nf.dead[l - 1].has(j)) m.unreachable[j] = `input ${j} comes from dead neuron ${l - 1}.${j}`;
    else if (l > 0 && nf.stuck[l - 1].has(j)) m.unreachable[j] = `input ${j} comes from stuck neuron ${l - 1}.${j}`;
    else if (only && !only[j]) m.unreachable[j] = `no clean relay route to input ${j} of layer ${l}`;
    else pending.push(j);
  }
  const width = l === 0 ? nIn : Math.min(...geometry.slice(0, l).map((x) => x.inputs));
  for (let attempt = 0; attempt < 4 && pending.length > 0; attempt++) {
    // Group targets by the relay shift of layer l-1 (src = external input = layer l-1 input).
    const groups = new Map<number, { j: number; src: number }[]>();
    for (const j of pending) {
      const src = l === 0 ? j : ((j % width) + attempt) % width;
      if (l > 0 && !chainAlive(nf, l, src)) continue;
      const s = j - src;
      if (!groups.has(s)) groups.set(s, []);
      groups.get(s)!.push({ j, src });
    }
    const done = new Set<number>();
    for (const [shift, targets] of groups) {
      if (l > 0) await setRelays(bench, l, shift, nf);
      const clean = new Set(targets.map((t) => t.j));
      const results = new Map<string, Uint16Array[]>();
      for (const p of probes) {
        await bench.set(l, p.codes);
        const singles = targets.map((t) => [t.src]);
        // Pairs (target, next target) tell a dead NMOS from a shorted PMOS under full drive.
        const pairs = p.name === PAIR_PROBE && targets.length > 1 ? targets.map((t, k) => [t.src, targets[(k + 1) % targets.length].src]) : [];
        const x = bench.samples([...singles, ...pairs]);
        const out = await bench.run(x, singles.length + pairs.length);
        onSamples(singles.length + pairs.length);
        results.set(p.name, out);
        if (l > 0) {
          targets.forEach((t, k) => {
            if (!relayClean(bench, l, out, k, [t], shift, nf)) clean.delete(t.j);
            if (pairs.length && !relayClean(bench, l, out, singles.length + k, [t, targets[(k + 1) % targets.length]], shift, nf)) clean.delete(t.j);
          });
        }
      }
      targets.forEach((t, k) => {
        if (!clean.has(t.j)) return;
        done.add(t.j);
        m.reached[t.j] = 1;
        for (const p of probes) {
          const out = results.get(p.name)!;
          const tIn = (sample: number, j: number) => (l === 0 ? 0 : out[l - 1][sample * geometry[l - 1].outputs + j]);
          for (let i = 0; i < nOut; i++) {
            m.times[p.name][t.j * nOut + i] = spikeDelay(out[l][k * nOut + i], tIn(k, t.j));
          }
          if (p.name === PAIR_PROBE && targets.length > 1) {
            const b = targets[(k + 1) % targets.length];
            const s = targets.length + k;
            const t0 = Math.min(tIn(s, t.j), tIn(s, b.j));
            for (let i = 0; i < nOut; i++) {
              m.pair[t.j * nOut + i] = spikeDelay(out[l][s * nOut + i], t0);
              m.buddyTime[t.j * nOut + i] = spikeDelay(out[l][((k + 1) % targets.length) * nOut + i], tIn((k + 1) % targets.length, b.j));
            }
          }
        }
      });
    }
    pending = pending.filter((j) => !done.has(j));
  }
  for (const j of pending) m.unreachable[j] ??= `no clean relay route to input ${j} of layer ${l}`;
  return m;
}

/** Output tick minus input tick; Infinity when the output is silent, NaN when the input never came. */
function spikeDelay(out: number, input: number): number {
  if (input === SILENT_TICK) return NaN;
  if (out === SILENT_TICK) return Infinity;
  return out - input;
}

/** The relay chain to layer l through external input src uses neuron src of layers 0..l-2. */
function chainAlive(nf: NeuronFaults, l: number, src: number): boolean {
  for (let k = 0; k < l - 1; k++) if (nf.dead[k].has(src) || nf.stuck[k].has(src)) return false;
  return true;
}

/** Identity relays on layers 0..l-2, the shifted relay on layer l-1; stuck inputs switched off. */
async function setRelays(bench: Bench, l: number, shift: number, nf: NeuronFaults): Promise<void> {
  const { geometry, dac, safe } = bench;
  const on = fullOnCode(dac, safe, NMOS);
  for (let k = 0; k < l; k++) {
    let c = relayCodes(geometry[k], dac, safe, on, k === l - 1 ? shift : 0);
    if (k > 0 && nf.stuck[k - 1].size) c = withInputsOff(c, geometry[k], dac, safe, nf.stuck[k - 1]);
    await bench.set(k, c);
  }
}

/** In sample s, did each relay layer fire exactly the planned neurons (and no other)? */
function relayClean(bench: Bench, l: number, out: Uint16Array[], s: number, targets: { j: number; src: number }[], shift: number, nf: NeuronFaults): boolean {
  for (let k = 0; k < l; k++) {
    const n = bench.geometry[k].outputs;
    const want = new Set(targets.map((t) => (k === l - 1 ? t.src + shift : t.src)));
    for (let i = 0; i < n; i++) {
      // A stuck neuron always fires; its rows downstream are off, so it drives nothing.
      if (nf.stuck[k].has(i)) continue;
      const fired = out[k][s * n + i] !== SILENT_TICK;
      if (fired !== want.has(i)) return false;
    }
  }
  return true;
}

// ------------------------------------------------------------------------------------ jitter, supply

async function stepJitter(bench: Bench, rec: BringupRecord, repeats: number, maxTicks: number, check: Check, tick: Tick): Promise<void> {
  const { geometry, dac, safe } = bench;
  // Every NMOS synapse at the first probe code: spikes well inside the windows, so timer and edge
  // noise show, not the drive.
  const code = rec.codes?.n1 ?? fullOnCode(dac, safe, NMOS);
  for (let l = 0; l < bench.layers; l++) await bench.set(l, rowsAtCodes(geometry[l], dac, safe, selectRows(geometry[l], { polarity: NMOS }), code));
  const all = Array.from({ length: geometry[0].inputs }, (_, j) => j);
  const x = bench.samples(Array.from({ length: repeats }, () => all));
  tick(0, repeats);
  const out = await bench.run(x, repeats, (d) => tick(d, repeats));
  const deviations: number[] = [];
  let sq = 0;
  let count = 0;
  let maxSpread = 0;
  let neurons = 0;
  for (let l = 0; l < bench.layers; l++) {
    const n = geometry[l].outputs;
    for (let i = 0; i < n; i++) {
      const t: number[] = [];
      for (let r = 0; r < repeats; r++) t.push(out[l][r * n + i]);
      if (t.some((v) => v === SILENT_TICK)) continue;
      neurons++;
      const mean = t.reduce((s, v) => s + v, 0) / repeats;
      for (const v of t) {
        deviations.push(v - mean);
        sq += (v - mean) ** 2;
        count++;
      }
      maxSpread = Math.max(maxSpread, Math.max(...t) - Math.min(...t));
    }
  }
  const rms = count > 0 ? Math.sqrt(sq / count) : NaN;
  rec.jitter = { repeats, rmsTicks: rms, maxSpreadTicks: maxSpread, deviations, neurons };
  if (neurons === 0) {
    check('jitter', 'fail', `no neuron fired in all ${repeats} identical runs`);
    return;
  }
  check(
    'jitter',
    rms <= maxTicks ? 'pass' : 'fail',
    `${repeats} identical runs, ${neurons} neurons: rms spread ${rms.toFixed(3)} ticks, largest spread ${maxSpread} ticks (limit ${maxTicks} rms)`,
  );
}

async function stepSupply(dev: ChipDevice, rec: BringupRecord, check: Check): Promise<void> {
  if (!dev.info.features.includes('status')) {
    check('supply', 'skipped', 'the device does not report supply or temperature (no status feature)');
    return;
  }
  const s = await dev.status();
  rec.status = { ...rec.status, after: s };
  const supplyTest = rec.selfTest?.find((t) => t.name === 'supply');
  const b = rec.status.before;
  const drift = b ? `; since the start ${fmtSigned((s.supplyV - b.supplyV) * 1000, 0)} mV, ${fmtSigned(s.temperatureC - b.temperatureC, 1)} C` : '';
  const temperatureOk = s.temperatureC >= -40 && s.temperatureC <= 125;
  check(
    'supply',
    temperatureOk && supplyTest?.ok !== false ? 'pass' : 'fail',
    `supply ${s.supplyV.toFixed(3)} V, temperature ${s.temperatureC.toFixed(1)} C${drift}${supplyTest ? `; self-test: ${supplyTest.detail}` : ''}`,
  );
}

function fmtSigned(x: number, digits: number): string {
  return (x >= 0 ? '+' : '') + x.toFixed(digits);
}
