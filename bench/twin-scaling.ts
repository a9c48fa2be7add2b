/**
 * The twin's part of bench:scaling (issue #30): data-parallel DSTD training steps across pool workers.
 *
 * `twinStepScaling`: one training step (forward, backward, Adam, projection) of the 784-256-128-10
 * Fashion-MNIST network, PNN model, DSTD M = 16, batch 128, wasm backend, wall milliseconds.
 * One worker is the trainer's one-thread step (trainStep); N > 1 workers the data-parallel step
 * (models/training/data-parallel.ts) on a pool of N threads. The variants run interleaved, in
 * rounds of `steps` steps each, the order reversed every other round, so that load from other
 * processes on a shared machine falls on all of them alike; each round gives a ratio, and the
 * headline figures are medians. The load average is reported before and after.
 * `twin_step_ms_1_sharded` is the data-parallel path with one worker (inline): what sharding itself costs.
 * N workers run the training path (DataParallelStep.step: the workers' training loop, each worker's
 * shard of the gradients, then its slice of the reduction, Adam and projection; the calling thread
 * publishes and reads back the weights). Per variant: CPU ms per step by thread
 * (`twin_step_cpu_ms_*`), the CPU projection of the speed-up, `twin_step_serial_fraction_*`
 * (the calling thread's CPU over one thread's whole step) and `twin_step_speedup_*_cores_bound`
 * (the one-thread step's wall over every thread's CPU per N-worker step spread over the cores it
 * can use: V8's helper threads, which recompile and collect on those same cores, included).
 *
 * `twinAccuracyScaling`: the image preset's training (batch 64, lr 0.01 cosine, its loss) of the
 * same network on Fashion-MNIST for each seed and worker count; final test accuracy (DSTD), the
 * mean over seeds per worker count and the difference to one worker in points.
 *
 * Run alone: `npm run bench:twin-scaling` (steps) or `TWIN_SCALING=accuracy npm run bench:twin-scaling`
 * (TWIN_EPOCHS, TWIN_SEEDS, TWIN_LIMIT_TRAIN, TWIN_LIMIT_TEST size it; TWIN_WORKERS, default 1,2, picks the
 * worker counts, the first one the reference of the differences); prints one JSON line.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { PRESETS } from '../models/training/presets.ts';
import { loadDataset } from '../models/datasets/load.ts';
import { initNetwork } from '../models/network/init.ts';
import { defaultConfig, SpikingNetwork } from '../models/network/network.ts';
import { createSolver } from '../models/network/solver.ts';
import { defaultWorkers, TaskPool } from '../models/parallel/pool.ts';
import { DataParallelStep } from '../models/training/data-parallel.ts';
import { resolveLoss, trainNetwork, trainStep } from '../models/training/trainer.ts';
import { initBackend } from '../models/tf/backend.ts';

const SIZES = [784, 256, 128, 10];
const round = (x: number, d = 4) => Number(x.toPrecision(d));
const note = (msg: string) => process.stderr.write(`twin-scaling: ${msg}\n`);

/**
 * CPU time of every thread of this process in clock ticks (Linux /proc: utime + stime), by thread
 * id; empty elsewhere. The main thread's id is the process id.
 */
function threadTicks(): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICK_MS = 10;

function median(a: number[]): number {
  const s = [...a].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

interface Variant {
  name: string;
  workers: number;
  /** CPU ticks per thread id over this variant's timed steps. */
  ticks: Map<number, number>;
  step(x: Float32Array, y: Uint8Array): Promise<void> | void;
  close(): Promise<void>;
  times: number[];
}

export interface TwinStepOptions {
  /** Worker counts to time beside one worker (default [2]). */
  workers?: number[];
  rounds?: number;
  steps?: number;
  batch?: number;
  /** Untimed steps per variant first (default 30): each thread compiles its code in its own isolate, and V8 is still optimising the workers after 10. */
  warmup?: number;
}

/** `twin_step_ms_<N>` for 1 and each worker count, `twin_step_speedup_<N>`, their per-round ratios and the load average. */
export async function twinStepScaling(opts: TwinStepOptions = {}): Promise<Record<string, unknown>> {
  const workers = opts.workers ?? [2];
  const rounds = opts.rounds ?? 8;
  const steps = opts.steps ?? 5;
  const B = opts.batch ?? 128;
  const warmup = opts.warmup ?? 30;
  const backend = await initBackend();
  const data = await loadDataset('fashion-mnist', { limitTrain: 8 * B, limitTest: 10 });
  const solver = createSolver('dstd', { bins: 16 });
  const cfg = resolveLoss(PRESETS.image.loss);
  const config = defaultConfig(SIZES, { model: 'pnn' });
  const init = initNetwork(config, { x: data.train.x, n: 256 }, solver, { seed: 1 });
  const states = init.states();
  init.dispose();
  const fresh = (): SpikingNetwork => SpikingNetwork.fromStates(config, states);
  const batches: { x: Float32Array; y: Uint8Array }[] = [];
  for (let k = 0; k < 8; k++) batches.push({ x: data.train.x.slice(k * B * 784, (k + 1) * B * 784), y: data.train.y.slice(k * B, (k + 1) * B) });

  const variants: Variant[] = [];
  {
    const net = fresh();
    const optimizer = tf.train.adam(0.01);
    variants.push({
      name: '1',
      workers: 1,
      ticks: new Map(),
      step: (x, y) => void trainStep(net, optimizer, x, y, solver, cfg),
      close: async () => {
        optimizer.dispose();
        net.dispose();
      },
      times: [],
    });
  }
  {
    // One thread on half the batch: what a shard of 2 costs with no threads involved. Its ratio to
    // the whole batch bounds the 2-worker speedup: a step costs more than half per half batch.
    const net = fresh();
    const optimizer = tf.train.adam(0.01);
    const h = B >> 1;
    variants.push({
      name: '1_half',
      workers: 1,
      ticks: new Map(),
      step: (x, y) => void trainStep(net, optimizer, x.subarray(0, h * 784), y.subarray(0, h), solver, cfg),
      close: async () => {
        optimizer.dispose();
        net.dispose();
      },
      times: [],
    });
  }
  const started: Record<string, number> = {};
  for (const w of [1, ...workers]) {
    const net = fresh();
    const optimizer = tf.train.adam(0.01);
    const t0 = performance.now();
    const pool = new TaskPool(w);
    const dp = new DataParallelStep(net, pool, { solver, loss: cfg, maxBatch: B });
    const step = (x: Float32Array, y: Uint8Array) => dp.step(optimizer, x, y);
    // The first step starts the threads, their backends and replicas.
    await step(batches[0]!.x, batches[0]!.y);
    started[w] = performance.now() - t0;
    variants.push({
      name: w === 1 ? '1_sharded' : String(w),
      workers: w,
      ticks: new Map(),
      step: async (x, y) => void (await step(x, y)),
      close: async () => {
        await dp.close();
        await pool.close();
        optimizer.dispose();
        net.dispose();
      },
      times: [],
    });
  }
  const load0 = loadavg();
  // Warm-up, untimed.
  for (let k = 0; k < warmup; k++) for (const v of variants) await v.step(batches[k % batches.length]!.x, batches[k % batches.length]!.y);
  const ratios: Record<string, number[]> = Object.fromEntries(workers.map((w) => [w, []]));
  let batch = 0;
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 ? [...variants].reverse() : variants;
    const roundMs: Record<string, number> = {};
    for (const v of order) {
      const t: number[] = [];
      const before = threadTicks();
      for (let k = 0; k < steps; k++) {
        const b = batches[(batch + k) % batches.length]!;
        const t0 = performance.now();
        await v.step(b.x, b.y);
        t.push(performance.now() - t0);
      }
      for (const [tid, ticks] of threadTicks()) v.ticks.set(tid, (v.ticks.get(tid) ?? 0) + ticks - (before.get(tid) ?? 0));
      v.times.push(...t);
      roundMs[v.name] = median(t);
    }
    batch += steps;
    for (const w of workers) ratios[w]!.push(roundMs['1']! / roundMs[String(w)]!);
    note(`round ${r + 1}/${rounds}: ${variants.map((v) => `${v.name} ${roundMs[v.name]!.toFixed(1)} ms`).join(', ')}; load ${loadavg()[0]!.toFixed(1)}`);
  }
  const load1 = loadavg();
  for (const v of variants) await v.close();
  const out: Record<string, unknown> = {
    twin_backend: backend,
    twin_batch: B,
    twin_bins: 16,
    twin_rounds: rounds,
    twin_steps_per_round: steps,
    twin_warmup_steps: warmup,
  };
  for (const v of variants) out[`twin_step_ms_${v.name}`] = round(median(v.times));
  // CPU per step by thread: this thread's (publishing and reading back the weights) and each pool
  // worker's (the busiest threads after it). On an idle machine a step's wall time is about this
  // thread's CPU plus the busiest worker's, so their ratio projects the speedup the load hides.
  const cpu: Record<string, { main: number; workers: number[]; other: number }> = {};
  for (const v of variants) {
    const n = v.times.length;
    const main = ((v.ticks.get(process.pid) ?? 0) * TICK_MS) / n;
    const rest = [...v.ticks.entries()].filter(([tid]) => tid !== process.pid).map(([, t]) => (t * TICK_MS) / n);
    rest.sort((p, q) => q - p);
    const w = v.workers > 1 ? rest.slice(0, v.workers) : [];
    const other = rest.slice(w.length).reduce((p, q) => p + q, 0);
    cpu[v.name] = { main, workers: w, other };
    out[`twin_step_cpu_ms_${v.name}`] = { main: round(main, 3), workers: w.map((x) => round(x, 3)), other_threads: round(other, 3) };
  }
  const cores = defaultWorkers();
  const oneMs = median(variants.find((u) => u.name === '1')!.times);
  for (const v of variants) {
    if (v.workers < 2) continue;
    const c = cpu[v.name]!;
    const critical = c.main + Math.max(0, ...c.workers);
    if (critical > 0) out[`twin_step_speedup_${v.name}_cpu_projection`] = round(cpu['1']!.main / critical, 3);
    // Every thread's CPU, V8's helpers (recompiles, GC) included, spread over the cores the step can
    // use: no N-worker step that costs this CPU can be shorter, so this bounds the speed-up from above.
    const total = c.main + c.workers.reduce((p, q) => p + q, 0) + c.other;
    const usable = Math.min(cores, v.workers + 1);
    if (total > 0) out[`twin_step_speedup_${v.name}_cores_bound`] = round(oneMs / (total / usable), 3);
    // The part of a step no worker runs: this thread's CPU over one thread's whole step.
    if (cpu['1']!.main > 0) out[`twin_step_serial_fraction_${v.name}`] = round(c.main / cpu['1']!.main, 3);
  }
  // One thread's CPU per step over the same thread on half the batch: the most 2 workers can give
  // with free threads, reduction and Adam (each shard costs at least a half-batch step less its Adam).
  const half = cpu['1_half']!;
  if (half.main > 0) out.twin_step_speedup_2_cpu_bound = round(cpu['1']!.main / half.main, 3);
  for (const w of workers) {
    out[`twin_step_speedup_${w}`] = round(median(ratios[w]!), 3);
    out[`twin_step_speedup_${w}_rounds`] = ratios[w]!.map((x) => round(x, 3));
    out[`twin_pool_start_ms_${w}`] = round(started[w]!);
  }
  out.twin_load_avg_1min = [round(load0[0]!, 3), round(load1[0]!, 3)];
  return out;
}

export interface TwinAccuracyOptions {
  workers?: number[];
  seeds?: number[];
  epochs?: number;
  limitTrain?: number;
  limitTest?: number;
}

/** Final test accuracy per seed and worker count; `twin_acc_mean_<N>` and `twin_acc_diff_points_<N>` (N workers minus one). */
export async function twinAccuracyScaling(opts: TwinAccuracyOptions = {}): Promise<Record<string, unknown>> {
  const workers = opts.workers ?? [1, 2];
  if (workers.length === 0 || !workers.every((w) => Number.isInteger(w) && w >= 1))
    throw new RangeError(`TWIN_WORKERS: expected worker counts like 1,2, got ${workers.join(',')}`);
  const seeds = opts.seeds ?? [1, 2, 3];
  const epochs = opts.epochs ?? 5;
  await initBackend();
  const preset = PRESETS.image;
  const solver = createSolver('dstd', { bins: 16 });
  const acc: Record<string, number[]> = Object.fromEntries(workers.map((w) => [w, []]));
  const seconds: Record<string, number[]> = Object.fromEntries(workers.map((w) => [w, []]));
  for (const seed of seeds) {
    const data = await loadDataset('fashion-mnist', { limitTrain: opts.limitTrain, limitTest: opts.limitTest, seed });
    for (const w of workers) {
      const net = initNetwork(defaultConfig(SIZES, { model: 'pnn' }), { x: data.train.x, n: Math.min(256, data.train.n) }, solver, { seed });
      const t0 = performance.now();
      const history = await trainNetwork(net, data, {
        epochs,
        batchSize: preset.batchSize,
        lr: preset.lr,
        schedule: preset.schedule,
        seed,
        solver,
        loss: preset.loss,
        workers: w,
      });
      net.dispose();
      const a = history.at(-1)!.test_acc!;
      acc[w]!.push(a);
      seconds[w]!.push((performance.now() - t0) / 1000);
      note(`seed ${seed}, ${w} worker(s): test ${(100 * a).toFixed(2)} % after ${epochs} epochs, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  }
  const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
  const out: Record<string, unknown> = {
    twin_acc_epochs: epochs,
    twin_acc_seeds: seeds,
    twin_acc_limit_train: opts.limitTrain ?? null,
    twin_acc_limit_test: opts.limitTest ?? null,
  };
  for (const w of workers) {
    out[`twin_acc_${w}`] = acc[w]!.map((a) => round(100 * a, 5));
    out[`twin_acc_mean_${w}`] = round(100 * mean(acc[w]!), 5);
    out[`twin_acc_train_s_${w}`] = seconds[w]!.map((s) => round(s, 3));
    if (w !== workers[0]) out[`twin_acc_diff_points_${w}`] = round(100 * (mean(acc[w]!) - mean(acc[workers[0]!]!)), 3);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const env = process.env;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const result =
    env.TWIN_SCALING === 'accuracy'
      ? await twinAccuracyScaling({
          epochs: num(env.TWIN_EPOCHS),
          seeds: env.TWIN_SEEDS?.split(',').map(Number),
          workers: env.TWIN_WORKERS?.split(',').map(Number),
          limitTrain: num(env.TWIN_LIMIT_TRAIN),
          limitTest: num(env.TWIN_LIMIT_TEST),
        })
      : await twinStepScaling({
          rounds: num(env.TWIN_ROUNDS),
          steps: num(env.TWIN_STEPS),
          warmup: num(env.TWIN_WARMUP),
        });
  console.log(JSON.stringify(result));
}
