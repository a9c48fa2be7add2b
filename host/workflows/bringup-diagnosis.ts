/**
 * From one layer's probe measurements to flagged synapses (no device here; bringup.ts measures).
 *
 * Times are in ticks from the input spike to the neuron's spike, per input j and neuron i (index
 * j * outputs + i): NaN = not measured, Infinity = silent. Probes (see bringup.ts): `off` (all
 * off), `full` (NMOS at the strongest safe code), `n0`/`n1`/`n2` (NMOS alone at three codes, slow
 * to fast), `eq` (NMOS
 * at a per-synapse code that equalises the times), `p1`/`p2` (eq plus PMOS at a weak and a stronger code); `pair` is the n1 time
 * with a second input (the "buddy") active too, `buddyTime` the buddy's own n1 time. `q` / `q3`
 * (NMOS alone at a strong code, then with PMOS at a stronger code p3) belong to the shape re-check
 * of weak-PMOS candidates (bringup-recheck.ts) and are NaN here.
 *
 * Rules, cheapest evidence first:
 *   shorted NMOS  the neuron fires although every synapse is off
 *   dead NMOS     silent under full NMOS drive, but at n1 the buddy still fires it as it does alone
 *   shorted PMOS  silent under full NMOS drive, and at n1 it holds the neuron down against the buddy
 *   weak NMOS     above the layer's curve of ln t(n2) against ln t(n1) (robust fit), or silent at
 *                 n1 (twenty times the layer's median time) while it fires at full drive
 *   dead PMOS     adds no delay where the layer's median PMOS would add several ticks
 *   weak PMOS     an inhibitory conductance (model inversion, bringup-analysis.ts) far below the
 *                 layer's robust spread at both PMOS codes (Z_WEAK_PMOS; with the shape re-check a
 *                 looser screen, Z_SCREEN_PMOS, whose candidates bringup-recheck.ts then judges)
 * Mismatch is per chip, so every threshold is relative to the layer's own robust statistics.
 */

import { excitatoryFromTime, firingTime, inhibitoryFromTime, median, robustQuadraticFit, robustSigma, evalFit } from './bringup-analysis.ts';

export const PROBE_NAMES = ['off', 'full', 'n0', 'n1', 'n2', 'eq', 'p1', 'p2', 'q', 'q3'] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

export interface LayerMeasurements {
  layer: number;
  inputs: number;
  outputs: number;
  /** Layer 0's window in ticks: the time unit of the model inversion. */
  horizonTicks: number;
  times: Record<ProbeName, Float64Array>;
  pair: Float64Array;
  buddyTime: Float64Array;
  /** 1 for inputs whose relay route was clean in every probe. */
  reached: Uint8Array;
  /** Why an input could not be driven. */
  unreachable: Record<number, string>;
}

export interface SynapseFlag {
  layer: number;
  input: number;
  neuron: number;
  polarity: 'nmos' | 'pmos';
  kind: 'dead' | 'weak' | 'shorted';
  evidence: string;
  /**
   * Weak PMOS only, after the shape re-check (bringup-recheck.ts): 'weak' when a current factor no
   * threshold shift explains was measured, 'inconclusive' when the re-check could not tell; absent
   * when there was no re-check.
   */
  shape?: 'weak' | 'inconclusive';
}

/** A synapse flagged weak at p1 / p2 whose shape across gate codes is that of a threshold shift (kept out of the flags). */
export interface MismatchTail {
  layer: number;
  input: number;
  neuron: number;
  polarity: 'nmos' | 'pmos';
  /** Its robust z at p2 (what flagged it). */
  z: number;
  /** The current factor a threshold shift does not explain (1 = none; a weak synapse has its F here). */
  unexplainedFactor: number;
  /** The gate offset that explains its deficit at p2, millivolts (positive: weaker), and that in the PDK's mismatch sigmas. */
  shiftMv: number;
  pdkSigmas: number;
  evidence: string;
}

export interface LayerDiagnosis {
  layer: number;
  inputs: number;
  outputs: number;
  flags: SynapseFlag[];
  measuredNmos: number;
  measuredPmos: number;
  /** Synapses (of either polarity) that could not be judged. */
  unmeasured: number;
  notes: string[];
  /** NMOS alone at n1, ticks (NaN: not measured; Infinity: silent), j * outputs + i. */
  nmosTicks: Float64Array;
  /** Delay the PMOS adds at p2, ticks (NaN: not measured; Infinity: held silent). */
  pmosDelayTicks: Float64Array;
  /** Robust z of each NMOS synapse against the layer's two-code curve (NaN where not computed). */
  nmosZ: Float64Array;
  /** Robust z of ln gI at p2 against the layer (NaN where not computed). */
  pmosZ: Float64Array;
  /** ln gI at p2 (normalised conductance; NaN where not computed): what the shape re-check compares with. */
  pmosLnG2: Float64Array;
  /** The layer's median ln gI at p1 and p2 (its slope per code converts a deficit into a gate offset). */
  pmosMedianLnG: { p1: number; p2: number };
  /** PMOS candidates the shape re-check (bringup-shape.ts) found to be a threshold-shift tail, not a weak synapse; empty when none. */
  mismatchTails: MismatchTail[];
  /** Median full-drive time (comparator delay + timer offset), ticks. */
  offsetTicks: number;
}

/** Thresholds in robust sigmas; natural synapses of a 200k-synapse layer stay within about 6. */
export const Z_WEAK_NMOS = 7;
export const Z_WEAK_PMOS = 5.25;
/**
 * With the shape re-check (bringup-recheck.ts) a PMOS this far below the layer at both codes is only
 * a candidate: the re-check clears the mismatch tails (a few per 50k-synapse layer sit beyond 4), so
 * the screen can reach the weak synapses that a stronger-than-usual device of their own hides.
 */
export const Z_SCREEN_PMOS = 4;
/** A delay at or below this many ticks counts as none; the layer's median PMOS must add DEAD_POWER times more. */
export const NO_DELAY_TICKS = 1;
export const DEAD_POWER = 6;

export function analyseLayer(
  m: LayerMeasurements,
  deadNeurons: ReadonlySet<number>,
  stuckNeurons: ReadonlySet<number>,
  zWeakPmos = Z_WEAK_PMOS,
): LayerDiagnosis {
  const { layer, inputs, outputs, times } = m;
  const size = inputs * outputs;
  const H = m.horizonTicks;
  const flags: SynapseFlag[] = [];
  const notes: string[] = [];
  const nmosZ = new Float64Array(size).fill(NaN);
  const pmosZ = new Float64Array(size).fill(NaN);
  const pmosDelay = new Float64Array(size).fill(NaN);
  const flag = (j: number, i: number, polarity: 'nmos' | 'pmos', kind: SynapseFlag['kind'], evidence: string) =>
    flags.push({ layer, input: j, neuron: i, polarity, kind, evidence });

  const usable = (j: number, i: number) => m.reached[j] === 1 && !deadNeurons.has(i) && !stuckNeurons.has(i);
  const offsetAll = median(times.full);
  const offset = neuronOffsets(m, deadNeurons, stuckNeurons);

  // Per synapse state: 0 unjudged, 1 NMOS conducts (candidates for weak tests).
  let measuredNmos = 0;
  let measuredPmos = 0;
  let unmeasured = 0;
  const conducts = new Uint8Array(size);
  for (let j = 0; j < inputs; j++) {
    for (let i = 0; i < outputs; i++) {
      const k = j * outputs + i;
      if (!usable(j, i)) {
        unmeasured += 2;
        continue;
      }
      if (Number.isFinite(times.off[k])) {
        flag(j, i, 'nmos', 'shorted', `fires at ${times.off[k]} ticks with every synapse off`);
        measuredNmos++;
        unmeasured++;
        continue;
      }
      if (times.full[k] === Infinity) {
        const bt = m.buddyTime[k];
        const pair = m.pair[k];
        if (!Number.isFinite(bt)) {
          unmeasured += 2;
          notes.push(`synapses ${layer}.${j}.${i}: silent under full drive and the second input did not fire the neuron either`);
        } else if (Number.isFinite(pair) && pair <= 1.5 * bt + 3) {
          flag(j, i, 'nmos', 'dead', `silent under full drive; with a second input at the weak NMOS code it fires at ${pair} ticks (that input alone: ${bt})`);
          measuredNmos++;
          unmeasured++;
        } else {
          flag(
            j,
            i,
            'pmos',
            'shorted',
            `holds the neuron silent under full NMOS drive, and against a second input (alone: ${bt} ticks, together: ${fmtTicks(pair)})`,
          );
          measuredPmos++;
          unmeasured++;
        }
        continue;
      }
      if (!Number.isFinite(times.full[k])) {
        unmeasured += 2;
        continue;
      }
      conducts[k] = 1;
      measuredNmos++;
    }
  }

  // Weak NMOS: ln(t2) against ln(t1), both less the neuron's offset.
  const x = new Float64Array(size).fill(NaN);
  const y = new Float64Array(size).fill(NaN);
  const med1 = median(Array.from(times.n1).filter((_, k) => conducts[k] === 1));
  for (let k = 0; k < size; k++) {
    if (!conducts[k]) continue;
    const off = offset[k % outputs];
    const t1 = times.n1[k] - off;
    const t2 = times.n2[k] - off;
    if (Number.isFinite(t1) && t1 > 0.5) x[k] = Math.log(t1);
    if (Number.isFinite(t2) && t2 > 0.5) y[k] = Math.log(t2);
  }
  const fit = robustQuadraticFit(x, y);
  const weakNmos = new Uint8Array(size);
  for (let k = 0; k < size; k++) {
    if (!conducts[k]) continue;
    const j = Math.floor(k / outputs);
    const i = k % outputs;
    const t1 = times.n1[k];
    const t2 = times.n2[k];
    if (t1 === Infinity) {
      weakNmos[k] = 1;
      flag(
        j,
        i,
        'nmos',
        'weak',
        `silent at the first NMOS code (layer median ${fmtTicks(med1)} ticks), ${fmtTicks(t2)} ticks at the second, fires under full drive`,
      );
      continue;
    }
    if (fit && Number.isFinite(x[k]) && Number.isFinite(y[k])) {
      const t2net = Math.exp(y[k]);
      // Timer quantisation (half a tick) adds to the fit's own spread on short times.
      const s = Math.sqrt(fit.sigma ** 2 + (0.5 / t2net) ** 2);
      nmosZ[k] = (y[k] - evalFit(fit, x[k])) / s;
      if (nmosZ[k] > Z_WEAK_NMOS) {
        weakNmos[k] = 1;
        flag(j, i, 'nmos', 'weak', `${t1} / ${t2} ticks at the two NMOS codes lie ${nmosZ[k].toFixed(1)} robust sigmas above the layer's curve`);
      }
    }
  }

  // PMOS: delay at p1, p2 on top of the equalised NMOS drive, turned into an inhibitory conductance.
  const gI1 = new Float64Array(size).fill(NaN);
  const gI2 = new Float64Array(size).fill(NaN);
  const gE = new Float64Array(size).fill(NaN);
  for (let k = 0; k < size; k++) {
    if (!conducts[k]) continue;
    const off = offset[k % outputs];
    const t1 = times.eq[k];
    if (!Number.isFinite(t1) || t1 - off < 0.5) continue;
    gE[k] = excitatoryFromTime((t1 - off) / H);
    pmosDelay[k] = times.p2[k] - t1;
    gI1[k] = inhibitoryFromTime(gE[k], (times.p1[k] - off) / H);
    gI2[k] = inhibitoryFromTime(gE[k], (times.p2[k] - off) / H);
  }
  const lnG2 = Array.from(gI2, (g) => (g > 0 && Number.isFinite(g) ? Math.log(g) : NaN));
  const lnG1 = Array.from(gI1, (g) => (g > 0 && Number.isFinite(g) ? Math.log(g) : NaN));
  // Silent (held down) counts as strong for the median.
  const medG2 = medianInf(gI2);
  const c2 = median(lnG2);
  const s2 = robustSigma(lnG2, c2);
  const c1 = median(lnG1);
  const s1 = robustSigma(lnG1, c1);
  for (let k = 0; k < size; k++) {
    if (!Number.isFinite(gE[k])) {
      if (conducts[k]) unmeasured++;
      continue;
    }
    const j = Math.floor(k / outputs);
    const i = k % outputs;
    const off = offset[i];
    const t1 = times.eq[k];
    const d1 = times.p1[k] - t1;
    const d2 = times.p2[k] - t1;
    const expected = firingTime(gE[k], medG2) * H + off - t1;
    if (d2 <= NO_DELAY_TICKS && d1 <= NO_DELAY_TICKS) {
      if (expected >= DEAD_POWER * NO_DELAY_TICKS) {
        flag(
          j,
          i,
          'pmos',
          'dead',
          `adds ${d1} / ${d2} ticks at the two PMOS codes where the layer's median PMOS adds ${fmtTicks(expected)} ticks at the second`,
        );
        measuredPmos++;
      } else unmeasured++;
      continue;
    }
    measuredPmos++;
    const z2 = Number.isFinite(lnG2[k]) && s2 > 0 ? (lnG2[k] - c2) / s2 : gI2[k] === Infinity ? Infinity : NaN;
    const z1 = Number.isFinite(lnG1[k]) && s1 > 0 ? (lnG1[k] - c1) / s1 : gI1[k] === Infinity ? Infinity : NaN;
    pmosZ[k] = z2;
    const low = Math.max(Number.isNaN(z1) ? -Infinity : z1, Number.isNaN(z2) ? -Infinity : z2);
    if (low < -zWeakPmos) {
      flag(
        j,
        i,
        'pmos',
        'weak',
        `inhibition ${z1.toFixed(1)} / ${z2.toFixed(1)} robust sigmas below the layer's at the two PMOS codes (delays ${d1} / ${fmtTicks(d2)} ticks)`,
      );
    }
  }
  for (const [j, why] of Object.entries(m.unreachable)) notes.push(why);
  flags.sort((a, b) => a.input - b.input || a.neuron - b.neuron || a.polarity.localeCompare(b.polarity));
  return {
    layer,
    inputs,
    outputs,
    flags,
    measuredNmos,
    measuredPmos,
    unmeasured,
    notes,
    nmosTicks: Float64Array.from(times.n1),
    pmosDelayTicks: pmosDelay,
    nmosZ,
    pmosZ,
    pmosLnG2: Float64Array.from(lnG2),
    pmosMedianLnG: { p1: c1, p2: c2 },
    mismatchTails: [],
    offsetTicks: offsetAll,
  };
}

/**
 * Comparator delay + timer offset per neuron (ticks): the median full-drive time over its usable
 * synapses, where the synapse is near instantaneous; the layer's median where a neuron has none.
 */
export function neuronOffsets(
  m: Pick<LayerMeasurements, 'inputs' | 'outputs' | 'times' | 'reached'>,
  deadNeurons: ReadonlySet<number>,
  stuckNeurons: ReadonlySet<number>,
): Float64Array {
  const { inputs, outputs, times } = m;
  const offsetAll = median(times.full);
  return Float64Array.from({ length: outputs }, (_, i) => {
    const col: number[] = [];
    if (!deadNeurons.has(i) && !stuckNeurons.has(i)) for (let j = 0; j < inputs; j++) if (m.reached[j] === 1) col.push(times.full[j * outputs + i]);
    const v = median(col);
    return Number.isFinite(v) ? v : Number.isFinite(offsetAll) ? offsetAll : 0;
  });
}

function medianInf(v: Float64Array): number {
  const s = Array.from(v)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
}

function fmtTicks(t: number): string {
  return Number.isFinite(t) ? String(Math.round(t * 10) / 10) : t === Infinity ? 'silent' : 'n/a';
}

/**
 * Per synapse (j * outputs + i), the NMOS code expected to fire its neuron `targetTicks` (one for
 * all, or one per synapse: NaN skips it) after the input: ln(time) is interpolated (or extrapolated)
 * linearly in the code through the two slowest measured codes, clamped to the safe window; -1 where
 * the synapse has no usable times.
 */
export function equalisingCodes(
  m: Pick<LayerMeasurements, 'inputs' | 'outputs' | 'times'>,
  codes: { n0: number; n1: number; n2: number },
  window: readonly [number, number],
  targetTicks: number | ArrayLike<number>,
): Int32Array {
  const { inputs, outputs, times } = m;
  const med = median(times.full);
  const offset = Number.isFinite(med) ? med : 0;
  const out = new Int32Array(inputs * outputs).fill(-1);
  const pts: [ProbeName, number][] = [
    ['n0', codes.n0],
    ['n1', codes.n1],
    ['n2', codes.n2],
  ];
  const lnTarget = (k: number) => Math.log(Math.max(1, (typeof targetTicks === 'number' ? targetTicks : targetTicks[k]) - offset));
  for (let k = 0; k < out.length; k++) {
    if (typeof targetTicks !== 'number' && Number.isNaN(targetTicks[k])) continue;
    const known = pts.map(([p, c]) => [c, times[p][k] - offset] as const).filter(([, t]) => Number.isFinite(t) && t >= 1);
    if (known.length < 2) continue;
    const [[ca, ta], [cb, tb]] = known;
    const slope = (Math.log(tb) - Math.log(ta)) / (cb - ca);
    if (!(slope < 0)) continue;
    const c = Math.round(ca + (lnTarget(k) - Math.log(ta)) / slope);
    out[k] = Math.min(window[1], Math.max(window[0], c));
  }
  return out;
}
