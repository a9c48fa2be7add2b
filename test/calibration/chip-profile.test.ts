import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ChipProfileError,
  decodeChipProfile,
  encodeChipProfile,
  lambdasFor,
  loadChipProfile,
  MIN_EARLY_VOLTS,
  reversalBounds,
  nominalChipProfile,
  PROFILE_SCHEMA_VERSION,
  profileLayerCurves,
  profileTwinPhysics,
  saveChipProfile,
  type ChipProfile,
} from '../../calibration/chip-profile.ts';
import { reversalPotentials } from '../../models/neuron/units.ts';
import { reversalCurveFor } from '../../calibration/reversal-curve.ts';
import { encodeArrays, decodeArrays } from '../../models/io/tensor-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'profile-'));

function sample(seed = 1): ChipProfile {
  const p = nominalChipProfile({
    chipId: 'behavioral-3-4x3x2',
    boardId: 'mock-1',
    firmware: 'mock/1',
    secondsPerTick: 1e-9,
    layers: [
      { inputs: 4, outputs: 3, rows: 8, horizonTicks: 2000 },
      { inputs: 3, outputs: 2, rows: 6, horizonTicks: 4000 },
    ],
  });
  p.layers[0].dVth[5] = 0.013 * seed;
  p.layers[0].gain[2] = 1.02;
  p.layers[1].delay[1] = 4e-4;
  p.global.timerOffsetTicks = 1.4;
  return p;
}

const bytes = (p: ChipProfile) => Buffer.concat(encodeChipProfile(p));

describe('chip profile files', () => {
  it('round-trips through save and load (values bit for bit)', async () => {
    const p = sample();
    const path = join(dir, 'a.slp');
    await saveChipProfile(path, p);
    const q = await loadChipProfile(path, { chipId: p.chipId });
    expect(q.schemaVersion).toBe(PROFILE_SCHEMA_VERSION);
    expect(q.layers[0].dVth).toEqual(p.layers[0].dVth);
    expect(q.layers[1].delay[1]).toBe(4e-4);
    expect(q.global).toEqual(p.global);
    // No temporary file left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it("keeps a layer's membrane capacitance slope, and refuses one out of range", () => {
    const p = sample();
    p.layers[1].capSlope = 0.0052;
    const q = decodeChipProfile(bytes(p), 'mem');
    expect(q.layers[1].capSlope).toBe(0.0052);
    expect(q.layers[0].capSlope).toBeUndefined();
    p.layers[1].capSlope = 0.7;
    expect(() => encodeChipProfile(p)).toThrow(/capSlope/);
  });

  it('property: any finite parameters round-trip exactly', () => {
    const f64 = (n: number) => fc.float64Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(f64(24), f64(24), f64(3), fc.double({ min: 1.01, max: 50, noNaN: true }), (dVth, gainRaw, delay, ePlus) => {
        const p = sample();
        p.layers[0].dVth = Float64Array.from(dVth);
        p.layers[0].gain = Float64Array.from(gainRaw, (x) => 1e-3 + Math.abs(x % 10));
        p.layers[0].delay = Float64Array.from(delay);
        p.global.ePlus = ePlus;
        const q = decodeChipProfile(bytes(p), 'mem');
        expect(q.layers[0].dVth).toEqual(p.layers[0].dVth);
        expect(q.layers[0].gain).toEqual(p.layers[0].gain);
        expect(q.layers[0].delay).toEqual(p.layers[0].delay);
        expect(q.global.ePlus).toBe(ePlus);
      }),
      { numRuns: 40 },
    );
  });

  it('refuses a profile of another chip, naming both chips and what to do', () => {
    const err = (() => {
      try {
        decodeChipProfile(bytes(sample()), 'p.slp', { chipId: 'behavioral-9' });
      } catch (e) {
        return e as ChipProfileError;
      }
    })()!;
    expect(err).toBeInstanceOf(ChipProfileError);
    expect(err.reason).toBe('wrong-chip');
    expect(err.message).toMatch(/behavioral-3-4x3x2/);
    expect(err.message).toMatch(/behavioral-9/);
    expect(err.message).toMatch(/calibrate/);
  });

  it("carries each layer's E+ / E- against gate voltage (schema 2), and still loads version 1 files without it", () => {
    const p = sample();
    const c = p.layers[0].circuit;
    p.layers[0].reversal = reversalCurveFor(
      { ePlus: 6.2, eMinus: -3.1 },
      { nmos: [0.55, 0.6], pmos: [1.2, 1.25] },
      { nmos: p.layers[0].nmos, pmos: p.layers[0].pmos, supply: c.supply, temperatureC: 27, vMid: 0.5 * (c.vRest + c.vThreshold) },
    );
    const q = decodeChipProfile(bytes(p), 'mem');
    expect(q.layers[0].reversal!.gFactorN).toEqual(p.layers[0].reversal!.gFactorN);
    expect(q.layers[0].reversal!.gFactorP).toEqual(p.layers[0].reversal!.gFactorP);
    expect(q.schemaVersion).toBe(PROFILE_SCHEMA_VERSION);
    expect(q.layers[0].reversal!.anchorN).toBeUndefined();
    expect(q.layers[0].reversal!.ePlus).toEqual(p.layers[0].reversal!.ePlus);
    expect(q.layers[0].reversal!.eMinus).toEqual(p.layers[0].reversal!.eMinus);
    expect(q.layers[1].reversal).toBeUndefined();
    expect(profileLayerCurves(q, 0).reversal!.vStep).toBe(p.layers[0].reversal!.vStep);
    // A version 1 file: no reversal field.
    const v1 = decodeArrays(bytes(sample()), 'x');
    const meta = { ...v1.meta, version: 1, profile: { ...(v1.meta.profile as object), schemaVersion: 1 } };
    const old = decodeChipProfile(Buffer.concat(encodeArrays(meta, v1.arrays)), 'old.slp');
    expect(old.schemaVersion).toBe(1);
    expect(old.layers.every((l) => l.reversal === undefined)).toBe(true);
    // An E+ at or below 1 is no reversal potential: refused, naming the field.
    const d = decodeArrays(bytes(p), 'x');
    const prof = d.meta.profile as { layers: { reversal?: { ePlus: number[] } }[] };
    prof.layers[0].reversal!.ePlus[3] = 0.5;
    expect(() => decodeChipProfile(Buffer.concat(encodeArrays(d.meta, d.arrays)), 'p.slp')).toThrow(/layers\.0\.reversal\.ePlus\.3/);
  });

  it('carries the gates a reversal curve is anchored at (schema 3) and the shape strengths (schema 4), and still loads versions 2 and 3', () => {
    const p = sample();
    const fitted = { ePlus: 6.2, eMinus: -3.1, shapeN: 0.4, shapeP: 1.3 };
    p.layers[0].reversal = reversalCurveFor(fitted, { nmos: [0.55, 0.6], pmos: [1.1, 1.15] }, undefined, { nmos: 0.55, pmos: 1.1 });
    const q = decodeChipProfile(bytes(p), 'mem');
    expect(q.schemaVersion).toBe(PROFILE_SCHEMA_VERSION);
    expect(q.layers[0].reversal!.anchorN).toBe(0.55);
    expect(q.layers[0].reversal!.anchorP).toBe(1.1);
    expect(q.layers[0].reversal!.strengthN).toBe(0.4);
    expect(q.layers[0].reversal!.strengthP).toBe(1.3);
    expect(q.layers[0].reversal!.eMinus).toEqual(p.layers[0].reversal!.eMinus);
    // A version 3 file (anchors, no strengths) loads and means the card's full shape.
    const v3 = decodeArrays(bytes(p), 'x');
    const prof3 = v3.meta.profile as { schemaVersion: number; layers: { reversal?: Record<string, unknown> }[] };
    delete prof3.layers[0].reversal!.strengthN;
    delete prof3.layers[0].reversal!.strengthP;
    prof3.schemaVersion = 3;
    const old3 = decodeChipProfile(Buffer.concat(encodeArrays({ ...v3.meta, version: 3 }, v3.arrays)), 'v3.slp');
    expect(old3.schemaVersion).toBe(3);
    expect(old3.layers[0].reversal!.anchorN).toBe(0.55);
    expect(old3.layers[0].reversal!.strengthN).toBeUndefined();
    const v2 = decodeArrays(bytes(sample()), 'x');
    const meta = { ...v2.meta, profile: { ...(v2.meta.profile as object), schemaVersion: 2 } };
    expect(decodeChipProfile(Buffer.concat(encodeArrays(meta, v2.arrays)), 'v2.slp').schemaVersion).toBe(2);
    // A negative strength is no shape: refused, naming the field.
    const bad = decodeArrays(bytes(p), 'x');
    (bad.meta.profile as { layers: { reversal?: { strengthP: number } }[] }).layers[0].reversal!.strengthP = -0.5;
    expect(() => decodeChipProfile(Buffer.concat(encodeArrays(bad.meta, bad.arrays)), 'p.slp')).toThrow(/layers\.0\.reversal\.strengthP/);
  });

  it('refuses a newer schema with an upgrade hint', () => {
    const p = sample();
    const d = decodeArrays(bytes(p), 'x');
    const meta = { ...d.meta, profile: { ...(d.meta.profile as object), schemaVersion: PROFILE_SCHEMA_VERSION + 1 } };
    const b = Buffer.concat(encodeArrays(meta, d.arrays));
    expect(() => decodeChipProfile(b, 'p.slp')).toThrow(/newer.*upgrade spikeloop/);
  });

  it('refuses damaged files: flipped byte, truncation, bad field, missing array', async () => {
    const good = bytes(sample());
    const flipped = Buffer.from(good);
    flipped[flipped.length - 3] ^= 0xff;
    expect(() => decodeChipProfile(flipped, 'p.slp')).toThrow(/damaged.*CRC.*calibrate/);
    expect(() => decodeChipProfile(good.subarray(0, good.length - 10), 'p.slp')).toThrow(/damaged.*truncated/);
    const d = decodeArrays(good, 'x');
    const badField = { ...d.meta, profile: { ...(d.meta.profile as object), secondsPerTick: -1 } };
    expect(() => decodeChipProfile(Buffer.concat(encodeArrays(badField, d.arrays)), 'p.slp')).toThrow(/secondsPerTick/);
    const { ['layer1.delay']: _drop, ...rest } = d.arrays;
    expect(() => decodeChipProfile(Buffer.concat(encodeArrays(d.meta, rest)), 'p.slp')).toThrow(/layer1\.delay/);
    const path = join(dir, 'text.slp');
    writeFileSync(path, '{"not": "a profile"}');
    await expect(loadChipProfile(path)).rejects.toThrow(/damaged/);
    await expect(loadChipProfile(join(dir, 'missing.slp'))).rejects.toThrow(/cannot read/);
  });

  it('refuses to save an invalid profile and leaves the old file intact', async () => {
    const path = join(dir, 'keep.slp');
    await saveChipProfile(path, sample());
    const before = readFileSync(path);
    const bad = sample();
    bad.layers[0].gain[0] = -1;
    await expect(saveChipProfile(path, bad)).rejects.toThrow(/gain\[0\]/);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('layer curves and twin physics carry the profile values; lambdas reproduce E+/E-', () => {
    const p = sample();
    const c = profileLayerCurves(p, 0);
    expect(c.dVth![5]).toBeCloseTo(0.013, 15);
    expect(c.nmos.lambda).toBe(c.circuit.lambdaN);
    const e = reversalPotentials(c.circuit);
    expect(e.ePlus).toBeCloseTo(p.global.ePlus, 12);
    expect(e.eMinus).toBeCloseTo(p.global.eMinus, 12);
    const t = profileTwinPhysics(p);
    expect(t.timerOffset).toBeCloseTo(1.4 / 2000, 15);
    expect(t.layers[1].delay[1]).toBe(4e-4);
    expect(() => profileLayerCurves(p, 2)).toThrow(/layer 2/);
    // Independent reference: E+ = (vRest + 1/lambdaN)/swing with the nominal 1.3 V / 0.9 V circuit.
    const l = lambdasFor(5.5, -4, { vRest: 1.3, vThreshold: 0.9, supply: 1.8 });
    expect((1.3 + 1 / l.lambdaN) / 0.4).toBeCloseTo(5.5, 12);
    expect((1.3 - 1.8 - 1 / l.lambdaP) / 0.4).toBeCloseTo(-4, 12);
  });

  it('reversal bounds keep every circuit at an Early voltage of at least MIN_EARLY_VOLTS', () => {
    const a = { vRest: 1.3, vThreshold: 0.9, supply: 1.8 };
    const b = { vRest: 1.5, vThreshold: 1.0, supply: 1.8 };
    const { ePlusMin, eMinusMax } = reversalBounds([a, b]);
    // Hand values: a gives (1.3 + 0.25) / 0.4 = 3.875 and (1.3 - 1.8 - 0.25) / 0.4 = -1.875; b gives 3.5 and -1.1.
    expect(ePlusMin).toBeCloseTo(3.875, 12);
    expect(eMinusMax).toBeCloseTo(-1.875, 12);
    for (const c of [a, b]) {
      const l = lambdasFor(ePlusMin, eMinusMax, c);
      expect(1 / l.lambdaN).toBeGreaterThanOrEqual(MIN_EARLY_VOLTS - 1e-12);
      expect(1 / l.lambdaP).toBeGreaterThanOrEqual(MIN_EARLY_VOLTS - 1e-12);
    }
    // Beyond the bound the circuit would need a shorter Early voltage, and far beyond it none at all.
    expect(1 / lambdasFor(ePlusMin - 0.1, eMinusMax, a).lambdaN).toBeLessThan(MIN_EARLY_VOLTS);
    expect(() => lambdasFor(ePlusMin, -1, a)).toThrow(/non-positive channel-length modulation/);
  });
});

describe('profile physics helpers', () => {
  it('conductances and kicks at given gates follow the profile curves (drainCurrent reference)', async () => {
    const { profileLayerConductances, profileLayerKicks } = await import('../../calibration/chip-profile.ts');
    const { dualRailLayer } = await import('../../models/chips/chip-backend.ts');
    const { drainCurrent } = await import('../../models/neuron/transfer-curve.ts');
    const p = sample();
    p.global.kickNmos = 0.004;
    p.global.kickPmos = 0.003;
    const g = dualRailLayer(4, 3);
    const volts = new Float64Array(8 * 3);
    for (let r = 0; r < 8; r++) volts.fill(r % 2 === 0 ? 0.3 : 1.4, r * 3, r * 3 + 3);
    const { gE, gI } = profileLayerConductances(p, 0, volts, g);
    const l = p.layers[0];
    // Input 2 (rows 4, 5), output 2: dVth[5] belongs to row 1 output 2.
    const i0 = drainCurrent(l.nmos, 0.3, l.circuit.supply, p.temperatureC, { dVth: l.dVth[4 * 3 + 2], gain: l.gain[4 * 3 + 2] });
    expect(gE[2 * 3 + 2]).toBeCloseTo((i0 * l.circuit.lambdaN * p.t0Seconds) / l.circuit.capacitance, 12);
    const ip = drainCurrent(l.pmos, 1.4, l.circuit.supply, p.temperatureC, { dVth: l.dVth[1 * 3 + 2], gain: l.gain[1 * 3 + 2] });
    expect(gI[0 * 3 + 2]).toBeCloseTo((ip * l.circuit.lambdaP * p.t0Seconds) / l.circuit.capacitance, 12);
    const k = profileLayerKicks(p, 0, volts, g);
    expect(k[1 * 3 + 0]).toBeCloseTo(-0.004 * 0.3 + 0.003 * (1.8 - 1.4), 12);
  });
});
