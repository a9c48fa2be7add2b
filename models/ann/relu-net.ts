/**
 * A ReLU multilayer perceptron trained in tfjs: the "train an ideal network, then map it" baseline
 * (ANN-to-IMC) of docs/MODEL.md §10.
 *
 * Every layer computes z = a W + b. With `rowSum` set, the weights of each neuron are
 * parametrised so that they sum to exactly `rowSum` (W = V - mean_j V + rowSum / nIn): that is
 * the condition under which a time-to-first-spike network of non-leaky integrate-and-fire
 * neurons reproduces the ReLU network exactly (mapping.ts), so the ANN is trained inside the
 * family the ideal mapping can represent. Hidden layers use ReLU, the last layer is linear
 * (softmax cross-entropy). Deterministic for a seed.
 */

import * as tf from '@tensorflow/tfjs-core';
import { batches } from '../datasets/batching.ts';
import { deriveSeed, Rng } from '../datasets/rng.ts';
import type { DatasetPart } from '../datasets/types.ts';
import { matMul } from '../tf/matmul.ts';
import { registerGradients } from '../tf/gradients.ts';

export interface ReluNetOptions {
  sizes: number[];
  seed: number;
  /** Constrain each neuron's weights to sum to this value (undefined = unconstrained). */
  rowSum?: number;
}

export interface AnnLayerWeights {
  nIn: number;
  nOut: number;
  /** nIn x nOut row-major: W[j * nOut + i] is input j to neuron i. */
  w: Float32Array;
  b: Float32Array;
}

export class ReluNet {
  readonly sizes: number[];
  readonly rowSum?: number;
  readonly v: tf.Variable<tf.Rank.R2>[];
  readonly b: tf.Variable<tf.Rank.R1>[];

  constructor(opts: ReluNetOptions) {
    const { sizes, seed } = opts;
    if (sizes.length < 2 || !sizes.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new RangeError(`sizes must be >= 2 positive integers, got ${JSON.stringify(sizes)}`);
    }
    if (opts.rowSum !== undefined && !Number.isFinite(opts.rowSum)) throw new RangeError(`rowSum must be finite, got ${opts.rowSum}`);
    this.sizes = [...sizes];
    this.rowSum = opts.rowSum;
    this.v = [];
    this.b = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nIn = sizes[l]!;
      const nOut = sizes[l + 1]!;
      const rng = new Rng(deriveSeed(seed, l, 0xa22));
      // He initialisation for ReLU layers.
      const std = Math.sqrt(2 / nIn);
      const w = Float32Array.from({ length: nIn * nOut }, () => rng.normal(0, std));
      const t = tf.tensor2d(w, [nIn, nOut]);
      this.v.push(tf.variable(t, true));
      t.dispose();
      const z = tf.zeros([nOut]) as tf.Tensor1D;
      this.b.push(tf.variable(z, true));
      z.dispose();
    }
  }

  /** Effective weights of layer l (the row-sum constraint applied). */
  weights(l: number): tf.Tensor2D {
    const v = this.v[l]!;
    if (this.rowSum === undefined) return v;
    const nIn = v.shape[0];
    return tf.add(tf.sub(v, tf.mean(v, 0, true)), this.rowSum / nIn) as tf.Tensor2D;
  }

  /** Logits [B, classes], every hidden layer's ReLU output and pre-activation. */
  forward(x: tf.Tensor2D): { logits: tf.Tensor2D; hidden: tf.Tensor2D[]; pre: tf.Tensor2D[] } {
    const hidden: tf.Tensor2D[] = [];
    const pre: tf.Tensor2D[] = [];
    let a = x;
    for (let l = 0; l < this.v.length; l++) {
      const z = tf.add(matMul(a, this.weights(l)), this.b[l]!) as tf.Tensor2D;
      if (l + 1 === this.v.length) return { logits: z, hidden, pre };
      pre.push(z);
      a = tf.relu(z);
      hidden.push(a);
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
    return this.v.map((_, l) =>
      tf.tidy(() => ({
        nIn: this.sizes[l]!,
        nOut: this.sizes[l + 1]!,
        w: Float32Array.from(this.weights(l).dataSync()),
        b: Float32Array.from(this.b[l]!.dataSync()),
      })),
    );
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
