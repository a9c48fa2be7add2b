/**
 * The adaptive round (calibration/adaptive-patterns.ts): the candidates it keeps are exactly the
 * rows whose fitted model moves by at least the threshold's worth of ticks per 0.1 % of a
 * neuron's threshold, measured here by central differences of the prediction (not by the
 * analytic sensitivity the module uses), and the choice does not depend on the measured times.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { creepingPatterns, resolveAdaptive } from '../../calibration/adaptive-patterns.ts';
import { backendTarget } from '../../calibration/backend-target.ts';
import { calibrateChip, type CalibrationResult } from '../../calibration/calibrate-chip.ts';
import { buildDataset, LayerFitter } from '../../calibration/layer-fit.ts';
import type { LayerProbeContext } from '../../calibration/probe-plan.ts';
import { drivenInputs, type LayerSamples, type ProbeTarget } from '../../calibration/probe-run.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';

let res: CalibrationResult;
let target: ProbeTarget;
let ctx: LayerProbeContext;
beforeAll(async () => {
  const chip = new BehavioralChip({ seed: 5150, sizes: [16, 4] });
  const sup = chip.supply();
  target = backendTarget(chip);
  res = await calibrateChip(target, {
    chipId: chip.chipId,
    temperatureC: sup.temperatureC,
    supplyV: sup.supplyV,
    layers: [0],
    sizes: { patternsPerConfig: 32, heldOutPatterns: 16 },
    adaptive: { configs: 0 },
  });
  const g = target.layers[0]!;
  ctx = { layer: 0, geometry: g, dac: target.dac, safe: target.safe, driven: drivenInputs(target.layers, 0), windowTicks: g.horizonTicks };
}, 60_000);

/** Per row of each sample block: the largest |dt/dtheta| * theta * 1e-3 over the neurons, ticks, by central differences. */
function rowSensitivities(fitted: LayerFitter, samples: LayerSamples[]): number[][] {
  const f = new LayerFitter(buildDataset({ ...fitted.data.input, samples }), false, structuredClone(fitted.state.families));
  f.adopt(fitted);
  const out = samples.map((s) => new Array<number>(s.batch).fill(0));
  const h = 1e-6;
  for (let i = 0; i < f.data.input.geometry.outputs; i++) {
    const d = f.data.neurons[i]!;
    const theta = f.state.theta[i]!;
    const at = (x: number) => {
      f.state.theta[i] = x;
      const p = f.predicted(i, res.globals, 'fit');
      f.state.theta[i] = theta;
      return p;
    };
    const base = at(theta);
    const up = at(theta + h);
    const down = at(theta - h);
    const { horizon, perUnit } = f.data.input;
    for (let s = 0; s < d.pat.count.length; s++) {
      // A spike predicted after the window end (or never) is a silent reading: it does not move.
      const dt = base[s]! < horizon ? ((up[s]! - down[s]!) / (2 * h)) * perUnit : 0;
      const perMille = Math.abs(dt) * theta * 1e-3;
      const b = d.pat.block[s]!;
      const row = d.pat.row[s]!;
      out[b]![row] = Math.max(out[b]![row]!, perMille);
    }
  }
  return out;
}

describe('creepingPatterns', () => {
  it('keeps exactly the candidate rows some neuron is predicted to creep on, whatever the readings', async () => {
    const fitted = res.fitters.pnn[0]!;
    const codes = { nmos: res.codes[0]!.nmos, pmos: res.codes[0]!.pmos };
    const a = resolveAdaptive({ configs: 2, patterns: 64, minTicksPerPermille: 1.5 });
    // Every candidate the model places a spike in (a threshold no spike misses), then the real choice:
    // a second measurement of the same candidates, with new jitter.
    const all = (await creepingPatterns(target, ctx, codes, fitted, res.globals, { ...a, minTicksPerPermille: 1e-12 }, 9)).kept;
    const got = await creepingPatterns(target, ctx, codes, fitted, res.globals, a, 9);
    const kept = got.kept;
    expect(got.candidates).toBe(2 * 64);
    const rowsOf = (blocks: LayerSamples[]) =>
      blocks.map((b) => Array.from({ length: b.batch }, (_, r) => Array.from(b.inputs.subarray(r * 16, (r + 1) * 16)).join()));
    const allRows = rowsOf(all).flat();
    const keptRows = new Set(rowsOf(kept).flat());
    const sens = rowSensitivities(fitted, all).flat();
    expect(allRows.length).toBe(sens.length);
    let near = 0;
    allRows.forEach((key, k) => {
      if (Math.abs(sens[k]! - a.minTicksPerPermille) < 0.01 * a.minTicksPerPermille) return near++;
      expect(keptRows.has(key)).toBe(sens[k]! >= a.minTicksPerPermille);
    });
    expect(near).toBeLessThan(3);
    // Selective: some rows kept, most not.
    expect(keptRows.size).toBeGreaterThan(0);
    expect(keptRows.size).toBeLessThan(allRows.length / 2);
    // Kept rows carry every neuron's reading, as pattern samples of the probed codes.
    for (const b of kept) {
      expect(b.kind).toBe('pattern');
      expect(b.out.length).toBe(b.batch * 4);
      expect(b.inputs.length).toBe(b.batch * 16);
    }
  }, 60_000);

  it('refuses a probe context of another layer and bad options', async () => {
    const fitted = res.fitters.pnn[0]!;
    await expect(creepingPatterns(target, { ...ctx, layer: 1 }, { nmos: [], pmos: [] }, fitted, res.globals, resolveAdaptive(), 1)).rejects.toThrow(
      /layer 1, the fitter layer 0/,
    );
    expect(() => resolveAdaptive({ configs: -1 })).toThrow(/adaptive.configs/);
    expect(() => resolveAdaptive({ patterns: 0 })).toThrow(/adaptive.patterns/);
    expect(() => resolveAdaptive({ minTicksPerPermille: 0 })).toThrow(/minTicksPerPermille/);
  });
});

describe('LayerFitter.adopt and pattern provenance', () => {
  it('a fitter on more samples that adopts a fitted one predicts the shared samples identically', () => {
    const fitted = res.fitters.pnn[0]!;
    const { samples } = fitted.data.input;
    const more = new LayerFitter(
      buildDataset({ ...fitted.data.input, samples: [...samples, samples.find((s) => s.kind === 'pattern')!] }),
      false,
      structuredClone(fitted.state.families),
    );
    more.adopt(fitted);
    for (let i = 0; i < 4; i++) {
      expect(Array.from(more.residualsFixed(i, res.globals, 0, 'heldout'))).toEqual(Array.from(fitted.residualsFixed(i, res.globals, 0, 'heldout')));
      const a = fitted.residualsFixed(i, res.globals);
      const b = more.residualsFixed(i, res.globals);
      expect(Array.from(b.subarray(0, a.length))).toEqual(Array.from(a));
    }
  });

  it('each fit pattern records the block and row it came from', () => {
    const f = res.fitters.pnn[0]!;
    const { samples, geometry } = f.data.input;
    const n = geometry.outputs;
    const nIn = geometry.inputs;
    const kinds = new Set<string>();
    let checked = 0;
    for (let i = 0; i < n; i++) {
      const d = f.data.neurons[i]!;
      for (let s = 0; s < d.pat.count.length; s++) {
        const blk = samples[d.pat.block[s]!]!;
        const b = d.pat.row[s]!;
        kinds.add(blk.kind);
        expect(blk.kind).not.toBe('heldout');
        expect(blk.out[b * n + i]).toBe(d.pat.tOut[s]);
        const active = Array.from(blk.inputs.subarray(b * nIn, (b + 1) * nIn)).filter(Number.isFinite).length;
        expect(d.pat.count[s]).toBe(active);
        for (let e = d.pat.start[s]!; e < d.pat.start[s]! + d.pat.count[s]!; e++) expect(d.ent.t[e]).toBe(blk.inputs[b * nIn + d.ent.j[e]!]);
        checked++;
      }
    }
    expect(kinds).toContain('pattern');
    expect(kinds).toContain('sweep-n');
    expect(checked).toBeGreaterThan(500);
  });
});
