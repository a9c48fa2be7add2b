import { fullOnCode, relayCodes, withInputsOff } from '../../calibration/probe-configs.ts';
import { NMOS } from '../../models/chips/chip-backend.ts';
import { PROBE_NAMES, type LayerMeasurements, type ProbeName } from './bringup-diagnosis.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import type { Bench } from './bringup-bench.ts';
import type { NeuronFaults } from './bringup-steps.ts';

/**
 * The probe whose samples also pair each input with a second one. At the weak NMOS code a shorted
 * PMOS (gate at ground, full current) holds the neuron down against the second input, while a dead
 * NMOS leaves the second input's own time; under full NMOS drive both would fire.
 */
export const PAIR_PROBE = 'n1';

export interface Probe {
  name: ProbeName;
  codes: Uint16Array;
}

/**
 * Runs every probe on layer l. Inputs of layer l > 0 come through relays; each target input is
 * measured in a pass whose relay chain fired exactly as planned (one neuron per relay layer),
 * trying other routes for targets whose chain misbehaved (a shorted synapse firing a second neuron).
 */
export async function measureLayer(
  bench: Bench,
  l: number,
  probes: Probe[],
  nf: NeuronFaults,
  onSamples: (n: number) => void,
  only?: Uint8Array,
): Promise<LayerMeasurements> {
  const { geometry } = bench;
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
      // Every probe's upload and RUN are issued at once, in order: the device holds each probe's
      // codes for its own RUN (ChipDevice runs a RUN after the uploads issued before it, and holds
      // later uploads until its frames are queued), while the next probe's upload goes out as the
      // current RUN's replies come in.
      const issued = probes.map((p) => {
        const set = bench.set(l, p.codes);
        const singles = targets.map((t) => [t.src]);
        // Pairs (target, next target) tell a dead NMOS from a shorted PMOS under full drive.
        const pairs = p.name === PAIR_PROBE && targets.length > 1 ? targets.map((t, k) => [t.src, targets[(k + 1) % targets.length].src]) : [];
        const n = singles.length + pairs.length;
        const run = bench.run(bench.samples([...singles, ...pairs]), n, undefined, bench.upTo(l));
        // awaited below, in order; a failure there stops the rest
        set.catch(() => {});
        run.catch(() => {});
        return { p, set, run, n, singles, pairs };
      });
      for (const { p, set, run, n, singles, pairs } of issued) {
        await set;
        const out = await run;
        onSamples(n);
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
export function spikeDelay(out: number, input: number): number {
  if (input === SILENT_TICK) return NaN;
  if (out === SILENT_TICK) return Infinity;
  return out - input;
}

/** The relay chain to layer l through external input src uses neuron src of layers 0..l-2. */
export function chainAlive(nf: NeuronFaults, l: number, src: number): boolean {
  for (let k = 0; k < l - 1; k++) if (nf.dead[k].has(src) || nf.stuck[k].has(src)) return false;
  return true;
}

/** Identity relays on layers 0..l-2, the shifted relay on layer l-1; stuck inputs switched off. */
export async function setRelays(bench: Bench, l: number, shift: number, nf: NeuronFaults): Promise<void> {
  const { geometry, dac, safe } = bench;
  const on = fullOnCode(dac, safe, NMOS);
  for (let k = 0; k < l; k++) {
    let c = relayCodes(geometry[k], dac, safe, on, k === l - 1 ? shift : 0);
    if (k > 0 && nf.stuck[k - 1].size) c = withInputsOff(c, geometry[k], dac, safe, nf.stuck[k - 1]);
    await bench.set(k, c);
  }
}

/** In sample s, did each relay layer fire exactly the planned neurons (and no other)? */
export function relayClean(
  bench: Bench,
  l: number,
  out: Uint16Array[],
  s: number,
  targets: { j: number; src: number }[],
  shift: number,
  nf: NeuronFaults,
): boolean {
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
