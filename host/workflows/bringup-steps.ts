/** The bring-up steps after the link and the protocol: memory, health, neurons, synapses, jitter, supply. */

import {
  codeWindow,
  fullOnCode,
  memoryPatternCodes,
  MEMORY_PATTERNS,
  rowsAtCodes,
  selectRows,
  withInputsOff,
  type MemoryPattern,
} from '../../calibration/probe-configs.ts';
import { NMOS, PMOS } from '../../models/chips/chip-backend.ts';
import type { ChipDevice } from '../device/chip-device.ts';
import { analyseLayer, equalisingCodes, Z_SCREEN_PMOS, Z_WEAK_PMOS } from './bringup-diagnosis.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import { type BringupRecord, type Check, StopEarly, type Tick } from './bringup-record.ts';
import type { Bench } from './bringup-bench.ts';
import { chooseCodes } from './bringup-codes.ts';
import { type Probe, measureLayer } from './bringup-measure.ts';
import { recheckWeakPmos } from './bringup-recheck.ts';

export async function stepMemory(bench: Bench, rec: BringupRecord, seed: number, check: Check, tick: Tick): Promise<void> {
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

export async function stepHealth(dev: ChipDevice, rec: BringupRecord, check: Check, done: () => void): Promise<void> {
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

export interface NeuronFaults {
  dead: Set<number>[];
  stuck: Set<number>[];
}

export async function stepNeurons(bench: Bench, rec: BringupRecord, check: Check, tick: Tick): Promise<NeuronFaults> {
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

export async function stepSynapses(bench: Bench, rec: BringupRecord, nf: NeuronFaults, check: Check, tick: Tick, shapeRecheck = true): Promise<void> {
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
    const d = analyseLayer(m, nf.dead[l], nf.stuck[l], shapeRecheck ? Z_SCREEN_PMOS : Z_WEAK_PMOS);
    if (shapeRecheck) await recheckWeakPmos({ bench, layer: l, m, d, codes, nf, prepare: stuckOff, onSamples: () => {} });
    rec.layers.push(d);
  }
  tick(totalSamples, totalSamples);
  rec.synapses = rec.layers.flatMap((d) => d.flags);
  const measured = rec.layers.reduce((s, d) => s + d.measuredNmos + d.measuredPmos, 0);
  const unmeasured = rec.layers.reduce((s, d) => s + d.unmeasured, 0);
  const bad = rec.synapses.length;
  const kinds = countBy(rec.synapses.map((s) => `${s.kind} ${s.polarity}`));
  const tails = rec.layers.flatMap((d) => d.mismatchTails);
  check(
    'synapses',
    bad ? 'fail' : unmeasured ? 'warn' : 'pass',
    (bad
      ? `${bad} faulty synapses (${Object.entries(kinds)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}) among ${measured} measured`
      : `all ${measured} measured synapses within the chip's own spread`) +
      (unmeasured ? `; ${unmeasured} not measurable (behind a faulty neuron or relay)` : '') +
      (tails.length
        ? `; ${tails.length} PMOS low at p1 / p2 but a threshold-mismatch tail by its shape (${tails.map((t) => `${t.layer}.${t.input}.${t.neuron}`).join(', ')}, PMOS ${codes.p3} on NMOS ${codes.q})`
        : '') +
      `; codes full ${codes.full}, NMOS ${codes.n0}/${codes.n1}/${codes.n2}, PMOS ${codes.p1}/${codes.p2} on equalised NMOS`,
  );
}

export function countBy(xs: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const x of xs) c[x] = (c[x] ?? 0) + 1;
  return c;
}

export async function stepJitter(bench: Bench, rec: BringupRecord, repeats: number, maxTicks: number, check: Check, tick: Tick): Promise<void> {
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

export async function stepSupply(dev: ChipDevice, rec: BringupRecord, check: Check): Promise<void> {
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

export function fmtSigned(x: number, digits: number): string {
  return (x >= 0 ? '+' : '') + x.toFixed(digits);
}
