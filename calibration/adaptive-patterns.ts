/**
 * The adaptive round of a calibration: after the first fit, measure random candidate patterns and
 * keep, as extra fit samples, those the fitted model predicts to creep up to threshold for some
 * neuron. Such a spike moves by many ticks per 0.1 % of the threshold (or of any conductance in the
 * pattern), so it pins the conductance combinations random patterns measure least well, and it is
 * exactly the kind of held-out pattern that dominates the error tail (README.md, "Adaptive
 * patterns"). The choice reads only the model's predictions, never the measured times, so it
 * cannot select on measurement noise.
 *
 * Off by default: where the model's form is not exact (the SPICE mock, and so presumably a real
 * chip) the creeping patterns pull the per-synapse values away from what predicts ordinary
 * patterns (figures in README.md).
 */

import { buildDataset, LayerFitter, type GlobalParams } from './layer-fit.ts';
import { candidateBlocks, type LayerProbeContext } from './probe-plan.ts';
import { measureBlocks, type LayerSamples, type ProbeTarget } from './probe-run.ts';

export interface AdaptiveOptions {
  /** Candidate configurations per layer (0 = no adaptive round). */
  configs: number;
  /** Candidate patterns per configuration, each measured once. */
  patterns: number;
  /** A candidate is kept when some neuron's predicted spike moves by at least this many ticks per 0.1 % of its threshold. */
  minTicksPerPermille: number;
}

/** The settings `--adaptive` turns on (calibrateChip's default is configs 0: no adaptive round). */
export const DEFAULT_ADAPTIVE: Readonly<AdaptiveOptions> = Object.freeze({ configs: 4, patterns: 256, minTicksPerPermille: 1.5 });

/** DEFAULT_ADAPTIVE with `partial` applied, checked. */
export function resolveAdaptive(partial: Partial<AdaptiveOptions> = {}): AdaptiveOptions {
  const a = { ...DEFAULT_ADAPTIVE, ...partial };
  if (!(Number.isInteger(a.configs) && a.configs >= 0))
    throw new RangeError(`adaptive.configs must be an integer >= 0 (0 = no adaptive round), got ${a.configs}`);
  if (!(Number.isInteger(a.patterns) && a.patterns >= 1 && a.patterns <= 4096))
    throw new RangeError(`adaptive.patterns must be an integer in 1..4096, got ${a.patterns}`);
  if (!(a.minTicksPerPermille > 0 && Number.isFinite(a.minTicksPerPermille)))
    throw new RangeError(`adaptive.minTicksPerPermille must be > 0 (ticks per 0.1 % of threshold), got ${a.minTicksPerPermille}`);
  return a;
}

export interface CreepingPatternsOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface AdaptiveSamples {
  /** Candidate rows some neuron is predicted to creep on: fit samples (kind 'pattern'). */
  kept: LayerSamples[];
  /** Candidate rows measured. */
  candidates: number;
}

/**
 * Measures `a.configs` x `a.patterns` candidates on the fitter's layer and returns the rows some
 * neuron's fitted model predicts at >= a.minTicksPerPermille ticks per 0.1 % of threshold, as
 * pattern samples (every neuron's reading of a kept row included), in candidate order.
 */
export async function creepingPatterns(
  target: ProbeTarget,
  ctx: LayerProbeContext,
  codes: { nmos: readonly number[]; pmos: readonly number[] },
  fitted: LayerFitter,
  globals: GlobalParams,
  a: AdaptiveOptions,
  seed: number,
  opts: CreepingPatternsOptions = {},
): Promise<AdaptiveSamples> {
  if (ctx.layer !== fitted.data.input.layer) throw new RangeError(`the probe context is layer ${ctx.layer}, the fitter layer ${fitted.data.input.layer}`);
  const cand = await measureBlocks(target, candidateBlocks(ctx, codes.nmos, codes.pmos, a.configs, a.patterns, seed), opts);
  const fam = fitted.state.families;
  const probe = new LayerFitter(buildDataset({ ...fitted.data.input, samples: cand }), false, { nmos: { ...fam.nmos }, pmos: { ...fam.pmos } });
  probe.adopt(fitted);
  const keep = cand.map(() => new Set<number>());
  const n = probe.data.input.geometry.outputs;
  for (let i = 0; i < n; i++) {
    const d = probe.data.neurons[i];
    for (let s = 0; s < d.pat.count.length; s++) {
      // 0 where the model predicts no spike: the reading (silent or not) is never looked at.
      const perMille = Math.abs(probe.heldOutThresholdSensitivity(i, s, globals, 'fit')) * probe.state.theta[i] * 1e-3;
      if (perMille >= a.minTicksPerPermille) keep[d.pat.block[s]].add(d.pat.row[s]);
    }
  }
  const nIn = probe.data.input.geometry.inputs;
  const out: LayerSamples[] = [];
  cand.forEach((c, q) => {
    const rows = [...keep[q]].sort((x, y) => x - y);
    if (!rows.length) return;
    const inputs = new Float64Array(rows.length * nIn);
    const times = new Float64Array(rows.length * n);
    rows.forEach((b, r) => {
      inputs.set(c.inputs.subarray(b * nIn, (b + 1) * nIn), r * nIn);
      times.set(c.out.subarray(b * n, (b + 1) * n), r * n);
    });
    out.push({ layer: c.layer, kind: 'pattern', codes: c.codes, batch: rows.length, inputs, out: times });
  });
  return { kept: out, candidates: a.configs * a.patterns };
}
