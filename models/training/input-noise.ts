/**
 * Gaussian noise on a batch's scaled features before they are coded as spike times: a
 * regulariser for small data sets (Iris has 105 training samples), and the same thing as
 * training for input-timer jitter, since a feature x in [0, 1] spikes at tIn * (1 - x).
 *
 * Deterministic: the noise of (seed, epoch, batch) comes from its own sub-stream, so a run
 * repeats exactly and turning the noise on does not move the batch order.
 */
import { deriveSeed, Rng } from '../datasets/rng.ts';

/** Stream tag for the noise sub-stream ("nois"), so it never collides with other derived seeds. */
const NOISE_STREAM = 0x6e6f6973;

export interface InputNoiseOptions {
  /** Standard deviation in feature units (a fraction of the input window); 0 = off. */
  std: number;
  seed: number;
  epoch: number;
  batch: number;
  /**
   * Keep values <= 0 at 0: with NetworkConfig.silentZeros they are silent inputs (image
   * background), and noise must not turn a silent input line into a spiking one.
   */
  keepZeros: boolean;
}

/** A noisy copy of row-major features `x`, clipped to [0, 1]; `x` itself is unchanged. */
export function noisyInputs(x: Float32Array, o: InputNoiseOptions): Float32Array {
  if (!(o.std >= 0 && Number.isFinite(o.std))) throw new RangeError(`input noise std must be finite and >= 0 (0 = off), got ${o.std}`);
  if (o.std === 0) return x;
  const rng = new Rng(deriveSeed(o.seed, NOISE_STREAM, o.epoch, o.batch));
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (o.keepZeros && v <= 0) continue;
    const w = v + rng.normal(0, o.std);
    out[i] = w < 0 ? 0 : w > 1 ? 1 : w;
  }
  return out;
}
