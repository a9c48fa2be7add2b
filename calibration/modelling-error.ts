/**
 * Modelling-error figures: held-out spike-time residuals of a fitted model, their RMSE, per-neuron
 * summaries, and the measurement floor they are judged against.
 *
 * The floor: a timer floors each edge to whole ticks (uniform error, rms tick / sqrt(12)) after the
 * chip adds its own edge jitter (sigma_j), so no model can predict a measured tick better than
 * sqrt(1/12 + sigma_j^2) ticks rms. sigma_j is estimated from the held-out set measured twice: the
 * mean squared difference of the two readings of the same edge is h(sigma_j) = 2 E_x Var(floor(x + e)),
 * x uniform over a tick, e ~ N(0, sigma_j^2), which `jitterFromRepeats` inverts.
 */

export interface ResidualSet {
  /** Predicted and measured times in ticks (tick centres for measured), pairs of fired measurements. */
  predicted: number[];
  measured: number[];
  layer: number[];
  neuron: number[];
  /** Which of the neuron's held-out patterns each pair is (index into its held-out set). */
  pattern: number[];
}

export function emptyResiduals(): ResidualSet {
  return { predicted: [], measured: [], layer: [], neuron: [], pattern: [] };
}

/** RMSE in ticks over every pair. */
export function rmseTicks(r: ResidualSet): number {
  let s = 0;
  for (let k = 0; k < r.predicted.length; k++) s += (r.predicted[k] - r.measured[k]) ** 2;
  return r.predicted.length ? Math.sqrt(s / r.predicted.length) : NaN;
}

export interface NeuronResidual {
  layer: number;
  neuron: number;
  count: number;
  /** Mean and rms of predicted - measured, ticks. */
  bias: number;
  rmse: number;
}

/** Per (layer, neuron) bias and RMSE. */
export function perNeuron(r: ResidualSet): NeuronResidual[] {
  const map = new Map<string, { layer: number; neuron: number; n: number; s: number; s2: number }>();
  for (let k = 0; k < r.predicted.length; k++) {
    const key = `${r.layer[k]}.${r.neuron[k]}`;
    let e = map.get(key);
    if (!e) map.set(key, (e = { layer: r.layer[k], neuron: r.neuron[k], n: 0, s: 0, s2: 0 }));
    const d = r.predicted[k] - r.measured[k];
    e.n++;
    e.s += d;
    e.s2 += d * d;
  }
  return [...map.values()]
    .sort((a, b) => a.layer - b.layer || a.neuron - b.neuron)
    .map((e) => ({ layer: e.layer, neuron: e.neuron, count: e.n, bias: e.s / e.n, rmse: Math.sqrt(e.s2 / e.n) }));
}

/**
 * How much of the squared error the worst pairs carry. An RMSE over spike times is a tail statistic:
 * a pattern whose membrane only just reaches threshold moves by several ticks for a 0.1 % change of
 * one conductance (33 ticks for 0.43 % on one die), so a few such patterns can set the figure while
 * the rest sit at the floor.
 */
export interface ErrorTail {
  /** Indices of the worst pairs (largest |predicted - measured|), worst first. */
  worst: number[];
  /** Their share of the summed squared error, 0..1 (0 when there is no error at all). */
  share: number;
  /** RMSE of the other pairs, ticks (NaN when none are left). */
  rmseRestTicks: number;
}

/** The worst `fraction` of the pairs (at least one when there are any) and what they carry. */
export function errorTail(r: ResidualSet, fraction: number): ErrorTail {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction must be in [0, 1], got ${fraction}`);
  const n = r.predicted.length;
  const sq = r.predicted.map((p, k) => (p - r.measured[k]) ** 2);
  const order = sq.map((_, k) => k).sort((a, b) => sq[b] - sq[a]);
  const count = n ? Math.min(n, Math.max(1, Math.round(fraction * n))) : 0;
  const worst = order.slice(0, count);
  let total = 0;
  for (const x of sq) total += x;
  let top = 0;
  for (const k of worst) top += sq[k];
  const rest = n - count;
  return { worst, share: total > 0 ? top / total : 0, rmseRestTicks: rest > 0 ? Math.sqrt(Math.max(0, total - top) / rest) : NaN };
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** h(sigma) = E[(floor(x + e1) - floor(x + e2))^2], x ~ U[0, 1), e ~ N(0, sigma^2), in ticks^2. */
export function repeatDifferenceMeanSquare(sigma: number): number {
  if (sigma <= 0) return 0;
  const X = 400;
  const K = Math.ceil(8 * sigma) + 2;
  let acc = 0;
  for (let a = 0; a < X; a++) {
    const x = (a + 0.5) / X;
    let m1 = 0;
    let m2 = 0;
    for (let k = -K; k <= K; k++) {
      const p = normalCdf((k + 1 - x) / sigma) - normalCdf((k - x) / sigma);
      m1 += p * k;
      m2 += p * k * k;
    }
    acc += 2 * (m2 - m1 * m1);
  }
  return acc / X;
}

/** Edge jitter (ticks rms) from the mean squared difference of repeated readings (ticks^2). */
export function jitterFromRepeats(meanSquareDiff: number): number {
  if (!(meanSquareDiff > 0)) return 0;
  let lo = 0;
  let hi = Math.sqrt(meanSquareDiff) + 1;
  for (let it = 0; it < 50; it++) {
    const mid = 0.5 * (lo + hi);
    if (repeatDifferenceMeanSquare(mid) < meanSquareDiff) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** The floor sqrt(1/12 + sigma_j^2), ticks. */
export function floorTicks(jitterTicks: number): number {
  return Math.sqrt(1 / 12 + jitterTicks * jitterTicks);
}
