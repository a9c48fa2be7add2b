/**
 * Which state a fine-tuning run ends on: the deployment, unless a later epoch is better on the validation
 * split by more than the split can show by chance.
 *
 * Both states are measured on the same validation samples, so the comparison is paired: only the samples on
 * which they disagree carry information. With `gained` samples right only after the epoch and `lost` samples
 * right only at the deployment, "no difference" means each of the gained + lost discordant samples is
 * equally likely to fall either way (McNemar's exact test, a sign test on the discordant pairs). The epoch
 * replaces the deployment only when gained > lost and the one-sided p-value P(X >= gained), X ~ Binomial(gained
 * + lost, 1/2), is at most `alpha`. The device's trial-to-trial timing noise flips borderline samples of both
 * states alike, so it widens the discordant count without biasing it: the test accounts for it.
 *
 * Among the epochs that pass, the one with the most correct validation samples is kept (ties: the earlier).
 * Each epoch is tested against the deployment at `alpha`, so with E epochs the chance that some epoch passes
 * when none is better is at most E x alpha.
 */

/** Default significance level of the keep rule (one-sided); docs/RESULTS.md has the measurements behind it. */
export const KEEP_ALPHA = 0.05;

/** A candidate state against the deployment on the same validation samples. */
export interface PairedComparison {
  /** Samples the candidate gets right and the deployment wrong. */
  gained: number;
  /** Samples the deployment gets right and the candidate wrong. */
  lost: number;
  /** One-sided exact sign-test p-value of gained against lost (1 when gained <= lost). */
  p: number;
}

/** log(exp(a) + exp(b)) without overflow, for a sum in log space. */
function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** P(X >= k) for X ~ Binomial(n, 1/2), exact (summed in log space, so any n). */
export function signTestP(k: number, n: number): number {
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 0) throw new RangeError(`signTestP needs whole counts, got k ${k} of n ${n}`);
  if (k <= 0) return 1;
  if (k > n) return 0;
  // log C(n, j) - n log 2, from j = 0 up.
  let logPmf = -n * Math.LN2;
  let tail = -Infinity;
  for (let j = 0; j <= n; j++) {
    if (j > 0) logPmf += Math.log((n - j + 1) / j);
    if (j >= k) tail = logAddExp(tail, logPmf);
  }
  return Math.min(1, Math.exp(tail));
}

/** Which samples a state classified correctly (1) or not (0). */
export function correctness(predictions: ArrayLike<number>, labels: ArrayLike<number>): Uint8Array {
  if (predictions.length !== labels.length) throw new RangeError(`${predictions.length} predictions for ${labels.length} labels`);
  return Uint8Array.from({ length: labels.length }, (_, i) => (predictions[i] === labels[i] ? 1 : 0));
}

/** The paired comparison of a candidate's correctness with the deployment's, sample by sample. */
export function comparePaired(deployment: Uint8Array, candidate: Uint8Array): PairedComparison {
  if (deployment.length !== candidate.length) throw new RangeError(`${candidate.length} candidate samples against ${deployment.length} of the deployment`);
  let gained = 0;
  let lost = 0;
  for (let i = 0; i < deployment.length; i++) {
    if (candidate[i] && !deployment[i]) gained++;
    else if (deployment[i] && !candidate[i]) lost++;
  }
  return { gained, lost, p: gained > lost ? signTestP(gained, gained + lost) : 1 };
}

/** True when the candidate replaces the deployment at significance level `alpha`. */
export function beatsDeployment(c: PairedComparison, alpha: number): boolean {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`the keep rule's significance level must be in (0, 1], got ${alpha}`);
  return c.gained > c.lost && c.p <= alpha;
}

/**
 * Whether a candidate epoch, compared with the deployment as `cmp`, takes over from the state kept so far: it must
 * pass the rule, and beat the kept epoch's validation score unless the kept state is the deployment (a tie keeps the
 * earlier). `score` is any measure increasing with correct samples on the same split (a count or an accuracy).
 */
export function replacesKept(cmp: PairedComparison, score: number, kept: { epoch: number; score: number }, alpha: number): boolean {
  return beatsDeployment(cmp, alpha) && (kept.epoch === 0 || score > kept.score);
}

/**
 * The epoch to keep from the validation correctness of each epoch (index = epoch, 0 = the deployment): the
 * passing epoch with the most correct samples, the earlier on a tie; 0 when none passes.
 */
export function chooseKept(correct: readonly Uint8Array[], alpha: number): { epoch: number; comparisons: (PairedComparison | null)[] } {
  if (correct.length === 0) throw new RangeError('chooseKept needs the deployment’s validation correctness');
  const ref = correct[0]!;
  const count = (c: Uint8Array) => c.reduce((s, v) => s + v, 0);
  let kept = { epoch: 0, score: count(ref) };
  const comparisons = correct.map((c, e) => {
    if (e === 0) return null;
    const cmp = comparePaired(ref, c);
    if (replacesKept(cmp, count(c), kept, alpha)) kept = { epoch: e, score: count(c) };
    return cmp;
  });
  return { epoch: kept.epoch, comparisons };
}
