/**
 * DSTD versus the fine-step ODE baseline (Euler) and the exact solver: one training step
 * (forward + backward of the cross-entropy) of the 784-256-128-10 Fashion-MNIST network on the
 * PNN model (nominal sky130 reversal potentials), batch 128, on the configured tfjs backend.
 *
 * Accuracy: spike-time RMSE against the exact solver, layer by layer (each layer fed the exact
 * solver's spikes of the layer below, so a solver's own error is measured, not the propagation),
 * over the neurons that fire in both, in normalised time units (a layer window is 1 unit);
 * fired/silent disagreements are counted separately. The Euler step count is searched (doubling,
 * up to MAX_EULER_STEPS) until its RMSE is at most DSTD's (M = 16): the "matched accuracy" Euler.
 * Euler is first order (RMSE ~ 1/K, as the search shows); if the search ends before matching,
 * the matched K is extrapolated from the finest step count that ran.
 *
 * Cost: CPU milliseconds of one step (median of repeats; CPU rather than wall time so that other
 * processes on the machine do not count) and peak bytes during the step: the tensor peak from
 * tf.profile, plus, for DSTD and exact, the host arrays their custom ops hold outside tfjs.
 * Euler runs in child processes (its tape can exhaust the wasm heap, which aborts the process).
 * Its cost at the matched K and batch 128 is measured directly when that fits the heap;
 * otherwise it is the line a + b K through the step counts 16..128 measured at batch 128 (every
 * step holds the same tensors, so time and memory are linear in K), evaluated at the matched K
 * (`steps_fit`). Batch scaling is no way out: about 4 MB per step do not shrink with the batch
 * (516 MB at batch 1 and K = 128, against 2.5 GB at batch 128), and at batch 1 the tfjs backward
 * pass already fails at K = 512 (call stack) and K = 8560 (heap). `euler_cost_method` says which one the headline
 * ratios use; the raw points are in the output. The exact solver works in float64 typed arrays
 * outside tfjs; its memory adds the bytes of the arrays it allocates to its (small) tensor peak.
 *
 * Prints ONE JSON line:
 *   speedup_vs_euler, memory_ratio_vs_euler, speedup_vs_exact, memory_ratio_vs_exact,
 *   dstd_rmse, euler_rmse, euler_steps, backend, and the per-variant details.
 *
 * Variants: "dstd" is the network's DSTD layer as training uses it (event-driven drive
 * accumulation + the DSTD crossing kernel, models/network/layer.ts); "dstd_solver_dense" is
 * models/solvers/dstd.ts dstdDense as written (dense bin-fraction matMul), reported beside it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { loadDataset } from '../models/datasets/load.ts';
import { initNetwork } from '../models/network/init.ts';
import { defaultConfig, SpikingNetwork } from '../models/network/network.ts';
import { createSolver, type SpikeSolver } from '../models/network/solver.ts';
import { exactForward } from '../models/solvers/exact.ts';
import { batchLoss, resolveLoss } from '../models/training/trainer.ts';
import { initBackend } from '../models/tf/backend.ts';

const SIZES = [784, 256, 128, 10];
const BATCH = 128;
const RMSE_BATCH = 16;
/** Largest Euler step count tried for accuracy (forward only, batch RMSE_BATCH). */
const MAX_EULER_STEPS = 4096;
/**
 * Largest predicted step peak an Euler child attempts (bytes): beyond it the wasm heap runs out
 * after minutes of work. Predictions come from the measured line a + b K at batch 128.
 */
const EULER_BYTES_BUDGET = 2.5e9;

interface StepCost {
  cpu_ms: number;
  wall_ms: number;
  peak_bytes: number;
}

const round = (x: number, d = 4) => Number(x.toPrecision(d));
/** Progress on stderr; stdout carries only the result line. */
const note = (msg: string) => process.stderr.write(`dstd.bench: ${msg}\n`);

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** One forward + backward; returns nothing, leaves nothing. */
function step(net: SpikingNetwork, x: Float32Array, y: Uint8Array, solver: SpikeSolver): void {
  tf.tidy(() => {
    const t = net.encode(x, y.length);
    const { value, grads } = tf.variableGrads(() => batchLoss(net, t, y, solver, resolveLoss({ windowWeight: 0.1 })).loss, net.trainableVariables());
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync();
  });
}

async function measure(net: SpikingNetwork, x: Float32Array, y: Uint8Array, solver: SpikeSolver, repeats: number, extraBytes = 0): Promise<StepCost> {
  step(net, x, y, solver); // warm-up: kernels compiled, caches filled
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const c0 = cpuMs();
    const w0 = performance.now();
    step(net, x, y, solver);
    cpu.push(cpuMs() - c0);
    wall.push(performance.now() - w0);
  }
  const prof = await tf.profile(() => step(net, x, y, solver));
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
  return { cpu_ms: round(med(cpu)), wall_ms: round(med(wall)), peak_bytes: prof.peakBytes + extraBytes };
}

/**
 * Layer-wise spike-time RMSE against the exact solver (inputs: the exact spikes of the layer
 * below, at their true times, also those that arrive before a layer's grid offset), so what is
 * measured is the solver's own error.
 */
function layerwiseRmse(net: SpikingNetwork, inputTimes: Float64Array, n: number, solver: SpikeSolver): { rmse: number; disagree: number; compared: number } {
  const layers = net.toPnnLayers();
  let x = inputTimes;
  let sq = 0;
  let compared = 0;
  let disagree = 0;
  for (let l = 0; l < layers.length; l++) {
    const exact = exactForward(layers[l]!, x, n).times;
    const got = tf.tidy(() => net.layers[l]!.forward(tf.tensor2d(Float32Array.from(x), [n, layers[l]!.nIn]), solver, { inputGrad: false }).times.dataSync());
    const h = layers[l]!.horizon;
    for (let k = 0; k < exact.length; k++) {
      const fe = Number.isFinite(exact[k]!);
      const fg = got[k]! < h;
      if (fe !== fg) disagree++;
      else if (fe) {
        sq += (got[k]! - exact[k]!) ** 2;
        compared++;
      }
    }
    x = exact;
  }
  return { rmse: Math.sqrt(sq / Math.max(1, compared)), disagree, compared };
}

/** Bytes the exact solver allocates per step for the largest layer (trace, gradients, I/O). */
function exactWorkingBytes(): number {
  let worst = 0;
  for (let l = 0; l + 1 < SIZES.length; l++) {
    const nIn = SIZES[l]!;
    const nOut = SIZES[l + 1]!;
    // traceU/G/A and gE/gI/kick gradients: 6 nIn x nOut doubles; times in and out, float64.
    worst = Math.max(worst, 8 * (6 * nIn * nOut + BATCH * (nIn + nOut)));
  }
  return worst;
}

/**
 * Bytes the DSTD layers hold outside tfjs between forward and backward: per layer the event-drive
 * op keeps each input's bin index and fraction (8 bytes per input) and a copy of the concatenated
 * weights [nIn, 2 nOut] (float32). Added to its tensor peak so the comparison is fair.
 */
function dstdHostBytes(): number {
  let bytes = 0;
  for (let l = 0; l + 1 < SIZES.length; l++) bytes += 8 * BATCH * SIZES[l]! + 4 * SIZES[l]! * 2 * SIZES[l + 1]!;
  return bytes;
}

interface Setup {
  backend: string;
  net: SpikingNetwork;
  x: Float32Array;
  y: Uint8Array;
  inputTimes: Float64Array;
}

/** The same network and batch in every process (seeded initialisation on the first training samples). */
async function setup(): Promise<Setup> {
  const backend = await initBackend();
  const data = await loadDataset('fashion-mnist', { limitTrain: 1024, limitTest: 10 });
  const x = data.train.x.subarray(0, BATCH * 784);
  const y = data.train.y.subarray(0, BATCH);
  const net = initNetwork(defaultConfig(SIZES, { model: 'pnn' }), { x: data.train.x, n: 256 }, createSolver('dstd', { bins: 16 }), { seed: 1 });
  const inputTimes = Float64Array.from(x.subarray(0, RMSE_BATCH * 784), (v) => (v <= 0 ? Infinity : net.config.inputWindow * (1 - v)));
  return { backend, net, x, y, inputTimes };
}

/**
 * Euler runs in child processes: at fine step counts its autodiff tape can exhaust the wasm
 * heap, which aborts the whole process. A child that dies reports nothing and the parent retries
 * with a smaller batch, then scales time and memory linearly to batch 128 (both are linear in
 * the batch: every large tensor of the step is batch x steps x width).
 */
async function child(args: string[]): Promise<void> {
  const s = await setup();
  const [what, k, b] = args;
  const solver = createSolver('euler', { eulerSteps: Number(k) });
  if (what === '--euler-rmse') {
    console.log(JSON.stringify(layerwiseRmse(s.net, s.inputTimes, RMSE_BATCH, solver)));
  } else {
    const B = Number(b);
    const dense = SpikingNetwork.fromStates(s.net.config, s.net.states(), 'solver');
    console.log(JSON.stringify(await measure(dense, s.x.subarray(0, B * 784), s.y.subarray(0, B), solver, 1)));
  }
}

function runChild<T>(args: string[]): T | undefined {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return undefined;
  const line = r.stdout.trim().split('\n').at(-1);
  return line ? (JSON.parse(line) as T) : undefined;
}

async function main(): Promise<void> {
  const { backend, net, x, y, inputTimes } = await setup();
  const dstd16 = createSolver('dstd', { bins: 16 });
  const dense = SpikingNetwork.fromStates(net.config, net.states(), 'solver');

  const acc16 = layerwiseRmse(net, inputTimes, RMSE_BATCH, dstd16);
  const acc32 = layerwiseRmse(net, inputTimes, RMSE_BATCH, createSolver('dstd', { bins: 32 }));
  note(`DSTD rmse M=16 ${acc16.rmse}, M=32 ${acc32.rmse}`);
  const d16 = await measure(net, x, y, dstd16, 5, dstdHostBytes());
  note(`DSTD M=16 step ${JSON.stringify(d16)}`);
  const d32 = await measure(net, x, y, createSolver('dstd', { bins: 32 }), 5, dstdHostBytes());
  note(`DSTD M=32 step ${JSON.stringify(d32)}`);
  const d16dense = await measure(dense, x, y, dstd16, 2);
  note(`dstdDense M=16 step ${JSON.stringify(d16dense)}`);
  const exact = await measure(net, x, y, createSolver('exact'), 2, exactWorkingBytes());
  note(`exact step ${JSON.stringify(exact)}`);
  net.dispose();
  dense.dispose();

  // Euler: the coarsest step count (doubling) whose RMSE is at most DSTD's at M = 16.
  const tried: { steps: number; rmse: number | null }[] = [];
  let eulerSteps = 8;
  let eulerAcc: { rmse: number; disagree: number; compared: number } | undefined;
  do {
    eulerSteps *= 2;
    eulerAcc = runChild(['--euler-rmse', String(eulerSteps)]);
    tried.push({ steps: eulerSteps, rmse: eulerAcc ? round(eulerAcc.rmse) : null });
    note(`Euler ${eulerSteps} steps: rmse ${eulerAcc?.rmse ?? 'failed'}`);
  } while (eulerAcc !== undefined && eulerAcc.rmse > acc16.rmse && eulerSteps < MAX_EULER_STEPS);
  const matched = eulerAcc !== undefined && eulerAcc.rmse <= acc16.rmse;
  if (!matched) {
    // First order: RMSE ~ c / K. Extrapolate from the finest step count that ran.
    const last = [...tried].reverse().find((t) => t.rmse !== null)!;
    eulerSteps = Math.ceil((last.steps * last.rmse!) / acc16.rmse);
    eulerAcc = { rmse: (last.steps * last.rmse!) / eulerSteps, disagree: 0, compared: 0 };
    note(`Euler does not reach DSTD's RMSE within ${MAX_EULER_STEPS} steps; first-order extrapolation: ${eulerSteps} steps`);
  }
  // Euler's step cost at the matched K and batch 128: measured directly when its predicted peak
  // fits the heap; otherwise the least-squares line a + b K through step counts that run at batch
  // 128 (every step holds the same tensors, so time and memory are linear in K). Not batch
  // scaling: part of the per-step memory does not shrink with the batch (see the header).
  const stepPoints: { steps: number; cost: StepCost }[] = [];
  for (const k of [16, 32, 64, 128]) {
    const c = runChild<StepCost>(['--euler-step', String(k), String(BATCH)]);
    note(`Euler ${k} steps at batch ${BATCH}: ${c ? JSON.stringify(c) : 'did not run'}`);
    if (c) stepPoints.push({ steps: k, cost: c });
  }
  /** Least-squares line through (x, f(cost)) evaluated at x0. */
  const line = (pts: { x: number; cost: StepCost }[], x0: number, f: (c: StepCost) => number): number => {
    const n = pts.length;
    const mx = pts.reduce((a, p) => a + p.x, 0) / n;
    const my = pts.reduce((a, p) => a + f(p.cost), 0) / n;
    const b = pts.reduce((a, p) => a + (p.x - mx) * (f(p.cost) - my), 0) / pts.reduce((a, p) => a + (p.x - mx) ** 2, 0);
    return my + b * (x0 - mx);
  };
  const extrapolate = (pts: { x: number; cost: StepCost }[], x0: number): StepCost | undefined =>
    pts.length < 2
      ? undefined
      : {
          cpu_ms: round(line(pts, x0, (c) => c.cpu_ms)),
          wall_ms: round(line(pts, x0, (c) => c.wall_ms)),
          peak_bytes: Math.round(line(pts, x0, (c) => c.peak_bytes)),
        };
  const stepsFit = extrapolate(
    stepPoints.map((p) => ({ x: p.steps, cost: p.cost })),
    eulerSteps,
  );
  // Predicted peak at the matched K (every large tensor of the step is batch x steps x width).
  const predicted = (b: number) => (stepsFit ? (stepsFit.peak_bytes * b) / BATCH : Infinity);
  const direct = predicted(BATCH) <= EULER_BYTES_BUDGET ? runChild<StepCost>(['--euler-step', String(eulerSteps), String(BATCH)]) : undefined;
  note(
    `Euler ${eulerSteps} steps at batch ${BATCH}: ${direct ? JSON.stringify(direct) : `not run (predicted peak ${predicted(BATCH)} bytes > ${EULER_BYTES_BUDGET}) or out of memory`}`,
  );
  const method = direct ? 'direct' : 'steps_fit';
  const eulerAt128 = direct ?? stepsFit;
  if (!eulerAt128) throw new Error(`Euler ran at fewer than two step counts of batch ${BATCH}; cannot give its cost`);

  const out = {
    speedup_vs_euler: round(eulerAt128.cpu_ms / d16.cpu_ms, 3),
    memory_ratio_vs_euler: round(eulerAt128.peak_bytes / d16.peak_bytes, 3),
    speedup_vs_exact: round(exact.cpu_ms / d16.cpu_ms, 3),
    memory_ratio_vs_exact: round(exact.peak_bytes / d16.peak_bytes, 3),
    dstd_rmse: round(acc16.rmse),
    euler_rmse: round(eulerAcc!.rmse),
    euler_steps: eulerSteps,
    backend,
    network: SIZES.join('-'),
    batch: BATCH,
    rmse_unit: 'normalised time (a layer window = 1)',
    dstd: { bins: 16, ...d16, rmse: round(acc16.rmse), disagree: acc16.disagree, compared: acc16.compared },
    dstd_m32: { bins: 32, ...d32, rmse: round(acc32.rmse), disagree: acc32.disagree },
    dstd_solver_dense: { bins: 16, ...d16dense },
    euler_rmse_matched_directly: matched,
    euler_cost_method: method,
    euler: {
      steps: eulerSteps,
      ...eulerAt128,
      rmse: round(eulerAcc!.rmse),
      search: tried,
      direct: direct ?? null,
      step_points_at_batch: stepPoints.map((p) => ({ steps: p.steps, ...p.cost })),
      steps_fit: stepsFit ?? null,
    },
    exact: { ...exact, note: 'peak_bytes = tensor peak + float64 working arrays of the largest layer' },
    speedup_m32_vs_euler: round(eulerAt128.cpu_ms / d32.cpu_ms, 3),
    memory_ratio_m32_vs_euler: round(eulerAt128.peak_bytes / d32.peak_bytes, 3),
  };
  console.log(JSON.stringify(out));
}

const childArgs = process.argv.slice(2);
const run = childArgs[0]?.startsWith('--euler-') ? child(childArgs) : main();
run.catch((err) => {
  console.log(JSON.stringify({ ok: false, error: (err as Error).message }));
  process.exitCode = 1;
});
