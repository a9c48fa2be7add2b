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
import type { ChipDevice, DeviceInfo } from '../device/chip-device.ts';
import { VersionMismatchError } from '../device/hello-check.ts';
import { ProtocolViolationError } from '../link/errors.ts';
import { type BringupOptions, type BringupRecord, type CheckResult, type CheckStatus, STEP_TITLES, type StepId, StopEarly } from './bringup-record.ts';
import { Bench } from './bringup-bench.ts';
import { stepHealth, stepJitter, stepMemory, stepNeurons, stepSupply, stepSynapses } from './bringup-steps.ts';

const DEFAULTS = { seed: 1, jitterRepeats: 32, maxJitterTicks: 2, shapeRecheck: true };

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
    await stepSynapses(bench, rec, neuronFaults, check, (d, t) => progress('synapses', d, t), o.shapeRecheck);
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
