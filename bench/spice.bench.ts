/**
 * SPICE chip benchmark. Prints ONE JSON line:
 *   engines                         SPICE engines found (wasm always; ngspice when on the PATH)
 *   transient_s_per_neuron_run      one 16-input neuron, full transient over a 2 us window, one wasm
 *                                   engine, warm (median of the runs)
 *   transient_s_per_neuron_run_ngspice   the same on the system ngspice (null when absent)
 *   engines_max_diff                largest |wasm - ngspice| spike-time difference, fraction of the window
 *   table_characterise_s            table mode's characterisation for that chip (cache state in table_cache)
 *   table_s_per_neuron_run          table mode, same neuron, per sample
 *   table_vs_transient_rmse         table vs transient spike times on random patterns, fraction of the window
 *   table_s_per_sample_784          table mode on the 784-256-128-10 array, seconds per sample
 *   behavioral_s_per_sample         behavioural chip, 784-256-128-10, seconds per sample (null with a reason if absent)
 */
import { performance } from 'node:perf_hooks';
import { NMOS, type ChipBackend } from '../models/chips/chip-backend.ts';
import { CHIP_KINDS, createChip } from '../models/chips/index.ts';
import { availableEngines } from '../models/chips/spice/engine.ts';
import { SpiceChip } from '../models/chips/spice/spice-chip.ts';
import { SILENT_TICK } from '../wire/ticks.ts';

const HORIZON = 2e-6;
const round = (x: number | null, d = 4) => (x === null || !Number.isFinite(x) ? x : Number(x.toPrecision(d)));

let seed = 20240611;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;

function gatesFor(g: ChipBackend['geometry'][number], nLo: number, nHi: number, pLo: number, pHi: number): Float64Array {
  const v = new Float64Array(g.rowInput.length * g.outputs);
  for (let r = 0; r < g.rowInput.length; r++) {
    for (let i = 0; i < g.outputs; i++) v[r * g.outputs + i] = g.rowPolarity[r] === NMOS ? nLo + (nHi - nLo) * rnd() : pLo + (pHi - pLo) * rnd();
  }
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Per-run wall time of one neuron's transient on one warm engine. */
async function transientTiming(
  engine: 'wasm' | 'ngspice',
  gates: Float64Array,
  inputs: Float64Array,
  batch: number,
): Promise<{ perRun: number; times: Float64Array }> {
  const chip = await SpiceChip.create({ seed: 1, sizes: [16, 1], engine, workers: 1 });
  try {
    chip.setGateVoltages(0, gates);
    await chip.layerSpikeTimes(0, inputs.subarray(0, 16), 1); // start the worker and its engine
    const per: number[] = [];
    const times = new Float64Array(batch);
    for (let b = 0; b < batch; b++) {
      const t0 = performance.now();
      times[b] = (await chip.layerSpikeTimes(0, inputs.subarray(b * 16, (b + 1) * 16), 1))[0];
      per.push((performance.now() - t0) / 1000);
    }
    return { perRun: median(per), times };
  } finally {
    await chip.close();
  }
}

async function main(): Promise<void> {
  const engines = availableEngines();
  const batch = 10;
  const probe = await SpiceChip.create({ seed: 1, sizes: [16, 1], mode: 'table' });
  const gates = gatesFor(probe.geometry[0], 0.42, 0.55, 1.1, 1.6);
  const inputs = Float64Array.from({ length: batch * 16 }, () => (rnd() < 0.25 ? Infinity : Math.floor(rnd() * 1000) * 1e-9));
  await probe.close();

  // Table mode: characterisation (cache-dependent), then per-sample integration.
  const t0 = performance.now();
  const table = await SpiceChip.create({ seed: 1, sizes: [16, 1], mode: 'table' });
  const characterise = (performance.now() - t0) / 1000;
  table.setGateVoltages(0, gates);
  const reps = 200;
  const t1 = performance.now();
  let tableTimes: Float64Array = new Float64Array(0);
  for (let k = 0; k < reps; k++) tableTimes = await table.layerSpikeTimes(0, inputs, batch);
  const tablePerNeuron = (performance.now() - t1) / 1000 / (reps * batch);
  const cache = { ...table.cacheStats };
  await table.close();

  const wasm = await transientTiming('wasm', gates, inputs, batch);
  let ng: { perRun: number; times: Float64Array } | undefined;
  if (engines.includes('ngspice')) ng = await transientTiming('ngspice', gates, inputs, batch);

  let sq = 0;
  let n = 0;
  let statusMismatch = 0;
  let enginesMax = 0;
  for (let b = 0; b < batch; b++) {
    const a = tableTimes[b];
    const t = wasm.times[b];
    if (Number.isFinite(a) !== Number.isFinite(t)) statusMismatch++;
    else if (Number.isFinite(a)) {
      sq += ((a - t) / HORIZON) ** 2;
      n++;
    }
    if (ng && Number.isFinite(t) && Number.isFinite(ng.times[b])) enginesMax = Math.max(enginesMax, Math.abs(t - ng.times[b]) / HORIZON);
  }

  // Table mode on the reference network.
  const big = await SpiceChip.create({ seed: 1, sizes: [784, 256, 128, 10], mode: 'table' });
  big.geometry.forEach((g, l) => big.setGateVoltages(l, gatesFor(g, 0.35, 0.5, 1.4, 1.8)));
  const bigBatch = 4;
  const bigInputs = Uint16Array.from({ length: bigBatch * 784 }, () => (rnd() < 0.5 ? SILENT_TICK : Math.floor(rnd() * 1000)));
  await big.run(bigInputs.subarray(0, 784), 1); // builds the per-layer models
  const t2 = performance.now();
  const bigOut = await big.run(bigInputs, bigBatch);
  const bigPerSample = (performance.now() - t2) / 1000 / bigBatch;
  const bigFired = bigOut.map((o) => o.filter((x) => x !== SILENT_TICK).length / o.length);
  await big.close();

  let behavioral: number | null = null;
  let behavioralNote: string | undefined;
  if (CHIP_KINDS.includes('behavioral')) {
    const chip = await createChip('behavioral', { seed: '1', geometry: '784-256-128-10' });
    chip.geometry.forEach((g, l) => chip.setGateVoltages(l, gatesFor(g, 0.3, 0.45, 1.4, 1.8)));
    const bb = 32;
    const x = Uint16Array.from({ length: bb * 784 }, () => (rnd() < 0.5 ? SILENT_TICK : Math.floor(rnd() * 1500)));
    await chip.run(x.subarray(0, 784), 1);
    const t3 = performance.now();
    await chip.run(x, bb);
    behavioral = (performance.now() - t3) / 1000 / bb;
    await chip.close?.();
  } else behavioralNote = "chip kind 'behavioral' is not registered";

  console.log(
    JSON.stringify({
      engines,
      transient_s_per_neuron_run: round(wasm.perRun),
      transient_s_per_neuron_run_ngspice: ng ? round(ng.perRun) : null,
      engines_max_diff: ng ? round(enginesMax, 3) : null,
      table_characterise_s: round(characterise),
      table_cache: cache,
      table_s_per_neuron_run: round(tablePerNeuron),
      table_vs_transient_rmse: n ? round(Math.sqrt(sq / n), 3) : null,
      table_vs_transient_spikes: n,
      table_vs_transient_status_mismatch: statusMismatch,
      table_s_per_sample_784: round(bigPerSample),
      table_fired_fraction_784: bigFired.map((f) => round(f, 3)),
      behavioral_s_per_sample: round(behavioral),
      ...(behavioralNote ? { behavioral_note: behavioralNote } : {}),
    }),
  );
}

main().catch((e: unknown) => {
  console.log(JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }));
  process.exitCode = 1;
});
