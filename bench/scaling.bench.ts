/**
 * Scaling over worker threads (#30). Prints ONE JSON line; per figure family, the value at each
 * worker count and the speed-up at two workers:
 *   calib_fit_s             seconds of calibrateChip's fit (probing excluded) of a behavioural
 *                           784-256-128-10 die (`SCALING_GEOMETRY`), every layer, the demo's probe sizes
 *                           (DEMO_PROBE_SIZES); the probes are measured once and replayed to every run
 *   calib_fit_speedup_2     calib_fit_s at 1 worker over at 2
 *   calib_fit_identical     the profiles of every run are the same bytes
 *   calib_fit_cpu_s_<N>     CPU seconds of the least costly run at N workers: main thread, other threads
 *   calib_fit_speedup_2_cpu_projection  1 worker's CPU over 2 workers' main + half their other threads'
 *   mock_run_ms_per_sample  wall ms per sample of a stream of RUNs (batch 32, two in flight) on the
 *                           embedded mock with trained-like weights: at 1 worker the chip in the
 *                           host's thread, from 2 on its own thread (`thread=1`)
 *   twin_step_ms_<N>, twin_step_speedup_2   the twin's data-parallel step (bench/twin-scaling.ts)
 *   load_avg_before / after the machine's 1-minute load average around the runs (a shared machine
 *                           makes every speed-up pessimistic: compare with it)
 * Worker counts: 1 and 2, and 4, 8, 16 up to the cores available (`SCALING_WORKERS=1,2` overrides).
 * The counts of a family are measured interleaved (1, 2, then 2, 1, ...: `SCALING_PASSES` passes for the
 * fit, default 2; `SCALING_MOCK_PASSES` for the mock, default 6), and the median of each is reported,
 * so a change in the machine's load hits both alike. Progress goes to stderr.
 * `SCALING_ONLY=calib` (or `mock`, `twin`, comma-separated) measures those families only;
 *
 * A new family is one `Family` in FAMILIES: a name, a setup, and a measure(workers) -> number.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { backendTarget } from '../calibration/backend-target.ts';
import { calibrateChip } from '../calibration/calibrate-chip.ts';
import { encodeChipProfile } from '../calibration/chip-profile.ts';
import type { ProbeTarget } from '../calibration/probe-run.ts';
import { DEMO_PROBE_SIZES } from '../host/workflows/demo-options.ts';
import { ChipDevice } from '../host/device/chip-device.ts';
import { BehavioralChip } from '../models/chips/behavioral-chip.ts';
import { NMOS } from '../models/chips/chip-backend.ts';
import { safeCodeRange } from '../wire/dac.ts';
import { SILENT_TICK } from '../wire/ticks.ts';
import { twinStepScaling } from './twin-scaling.ts';
import { Rng } from '../models/datasets/rng.ts';

const GEOMETRY = (process.env.SCALING_GEOMETRY ?? '784-256-128-10').split('-').map(Number);
const round = (x: number, d = 4) => Number(x.toPrecision(d));
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Family {
  /** Key of the per-worker figures in the JSON line; the speed-up goes under `${speedupKey}`. */
  key: string;
  speedupKey: string;
  /** Passes over the worker counts (each measures every count once, alternate passes in reverse order). */
  passes: number;
  setup?(): Promise<void>;
  measure(workers: number): Promise<number>;
  /** Extra keys once every run is done. */
  extra?(): Record<string, unknown>;
}

/** A ProbeTarget that records every reply of `inner` the first time and replays them afterwards (the probe plan is deterministic). */
function replayable(inner: ProbeTarget): { target: () => ProbeTarget } {
  const tape: unknown[] = [];
  let recorded = false;
  return {
    target: () => {
      if (!recorded && tape.length) recorded = true;
      let k = 0;
      const step = async <T>(f: () => Promise<T>): Promise<T> => {
        if (!recorded) {
          const r = await f();
          tape.push(r);
          return r;
        }
        if (k >= tape.length) throw new Error('replayed calibration asked more of the chip than was recorded');
        return tape[k++] as T;
      };
      return {
        ...inner,
        upload: (l, c) => step(() => inner.upload(l, c)),
        run: (x, b, ls) => step(() => inner.run(x, b, ls)),
        ...(inner.neuronVoltages ? { neuronVoltages: (l: number) => step(() => inner.neuronVoltages!(l)) } : {}),
        ...(inner.setNeuronVoltages ? { setNeuronVoltages: (l: number, r: number, t: number) => step(() => inner.setNeuronVoltages!(l, r, t)) } : {}),
      };
    },
  };
}

/** CPU seconds of this process's main thread so far (Linux /proc, utime + stime; 0 elsewhere). */
function mainThreadCpuS(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

function calibrationFit(): Family {
  const chip = new BehavioralChip({ seed: 77, sizes: GEOMETRY });
  const sup = chip.supply();
  const tape = replayable(backendTarget(chip));
  const profiles = new Set<string>();
  // CPU seconds per run: the main thread (the fit's serial part and the pool's dispatch) and every
  // other thread (pool workers, V8's helpers; process rusage keeps the threads a run's pool ended).
  const cpu = new Map<number, { main: number; other: number }[]>();
  return {
    key: 'calib_fit_s',
    speedupKey: 'calib_fit_speedup_2',
    passes: Number(process.env.SCALING_PASSES ?? 2),
    async measure(workers) {
      const m0 = mainThreadCpuS();
      const c0 = process.cpuUsage();
      const res = await calibrateChip(tape.target(), {
        chipId: chip.chipId,
        temperatureC: sup.temperatureC,
        supplyV: sup.supplyV,
        sizes: DEMO_PROBE_SIZES,
        workers,
      });
      const c1 = process.cpuUsage(c0);
      const main = mainThreadCpuS() - m0;
      const all = (c1.user + c1.system) / 1e6;
      cpu.set(workers, [...(cpu.get(workers) ?? []), { main, other: Math.max(0, all - main) }]);
      res.profile.createdAt = new Date(0).toISOString();
      profiles.add(Buffer.concat(encodeChipProfile(res.profile)).toString('base64'));
      log(`  probing ${res.seconds.probing.toFixed(1)} s, fit ${res.seconds.fitting.toFixed(1)} s, PNN RMSE ${res.rmse.pnnTicks.toFixed(3)} ticks`);
      return res.seconds.fitting;
    },
    extra: () => {
      // The least CPU of a count's runs (the first run also records the probes); the projection is
      // one worker's CPU over 2 workers' serial main thread plus half of their other threads' CPU:
      // what an idle machine would give if the parallel phases split evenly.
      const least = (w: number) =>
        (cpu.get(w) ?? []).reduce(
          (a, b) => (a === undefined || b.main + b.other < a.main + a.other ? b : a),
          undefined as { main: number; other: number } | undefined,
        );
      const out: Record<string, unknown> = { calib_fit_identical: profiles.size === 1, calib_geometry: GEOMETRY.join('-') };
      for (const w of cpu.keys()) {
        const c = least(w)!;
        out[`calib_fit_cpu_s_${w}`] = { main: round(c.main), other_threads: round(c.other) };
      }
      const one = least(1);
      const two = least(2);
      if (one && two && two.main + two.other > 0) out.calib_fit_speedup_2_cpu_projection = round((one.main + one.other) / (two.main + two.other / 2), 3);
      return out;
    },
  };
}

function mockRun(): Family {
  const batch = 32;
  const batches = Number(process.env.SCALING_MOCK_BATCHES ?? 16);
  return {
    key: 'mock_run_ms_per_sample',
    speedupKey: 'mock_run_speedup_2',
    passes: Number(process.env.SCALING_MOCK_PASSES ?? 6),
    async measure(workers) {
      const uri = `mock:behavioral?seed=7&geometry=${GEOMETRY.join('-')}${workers > 1 ? '&thread=1' : ''}`;
      const d = await ChipDevice.open(uri);
      try {
        const rng = new Rng(5);
        // Trained-like weights: most synapses near off, a minority on.
        for (const [l, g] of d.info.layers.entries()) {
          const [nLo, nHi] = safeCodeRange(d.info.dac, d.info.safe.nmos)!;
          const [pLo, pHi] = safeCodeRange(d.info.dac, d.info.safe.pmos)!;
          const codes = new Uint16Array(g.rowInput.length * g.outputs);
          for (let r = 0; r < g.rowInput.length; r++) {
            const nmos = g.rowPolarity[r] === NMOS;
            for (let i = 0; i < g.outputs; i++) {
              const on = rng.next() < (nmos ? 0.15 : 0.1);
              const f = on ? rng.uniform(0.12, 0.18) : rng.uniform(0, 0.06);
              codes[r * g.outputs + i] = nmos ? nLo + Math.round(f * (nHi - nLo)) : pHi - Math.round(f * (pHi - pLo));
            }
          }
          await d.uploadWeights(l, codes);
        }
        const inputs = GEOMETRY[0];
        const x = Uint16Array.from({ length: batch * inputs }, () => (rng.next() < 0.5 ? SILENT_TICK : Math.floor(rng.uniform(0, 1999))));
        await d.run(x, batch);
        const t = performance.now();
        // Two in flight, as the fine-tuning pipeline keeps them.
        let next = 0;
        const lane = async () => {
          while (next < batches) {
            next++;
            await d.run(x, batch);
          }
        };
        await Promise.all([lane(), lane()]);
        return (performance.now() - t) / (batches * batch);
      } finally {
        await d.close();
      }
    },
  };
}

const FAMILIES: (() => Family)[] = [mockRun, calibrationFit];

function workerCounts(): number[] {
  if (process.env.SCALING_WORKERS) return process.env.SCALING_WORKERS.split(',').map(Number);
  const cores = availableParallelism();
  return [1, 2, 4, 8, 16].filter((w) => w <= 2 || w <= cores);
}

/** The families `SCALING_ONLY` names (all when unset). */
function wanted(name: 'calib' | 'mock' | 'twin'): boolean {
  const only = process.env.SCALING_ONLY;
  return !only || only.split(',').includes(name);
}

async function main(): Promise<void> {
  const counts = workerCounts();
  const out: Record<string, unknown> = { cores: availableParallelism(), workers: counts, load_avg_before: round(loadavg()[0], 3) };
  const families = FAMILIES.filter((make) => wanted(make === calibrationFit ? 'calib' : 'mock'));
  for (const make of families) {
    const fam = make();
    await fam.setup?.();
    const samples = new Map<number, number[]>(counts.map((w) => [w, []]));
    // Interleaved: every count once per pass, the order reversed on alternate passes.
    for (let pass = 0; pass < fam.passes; pass++) {
      for (const w of pass % 2 ? [...counts].reverse() : counts) {
        log(`${fam.key}: ${w} worker(s), pass ${pass + 1}/${fam.passes}, load ${loadavg()[0].toFixed(2)}`);
        samples.get(w)!.push(await fam.measure(w));
      }
    }
    const med = Object.fromEntries(counts.map((w) => [String(w), round(median(samples.get(w)!))]));
    out[fam.key] = med;
    out[`${fam.key}_samples`] = Object.fromEntries(counts.map((w) => [String(w), samples.get(w)!.map((v) => round(v))]));
    if (med['1'] !== undefined && med['2'] !== undefined) out[fam.speedupKey] = round(med['1'] / med['2'], 3);
    Object.assign(out, fam.extra?.() ?? {});
  }
  // The twin's data-parallel step (784-256-128-10, batch 128, DSTD M = 16), interleaved inside bench/twin-scaling.ts.
  if (wanted('twin')) Object.assign(out, await twinStepScaling({ workers: counts.filter((w) => w > 1) }));
  out.load_avg_after = round(loadavg()[0], 3);
  console.log(JSON.stringify(out));
}

await main();
