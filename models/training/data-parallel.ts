/**
 * Data-parallel training steps: a batch split into contiguous shards, one per pool worker, each
 * worker's replica of the network computing its shard's loss gradients (shard-task.ts) into a
 * SharedArrayBuffer; this thread sums the shards and a tf.Optimizer steps the network it holds
 * (`gradients` / `step`). Running the reduction and Adam on the workers too, each on its slice of
 * the parameters, was tried and measured no faster on 2 cores (docs/RESULTS.md, "Every core, this
 * round"): what it saved this thread, the workers spent; it was removed.
 * Shards are summed in shard order, so a seed and a worker count always give the same numbers.
 *
 * The loss is the trainer's (forwardLoss) exactly, not a per-shard approximation: the
 * cross-entropy and window terms are batch means, so each shard contributes n_s / B of its own
 * mean; the dead-neuron term selects hidden neurons silent on the whole batch and divides by a
 * batch-wide count, so the shards send their candidates' unnormalised terms and firing counts
 * and the selection and normalisation happen here. That relies on a dense layer's dead term for
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
import { readInto, tensorCopy } from '../tf/tensor-io.ts';
import type { LossConfig } from './losses.ts';
import type { FixedLayerState, ReplicaSpec, ShardInput, ShardResult } from './shard-task.ts';
import type { StepResult } from './trainer.ts';

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

/** Contiguous shards [start, end) of a batch of n rows (or slices of n parameters) over `workers` workers (empty ones left out). */
export function shardRanges(n: number, workers: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < workers; k++) {
    const s = Math.floor((k * n) / workers);
    const e = Math.floor(((k + 1) * n) / workers);
    if (e > s) out.push([s, e]);
  }
  return out;
}

/** A step's gradients summed over the shards, one Float32Array per trainable variable (net order). */
export interface ReducedStep extends StepResult {
  grads: Float32Array[];
}

/** The dead-neuron term of one layer, selected batch-wide: what the reduction adds to the shards' sums. */
interface DeadTerm {
  /** Offset of the layer's pE in the parameter vector; pI follows at offset + nIn * nOut. */
  offset: number;
  nIn: number;
  nOut: number;
  /** deadWeight / the batch-wide denominator. */
  factor: number;
  /** 1 for the neurons (columns) the term acts on. */
  chosen: Uint8Array;
}

/** A step's loss figures and the batch-wide dead-neuron term, from the shards' results alone. */
interface StepPlan extends StepResult {
  deadTerms: DeadTerm[];
}

export class DataParallelStep {
  readonly workers: number;
  private readonly net: SpikingNetwork;
  private readonly pool: TaskPool;
  private readonly spec: ReplicaSpec;
  private readonly vars: tf.Variable[];
  private readonly P: number;
  private readonly maxBatch: number;
  private readonly weights: SharedArrayBuffer;
  private readonly x: SharedArrayBuffer;
  private readonly y: SharedArrayBuffer;
  private readonly grads: SharedArrayBuffer;
  /** The spec v8-serialised once: a structured clone of it per task and step cost this thread more than the reduction. */
  private readonly specBytes: SharedArrayBuffer;
  /** The reduced gradients, reused from step to step (what `gradients` returns views of). */
  private readonly total: Float32Array;

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
    this.total = new Float32Array(this.P);
  }

  /**
   * The loss gradients of a batch (the trainer's loss, summed over shards in order) and its step
   * figures. The gradient arrays are views of a buffer the next call overwrites.
   */
  async gradients(x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<ReducedStep> {
    this.publishWeights();
    const results = await this.shardGradients(x, labels, signal);
    return this.reduce(results, labels.length);
  }

  /** The shards' gradients of a batch into `grads` (the weights the workers read are the shared ones). */
  private async shardGradients(x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<ShardResult[]> {
    const n = labels.length;
    const F = this.net.features;
    if (n < 1 || n > this.maxBatch) throw new RangeError(`batch of ${n} rows: this step takes 1 to ${this.maxBatch}`);
    if (x.length !== n * F) throw new RangeError(`batch needs ${n} rows of ${F} values (${n * F}), got ${x.length}`);
    new Float32Array(this.x, 0, n * F).set(x);
    new Uint8Array(this.y, 0, n).set(labels);
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

  /** One optimiser step on a batch: gradients, `optimizer.applyGradients`, projection onto pE, pI >= 0. */
  async step(optimizer: tf.Optimizer, x: Float32Array, labels: Uint8Array, signal?: AbortSignal): Promise<StepResult> {
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

  private publishWeights(): void {
    const w = new Float32Array(this.weights);
    let offset = 0;
    for (const v of this.vars) {
      readInto(v, w, offset);
      offset += v.size;
    }
  }

  /** Sums shard 0, 1, ... in that order and adds the batch-wide dead-neuron term . */
  private reduce(results: ShardResult[], B: number): ReducedStep {
    const P = this.P;
    const S = results.length;
    const all = new Float32Array(this.grads);
    const total = this.total;
    total.set(all.subarray(0, P));
    for (let s = 1; s < S; s++) {
      const g = all.subarray(s * 2 * P, s * 2 * P + P);
      for (let k = 0; k < P; k++) total[k]! += g[k]!;
    }
    const plan = this.plan(results, B);
    for (const d of plan.deadTerms) {
      const size = d.nIn * d.nOut;
      // pE then pI, each [nIn, nOut] row-major: column i is neuron i.
      for (const base of [d.offset, d.offset + size]) {
        for (let row = base; row < base + size; row += d.nOut) {
          for (let i = 0; i < d.nOut; i++) {
            if (!d.chosen[i]) continue;
            let sum = 0;
            for (let s = 0; s < S; s++) sum += all[s * 2 * P + P + row + i]!;
            total[row + i]! += d.factor * sum;
          }
        }
      }
    }
    const grads: Float32Array[] = [];
    let offset = 0;
    for (const v of this.vars) {
      grads.push(total.subarray(offset, offset + v.size));
      offset += v.size;
    }
    return { loss: plan.loss, terms: plan.terms, correct: plan.correct, silent: plan.silent, grads };
  }

  /** The step's loss figures from the shards' results; selects and normalises the dead-neuron term batch-wide. */
  private plan(results: ShardResult[], B: number): StepPlan {
    const cfg = this.spec.loss;
    let ce = 0;
    let window = 0;
    let correct = 0;
    for (const r of results) {
      ce += r.ce;
      window += r.window;
      correct += r.correct;
    }
    const L = this.net.layers.length;
    const silent: number[] = [];
    const deadTerms: DeadTerm[] = [];
    let dead = 0;
    let layerOffset = 0;
    for (let l = 0; l < L; l++) {
      const layer = this.net.layers[l]!;
      const nOut = layer.nOut;
      const size = layer.nIn * nOut;
      const fired = new Int32Array(nOut);
      for (const r of results) for (let i = 0; i < nOut; i++) fired[i]! += r.fired[l]![i]!;
      let firedAll = 0;
      for (let i = 0; i < nOut; i++) firedAll += fired[i]!;
      silent.push(1 - firedAll / (B * nOut));
      if (cfg.deadWeight > 0) {
        // Which neurons (columns) the term acts on and what it is divided by, as deadSelection and deadNeuronPenalty do on the whole batch.
        const chosen = new Uint8Array(nOut);
        let denominator = 0;
        if (l === L - 1) {
          let pairs = 0;
          for (const r of results) pairs += r.deadLabels;
          if (pairs > 0) {
            chosen.fill(1);
            denominator = cfg.deadMean === 1 ? B : pairs;
          }
        } else {
          let count = 0;
          for (let i = 0; i < nOut; i++) {
            if (fired[i]! <= cfg.deadRate * B) {
              chosen[i] = 1;
              count++;
            }
          }
          if (count > 0) denominator = cfg.deadMean === 1 ? B * nOut : B * count;
        }
        if (denominator > 0) {
          let value = 0;
          for (const r of results) {
            const d = r.dead[l]!;
            if (d.length === 0) continue;
            for (let i = 0; i < nOut; i++) if (chosen[i]) value += d[i]!;
          }
          dead += (cfg.deadWeight * value) / denominator;
          deadTerms.push({ offset: layerOffset, nIn: layer.nIn, nOut, factor: cfg.deadWeight / denominator, chosen });
        }
      }
      layerOffset += 2 * size;
    }
    return { loss: ce + window + dead, terms: { ce, window, dead }, correct, silent, deadTerms };
  }
}
