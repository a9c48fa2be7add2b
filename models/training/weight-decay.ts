/**
 * Decoupled weight decay (AdamW, Loshchilov & Hutter): after each Adam step every trainable
 * variable shrinks by the factor 1 - lr * weightDecay, apart from the gradient. Adam's steps are
 * relative (layer.ts), so an L2 term in the loss would be rescaled by Adam's second-moment
 * estimate and decay rarely-updated synapses least; the decoupled form shrinks every one alike.
 *
 * On the chip's physics the shrink acts on pE and pI, i.e. on the conductances gE, gI: it pulls
 * synapses toward a switched-off transistor (the bottom DAC code) and never below it, since the
 * factor lies in (0, 1] and the projection onto pE, pI >= 0 has already run.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The factor one step multiplies the weights by; throws when the decay would flip or zero them. */
export function decayFactor(lr: number, weightDecay: number): number {
  if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) throw new RangeError(`weightDecay must be finite and >= 0 (0 = off), got ${weightDecay}`);
  const f = 1 - lr * weightDecay;
  if (!(f > 0))
    throw new RangeError(
      `lr * weightDecay must be below 1 (every step multiplies the weights by 1 - lr * weightDecay), got lr ${lr}, weightDecay ${weightDecay}`,
    );
  return f;
}

/** Multiplies every variable by `factor` in place (no-op at 1). */
export function decayWeights(vars: readonly tf.Variable[], factor: number): void {
  if (factor === 1) return;
  tf.tidy(() => {
    for (const v of vars) v.assign(tf.mul(v, factor));
  });
}
