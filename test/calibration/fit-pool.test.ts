/**
 * The per-neuron fits on the worker pool: the profile file must be the same bytes for one worker
 * (inline, this thread) and for two (threads), and the same as the single-threaded LayerFitter
 * path gives for a family refit.
 */
import { describe, expect, it } from 'vitest';
import { backendTarget } from '../../calibration/backend-target.ts';
import { calibrateChip, probeLayer } from '../../calibration/calibrate-chip.ts';
import { encodeChipProfile } from '../../calibration/chip-profile.ts';
import { FitPool } from '../../calibration/fit-pool.ts';
import { buildDataset, LayerFitter } from '../../calibration/layer-fit.ts';
import { DEFAULT_PROBE_SIZES } from '../../calibration/probe-plan.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS } from '../../models/chips/sky130-nominal.ts';
import { familyFromMosfet } from '../../calibration/transfer-fit.ts';
import { TaskPool } from '../../models/parallel/pool.ts';

const sizes = [12, 6, 3];
const probe = { patternsPerConfig: 32, heldOutPatterns: 24 };

async function profileBytes(workers: number): Promise<{ bytes: Buffer; globals: unknown }> {
  // A fresh chip of the same seed per run: the same probes read the same (jittered) times.
  const chip = new BehavioralChip({ seed: 31, sizes });
  const sup = chip.supply();
  const res = await calibrateChip(backendTarget(chip), { chipId: chip.chipId, temperatureC: sup.temperatureC, supplyV: sup.supplyV, sizes: probe, workers });
  res.profile.createdAt = '2026-01-01T00:00:00.000Z';
  return { bytes: Buffer.concat(encodeChipProfile(res.profile)), globals: res.globals };
}

describe('calibration fits on the pool', () => {
  it('writes the same profile bytes with 1 and 2 workers', async () => {
    const one = await profileBytes(1);
    const two = await profileBytes(2);
    expect(two.globals).toEqual(one.globals);
    expect(two.bytes.length).toBe(one.bytes.length);
    expect(two.bytes.equals(one.bytes)).toBe(true);
  }, 300_000);

  it("refits a layer's families on the pool exactly as LayerFitter.refitFamilies does in place", async () => {
    const chip = new BehavioralChip({ seed: 8, sizes });
    const sup = chip.supply();
    const target = backendTarget(chip);
    const run = await probeLayer(target, 1, { ...DEFAULT_PROBE_SIZES, ...probe }, 1, {
      chipId: chip.chipId,
      temperatureC: sup.temperatureC,
      supplyV: sup.supplyV,
    });
    const ctx = { supply: sup.supplyV, temperatureC: sup.temperatureC };
    const t0 = target.layers[0].horizonTicks * target.tickSeconds;
    const families = () => ({
      nmos: familyFromMosfet({ ...NOMINAL_NMOS, lambda: NOMINAL_CIRCUIT.lambdaN }, ctx, NOMINAL_CIRCUIT.capacitance, t0),
      pmos: familyFromMosfet({ ...NOMINAL_PMOS, lambda: NOMINAL_CIRCUIT.lambdaP }, ctx, NOMINAL_CIRCUIT.capacitance, t0),
    });
    const data = buildDataset({
      layer: 1,
      geometry: target.layers[1],
      dac: target.dac,
      ctx,
      perUnit: target.layers[0].horizonTicks,
      driven: run.ctx.driven,
      horizon: target.layers[1].horizonTicks / target.layers[0].horizonTicks,
      swingVolts: NOMINAL_CIRCUIT.vRest - NOMINAL_CIRCUIT.vThreshold,
      samples: run.samples,
    });
    const g = { ePlus: 4, eMinus: -3, kickNmos: 0, kickPmos: 0 };
    const inPlace = new LayerFitter(data, false, families());
    inPlace.refitFamilies(g);
    const pooled = new LayerFitter(data, false, families());
    const pool = new TaskPool(2);
    try {
      await new FitPool(pool).refitFamilies([pooled], g);
    } finally {
      await pool.close();
    }
    expect(pooled.state.families).toEqual(inPlace.state.families);
    expect(pooled.snapshot()).toEqual(inPlace.snapshot());
    // Something was fitted: the families moved off the nominal ones.
    expect(pooled.state.families.nmos).not.toEqual(families().nmos);
  }, 120_000);
});
