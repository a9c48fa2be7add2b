/**
 * Per-feature min-max scaling to [0, 1]. The statistics come from chosen rows only (a training
 * part, or a cross-validation fold's training folds), so held-out samples never shape them;
 * held-out values outside that range are clipped.
 */

export interface MinMax {
  min: number[];
  max: number[];
}

/** Per-feature min and max over `rows` of the row-major `x` (n x features). */
export function fitMinMax(x: ArrayLike<number>, features: number, rows: ArrayLike<number>): MinMax {
  const min = Array<number>(features).fill(Infinity);
  const max = Array<number>(features).fill(-Infinity);
  for (let r = 0; r < rows.length; r++) {
    const o = rows[r]! * features;
    for (let f = 0; f < features; f++) {
      const v = x[o + f]!;
      if (v < min[f]!) min[f] = v;
      if (v > max[f]!) max[f] = v;
    }
  }
  return { min, max };
}

/** Rows `rows` of `x`, scaled with `s` and clipped to [0, 1]; a constant feature becomes 0. */
export function applyMinMax(x: ArrayLike<number>, features: number, rows: ArrayLike<number>, s: MinMax): Float32Array {
  const out = new Float32Array(rows.length * features);
  for (let r = 0; r < rows.length; r++) {
    const o = rows[r]! * features;
    for (let f = 0; f < features; f++) {
      const span = s.max[f]! - s.min[f]!;
      const v = span > 0 ? (x[o + f]! - s.min[f]!) / span : 0;
      out[r * features + f] = Math.min(1, Math.max(0, v));
    }
  }
  return out;
}
