/**
 * The worker side of data-parallel training (data-parallel.ts): one shard of a batch, on this
 * thread's replica of the network. Loaded once per pool thread, so the tfjs backend and the
 * replica (rebuilt only when another network arrives) persist from step to step; the weights
 * come from shared memory at every step.
 *
 * `shardGradients` (a pool task per shard and step) writes into this shard's slot of the shared
 * gradient buffer:
 *   main: d/dp [(n_s / B) (cross-entropy_s + window_s)]: the batch means' share of this shard;
 *   dead: d/dp sum over candidate pairs of relu(target - v): unnormalised, every candidate neuron
 *         of a hidden layer (a neuron that fired for at most deadRate * B of this shard's samples,
 *         a superset of the batch's dead neurons), the silent label neurons of the output layer.
 * The caller selects and normalises the dead term once every shard's firing counts are summed.
 *
 * `trainLoop` (one task per worker for a training run) takes the steps themselves: the shard's
 * gradient with its share of the batch-wide dead term in one backward pass (shardMerged), then this
 * worker's slice of the sum over shards, Adam and the projection.
 */

import { deserialize } from 'node:v8';
import * as tf from '@tensorflow/tfjs-core';
import type { NetworkConfig } from '../network/network.ts';
import { earliestSpike, SpikingNetwork } from '../network/network.ts';
import type { DenseLayerState, DriveMode } from '../network/layer.ts';
import { createSolver, type SolverName, type SolverOptions, type SpikeSolver } from '../network/solver.ts';
import { type BackendName, initBackend } from '../tf/backend.ts';
import { registerGradients } from '../tf/gradients.ts';
import { assignFrom, readInto, viewSync } from '../tf/tensor-io.ts';
import { type AdamCoefficients, adamProjectRange } from './fused-adam.ts';
import { deadNeuronMargins, type LossConfig } from './losses.ts';
import { batchFiring, chooseDead, type DeadChoice, readStats, reduceRange, shardRanges, statsLength, writeStats } from './shard-reduce.ts';
import { forwardLoss, MEMBRANE_BINS } from './trainer.ts';

/** A dense layer without its weights (those travel through shared memory). */
export type FixedLayerState = Omit<DenseLayerState, 'pE' | 'pI'>;

/** Everything a thread needs to build its replica; `id` names one training run's network. */
export interface ReplicaSpec {
  id: string;
  backend: string;
  config: NetworkConfig;
  layers: FixedLayerState[];
  drives: DriveMode;
  solver: { name: SolverName; options?: SolverOptions };
  loss: LossConfig;
}

export interface ShardInput {
  /** The ReplicaSpec's id, and the spec v8-serialised: sent by reference, read once per thread and network. */
  specId: string;
  spec: SharedArrayBuffer;
  /** Float32 weights: every layer's pE then pI, row-major, layer by layer. */
  weights: SharedArrayBuffer;
  /** Float32 rows of the batch (features each) and their labels. */
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  /** Float32, shards x 2 x parameters: this shard's main then dead gradients. */
  grads: SharedArrayBuffer;
  shard: number;
  /** Rows [start, end) of a batch of `batch` rows. */
  start: number;
  end: number;
  batch: number;
}

export interface ShardResult {
  /** This shard's share of the batch's cross-entropy and window term. */
  ce: number;
  window: number;
  correct: number;
  /** Per layer: how many of this shard's samples each neuron fired for. */
  fired: Int32Array[];
  /** Per layer: sum over this shard's candidate pairs of relu(target - v), per neuron (empty with deadWeight 0). */
  dead: Float64Array[];
  /** Candidate pairs of the output layer (silent label neurons). */
  deadLabels: number;
}

interface Replica {
  id: string;
  spec: ReplicaSpec;
  net: SpikingNetwork;
  solver: SpikeSolver;
}

let replica: Replica | undefined;

async function replicaFor(id: string, bytes: SharedArrayBuffer, weights: Float32Array): Promise<Replica> {
  if (replica?.id === id) return replica;
  const spec = deserialize(new Uint8Array(bytes)) as ReplicaSpec;
  const backend = await initBackend({ prefer: spec.backend as BackendName });
  // Another backend would compute other numbers than the caller's thread (and at another speed).
  if (backend !== spec.backend) throw new Error(`a pool worker initialised the ${backend} tfjs backend, the training thread uses ${spec.backend}`);
  registerGradients();
  replica?.net.dispose();
  replica = undefined;
  let offset = 0;
  const states: DenseLayerState[] = spec.layers.map((l) => {
    const size = l.nIn * l.nOut;
    const pE = weights.slice(offset, offset + size);
    const pI = weights.slice(offset + size, offset + 2 * size);
    offset += 2 * size;
    return { ...l, pE, pI };
  });
  replica = { id, spec, net: SpikingNetwork.fromStates(spec.config, states, spec.drives), solver: createSolver(spec.solver.name, spec.solver.options) };
  return replica;
}

/** Copies the shared weights into the replica's variables (in place on the wasm backend: no garbage per step). */
function loadWeights(net: SpikingNetwork, weights: Float32Array): void {
  let offset = 0;
  for (const v of net.trainableVariables()) {
    assignFrom(v, weights.subarray(offset, offset + v.size));
    offset += v.size;
  }
}

/** One shard's gradients into shared memory; see the file comment. */
export async function shardGradients(input: ShardInput): Promise<ShardResult> {
  const { start, end, batch, shard } = input;
  const weights = new Float32Array(input.weights);
  const rep = await replicaFor(input.specId, input.spec, weights);
  loadWeights(rep.net, weights);
  const P = parameterCount(rep.net);
  const mainOut = new Float32Array(input.grads, shard * 2 * P * 4, P);
  const deadOut = new Float32Array(input.grads, (shard * 2 + 1) * P * 4, P);
  const features = rep.net.features;
  const x = new Float32Array(input.x, start * features * 4, (end - start) * features);
  const labels = new Uint8Array(input.y, start, end - start);
  return shardInto(rep, x, labels, batch, mainOut, deadOut);
}

function parameterCount(net: SpikingNetwork): number {
  return net.trainableVariables().reduce((a, v) => a + v.size, 0);
}

/** How many of the n rows each of a layer's nOut neurons fired for, from its [n, nOut] spike mask. */
function firingCounts(mask: Float32Array, n: number, nOut: number): Int32Array {
  const count = new Int32Array(nOut);
  for (let b = 0; b < n; b++) for (let i = 0; i < nOut; i++) if (mask[b * nOut + i]! > 0.5) count[i]!++;
  return count;
}

/** The output layer's (row, label) pairs with no spike: 1 at each in an [n, nOut] selection, and how many there are. */
function silentLabelPairs(mask: Float32Array, labels: Uint8Array, nOut: number): { sel: Float32Array; count: number } {
  const sel = new Float32Array(labels.length * nOut);
  let count = 0;
  for (let b = 0; b < labels.length; b++) {
    const k = b * nOut + labels[b]!;
    if (mask[k]! < 0.5) {
      sel[k] = 1;
      count++;
    }
  }
  return { sel, count };
}

/** Layer l's dead-neuron margins summed over the selected [n, nOut] pairs, per neuron (the loss's settings). */
function selectedMargins(rep: Replica, l: number, inputs: tf.Tensor2D, sel: Float32Array): tf.Tensor1D {
  const { spec, net, solver } = rep;
  const cfg = spec.loss;
  const layer = net.layers[l]!;
  const margins = deadNeuronMargins(layer, inputs, cfg.deadTarget, cfg.deadMembrane === 1 ? { bins: solver.resolution ?? MEMBRANE_BINS } : undefined);
  return tf.sum(tf.mul(tf.tensor2d(sel, [sel.length / layer.nOut, layer.nOut]), margins), 0);
}

/** The gradients of rows `xs`, `ys` (a shard of a batch of `batch` rows) into `mainOut` and `deadOut`, on the replica's current weights. */
function shardInto(rep: Replica, xs: Float32Array, ys: Uint8Array, batch: number, mainOut: Float32Array, deadOut: Float32Array): ShardResult {
  const { spec, net, solver } = rep;
  const cfg = spec.loss;
  const n = ys.length;
  const x = xs.slice();
  const labels = ys.slice();
  const vars = net.trainableVariables();
  const L = net.layers.length;
  const share = n / batch;

  const inputTimes = net.encode(x, n);
  let kept: tf.Tensor[] = [];
  let inputs: tf.Tensor2D[] = [];
  let masks: tf.Tensor[] = [];
  const main = tf.variableGrads(() => {
    const f = net.forward(inputTimes, solver);
    const r = forwardLoss(net, f, labels, { ...cfg, deadWeight: 0 }, { bins: solver.resolution });
    kept = [r.outTimes, r.outMask, r.terms.ce, r.terms.window].map((t) => tf.keep(t));
    inputs = f.inputs.map((t) => tf.keep(t));
    masks = f.spikes.map((s) => tf.keep(s.mask));
    return tf.mul(r.loss, share) as tf.Scalar;
  }, vars);
  writeGrads(vars, main.grads, mainOut);
  const maskData = masks.map((m) => m.dataSync() as Float32Array);
  const pred = earliestSpike(kept[0]!.dataSync(), kept[1]!.dataSync(), n, net.classes);
  let correct = 0;
  for (let b = 0; b < n; b++) if (pred[b] === labels[b]) correct++;
  const ce = kept[2]!.dataSync()[0]! * share;
  const window = kept[3]!.dataSync()[0]! * share;
  tf.dispose([main.value, ...Object.values(main.grads), ...kept, ...masks]);

  const fired: Int32Array[] = [];
  const dead: Float64Array[] = [];
  let deadLabels = 0;
  // Candidate selection per layer: [n, nOut] 0/1, or null when the layer has no candidate.
  const selections: (Float32Array | null)[] = [];
  for (let l = 0; l < L; l++) {
    const nOut = net.layers[l]!.nOut;
    const mask = maskData[l]!;
    const count = firingCounts(mask, n, nOut);
    fired.push(count);
    if (!(cfg.deadWeight > 0)) {
      selections.push(null);
      continue;
    }
    if (l === L - 1) {
      const pairs = silentLabelPairs(mask, labels, nOut);
      deadLabels += pairs.count;
      selections.push(pairs.count > 0 ? pairs.sel : null);
      continue;
    }
    const sel = new Float32Array(n * nOut);
    let any = false;
    // A neuron that fired for more than deadRate * batch samples here cannot be dead on the batch.
    const limit = cfg.deadRate * batch;
    for (let i = 0; i < nOut; i++) {
      if (count[i]! > limit) continue;
      any = true;
      for (let b = 0; b < n; b++) sel[b * nOut + i] = 1;
    }
    selections.push(any ? sel : null);
  }

  deadOut.fill(0);
  if (selections.some((s) => s !== null)) {
    const perNeuron: tf.Tensor[] = [];
    const deadVars = net.layers.flatMap((layer, l) => (selections[l] ? layer.trainableVariables() : []));
    const d = tf.variableGrads(() => {
      let total: tf.Scalar = tf.scalar(0);
      for (let l = 0; l < L; l++) {
        const sel = selections[l];
        if (!sel) continue;
        const s = selectedMargins(rep, l, inputs[l]!, sel);
        perNeuron[l] = tf.keep(s);
        total = tf.add(total, tf.sum(s));
      }
      return total;
    }, deadVars);
    writeGrads(vars, d.grads, deadOut);
    for (let l = 0; l < L; l++) dead.push(perNeuron[l] ? Float64Array.from(perNeuron[l]!.dataSync()) : new Float64Array(0));
    tf.dispose([d.value, ...Object.values(d.grads), ...perNeuron.filter((t) => t)]);
  } else {
    for (let l = 0; l < L; l++) dead.push(new Float64Array(0));
  }
  tf.dispose([inputTimes, ...inputs.slice(1)]);
  return { ce, window, correct, fired, dead, deadLabels };
}

/** Thrown inside a loop step when another worker failed: the step is abandoned, not failed. */
class LoopLeft extends Error {}

/**
 * A loop step's shard in one backward pass: after the forward pass the shards swap their firing
 * counts (`exchange`, a barrier), so each knows the batch-wide dead-neuron selection and its
 * denominators and adds its own pairs' share of the term to its loss; `out` gets the gradient of
 * share x (cross-entropy + window) + this shard's part of the batch's dead term, and the shards'
 * gradients only need summing. `dead` in the result holds the unnormalised per-neuron sums of the
 * chosen pairs (planStep's figures).
 */
function shardMerged(
  rep: Replica,
  xs: Float32Array,
  ys: Uint8Array,
  batch: number,
  out: Float32Array,
  exchange: (fired: Int32Array[], deadLabels: number) => (DeadChoice | null)[],
): ShardResult {
  const { spec, net, solver } = rep;
  const cfg = spec.loss;
  const n = ys.length;
  const labels = ys.slice();
  const vars = net.trainableVariables();
  const L = net.layers.length;
  const share = n / batch;
  const inputTimes = net.encode(xs.slice(), n);
  let kept: tf.Tensor[] = [];
  const perNeuron: (tf.Tensor | undefined)[] = [];
  const fired: Int32Array[] = [];
  let deadLabels = 0;
  const g = tf.variableGrads(() => {
    const f = net.forward(inputTimes, solver);
    const r = forwardLoss(net, f, labels, { ...cfg, deadWeight: 0 }, { bins: solver.resolution });
    kept = [r.outTimes, r.outMask, r.terms.ce, r.terms.window].map((t) => tf.keep(t));
    const masks: Float32Array[] = [];
    for (let l = 0; l < L; l++) {
      const mask = viewSync(f.spikes[l]!.mask).slice();
      masks.push(mask);
      fired.push(firingCounts(mask, n, net.layers[l]!.nOut));
    }
    let loss = tf.mul(r.loss, share) as tf.Scalar;
    if (!(cfg.deadWeight > 0)) return loss;
    const silentLabels = silentLabelPairs(masks[L - 1]!, labels, net.layers[L - 1]!.nOut);
    deadLabels = silentLabels.count;
    const choices = exchange(fired, deadLabels);
    for (let l = 0; l < L; l++) {
      const choice = choices[l];
      if (!choice) continue;
      const nOut = net.layers[l]!.nOut;
      let sel = silentLabels.sel;
      if (l < L - 1) {
        sel = new Float32Array(n * nOut);
        for (let b = 0; b < n; b++) for (let i = 0; i < nOut; i++) sel[b * nOut + i] = choice.chosen[i]!;
      }
      const sums = selectedMargins(rep, l, f.inputs[l]!, sel);
      perNeuron[l] = tf.keep(sums);
      loss = tf.add(loss, tf.mul(tf.sum(sums), choice.factor));
    }
    return loss;
  }, vars);
  writeGrads(vars, g.grads, out);
  const pred = earliestSpike(kept[0]!.dataSync(), kept[1]!.dataSync(), n, net.classes);
  let correct = 0;
  for (let b = 0; b < n; b++) if (pred[b] === labels[b]) correct++;
  const ce = kept[2]!.dataSync()[0]! * share;
  const window = kept[3]!.dataSync()[0]! * share;
  const dead = net.layers.map((_, l) => (perNeuron[l] ? Float64Array.from(perNeuron[l]!.dataSync()) : new Float64Array(0)));
  tf.dispose([g.value, ...Object.values(g.grads), ...kept, ...perNeuron.filter((t) => t !== undefined), inputTimes]);
  return { ce, window, correct, fired, dead, deadLabels };
}

/** Each variable's gradient (absent: none computed) at its offset in `out`; zeros elsewhere. */
function writeGrads(vars: tf.Variable[], grads: tf.NamedTensorMap, out: Float32Array): void {
  let offset = 0;
  for (const v of vars) {
    const g = grads[v.name];
    if (g) readInto(g, out, offset);
    else out.fill(0, offset, offset + v.size);
    offset += v.size;
  }
}

/** Slots of a training loop's Int32 control block (data-parallel.ts drives it). */
export const CTL = {
  /** Bumped by the calling thread for each command; the workers sleep on it. */
  generation: 0,
  /** The command of the current generation: STEP or STOP. */
  command: 1,
  /** Workers that finished their shard this loop (cumulative): the barrier before the update. */
  arrived: 2,
  /** Workers that finished their slice of the update this loop (cumulative); the calling thread waits on it. */
  done: 3,
  /** 1 once a worker failed: the others leave their loop, the calling thread reads the error from the task. */
  failed: 4,
  /** Rows of the current batch. */
  rows: 5,
  /** Which of the two moment buffers holds the current moments (0 or 1); the step writes the other. */
  moments: 6,
  length: 7,
} as const;
export const STEP = 1;
/** Parameters summed and stepped at a time (16 KB of each array). */
const CHUNK = 4096;
export const STOP = 2;

/** Float64 slots of the loop's Adam block: the current step's coefficients (fused-adam.ts). */
export const ADAM_SLOTS = ['beta1', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'correction1', 'correction2', 'epsilon', 'negLr'] as const;

export interface LoopInput {
  specId: string;
  spec: SharedArrayBuffer;
  /** Int32 control block (CTL). */
  control: SharedArrayBuffer;
  /** Float64, ADAM_SLOTS. */
  adam: SharedArrayBuffer;
  /** Float32 weights in (published by the calling thread before each step) and the step's weights out. */
  weights: SharedArrayBuffer;
  next: SharedArrayBuffer;
  /** Float32, 2 x 2 x parameters: the first and second moments, two buffers each (CTL.moments). */
  moments: SharedArrayBuffer;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  /** As ShardInput.grads; `total` holds the reduced gradient, P values. */
  grads: SharedArrayBuffer;
  total: SharedArrayBuffer;
  /** Float64, workers x statsLength: each shard's result (shard-reduce.ts writeStats). */
  stats: SharedArrayBuffer;
  workers: number;
  /** This worker's shard of every batch and slice of the parameters. */
  shard: number;
}

/** Marks the loop failed and wakes everyone waiting on it (the counters move, so no waiter sleeps on). */
function fail(ctl: Int32Array): void {
  Atomics.store(ctl, CTL.failed, 1);
  for (const slot of [CTL.arrived, CTL.done]) {
    Atomics.add(ctl, slot, 1);
    Atomics.notify(ctl, slot);
  }
}

/** Waits until `target` workers arrived; false when a worker failed instead. */
function barrier(ctl: Int32Array, target: number): boolean {
  let a = Atomics.add(ctl, CTL.arrived, 1) + 1;
  if (a >= target) Atomics.notify(ctl, CTL.arrived);
  while (a < target && !Atomics.load(ctl, CTL.failed)) {
    Atomics.wait(ctl, CTL.arrived, a);
    a = Atomics.load(ctl, CTL.arrived);
  }
  return !Atomics.load(ctl, CTL.failed);
}

/**
 * A training run's worker: one pool task that lives across steps, woken through shared memory
 * (Atomics) instead of a task per step. Per step: this shard's gradients and results into shared
 * memory, a barrier with the other workers, then this worker's slice of the parameters summed
 * over the shards (shard order), stepped by Adam and projected onto >= 0, into `next`. Returns on
 * STOP or when another worker failed; throws (after waking the others) when this one fails.
 */
export async function trainLoop(input: LoopInput): Promise<void> {
  const ctl = new Int32Array(input.control);
  const weights = new Float32Array(input.weights);
  let rep: Replica;
  try {
    rep = await replicaFor(input.specId, input.spec, weights);
  } catch (err) {
    fail(ctl);
    throw err;
  }
  const { net, spec } = rep;
  const sizes = net.layers.map((l) => ({ nIn: l.nIn, nOut: l.nOut }));
  const P = parameterCount(net);
  const W = input.workers;
  const k = input.shard;
  const F = net.features;
  const all = new Float32Array(input.grads);
  const mainOut = all.subarray(k * 2 * P, k * 2 * P + P);
  const total = new Float32Array(input.total);
  const next = new Float32Array(input.next);
  const moments = [0, 1].map((b) => [0, 1].map((which) => new Float32Array(input.moments, (b * 2 + which) * P * 4, P)));
  const adam = new Float64Array(input.adam);
  const SL = statsLength(sizes);
  const stats = new Float64Array(input.stats);
  const [lo, hi] = shardRanges(P, W)[k] ?? [0, 0];
  let generation = 0;
  // Barriers passed this loop: every worker passes the same ones, so the k-th waits for W * k arrivals.
  let barriers = 0;
  const pass = () => barrier(ctl, W * ++barriers);
  for (;;) {
    while (Atomics.load(ctl, CTL.generation) === generation) Atomics.wait(ctl, CTL.generation, generation);
    generation = Atomics.load(ctl, CTL.generation);
    if (Atomics.load(ctl, CTL.command) === STOP || Atomics.load(ctl, CTL.failed)) return;
    const n = Atomics.load(ctl, CTL.rows);
    try {
      const range = shardRanges(n, W)[k];
      // The batch's firing counts and silent label neurons, once every shard has written its own.
      const exchange = (fired: Int32Array[], deadLabels: number): (DeadChoice | null)[] => {
        const mine = stats.subarray(k * SL, (k + 1) * SL);
        writeStats({ ce: 0, window: 0, correct: 0, deadLabels, fired, dead: sizes.map(() => new Float64Array(0)) }, sizes, mine);
        if (!pass()) throw new LoopLeft();
        const all = Array.from({ length: W }, (_, s) => readStats(stats.subarray(s * SL, (s + 1) * SL), sizes));
        const batchWide = batchFiring(sizes, all);
        return chooseDead(sizes, spec.loss, batchWide.fired, batchWide.pairs, n);
      };
      let r: ShardResult;
      if (range) {
        loadWeights(net, weights);
        const [start, end] = range;
        r = shardMerged(rep, new Float32Array(input.x, start * F * 4, (end - start) * F), new Uint8Array(input.y, start, end - start), n, mainOut, exchange);
      } else {
        // Fewer rows than workers: this shard adds nothing (but takes part in the exchange).
        const fired = sizes.map((l) => new Int32Array(l.nOut));
        if (spec.loss.deadWeight > 0) exchange(fired, 0);
        mainOut.fill(0);
        r = { ce: 0, window: 0, correct: 0, deadLabels: 0, fired, dead: sizes.map(() => new Float64Array(0)) };
      }
      writeStats(r, sizes, stats.subarray(k * SL, (k + 1) * SL));
    } catch (err) {
      if (err instanceof LoopLeft) return;
      fail(ctl);
      throw err;
    }
    if (!pass()) return;
    try {
      const c = Object.fromEntries(ADAM_SLOTS.map((name, i) => [name, adam[i]!])) as unknown as AdamCoefficients;
      const cur = Atomics.load(ctl, CTL.moments);
      const [m, v] = moments[cur]!;
      const [mOut, vOut] = moments[1 - cur]!;
      // In chunks that stay in the core's cache between the sum and Adam; the dead term is in each shard's gradient already.
      for (let a = lo; a < hi; a += CHUNK) {
        const b = Math.min(hi, a + CHUNK);
        reduceRange(all, P, W, [], total, a, b);
        adamProjectRange(c, total, m!, v!, weights, mOut!, vOut!, next, a, b);
      }
    } catch (err) {
      fail(ctl);
      throw err;
    }
    Atomics.add(ctl, CTL.done, 1);
    Atomics.notify(ctl, CTL.done);
  }
}
