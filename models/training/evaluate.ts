/**
 * Evaluation of a spiking network on a data set part: accuracy (earliest output spike; a sample
 * with every output silent counts as wrong), the cross-entropy the trainer minimises, and the
 * predictions themselves. Forward passes only, in batches, no gradients.
 */

import type { DatasetPart } from '../datasets/types.ts';
import { earliestSpike, type SpikingNetwork } from '../network/network.ts';
import type { SpikeSolver } from '../network/solver.ts';
import { crossEntropyOf, DEFAULT_LOSS } from './losses.ts';

export interface Evaluation {
  acc: number;
  loss: number;
  n: number;
  predictions: Int32Array;
  /** Samples with no output spike at all. */
  noSpike: number;
}

export function evaluateNetwork(
  net: SpikingNetwork,
  part: Pick<DatasetPart, 'x' | 'y' | 'n' | 'features'>,
  solver: SpikeSolver,
  /** onBatch(samples) after each batch: for a progress bar over long evaluations. */
  opts: { batchSize?: number; tauSoft?: number; limit?: number; onBatch?: (samples: number) => void } = {},
): Evaluation {
  const bs = opts.batchSize ?? 512;
  const n = Math.min(part.n, opts.limit ?? part.n);
  const K = net.classes;
  const predictions = new Int32Array(n);
  let lossSum = 0;
  let correct = 0;
  let noSpike = 0;
  for (let s = 0; s < n; s += bs) {
    const e = Math.min(n, s + bs);
    const o = net.outputs(part.x.subarray(s * part.features, e * part.features), e - s, solver);
    const labels = part.y.subarray(s, e);
    const pred = earliestSpike(o.times, o.mask, e - s, K);
    predictions.set(pred, s);
    lossSum += crossEntropyOf(o.times, labels, e - s, K, opts.tauSoft ?? DEFAULT_LOSS.tauSoft) * (e - s);
    for (let b = 0; b < e - s; b++) {
      if (pred[b] === labels[b]) correct++;
      if (pred[b] === -1) noSpike++;
    }
    opts.onBatch?.(e - s);
  }
  return { acc: n ? correct / n : 0, loss: n ? lossSum / n : 0, n, predictions, noSpike };
}
