/**
 * Confusion matrices of a classifier whose answer may be "no spike": rows are the true class,
 * columns the predicted class, and one column more counts the samples with no output spike at all
 * (prediction -1, models/network/network.ts earliestSpike). Which classes a network mixes up, and
 * whether its errors are wrong spikes or silence, is what a lab looks at before it trusts a
 * deployment; the overall accuracy hides both.
 */

export interface ConfusionMatrix {
  classes: number;
  /** Row-major [classes, classes + 1]: counts[t * (classes + 1) + p]; column `classes` = no spike. */
  counts: Uint32Array;
  /** Samples counted. */
  n: number;
}

/** Counts (label, prediction) pairs; predictions are class indices or -1 (no output spike). */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number): ConfusionMatrix {
  if (!Number.isInteger(classes) || classes < 1) throw new RangeError(`confusion: classes must be a whole number >= 1, got ${classes}`);
  if (labels.length !== predictions.length) {
    throw new RangeError(`confusion: ${labels.length} labels but ${predictions.length} predictions; pass one prediction per sample`);
  }
  const cols = classes + 1;
  const counts = new Uint32Array(classes * cols);
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]!;
    const p = predictions[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= classes) throw new RangeError(`confusion: label ${i} is ${t}; labels must be class indices 0..${classes - 1}`);
    if (!Number.isInteger(p) || p < -1 || p >= classes) {
      throw new RangeError(`confusion: prediction ${i} is ${p}; predictions must be class indices 0..${classes - 1} or -1 (no spike)`);
    }
    counts[t * cols + (p < 0 ? classes : p)]!++;
  }
  return { classes, counts, n: labels.length };
}

/** Sum of matrices over the same classes (e.g. the held-out folds of a cross-validation). */
export function addConfusion(a: ConfusionMatrix, b: ConfusionMatrix): ConfusionMatrix {
  if (a.classes !== b.classes) throw new RangeError(`confusion: cannot add a ${a.classes}-class matrix to a ${b.classes}-class one`);
  const counts = new Uint32Array(a.counts.length);
  for (let k = 0; k < counts.length; k++) counts[k] = a.counts[k]! + b.counts[k]!;
  return { classes: a.classes, counts, n: a.n + b.n };
}

export interface ClassFigures {
  /** Samples of this class. */
  support: number;
  /** Right answers / support (recall); NaN without samples. */
  recall: number;
  /** Right answers / all predictions of this class; NaN when the class was never predicted. */
  precision: number;
  /** Samples of this class with no output spike. */
  noSpike: number;
  /** The wrong class this class is most often taken for (-1 when it never is), and how often. */
  confusedWith: number;
  confusedCount: number;
}

/** Per-class recall, precision, silence and the most frequent confusion. */
export function classFigures(cm: ConfusionMatrix): ClassFigures[] {
  const { classes, counts } = cm;
  const cols = classes + 1;
  const predicted = new Float64Array(classes);
  for (let t = 0; t < classes; t++) for (let p = 0; p < classes; p++) predicted[p] += counts[t * cols + p]!;
  const out: ClassFigures[] = [];
  for (let t = 0; t < classes; t++) {
    let support = 0;
    let confusedWith = -1;
    let confusedCount = 0;
    for (let p = 0; p <= classes; p++) {
      const c = counts[t * cols + p]!;
      support += c;
      // Ties go to the lower class index, so the figure does not depend on iteration details.
      if (p !== t && p < classes && c > confusedCount) {
        confusedCount = c;
        confusedWith = p;
      }
    }
    const right = counts[t * cols + t]!;
    out.push({
      support,
      recall: support > 0 ? right / support : NaN,
      precision: predicted[t]! > 0 ? right / predicted[t]! : NaN,
      noSpike: counts[t * cols + classes]!,
      confusedWith,
      confusedCount,
    });
  }
  return out;
}

/** Right answers / samples (no spike counts as wrong); NaN for an empty matrix. */
export function confusionAccuracy(cm: ConfusionMatrix): number {
  let right = 0;
  for (let t = 0; t < cm.classes; t++) right += cm.counts[t * (cm.classes + 1) + t]!;
  return cm.n > 0 ? right / cm.n : NaN;
}

/** Plain-JSON form for run folders: rows of counts per true class, the last entry of a row = no spike. */
export function confusionJson(cm: ConfusionMatrix, classNames: readonly string[]): { classes: string[]; columns: string[]; rows: number[][]; n: number } {
  if (classNames.length !== cm.classes) throw new RangeError(`confusion: ${classNames.length} class names for ${cm.classes} classes`);
  const cols = cm.classes + 1;
  return {
    classes: [...classNames],
    columns: [...classNames, 'no spike'],
    rows: Array.from({ length: cm.classes }, (_, t) => Array.from(cm.counts.subarray(t * cols, (t + 1) * cols))),
    n: cm.n,
  };
}
