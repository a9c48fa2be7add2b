/**
 * Data-parallel training steps: a batch split into contiguous shards, one per pool worker, each
 * worker's replica of the network computing its shard's loss gradients (shard-task.ts) into a
 * SharedArrayBuffer.
 *
 * `step` with a fresh tf.train.adam optimiser and more than one worker runs the training loop on
 * the workers: one long pool task per worker (shard-task.ts trainLoop), woken per step through
 * Atomics on shared memory rather than a pool task per step. After the forward pass the shards
 * swap firing counts (a barrier), so each adds its own pairs' share of the batch-wide dead-neuron
 * term to its loss and takes one backward pass; after a second barrier each worker sums the
 * shards' gradients, steps Adam (fused-adam.ts: tf's update within a few float32 roundings) and
 * projects on its own slice of the parameters, so the step's serial part on this thread is
 * publishing the weights and reading back the new ones. Adam's moments live in shared memory
 * (two buffers: a step cut short by the signal leaves the current ones). The loop stops when the
 * step is idle for IDLE_MS, on `close`, or before `gradients` (which runs a pool task per shard
 * and sums on this thread), so it never holds the pool's threads for long.
 * Any other optimiser, or one worker, takes the shards' gradients summed here and
 * `optimizer.applyGradients`.
 * Shards are summed in shard order, so a seed and a worker count always give the same numbers.
 *
 * The loss is the trainer's (forwardLoss) exactly, not a per-shard approximation: the
 * cross-entropy and window terms are batch means, so each shard contributes n_s / B of its own
 * mean; the dead-neuron term selects hidden neurons silent on the whole batch and divides by a
 * batch-wide count, so (pool tasks) the shards send their candidates' unnormalised terms and
 * firing counts and the selection and normalisation happen here, or (the loop) the shards swap
 * their firing counts before the backward pass. That relies on a dense layer's dead term for
 * neuron i depending on column i of its weights only; conv layers share kernels across neurons,
 * so networks with conv layers are refused (the trainer runs them on one thread).
 */

import { randomUUID } from 'node:crypto';
import { serialize } from 'node:v8';
import * as tf from '@tensorflow/tfjs-core';
import { DenseSpikeLayer } from '../network/layer.ts';
import type { SpikingNetwork } from '../network/network.ts';
import type { SpikeSolver } from '../network/solver.ts';
import type { TaskPool } from '../parallel/pool.ts';
import { assignFrom, readInto, tensorCopy } from '../tf/tensor-io.ts';
import type { LossConfig } from './losses.ts';
import { type AdamSettings, adamCoefficients, freshAdamSettings } from './fused-adam.ts';
import { type LayerSize, planStep, readStats, reduceRange, shardRanges, statsLength } from './shard-reduce.ts';
import { ADAM_SLOTS, CTL, type FixedLayerState, type LoopInput, type ReplicaSpec, STEP, STOP, type ShardInput, type ShardResult } from './shard-task.ts';
import type { StepResult } from './trainer.ts';

export { shardRanges } from './shard-reduce.ts';

/** A training loop with no step for this long stops, giving the pool's threads back (the next step starts it again, about a ms). */
export const IDLE_MS = 200;

const TASK = new URL('./shard-task.ts', import.meta.url);

/** True when data-parallel steps can train this network (every layer dense). */
export function dataParallelSupported(net: SpikingNetwork): boolean {
  return net.layers.every((l) => l instanceof DenseSpikeLayer);
}

/**
 * Least work per shard (rows x synapses) that data-parallel steps take on: below it the fixed cost
 * of a step across threads (the weights and gradients through shared memory, waking the workers,
 * a few ms) outweighs the shard's own work. 2^20 synapse-rows are about 4 ms of DSTD at M = 16
 * (bench:dstd: 61 ms for 128 rows of 784-256-128-10's 234 000 synapses); an Iris network
 * (4-32-3, batches of 8) is a thousandth of that.
 */
export const MIN_SHARD_SYNAPSE_ROWS = 2 ** 20;

/** True when `workers` workers are worth it for batches of `batchSize` on this network. */
export function dataParallelWorthIt(net: SpikingNetwork, batchSize: number, workers: number): boolean {
  const synapses = net.layers.reduce((a, l) => a + l.nIn * l.nOut, 0);
  return workers > 1 && dataParallelSupported(net) && Math.floor(batchSize / workers) * synapses >= MIN_SHARD_SYNAPSE_ROWS;
}

/** A step's gradients summed over the shards, one Float32Array per trainable variable (net order). */
export interface ReducedStep extends StepResult {
  grads: Float32Array[];
}

/** Atomics.waitAsync (Node >= 16; not yet in TypeScript's lib for this target). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, index: number, value: number): { async: boolean; value: unknown } }).waitAsync;

/** A running training loop: its tasks and the generation it is at. */
interface Loop {
  tasks: Promise<void>[];
  /** Settles when a task ends (STOP, a failure elsewhere) or rejects (this task's failure). */
  ended: Promise<never>;
  generation: number;
}

export class DataParallelStep {
  readonly workers: number;
  private readonly net: SpikingNetwork;
  private readonly pool: TaskPool;
  private readonly spec: ReplicaSpec;
  private readonly vars: tf.Variable[];
  private readonly sizes: LayerSize[];
  private readonly P: number;
  private readonly maxBatch: number;
  private readonly weights: SharedArrayBuffer;
  private readonly x: SharedArrayBuffer;
  private readonly y: SharedArrayBuffer;
  private readonly grads: SharedArrayBuffer;
  /** The spec v8-serialised once: a structured clone of it per task and step cost this thread more than the reduction. */
  private readonly specBytes: SharedArrayBuffer;
  /** The reduced gradients, reused from step to step (what `gradients` returns views of); shared with the loop, which reduces into it. */
  private readonly totalBuffer: SharedArrayBuffer;
  private readonly total: Float32Array;
  /** The loop's buffers, made on its first step. */
  private shared?: { control: SharedArrayBuffer; adam: SharedArrayBuffer; next: SharedArrayBuffer; moments: SharedArrayBuffer; stats: SharedArrayBuffer };
  private loop?: Loop;
  /** The fresh Adam optimiser the loop steps for (its settings read at each step), and the steps taken. */
  private adam?: { optimizer: tf.Optimizer; settings: AdamSettings; steps: number };
  /** A step the signal cut short that the workers are still finishing. */
  private unfinished?: Promise<unknown>;
  private idle?: NodeJS.Timeout;

  constructor(net: SpikingNetwork, pool: TaskPool, opts: { solver: SpikeSolver; loss: LossConfig; maxBatch: number }) {
    if (!dataParallelSupported(net))
      throw new RangeError('data-parallel training takes dense layers only (a conv layer shares its kernel across neurons); use one worker');
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${opts.maxBatch}`);
    if (opts.solver.resolution !== undefined && !opts.solver.options)
      throw new RangeError(`solver ${opts.solver.name} carries no options to rebuild it on a worker; make it with createSolver`);
    this.net = net;
    this.pool = pool;
    this.workers = pool.workers;
    this.maxBatch = opts.maxBatch;
    this.vars = net.trainableVariables();
    this.sizes = net.layers.map((l) => ({ nIn: l.nIn, nOut: l.nOut }));
    this.P = this.vars.reduce((a, v) => a + v.size, 0);
    const drives = (net.layers[0] as DenseSpikeLayer).drives;
    const layers: FixedLayerState[] = net.states().map(({ pE: _e, pI: _i, ...fixed }) => fixed);
    this.spec = {
      id: randomUUID(),
      backend: tf.getBackend(),
      config: net.config,
      layers,
      drives,
      solver: { name: opts.solver.name, ...(opts.solver.options ? { options: opts.solver.options } : {}) },
      loss: opts.loss,
    };
    this.weights = new SharedArrayBuffer(this.P * 4);
    this.x = new SharedArrayBuffer(opts.maxBatch * net.features * 4);
    this.y = new SharedArrayBuffer(opts.maxBatch);
    this.grads = new SharedArrayBuffer(this.workers * 2 * this.P * 4);
    const bytes = serialize(this.spec);
    this.specBytes = new SharedArrayBuffer(bytes.length);
    new Uint8Array(this.specBytes).set(bytes);
    this.totalBuffer = new SharedArrayBuffer(this.P * 4);
    this.total = new Float32Array(this.totalBuffer);
  }

  /**
   * The loss gradients of a batch (the trainer's loss, summed over shards in order) and its step
   * figures. The gradient arrays are views of a buffer the next call overwrites.
   */
  async gradients(x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<ReducedStep> {
    await this.stopLoop();
    this.checkBatch(x, labels);
    this.publishWeights();
    const results = await this.shardGradients(labels.length, signal);
    return this.reduce(results, labels.length);
  }

  private checkBatch(x: Float32Array, labels: Uint8Array): void {
    const n = labels.length;
    const F = this.net.features;
    if (n < 1 || n > this.maxBatch) throw new RangeError(`batch of ${n} rows: this step takes 1 to ${this.maxBatch}`);
    if (x.length !== n * F) throw new RangeError(`batch needs ${n} rows of ${F} values (${n * F}), got ${x.length}`);
    new Float32Array(this.x, 0, n * F).set(x);
    new Uint8Array(this.y, 0, n).set(labels);
  }

  /** The shards' gradients of the batch in the shared x, y into `grads` (the weights the workers read are the shared ones). */
  private async shardGradients(n: number, signal?: AbortSignal): Promise<ShardResult[]> {
    const ranges = shardRanges(n, this.workers);
    const inputs: ShardInput[] = ranges.map(([start, end], shard) => ({
      specId: this.spec.id,
      spec: this.specBytes,
      weights: this.weights,
      x: this.x,
      y: this.y,
      grads: this.grads,
      shard,
      start,
      end,
      batch: n,
    }));
    return this.pool.runAll<ShardInput, ShardResult>(TASK, 'shardGradients', inputs, { signal });
  }

  /**
   * One optimiser step on a batch: the gradients, the optimiser's update, projection onto pE, pI >= 0.
   * A fresh tf.train.adam with more than one worker runs on the workers' loop (see the file
   * comment): from then on this object holds that optimiser's moments, so it must be the only
   * optimiser passed here and nothing else may step it.
   */
  async step(optimizer: tf.Optimizer, x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<StepResult> {
    signal?.throwIfAborted();
    if (this.adam && this.adam.optimizer !== optimizer)
      throw new Error('this data-parallel step holds the Adam moments of the optimiser it first stepped; pass that one, or make a new DataParallelStep');
    if (!this.adam && this.workers > 1) {
      const settings = freshAdamSettings(optimizer);
      if (settings) this.adam = { optimizer, settings, steps: 0 };
    }
    if (this.adam) return this.loopStep(x, labels, signal);
    const r = await this.gradients(x, labels, signal);
    const named: tf.NamedTensorMap = {};
    this.vars.forEach((v, k) => {
      named[v.name] = tensorCopy(r.grads[k]!, v.shape);
    });
    optimizer.applyGradients(named);
    tf.dispose(Object.values(named));
    this.net.project();
    return { loss: r.loss, terms: r.terms, correct: r.correct, silent: r.silent };
  }

  /** Stops the training loop (if running) and waits for its workers: the pool's threads are free afterwards. */
  async close(): Promise<void> {
    await this.stopLoop();
  }

  private async loopStep(x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<StepResult> {
    clearTimeout(this.idle);
    if (this.unfinished) {
      await this.unfinished;
      this.unfinished = undefined;
    }
    const adam = this.adam!;
    this.checkBatch(x, labels);
    this.publishWeights();
    const sh = this.loopBuffers();
    const ctl = new Int32Array(sh.control);
    const c = adamCoefficients({ ...adam.settings, learningRate: (adam.optimizer as unknown as AdamSettings).learningRate }, adam.steps + 1);
    const coefficients = new Float64Array(sh.adam);
    ADAM_SLOTS.forEach((name, i) => (coefficients[i] = c[name]));
    const loop = this.loop ?? this.startLoop();
    const generation = ++loop.generation;
    Atomics.store(ctl, CTL.rows, labels.length);
    Atomics.store(ctl, CTL.command, STEP);
    Atomics.store(ctl, CTL.generation, generation);
    Atomics.notify(ctl, CTL.generation);
    const done = Promise.race([this.waitDone(ctl, this.workers * generation), loop.ended]);
    let aborted: (() => void) | undefined;
    try {
      if (signal) {
        await Promise.race([
          done,
          new Promise<never>((_, reject) => {
            aborted = () => reject(signal.reason);
            signal.addEventListener('abort', aborted, { once: true });
          }),
        ]);
      } else await done;
    } catch (err) {
      if (signal?.aborted) {
        // The workers finish the step into the other moment buffer and `next`; neither is taken.
        this.unfinished = done.catch(() => this.stopLoop());
        throw signal.reason;
      }
      await this.stopLoop();
      throw err;
    } finally {
      if (aborted) signal?.removeEventListener('abort', aborted);
    }
    adam.steps++;
    Atomics.store(ctl, CTL.moments, 1 - Atomics.load(ctl, CTL.moments));
    const next = new Float32Array(sh.next);
    let offset = 0;
    for (const v of this.vars) {
      assignFrom(v, next.subarray(offset, offset + v.size));
      offset += v.size;
    }
    const SL = statsLength(this.sizes);
    const stats = new Float64Array(sh.stats);
    const results = Array.from({ length: this.workers }, (_, s) => readStats(stats.subarray(s * SL, (s + 1) * SL), this.sizes));
    const plan = planStep(this.sizes, this.spec.loss, results, labels.length);
    this.idle = setTimeout(() => void this.stopLoop().catch(() => {}), IDLE_MS);
    this.idle.unref();
    return { loss: plan.loss, terms: plan.terms, correct: plan.correct, silent: plan.silent };
  }

  private loopBuffers(): NonNullable<DataParallelStep['shared']> {
    this.shared ??= {
      control: new SharedArrayBuffer(CTL.length * 4),
      adam: new SharedArrayBuffer(ADAM_SLOTS.length * 8),
      next: new SharedArrayBuffer(this.P * 4),
      moments: new SharedArrayBuffer(4 * this.P * 4),
      stats: new SharedArrayBuffer(this.workers * statsLength(this.sizes) * 8),
    };
    return this.shared;
  }

  private startLoop(): Loop {
    const sh = this.loopBuffers();
    const ctl = new Int32Array(sh.control);
    // A new loop counts from zero; the moments buffer index carries over.
    for (const slot of [CTL.generation, CTL.command, CTL.arrived, CTL.done, CTL.failed]) Atomics.store(ctl, slot, 0);
    const tasks = Array.from({ length: this.workers }, (_, shard) => {
      const input: LoopInput = {
        specId: this.spec.id,
        spec: this.specBytes,
        control: sh.control,
        adam: sh.adam,
        weights: this.weights,
        next: sh.next,
        moments: sh.moments,
        x: this.x,
        y: this.y,
        grads: this.grads,
        total: this.totalBuffer,
        stats: sh.stats,
        workers: this.workers,
        shard,
      };
      return this.pool.run<LoopInput, void>(TASK, 'trainLoop', input);
    });
    const ended = Promise.race(tasks).then(() => {
      throw new Error('a data-parallel training worker left its loop (another worker failed, or the pool closed)');
    });
    // Whoever does not wait on it must not see an unhandled rejection.
    ended.catch(() => {});
    for (const t of tasks) t.catch(() => {});
    this.loop = { tasks, ended, generation: 0 };
    return this.loop;
  }

  /** Until `target` workers have finished their update, or one failed (its error, from its task). */
  private async waitDone(ctl: Int32Array, target: number): Promise<void> {
    for (;;) {
      const d = Atomics.load(ctl, CTL.done);
      if (Atomics.load(ctl, CTL.failed)) {
        const settled = await Promise.allSettled(this.loop?.tasks ?? []);
        const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        throw failure ? failure.reason : new Error('a data-parallel training worker failed');
      }
      if (d >= target) return;
      const w = waitAsync(ctl, CTL.done, d);
      if (w.async) await w.value;
    }
  }

  private async stopLoop(): Promise<void> {
    clearTimeout(this.idle);
    if (this.unfinished) {
      const u = this.unfinished;
      this.unfinished = undefined;
      await u;
    }
    const loop = this.loop;
    if (!loop) return;
    this.loop = undefined;
    const ctl = new Int32Array(this.shared!.control);
    Atomics.store(ctl, CTL.command, STOP);
    Atomics.store(ctl, CTL.generation, loop.generation + 1);
    Atomics.notify(ctl, CTL.generation);
    await Promise.allSettled(loop.tasks);
  }

  private publishWeights(): void {
    const w = new Float32Array(this.weights);
    let offset = 0;
    for (const v of this.vars) {
      readInto(v, w, offset);
      offset += v.size;
    }
  }

  /** Sums shard 0, 1, ... in that order and adds the batch-wide dead-neuron term. */
  private reduce(results: ShardResult[], B: number): ReducedStep {
    const plan = planStep(this.sizes, this.spec.loss, results, B);
    reduceRange(new Float32Array(this.grads), this.P, results.length, plan.deadTerms, this.total, 0, this.P);
    const grads: Float32Array[] = [];
    let offset = 0;
    for (const v of this.vars) {
      grads.push(this.total.subarray(offset, offset + v.size));
      offset += v.size;
    }
    return { loss: plan.loss, terms: plan.terms, correct: plan.correct, silent: plan.silent, grads };
  }
}
