/**
 * Mini-batch training of a SpikingNetwork with Adam (tf.train.adam), deterministic for a seed:
 * the batch order comes from the seeded epoch permutation (models/datasets/batching.ts), the
 * initialisation from init.ts, and every kernel on the path is deterministic.
 *
 * One step: encode the batch (TTFS), forward through the solver, loss = cross-entropy + window
 * and dead-neuron terms (losses.ts), gradients of every layer's pE, pI, Adam update, projection
 * onto pE, pI >= 0, and with weightDecay a decoupled shrink of pE, pI (weight-decay.ts). Train metrics of an epoch are running means over its batches (measured before
 * each update); test metrics come from a full pass over the test part after the epoch.
 */

import { yieldToEventLoop } from '../io/event-loop.ts';
import * as tf from '@tensorflow/tfjs-core';
import { batches } from '../datasets/batching.ts';
import type { DatasetPart } from '../datasets/types.ts';
import { earliestSpike, windowStart, type NetworkForward, type SpikingNetwork } from '../network/network.ts';
import type { SpikeSolver } from '../network/solver.ts';
import { evaluateNetwork, type Evaluation } from './evaluate.ts';
import { DEFAULT_LOSS, deadNeuronPenalty, deadSelection, silentPseudoTimes, ttfsCrossEntropy, windowPenalty, type LossConfig } from './losses.ts';
import { registerGradients } from '../tf/gradients.ts';
import { WeightAverage } from './weight-average.ts';
import { noisyInputs } from './input-noise.ts';
import { addWeightNoise, checkWeightNoise, removeWeightNoise, weightNoiseAt } from './weight-noise.ts';
import { decayFactor, decayWeights } from './weight-decay.ts';
import { TaskPool, checkWorkers } from '../parallel/pool.ts';
import { DataParallelStep, dataParallelSupported, dataParallelWorthIt } from './data-parallel.ts';

export type LrSchedule = 'constant' | 'cosine' | 'cosine-steps';

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Adam learning rate: a relative step for pE, pI (see models/network/layer.ts). */
  lr: number;
  seed: number;
  solver: SpikeSolver;
  loss?: Partial<LossConfig>;
  /**
   * 'cosine' decays the rate to 5 % of lr over the run, one value per epoch; 'cosine-steps' the same
   * curve step by step, so a run of one epoch decays too (default 'constant').
   */
  schedule?: LrSchedule;
  /** Evaluate the test part after every epoch (default true when a test part is given). */
  evalEachEpoch?: boolean;
  /** Batch size for evaluation passes (default 512). */
  evalBatchSize?: number;
  /**
   * Decay of an exponential moving average of the weights (weight-average.ts), in (0, 1), e.g.
   * 0.999 (about the last 1000 steps); 0 or absent = off. When on, test metrics and the trained
   * network are the averaged weights; the optimiser's own weights are reported as test_acc_raw.
   */
  averageDecay?: number;
  /**
   * Standard deviation of Gaussian noise added to each training batch's scaled features (a fraction
   * of the input window; input-noise.ts), fresh every batch; 0 or absent = off. Evaluation never
   * sees noise.
   */
  inputNoise?: number;
  /**
   * Relative noise on every conductance during each step (weight-noise.ts), fresh every batch, ramped in over the first
   * half of the epochs (weightNoiseAt): training for a chip whose synapses miss their targets by a few per cent; 0 or
   * absent = off. Steps then run on this thread.
   */
  weightNoise?: number;
  /**
   * Decoupled weight decay (weight-decay.ts): after every step pE, pI shrink by 1 - lr * weightDecay,
   * lr being the step's scheduled rate; 0 or absent = off.
   */
  weightDecay?: number;
  /**
   * Worker threads for data-parallel steps (data-parallel.ts: the batch split across workers, their
   * gradients summed in a fixed order, so a seed and a worker count repeat); 1 or absent = every
   * step on this thread (trainStep). A network with conv layers, or one whose shards would hold less
   * than MIN_SHARD_SYNAPSE_ROWS of work (an Iris-sized network), trains on this thread.
   */
  workers?: number;
  /** A pool to run the steps on instead of one made (and closed) for this run; its size is the worker count. */
  pool?: TaskPool;
  onBatch?(p: BatchProgress): void;
  onEpoch?(m: EpochMetrics): void | Promise<void>;
  signal?: AbortSignal;
}

export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  samples: number;
  loss: number;
  acc: number;
}

export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  /** Epoch means of the loss terms (train_loss is their sum). */
  train_terms: LossTerms;
  train_acc: number;
  test_loss?: number;
  test_acc?: number;
  /** With averageDecay: the test figures of the optimiser's own (not averaged) weights. */
  test_loss_raw?: number;
  test_acc_raw?: number;
  /** Mean fraction of silent neurons per layer over the epoch's batches. */
  silent: number[];
  lr: number;
  /** Threads the steps ran on: 1, or the workers of data-parallel steps (numbers depend on it). */
  workers: number;
  seconds: number;
  samples_per_s: number;
  /** Present (true) when the run was stopped part-way through this epoch. */
  partial?: boolean;
}

/** The loss split into its terms (weighted as they enter the total). */
export interface LossTerms<T = number> {
  ce: T;
  window: T;
  dead: T;
}

export interface StepResult {
  loss: number;
  terms: LossTerms;
  correct: number;
  silent: number[];
}

export interface BatchLoss {
  loss: tf.Scalar;
  outTimes: tf.Tensor2D;
  outMask: tf.Tensor2D;
  silent: number[];
  terms: LossTerms<tf.Scalar>;
}

/** The scalar loss of one batch plus what the step reports. Runs inside the optimiser's tape. */
export function batchLoss(net: SpikingNetwork, inputTimes: tf.Tensor2D, labels: Uint8Array, solver: SpikeSolver, cfg: LossConfig): BatchLoss {
  return forwardLoss(net, net.forward(inputTimes, solver), labels, cfg, { bins: solver.resolution });
}

/** Bins of the grid the membrane terms use (silentScale > 0, deadMembrane 1) when the solver has none. */
export const MEMBRANE_BINS = 16;

/**
 * The loss of a forward pass already made (every layer's spikes and inputs), e.g. one with a chip's
 * times substituted. `bins`: the grid of the membrane terms (the training solver's, default MEMBRANE_BINS).
 */
export function forwardLoss(net: SpikingNetwork, f: NetworkForward, labels: Uint8Array, cfg: LossConfig, opts: { bins?: number } = {}): BatchLoss {
  const B = f.inputs[0]!.shape[0];
  const L = net.layers.length;
  const out = f.spikes[L - 1]!;
  const y = tf.tensor1d(Int32Array.from(labels), 'int32');
  const bins = opts.bins ?? MEMBRANE_BINS;
  let ceTimes = out.times;
  if (cfg.silentScale > 0) {
    const last = net.layers[L - 1]!;
    const u = last.horizonMembrane(f.inputs[L - 1]!, { bins, inputGrad: L > 1 });
    ceTimes = silentPseudoTimes(out, u, last.horizon, last.horizon - windowStart(net.config, L - 1), cfg.silentScale);
  }
  const ce = ttfsCrossEntropy(ceTimes, y, cfg.tauSoft);
  let win: tf.Scalar = tf.scalar(0);
  let dead: tf.Scalar = tf.scalar(0);
  const silent: number[] = [];
  for (let l = 0; l < L; l++) {
    const s = f.spikes[l]!;
    const layer = net.layers[l]!;
    const start = windowStart(net.config, l);
    if (cfg.windowWeight > 0) win = tf.add(win, tf.mul(windowPenalty(s, start, layer.horizon, cfg.windowMargin), cfg.windowWeight));
    const mask = s.mask.dataSync() as Float32Array;
    let fired = 0;
    for (let k = 0; k < mask.length; k++) fired += mask[k]!;
    silent.push(1 - fired / mask.length);
    if (cfg.deadWeight > 0) {
      // The output layer selects at most the label neuron of each sample; a hidden layer any pair.
      const output = l === L - 1;
      const sel = deadSelection(mask, B, layer.nOut, { deadRate: cfg.deadRate, labels: output ? labels : undefined });
      const candidates = cfg.deadMean === 1 ? (output ? B : B * layer.nOut) : undefined;
      if (sel)
        dead = tf.add(
          dead,
          tf.mul(deadNeuronPenalty(layer, f.inputs[l]!, sel, cfg.deadTarget, cfg.deadMembrane === 1 ? { bins } : undefined, candidates), cfg.deadWeight),
        );
    }
  }
  const loss = tf.add(tf.add(ce, win), dead) as tf.Scalar;
  return { loss, outTimes: out.times, outMask: out.mask, silent, terms: { ce, window: win, dead } };
}

/** One optimiser step on a batch; returns the batch loss (before the update) and hits. */
export function trainStep(net: SpikingNetwork, optimizer: tf.Optimizer, x: Float32Array, labels: Uint8Array, solver: SpikeSolver, cfg: LossConfig): StepResult {
  const n = labels.length;
  const inputTimes = net.encode(x, n);
  let kept: tf.Tensor[] = [];
  let silent: number[] = [];
  const cost = optimizer.minimize(
    () => {
      const r = batchLoss(net, inputTimes, labels, solver, cfg);
      kept = [r.outTimes, r.outMask, r.terms.ce, r.terms.window, r.terms.dead].map((t) => tf.keep(t));
      silent = r.silent;
      return r.loss;
    },
    true,
    net.trainableVariables(),
  )!;
  net.project();
  const loss = cost.dataSync()[0]!;
  const pred = earliestSpike(kept[0]!.dataSync(), kept[1]!.dataSync(), n, net.classes);
  let correct = 0;
  for (let b = 0; b < n; b++) if (pred[b] === labels[b]) correct++;
  const terms = { ce: kept[2]!.dataSync()[0]!, window: kept[3]!.dataSync()[0]!, dead: kept[4]!.dataSync()[0]! };
  tf.dispose([cost, inputTimes, ...kept]);
  return { loss, terms, correct, silent };
}

export function resolveLoss(partial: Partial<LossConfig> = {}): LossConfig {
  const c = { ...DEFAULT_LOSS, ...partial };
  if (!(c.tauSoft > 0)) throw new RangeError(`tauSoft must be > 0, got ${c.tauSoft}`);
  if (!(c.windowMargin > 0 && c.windowMargin < 1)) throw new RangeError(`windowMargin must lie in (0, 1), got ${c.windowMargin}`);
  if (!(c.windowWeight >= 0 && c.deadWeight >= 0)) throw new RangeError('loss weights must be >= 0');
  if (c.deadMembrane !== 0 && c.deadMembrane !== 1)
    throw new RangeError(`deadMembrane must be 0 (ideal-limit rest potential) or 1 (the model's membrane), got ${c.deadMembrane}`);
  if (c.deadMean !== 0 && c.deadMean !== 1)
    throw new RangeError(`deadMean must be 0 (mean over the selected pairs) or 1 (mean over every candidate pair), got ${c.deadMean}`);
  if (!(c.silentScale >= 0 && Number.isFinite(c.silentScale)))
    throw new RangeError(`silentScale must be finite and >= 0 (0 = silent outputs clamped), got ${c.silentScale}`);
  return c;
}

/** Cosine from lr at step 0 to 5 % of lr at the last of `steps` steps. */
function cosineRate(lr: number, step: number, steps: number): number {
  const f = steps <= 1 ? 0 : Math.min(1, step / (steps - 1));
  return lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * f)));
}

/** The rate of step `batch` (from 0) of epoch `epoch` (from 0), `nBatches` steps an epoch. */
export function scheduledRate(opts: Pick<TrainOptions, 'lr' | 'epochs' | 'schedule'>, epoch: number, batch: number, nBatches: number): number {
  const schedule = opts.schedule ?? 'constant';
  if (schedule === 'constant') return opts.lr;
  if (schedule === 'cosine') return cosineRate(opts.lr, epoch, opts.epochs);
  return cosineRate(opts.lr, epoch * nBatches + batch, opts.epochs * nBatches);
}

/** Trains in place; resolves to the per-epoch metrics. Stops after the current batch when `signal` aborts. */
export async function trainNetwork(net: SpikingNetwork, data: { train: DatasetPart; test?: DatasetPart }, opts: TrainOptions): Promise<EpochMetrics[]> {
  // tfjs-core alone registers no gradients; idempotent when the backend setup did it.
  registerGradients();
  const cfg = resolveLoss(opts.loss);
  if (!Number.isInteger(opts.epochs) || opts.epochs < 0) throw new RangeError(`epochs must be a non-negative integer, got ${opts.epochs}`);
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
  if (!(opts.lr > 0)) throw new RangeError(`lr must be > 0, got ${opts.lr}`);
  if (data.train.features !== net.features) throw new RangeError(`data has ${data.train.features} features, the network takes ${net.features}`);
  const decay = opts.averageDecay ?? 0;
  if (!(decay >= 0 && decay < 1)) throw new RangeError(`averageDecay must lie in [0, 1) (0 = off), got ${decay}`);
  const inputNoise = opts.inputNoise ?? 0;
  if (!(inputNoise >= 0 && inputNoise < 1)) throw new RangeError(`inputNoise must lie in [0, 1) (a fraction of the input window; 0 = off), got ${inputNoise}`);
  const weightDecay = opts.weightDecay ?? 0;
  decayFactor(opts.lr, weightDecay);
  const weightNoise = checkWeightNoise(opts.weightNoise ?? 0);
  const average = decay > 0 ? new WeightAverage(net.trainableVariables(), decay) : undefined;
  const workers = opts.pool?.workers ?? checkWorkers(opts.workers ?? 1);
  // An explicit pool is used whatever the size; `workers` only where the shards are worth it.
  const ownPool = !opts.pool && weightNoise === 0 && dataParallelWorthIt(net, opts.batchSize, workers) ? new TaskPool(workers) : undefined;
  const pool = opts.pool ?? ownPool;
  // The workers' training loop keeps its own copy of the weights between steps: no noise there.
  const parallel =
    pool && pool.workers > 1 && weightNoise === 0 && dataParallelSupported(net)
      ? new DataParallelStep(net, pool, { solver: opts.solver, loss: cfg, maxBatch: opts.batchSize })
      : undefined;
  const optimizer = tf.train.adam(opts.lr);
  const setLr = (lr: number) => ((optimizer as unknown as { learningRate: number }).learningRate = lr);
  const history: EpochMetrics[] = [];
  const nBatches = Math.ceil(data.train.n / opts.batchSize);
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const firstLr = scheduledRate(opts, epoch, 0, nBatches);
      let lr = firstLr;
      setLr(lr);
      let shrink = decayFactor(lr, weightDecay);
      const t0 = performance.now();
      let lossSum = 0;
      const termSum: LossTerms = { ce: 0, window: 0, dead: 0 };
      let correct = 0;
      let seen = 0;
      const silentSum = new Array<number>(net.layers.length).fill(0);
      let batch = 0;
      for (const b of batches(data.train, opts.batchSize, { seed: opts.seed, epoch })) {
        if (opts.signal?.aborted) break;
        if (opts.schedule === 'cosine-steps' && batch > 0) {
          lr = scheduledRate(opts, epoch, batch, nBatches);
          setLr(lr);
          shrink = decayFactor(lr, weightDecay);
        }
        const x = noisyInputs(b.x, { std: inputNoise, seed: opts.seed, epoch, batch, keepZeros: net.config.silentZeros });
        let r: StepResult;
        if (parallel) {
          try {
            r = await parallel.step(optimizer, x, b.y, opts.signal);
          } catch (err) {
            // A step cut short by the signal is dropped whole: no partial update.
            if (opts.signal?.aborted) break;
            throw err;
          }
        } else {
          const vars = net.trainableVariables();
          const noise = addWeightNoise(vars, { std: weightNoiseAt(weightNoise, epoch, opts.epochs), seed: opts.seed, epoch, batch });
          try {
            r = trainStep(net, optimizer, x, b.y, opts.solver, cfg);
          } finally {
            // Off again even when the step throws: the network is never left at its noisy weights.
            if (noise.length) {
              removeWeightNoise(vars, noise);
              net.project();
            }
          }
        }
        if (!Number.isFinite(r.loss)) throw new Error(`loss became ${r.loss} at epoch ${epoch + 1}, batch ${batch + 1}; lower --lr`);
        decayWeights(net.trainableVariables(), shrink);
        average?.update();
        lossSum += r.loss * b.size;
        termSum.ce += r.terms.ce * b.size;
        termSum.window += r.terms.window * b.size;
        termSum.dead += r.terms.dead * b.size;
        correct += r.correct;
        seen += b.size;
        r.silent.forEach((s, l) => (silentSum[l]! += s));
        batch++;
        opts.onBatch?.({ epoch, batch, batches: nBatches, samples: seen, loss: lossSum / seen, acc: correct / seen });
        await yieldToEventLoop();
      }
      if (seen === 0) break;
      const seconds = (performance.now() - t0) / 1000;
      const m: EpochMetrics = {
        epoch: epoch + 1,
        train_loss: lossSum / seen,
        train_terms: { ce: termSum.ce / seen, window: termSum.window / seen, dead: termSum.dead / seen },
        train_acc: correct / seen,
        silent: silentSum.map((s) => s / batch),
        lr: firstLr,
        workers: parallel?.workers ?? 1,
        seconds,
        samples_per_s: seen / seconds,
        ...(batch < nBatches ? { partial: true } : {}),
      };
      if (data.test && (opts.evalEachEpoch ?? true) && !opts.signal?.aborted) {
        const test = data.test;
        const evaluate = (): Evaluation => evaluateNetwork(net, test, opts.solver, { batchSize: opts.evalBatchSize, tauSoft: cfg.tauSoft });
        const e = average ? average.withAverage(evaluate) : evaluate();
        m.test_loss = e.loss;
        m.test_acc = e.acc;
        if (average) {
          const raw = evaluate();
          m.test_loss_raw = raw.loss;
          m.test_acc_raw = raw.acc;
        }
      }
      history.push(m);
      await opts.onEpoch?.(m);
      if (opts.signal?.aborted) break;
    }
  } finally {
    // The data-parallel loop holds the pool's threads until stopped (a caller's pool outlives this run).
    await parallel?.close();
    await ownPool?.close();
    optimizer.dispose();
    // The averaged weights are the trained network (also after an abort: they are what was reported).
    if (average && average.updates > 0) average.commit();
    average?.dispose();
  }
  return history;
}
