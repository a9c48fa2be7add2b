/**
 * Exponential moving average of a network's trainable variables (Polyak averaging), kept beside
 * the optimiser's own weights. The test accuracy of a spiking network moves by tenths of a point
 * between neighbouring epochs even at the end of a cosine schedule (a weight change that moves a
 * neuron across its threshold silences or revives it for whole groups of samples); the average
 * smooths that noise out of the deployed network without changing what the optimiser does.
 *
 * The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates, so the first averages are
 * not dominated by the initialisation. An average of non-negative conductances stays non-negative,
 * so no projection is needed.
 */

import * as tf from '@tensorflow/tfjs-core';

export class WeightAverage {
  readonly decay: number;
  private readonly vars: tf.Variable[];
  private readonly avg: tf.Variable[];
  private n = 0;

  constructor(vars: tf.Variable[], decay: number) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`the averaging decay must lie in (0, 1), e.g. 0.999, got ${decay}`);
    this.decay = decay;
    this.vars = vars;
    // A variable made from a tensor shares its data until the first assign replaces it.
    this.avg = vars.map((v) => tf.variable(v, false));
  }

  /** Updates seen so far. */
  get updates(): number {
    return this.n;
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    return Math.min(this.decay, (1 + this.n) / (10 + this.n));
  }

  /** avg = d * avg + (1 - d) * w for every variable; call after each optimiser step (and projection). */
  update(): void {
    const d = this.currentDecay();
    tf.tidy(() => {
      this.avg.forEach((a, i) => a.assign(tf.add(tf.mul(a, d), tf.mul(this.vars[i]!, 1 - d))));
    });
    this.n++;
  }

  /** Runs `fn` with the averaged weights in the network, then puts the optimiser's weights back. */
  withAverage<T>(fn: () => T): T {
    const saved = this.vars.map((v) => v.clone() as tf.Tensor);
    try {
      this.vars.forEach((v, i) => v.assign(this.avg[i]!));
      return fn();
    } finally {
      this.vars.forEach((v, i) => v.assign(saved[i]!));
      tf.dispose(saved);
    }
  }

  /** Writes the averaged weights into the network for good (the end of training). */
  commit(): void {
    this.vars.forEach((v, i) => v.assign(this.avg[i]!));
  }

  dispose(): void {
    tf.dispose(this.avg);
  }
}
