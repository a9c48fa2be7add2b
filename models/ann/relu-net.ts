/**
 * A ReLU network trained in tfjs: the "train an ideal network, then map it" baseline
 * (ANN-to-IMC) of docs/MODEL.md §10. Dense layers from a list of widths, or conv, pool and dense
 * layers from an architecture (models/network/arch.ts), the same layers the spiking network has.
 *
 * Every layer computes z = a W + b (a convolution for conv layers: one kernel shared by every
 * position, one bias per channel). With `rowSum` set, the weights of each neuron (each conv
 * channel's kernel) are parametrised so that they sum to exactly `rowSum` (W = V - mean V +
 * rowSum / fanIn): that is the condition under which a time-to-first-spike network of non-leaky
 * integrate-and-fire neurons reproduces the ReLU network exactly (mapping.ts), so the ANN is
 * trained inside the family the ideal mapping can represent. Hidden layers use ReLU, a pool entry
 * takes the maximum activation of each window (the earliest spike: min-pool.ts), the last layer
 * is linear (softmax cross-entropy). Deterministic for a seed.
 */

import * as tf from '@tensorflow/tfjs-core';
import { batches } from '../datasets/batching.ts';
import { conv2dShared } from '../conv/conv-op.ts';
import type { ConvGeometry } from '../conv/geometry.ts';
import { deriveSeed, Rng } from '../datasets/rng.ts';
import type { DatasetPart } from '../datasets/types.ts';
import { compileArchitecture, type Architecture, type CompiledLayer } from '../network/arch.ts';
import { matMul } from '../tf/matmul.ts';
import { registerGradients } from '../tf/gradients.ts';

export interface ReluNetOptions {
  /** Flat widths, inputs first; with `arch`, they must be the architecture's (or omitted). */
  sizes?: number[];
  /** Conv, pool and dense layers instead of dense layers of `sizes`. */
  arch?: Architecture;
  seed: number;
  /** Constrain each neuron's weights to sum to this value (undefined = unconstrained). */
  rowSum?: number;
}

export interface AnnDenseWeights {
  kind?: 'dense';
  nIn: number;
  nOut: number;
  /** nIn x nOut row-major: W[j * nOut + i] is input j to neuron i. */
  w: Float32Array;
  b: Float32Array;
}

export interface AnnConvWeights {
  kind: 'conv';
  geometry: ConvGeometry;
  /** Max-pooling window after the ReLU (1 = none). */
  pool: number;
  /** Flat widths: the input image and the (pooled) output map, NHWC. */
  nIn: number;
  nOut: number;
  /** HWIO kernel [kernelH, kernelW, inC, channels], flat. */
  w: Float32Array;
  /** One bias per channel. */
  b: Float32Array;
}

export type AnnLayerWeights = AnnDenseWeights | AnnConvWeights;

/** Inputs per neuron of a weight tensor whose last axis is the neurons (a dense [nIn, nOut] or an HWIO kernel). */
function fanInOf(shape: readonly number[]): number {
  return shape.slice(0, -1).reduce((a, c) => a * c, 1);
}

export class ReluNet {
  readonly sizes: number[];
  readonly arch?: Architecture;
  /** The neuron layers (dense ones for a list of widths). */
  readonly layers: CompiledLayer[];
  readonly rowSum?: number;
  /** Per layer: [nIn, nOut] for dense layers, the HWIO kernel for conv layers. */
  readonly v: tf.Variable[];
  readonly b: tf.Variable<tf.Rank.R1>[];

  constructor(opts: ReluNetOptions) {
    const { seed } = opts;
    const compiled = opts.arch ? compileArchitecture(opts.arch) : undefined;
    const sizes = compiled?.sizes ?? opts.sizes ?? [];
    if (compiled && opts.sizes && JSON.stringify(opts.sizes) !== JSON.stringify(compiled.sizes)) {
      throw new RangeError(`sizes ${JSON.stringify(opts.sizes)} are not the architecture's ${JSON.stringify(compiled.sizes)}; omit sizes`);
    }
    if (sizes.length < 2 || !sizes.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new RangeError(`sizes must be >= 2 positive integers, got ${JSON.stringify(sizes)}`);
    }
    if (opts.rowSum !== undefined && !Number.isFinite(opts.rowSum)) throw new RangeError(`rowSum must be finite, got ${opts.rowSum}`);
    this.sizes = [...sizes];
    this.arch = opts.arch;
    this.layers = compiled?.layers ?? sizes.slice(1).map((nOut, l) => ({ kind: 'dense' as const, nIn: sizes[l]!, nOut }));
    this.rowSum = opts.rowSum;
    this.v = [];
    this.b = [];
    this.layers.forEach((L, l) => {
      const shape = L.kind === 'conv' ? [L.geometry.kernelH, L.geometry.kernelW, L.geometry.inC, L.geometry.channels] : [L.nIn, L.nOut];
      const fanIn = fanInOf(shape);
      const size = fanIn * shape[shape.length - 1]!;
      const rng = new Rng(deriveSeed(seed, l, 0xa22));
      // He initialisation for ReLU layers.
      const std = Math.sqrt(2 / fanIn);
      const w = Float32Array.from({ length: size }, () => rng.normal(0, std));
      const t = tf.tensor(w, shape);
      this.v.push(tf.variable(t, true));
      t.dispose();
      const z = tf.zeros([shape[shape.length - 1]!]) as tf.Tensor1D;
      this.b.push(tf.variable(z, true));
      z.dispose();
    });
  }

  /** Effective weights of layer l (the row-sum constraint applied over each neuron's fan-in). */
  weights(l: number): tf.Tensor {
    const v = this.v[l]!;
    if (this.rowSum === undefined) return v;
    const axes = v.shape.slice(0, -1).map((_, i) => i);
    return tf.add(tf.sub(v, tf.mean(v, axes, true)), this.rowSum / fanInOf(v.shape));
  }

  /** Logits [B, classes], every hidden layer's ReLU output and pre-activation (flat, NHWC). */
  forward(x: tf.Tensor2D): { logits: tf.Tensor2D; hidden: tf.Tensor2D[]; pre: tf.Tensor2D[] } {
    const hidden: tf.Tensor2D[] = [];
    const pre: tf.Tensor2D[] = [];
    const B = x.shape[0];
    let a: tf.Tensor = x;
    for (let l = 0; l < this.layers.length; l++) {
      const L = this.layers[l]!;
      let z: tf.Tensor;
      if (L.kind === 'conv') {
        const g = L.geometry;
        const img = tf.reshape(a, [B, g.inH, g.inW, g.inC]) as tf.Tensor4D;
        z = tf.add(conv2dShared(img, this.weights(l) as tf.Tensor4D, g.stride, g.padding, l > 0), this.b[l]!);
      } else {
        z = tf.add(matMul(tf.reshape(a, [B, L.nIn]) as tf.Tensor2D, this.weights(l) as tf.Tensor2D), this.b[l]!);
      }
      if (l + 1 === this.layers.length) return { logits: z as tf.Tensor2D, hidden, pre };
      pre.push(tf.reshape(z, [B, -1]) as tf.Tensor2D);
      a = tf.relu(z);
      // tf's own max pool, not min-pool.ts's: ReLU outputs are >= 0, so the wasm gradient gap that one works around cannot arise.
      if (L.kind === 'conv' && L.pool > 1) a = tf.maxPool(a as tf.Tensor4D, L.pool, L.pool, 'valid');
      a = tf.reshape(a, [B, L.nOut]);
      hidden.push(a as tf.Tensor2D);
    }
    throw new Error('unreachable');
  }

  predict(x: Float32Array, n: number, batchSize = 1024): Int32Array {
    const out = new Int32Array(n);
    const f = this.sizes[0]!;
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      const p = tf.tidy(() => tf.argMax(this.forward(tf.tensor2d(x.subarray(s * f, e * f), [e - s, f])).logits, 1).dataSync());
      out.set(p, s);
    }
    return out;
  }

  accuracy(part: Pick<DatasetPart, 'x' | 'y' | 'n'>): number {
    const p = this.predict(part.x, part.n);
    let c = 0;
    for (let i = 0; i < part.n; i++) if (p[i] === part.y[i]) c++;
    return part.n ? c / part.n : 0;
  }

  layerWeights(): AnnLayerWeights[] {
    return this.layers.map((L, l): AnnLayerWeights => {
      const w = tf.tidy(() => Float32Array.from(this.weights(l).dataSync()));
      const b = Float32Array.from(this.b[l]!.dataSync());
      return L.kind === 'conv' ? { kind: 'conv', geometry: L.geometry, pool: L.pool, nIn: L.nIn, nOut: L.nOut, w, b } : { nIn: L.nIn, nOut: L.nOut, w, b };
    });
  }

  variables(): tf.Variable[] {
    return [...this.v, ...this.b];
  }

  dispose(): void {
    tf.dispose([...this.v, ...this.b]);
  }
}

export interface AnnTrainOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** L2 penalty on the weights (default 0). */
  weightDecay?: number;
  /**
   * Weight of mean(relu(-z)) over hidden pre-activations (default 0). A hidden unit at zero
   * activation is where the ideal mapping departs from the ANN (mapping.ts): a spiking neuron
   * cannot fire exactly at its window's end. This term keeps units in their linear range.
   */
  activeWeight?: number;
  onEpoch?(m: { epoch: number; train_loss: number; train_acc: number; test_acc?: number }): void;
  signal?: AbortSignal;
}

export async function trainReluNet(
  net: ReluNet,
  data: { train: DatasetPart; test?: DatasetPart },
  opts: AnnTrainOptions,
): Promise<{ epoch: number; train_loss: number; train_acc: number; test_acc?: number }[]> {
  // tfjs-core alone registers no gradients; idempotent when the backend setup did it.
  registerGradients();
  const opt = tf.train.adam(opts.lr);
  const history: { epoch: number; train_loss: number; train_acc: number; test_acc?: number }[] = [];
  const f = net.sizes[0]!;
  const K = net.sizes[net.sizes.length - 1]!;
  try {
    for (let epoch = 0; epoch < opts.epochs && !opts.signal?.aborted; epoch++) {
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (const b of batches(data.train, opts.batchSize, { seed: opts.seed, epoch })) {
        const x = tf.tensor2d(b.x, [b.size, f]);
        const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Int32Array.from(b.y), 'int32'), K));
        let pred: tf.Tensor | null = null;
        const cost = opt.minimize(
          () => {
            const { logits, pre } = net.forward(x);
            pred = tf.keep(tf.argMax(logits, 1));
            let loss = tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), 1)));
            if (opts.activeWeight) {
              for (const z of pre) loss = tf.add(loss, tf.mul(tf.mean(tf.relu(tf.neg(z))), opts.activeWeight));
            }
            if (opts.weightDecay) {
              for (let l = 0; l < net.v.length; l++) loss = tf.add(loss, tf.mul(tf.sum(tf.square(net.weights(l))), opts.weightDecay));
            }
            return loss as tf.Scalar;
          },
          true,
          net.variables(),
        )!;
        lossSum += cost.dataSync()[0]! * b.size;
        const p = pred!.dataSync();
        for (let i = 0; i < b.size; i++) if (p[i] === b.y[i]) correct++;
        seen += b.size;
        tf.dispose([x, y, cost, pred!]);
        await new Promise<void>((r) => setImmediate(r));
      }
      const m = { epoch: epoch + 1, train_loss: lossSum / seen, train_acc: correct / seen, test_acc: data.test ? net.accuracy(data.test) : undefined };
      history.push(m);
      opts.onEpoch?.(m);
    }
  } finally {
    opt.dispose();
  }
  return history;
}
