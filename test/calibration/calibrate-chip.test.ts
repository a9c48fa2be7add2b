/**
 * Calibration against simulated dies the fit never saw (seeds chosen here, not tuned on): the
 * fitted model must predict held-out spike times near the measurement floor, beat the ideal model,
 * and the drift refit must undo a disturbed profile. The hidden truth is read only to score.
 */
import { describe, expect, it } from 'vitest';
import { backendTarget } from '../../calibration/backend-target.ts';
import { calibrateChip, DEFAULT_ADAPTIVE, highestPrecharge, probeLayer } from '../../calibration/calibrate-chip.ts';
import { DEFAULT_PROBE_SIZES, referenceNmos } from '../../calibration/probe-plan.ts';
import { profileProbeCodes } from '../../calibration/chip-profile.ts';
import { median } from '../../calibration/scan-analysis.ts';
import { refitGlobals } from '../../calibration/drift-refit.ts';
import { scoreAgainstTruth } from '../../calibration/truth-score.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';
import { IdealChip } from '../../models/chips/ideal-chip.ts';

const sizes = [10, 5, 3];

describe('calibrateChip on the behavioural mock', () => {
  it('fits unseen dies of its own form: held-out RMSE within 2x of the floor, better than the ideal model; the drift refit recovers', async () => {
    // Model-form (ekv) dies: the PNN model can represent them exactly, so what is left is the fitter's
    // error. The default sky130 dies carry a modelling error (a reversal potential per synapse);
    // bench:calibration measures them (docs/RESULTS.md).
    for (const seed of [90210, 4711]) {
      const chip = new BehavioralChip({ seed, sizes, physics: 'ekv' });
      const sup = chip.supply();
      const target = backendTarget(chip);
      // The second die with the adaptive round (off by default).
      const adaptive = seed === 4711 ? DEFAULT_ADAPTIVE : undefined;
      const res = await calibrateChip(target, {
        chipId: chip.chipId,
        temperatureC: sup.temperatureC,
        supplyV: sup.supplyV,
        sizes: { patternsPerConfig: 64, heldOutPatterns: 48 },
        adaptive,
      });
      // The floor from repeated readings must see the die's jitter (0.25 ns = 0.25 ticks).
      expect(res.noise.jitterTicks).toBeGreaterThan(0.15);
      expect(res.noise.jitterTicks).toBeLessThan(0.35);
      expect(res.rmse.pnnTicks).toBeLessThan(2 * res.noise.floorTicks);
      // Per layer: layer 0's figure is the headline one; the deeper layer's readings move with its
      // inputs' jitter too, so its noise is at least the chip's own; the pooled floor lies between.
      expect(res.noise.perLayer.map((p) => p.layer)).toEqual([0, 1]);
      expect(res.noise.perLayer[0]!.floorTicks).toBe(res.noise.floorTicks);
      expect(res.noise.perLayer[1]!.jitterTicks).toBeGreaterThan(0.8 * res.noise.jitterTicks);
      const floors = res.noise.perLayer.map((p) => p.floorTicks);
      expect(res.noise.pooledFloorTicks).toBeGreaterThanOrEqual(Math.min(...floors) - 1e-12);
      expect(res.noise.pooledFloorTicks).toBeLessThanOrEqual(Math.max(...floors) + 1e-12);
      expect(res.rmse.idealTicks).toBeGreaterThan(2 * res.rmse.pnnTicks);
      expect(res.profile.chipId).toBe(chip.chipId);
      if (adaptive) {
        // The adaptive round measured its candidates and kept a few for the fit.
        expect(res.probes.adaptive.layers.map((x) => [x.layer, x.candidates])).toEqual([
          [0, 4 * 256],
          [1, 4 * 256],
        ]);
        expect(res.probes.adaptive.kept).toBeGreaterThan(0);
        expect(res.probes.adaptive.kept).toBeLessThan(res.probes.adaptive.candidates / 4);
      } else expect(res.probes.adaptive).toEqual({ candidates: 0, kept: 0, layers: [] });
      // The raised-precharge sweeps restore the programmed voltages.
      for (let l = 0; l < 2; l++) expect(chip.neuronVoltages(l)).toEqual({ vRest: 1.3, vThreshold: 0.9 });
      expect(res.profile.layers.every((l) => l.calibrated)).toBe(true);
      // The raised-precharge sweeps pin E+ and the thresholds in absolute terms; on a die this
      // small (8 neurons) E+ lands within ~10 % and the conductances follow it (bench:calibration
      // measures the 5 % / 2 % targets on 32-16-8). Without those sweeps E+ drifted by up to 30 %.
      const score = scoreAgainstTruth(chip, res.profile);
      expect(score.conductance.count).toBeGreaterThan(100);
      expect(score.ePlus.relError).toBeLessThan(0.12);
      expect(score.eMinus.relError).toBeLessThan(0.08);
      expect(score.conductance.median).toBeLessThan(0.1);

      // Drift: disturb the globals, refit them from a short probe run.
      const disturbed = structuredClone(res.profile);
      disturbed.global.ePlus *= 1.2;
      disturbed.global.timerOffsetTicks += 4;
      const q = await refitGlobals(target, disturbed, { temperatureC: sup.temperatureC, supplyV: sup.supplyV });
      expect(q.before.rmseTicks).toBeGreaterThan(3 * q.rmse.pnnTicks);
      expect(q.rmse.pnnTicks).toBeLessThan(2 * res.noise.floorTicks);
      expect(Math.abs(q.globals.timerOffsetTicks - res.profile.global.timerOffsetTicks)).toBeLessThan(1);
    }
  }, 120_000);

  it("picks PMOS sweep codes that slow their pairs measurably, also where the pair's step falls between two coarse scan codes", async () => {
    // Die 77 of 32-16-8: on its layer 0 every coarse PMOS code either silenced the pair or slowed it
    // by under 10 %, and the old pick was a transistor nearly off (conductance 1/1000 of a mid NMOS one).
    const chip = new BehavioralChip({ seed: 77, sizes: [32, 16, 8] });
    const sup = chip.supply();
    const target = backendTarget(chip);
    for (const l of [0, 1]) {
      const run = await probeLayer(target, l, DEFAULT_PROBE_SIZES, 1, { chipId: chip.chipId, temperatureC: sup.temperatureC, supplyV: sup.supplyV });
      expect(run.samples.some((s) => s.kind === 'scan-p' && s.codes.length > 0)).toBe(true);
      expect(new Set(run.pCodes).size).toBe(3);
      // Measured: per synapse, the pair's delay over the NMOS partner's alone (weak reference code), as
      // calibration reads it (scan-analysis.ts pairDelayRatios): synapses whose partner is silent alone
      // carry no ratio. On the sky130 die 77 some layer-0 NMOS partners are silent at the reference
      // code (PDK threshold mismatch), and counting their Infinity / Infinity put the medians at
      // 1.06-1.23 instead of the 1.20, 1.52, 1.91 the other synapses give.
      const n = target.layers[l]!.outputs;
      const nIn = target.layers[l]!.inputs;
      const alone = run.samples.filter((s) => s.kind === 'sweep-n' && !s.restShiftVolts)[run.nCodes.indexOf(referenceNmos(run.nCodes))]!;
      const pairs = run.samples.filter((s) => s.kind === 'sweep-p').slice(0, run.pCodes.length);
      const ratios = pairs.map((p) => {
        const r: number[] = [];
        for (let b = 0; b < p.batch; b++) {
          const tIn = Math.min(...p.inputs.subarray(b * nIn, (b + 1) * nIn));
          const tA = Math.min(...alone.inputs.subarray(b * nIn, (b + 1) * nIn));
          for (let i = 0; i < n; i++) if (Number.isFinite(alone.out[b * n + i])) r.push((p.out[b * n + i] - tIn) / (alone.out[b * n + i] - tA));
        }
        return median(r);
      });
      // Targets 1.2, 1.45, 1.8: every code slows its pair by 10 % or more, and no code silences it.
      for (const r of ratios) {
        expect(r).toBeGreaterThan(1.1);
        expect(r).toBeLessThan(2.5);
      }
    }
  }, 60_000);

  it('measures every single-synapse sweep sweepRepeats times: same codes and inputs, fresh readings', async () => {
    const chip = new BehavioralChip({ seed: 5150, sizes: [6, 4] });
    const sup = chip.supply();
    const target = backendTarget(chip);
    const opts = { chipId: chip.chipId, temperatureC: sup.temperatureC, supplyV: sup.supplyV };
    const once = await probeLayer(target, 0, { ...DEFAULT_PROBE_SIZES, sweepRepeats: 1 }, 1, opts);
    const thrice = await probeLayer(target, 0, { ...DEFAULT_PROBE_SIZES, sweepRepeats: 3 }, 1, opts);
    const plain = (r: typeof once, kind: string) => r.samples.filter((s) => s.kind === kind && !s.restShiftVolts);
    for (const kind of ['sweep-n', 'sweep-p']) {
      const a = plain(once, kind);
      const b = plain(thrice, kind);
      // Follow-up PMOS sweeps (per-transistor codes) are measured once either way.
      const followUps = kind === 'sweep-p' ? a.length - 2 * once.pCodes.length : 0;
      expect(a.length).toBeGreaterThan(0);
      expect(b.length).toBe(3 * (a.length - followUps) + followUps);
      // The repeats are the first pass again: same codes and inputs; the readings differ by jitter.
      const k = kind === 'sweep-n' ? once.nCodes.length : 2 * once.pCodes.length;
      let moved = 0;
      for (let q = 0; q < k; q++) {
        for (const rep of [1, 2]) {
          const x = b[q]!;
          const y = b[rep * k + q]!;
          expect(Array.from(y.codes)).toEqual(Array.from(x.codes));
          expect(Array.from(y.inputs)).toEqual(Array.from(x.inputs));
          for (let e = 0; e < x.out.length; e++) {
            if (!Number.isFinite(x.out[e]!)) continue;
            const d = Math.abs(y.out[e]! - x.out[e]!) * target.layers[0]!.horizonTicks;
            expect(d).toBeLessThan(5);
            if (d > 0) moved++;
          }
        }
      }
      expect(moved).toBeGreaterThan(0);
    }
  }, 60_000);

  it('measures every PMOS code against every NMOS sweep code; the pairs against the non-reference codes join the fit once E+ and E- are fitted', async () => {
    const run = async (allPairPartners: boolean) => {
      // A fresh die per run: the same seed reads the same jitter for the same blocks.
      const chip = new BehavioralChip({ seed: 5150, sizes: [6, 4] });
      const sup = chip.supply();
      const opts = { chipId: chip.chipId, temperatureC: sup.temperatureC, supplyV: sup.supplyV, allPairPartners };
      return { probe: await probeLayer(backendTarget(chip), 0, DEFAULT_PROBE_SIZES, 1, opts), chip };
    };
    const on = await run(true);
    const off = await run(false);
    const { nCodes, pCodes } = on.probe;
    const ref = referenceNmos(nCodes);
    const others = nCodes.filter((c) => c !== ref && c !== Math.max(...nCodes));
    expect(others.length).toBe(nCodes.length - 2);
    expect(off.probe.lateBlocks).toEqual([]);
    // Each other NMOS code with each PMOS code, the input's two rows on, measured sweepRepeats times.
    const g = backendTarget(on.chip).layers[0]!;
    const rowOf = (j: number, pol: number) => g.rowInput.findIndex((x, r) => x === j && g.rowPolarity[r] === pol);
    const pairsSeen = on.probe.lateBlocks.map((b) => {
      expect(b.kind).toBe('sweep-p');
      expect(b.restShiftVolts ?? 0).toBe(0);
      return `${b.codes[rowOf(0, 0) * g.outputs]}/${b.codes[rowOf(0, 1) * g.outputs]}`;
    });
    const expected = others.flatMap((n) => pCodes.map((p) => `${n}/${p}`));
    expect(pairsSeen).toEqual(Array.from({ length: DEFAULT_PROBE_SIZES.sweepRepeats }, () => expected).flat());
    // The plan before them is the same with or without.
    expect(on.probe.samples.map((s) => s.kind)).toEqual(off.probe.samples.map((s) => s.kind));

    // Through calibrateChip: the late pairs are measured after every other block (the die's jitter
    // stream counts runs, so the other readings are the same) and join after the globals, which are
    // then refitted with E+ and E- held: they are the same to the bit; the PNN's dataset holds pair
    // sweeps at every NMOS code.
    const calibrated = async (allPairPartners: boolean) => {
      const chip = new BehavioralChip({ seed: 5150, sizes: [6, 4] });
      const sup = chip.supply();
      return calibrateChip(backendTarget(chip), { chipId: chip.chipId, temperatureC: sup.temperatureC, supplyV: sup.supplyV, allPairPartners });
    };
    const a = await calibrated(true);
    const b = await calibrated(false);
    expect([a.globals.ePlus, a.globals.eMinus]).toEqual([b.globals.ePlus, b.globals.eMinus]);
    const pairCodes = (r: typeof a, l: number) => {
      const d = r.fitters.pnn[l]!.data;
      return new Set(d.neurons.flatMap((n) => Array.from(n.sp.cn, (c) => d.codesN[c]!)));
    };
    // A 6-4 die has one layer.
    expect(a.fitters.pnn.length).toBe(1);
    const nc = profileProbeCodes(a.profile, 0, 'nmos');
    const rest = nc.filter((c) => c !== referenceNmos(nc) && c !== Math.max(...nc));
    expect(rest.length).toBe(2);
    expect([...pairCodes(a, 0)].sort()).toEqual([...nc].sort());
    for (const c of rest) expect(pairCodes(b, 0).has(c)).toBe(false);
    expect(a.probes.blocks).toBeGreaterThan(b.probes.blocks);
    expect(a.profile.layers.every((l) => l.calibrated)).toBe(true);
  }, 120_000);

  it('refuses sweepRepeats that are not whole numbers of at least 1', async () => {
    const chip = new BehavioralChip({ seed: 1, sizes: [4, 2] });
    for (const sweepRepeats of [0, 1.5, Number.NaN]) {
      await expect(calibrateChip(backendTarget(chip), { chipId: chip.chipId, temperatureC: 27, supplyV: 1.8, sizes: { sweepRepeats } })).rejects.toThrow(
        /sizes\.sweepRepeats must be an integer >= 1/,
      );
    }
  });

  it('starts its highest precharge from the largest step that keeps 40 mV below the supply', () => {
    expect(highestPrecharge(1.3, 1.8)).toBeCloseTo(1.7, 12);
    expect(highestPrecharge(1.3, 1.72)).toBeCloseTo(1.6, 12);
    expect(highestPrecharge(1.3, 1.8, [])).toBe(1.3);
  });

  it('refuses a capacitance slope that is not a few per cent over the swing', async () => {
    const chip = new IdealChip({ seed: 1, sizes: [4, 2] });
    for (const k of [0.7, Number.NaN]) {
      await expect(calibrateChip(backendTarget(chip), { chipId: chip.chipId, temperatureC: 27, supplyV: 1.8, capSlope: [k] })).rejects.toThrow(
        /capSlope\[0\] must be finite and within \(-0\.5, 0\.5\)/,
      );
    }
  });

  it('refuses layers that do not exist', async () => {
    const chip = new IdealChip({ seed: 1, sizes: [4, 2] });
    await expect(calibrateChip(backendTarget(chip), { chipId: chip.chipId, temperatureC: 27, supplyV: 1.8, layers: [3] })).rejects.toThrow(
      /layer 3 does not exist/,
    );
  });
});
