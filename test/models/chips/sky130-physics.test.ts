import { describe, expect, it } from 'vitest';
import { BehavioralChip } from '../../../models/chips/behavioral-chip.ts';
import { NMOS } from '../../../models/chips/chip-backend.ts';
import { ChipOptionsError, createChip } from '../../../models/chips/index.ts';
import { SKY130_MAGNITUDES, type MismatchMagnitudes } from '../../../models/chips/mismatch.ts';
import { NOMINAL_CIRCUIT, sky130Curves, sky130NominalCurves } from '../../../models/chips/sky130-nominal.ts';
import { sky130DieCurves } from '../../../models/chips/sky130-curves.ts';
import { synapseDrive } from '../../../models/chips/sky130-layer.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';
import { gatesWith } from './gates.ts';

const ZERO: MismatchMagnitudes = {
  ...(Object.fromEntries(Object.keys(SKY130_MAGNITUDES).map((k) => [k, 0])) as unknown as MismatchMagnitudes),
  capDensity: SKY130_MAGNITUDES.capDensity,
};

/** First time (s) the membrane, from vRest at t = 0, reaches vThreshold under C dv/dt = current(t, v); RK4. */
function crossing(current: (t: number, v: number) => number, dt = 0.05e-9, tMax = 2e-6): number {
  const { capacitance: C, vRest, vThreshold } = NOMINAL_CIRCUIT;
  let v = vRest;
  for (let t = 0; t < tMax; t += dt) {
    const f = (tt: number, vv: number) => current(tt, vv) / C;
    const k1 = f(t, v);
    const k2 = f(t + dt / 2, v + (dt / 2) * k1);
    const k3 = f(t + dt / 2, v + (dt / 2) * k2);
    const k4 = f(t + dt, v + dt * k3);
    const next = v + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4);
    if (next <= vThreshold) return t + (dt * (v - vThreshold)) / (v - next);
    v = next;
  }
  return Infinity;
}

describe('behavioural chip with physics=sky130', () => {
  const curves = sky130NominalCurves();

  it('one NMOS synapse fires when the SPICE curve, integrated directly, says it does', async () => {
    const chip = new BehavioralChip({ seed: 4, sizes: [2, 1], magnitudes: ZERO, physics: 'sky130' });
    const rowN = chip.geometry[0].rowPolarity.findIndex((p, r) => p === NMOS && chip.geometry[0].rowInput[r] === 0);
    for (const vg of [0.55, 0.6, 0.65]) {
      chip.setGateVoltages(0, gatesWith(chip, 0, [[rowN, 0, vg]]));
      const [[tick]] = await chip.run(Uint16Array.from([100, SILENT_TICK]), 1);
      // Both rows of input 0 switch on at 100 ns: the NMOS at vg, the PMOS held off at 1.8 V.
      const travel = crossing((_, v) => curves.current('nmos', vg, v) + curves.current('pmos', 1.8, v));
      expect(Number.isFinite(travel)).toBe(true);
      const expected = 100 + travel / 1e-9;
      // The chip linearises each drain characteristic at mid-swing; within 2 % of the travel.
      expect(Math.abs(tick - expected), `vg ${vg}: tick ${tick}, curve ${expected.toFixed(1)}`).toBeLessThanOrEqual(Math.max(1.5, 0.02 * (expected - 100)));
    }
  });

  it('solves gate-dependent reversal potentials exactly (two inputs, NMOS and PMOS at their own E)', async () => {
    const chip = new BehavioralChip({ seed: 4, sizes: [2, 1], magnitudes: ZERO, physics: 'sky130' });
    const g = chip.geometry[0];
    const row = (input: number, pol: number) => g.rowPolarity.findIndex((p, r) => p === pol && g.rowInput[r] === input);
    const set: [number, number, number][] = [
      [row(0, NMOS), 0, 0.62],
      [row(1, NMOS), 0, 0.7],
      [row(1, 1), 0, 1.05],
    ];
    chip.setGateVoltages(0, gatesWith(chip, 0, set));
    const [[tick]] = await chip.run(Uint16Array.from([50, 120]), 1);
    // Independent reference: RK4 on the linearised drives the chip uses, each row at its own E.
    const ctx = { capacitance: NOMINAL_CIRCUIT.capacitance, vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold, t0: 1 };
    const drives = [
      { at: 50e-9, d: [synapseDrive(curves, false, 0.62, ctx), synapseDrive(curves, true, 1.8, ctx)] },
      { at: 120e-9, d: [synapseDrive(curves, false, 0.7, ctx), synapseDrive(curves, true, 1.05, ctx)] },
    ];
    const swing = NOMINAL_CIRCUIT.vRest - NOMINAL_CIRCUIT.vThreshold;
    const travel = crossing((t, v) => {
      const u = (NOMINAL_CIRCUIT.vRest - v) / swing;
      let du = 0;
      for (const x of drives) if (t >= x.at) for (const d of x.d) du += d.a - d.b * u;
      return -du * swing * NOMINAL_CIRCUIT.capacitance; // du/dt -> current into the membrane
    });
    expect(Math.abs(tick - travel / 1e-9)).toBeLessThanOrEqual(1);
    // The two NMOS rows really differ in E (the PNN model's one E+ could not hold both).
    const e = (vg: number) => curves.reversal('nmos', vg)!;
    expect(e(0.7) - e(0.62)).toBeGreaterThan(0.5);
  });

  it('is the default, selected by the device URI option, the model-form die named in the chip id; other physics rejected', async () => {
    const chip = (await createChip('behavioral', { seed: '3', geometry: '8-4' })) as BehavioralChip;
    expect(chip.chipId).toBe('behavioral-3-8x4');
    expect(chip.physics).toBe('sky130');
    expect((await createChip('behavioral', { seed: '3', geometry: '8-4', physics: 'sky130' })).chipId).toBe('behavioral-3-8x4');
    expect((await createChip('behavioral', { seed: '3', geometry: '8-4', physics: 'ekv' })).chipId).toBe('behavioral-3-8x4-ekv');
    await expect(createChip('behavioral', { physics: 'bsim' })).rejects.toThrow(ChipOptionsError);
    await expect(createChip('behavioral', { physics: 'bsim' })).rejects.toThrow(/physics='bsim'.*physics=sky130.*physics=ekv/);
  });

  it("conducts the SPICE curve, which the model-form (EKV fit) die follows within the fit's error, and reports its conductance gain", async () => {
    const sky = new BehavioralChip({ seed: 9, sizes: [2, 1], magnitudes: ZERO, physics: 'sky130' });
    const ekv = new BehavioralChip({ seed: 9, sizes: [2, 1], magnitudes: ZERO, physics: 'ekv' });
    for (const vg of [0.4, 0.5, 0.6]) {
      for (const c of [sky, ekv]) c.setGateVoltages(0, gatesWith(c, 0, [[0, 0, vg]]));
      // The sky130 layer's gE / gI are anchors: the synapse's conductance is its drain slope, gE + gI.
      const m = sky.hiddenTruth().layers[0].model;
      const gS = m.gE[0] + m.gI[0];
      const gK = ekv.hiddenTruth().layers[0].model.gE[0];
      const slope = -(curves.current('nmos', vg, 1.2) - curves.current('nmos', vg, 1.0)) / 0.2;
      // (the chip reads the slope off a 0.5 mV gate table: within 1 %)
      expect(gS / ((slope * 2e-6) / NOMINAL_CIRCUIT.capacitance), `vg ${vg}`).toBeCloseTo(1, 2);
      // The EKV fit matches the current within 13 %; its one lambda misses the slope by up to half.
      expect(Math.abs(Math.log(gK / gS)), `vg ${vg}`).toBeLessThan(Math.log(1.6));
    }
    expect(sky.hiddenTruth().layers[0].conductanceGain[0]).toBeCloseTo(1, 12);
  });
});

describe("a sky130 die's curves: temperature and process point", () => {
  const nominal = sky130NominalCurves();
  const knots: [number, number][] = [
    [0.35, 1.0],
    [0.5, 1.1],
    [0.6, 1.3],
  ];
  const pknots: [number, number][] = [
    [1.35, 1.0],
    [1.2, 1.1],
    [1.05, 1.3],
  ];

  it('is the nominal at 27 C and z = 0, and the characterised curves at 85 C and at the corners', () => {
    expect(sky130DieCurves({ temperatureC: 27, zN: 0, zP: 0 })).toBe(nominal);
    const hot = sky130DieCurves({ temperatureC: 85, zN: 0, zP: 0 });
    const ref = sky130Curves('card', 85);
    for (const [vg, v] of knots) expect(hot.current('nmos', vg, v) / ref.current('nmos', vg, v)).toBeCloseTo(1, 4);
    for (const [vg, v] of pknots) expect(hot.current('pmos', vg, v) / ref.current('pmos', vg, v)).toBeCloseTo(1, 4);
    // +3 sigma NMOS is the ff corner's NMOS against tt; the PMOS stays where it was.
    const fastN = sky130DieCurves({ temperatureC: 27, zN: 3, zP: 0 });
    const ff = sky130Curves('ff', 27);
    const tt = sky130Curves('tt', 27);
    for (const [vg, v] of knots) {
      expect(fastN.current('nmos', vg, v) / nominal.current('nmos', vg, v)).toBeCloseTo(ff.current('nmos', vg, v) / tt.current('nmos', vg, v), 4);
    }
    for (const [vg, v] of pknots) expect(fastN.current('pmos', vg, v)).toBeCloseTo(nominal.current('pmos', vg, v), 20);
    const slowP = sky130DieCurves({ temperatureC: 27, zN: 0, zP: -1.5 });
    const ss = sky130Curves('ss', 27);
    for (const [vg, v] of pknots) {
      const want = Math.sqrt(ss.current('pmos', vg, v) / tt.current('pmos', vg, v));
      expect(slowP.current('pmos', vg, v) / nominal.current('pmos', vg, v)).toBeCloseTo(want, 4);
    }
  });

  it('moves E+ with temperature as the characterised tables do', () => {
    const cold = sky130DieCurves({ temperatureC: -40, zN: 0, zP: 0 });
    expect(cold.reversal('nmos', 0.5)!).toBeCloseTo(sky130Curves('card', -40).reversal('nmos', 0.5)!, 2);
    expect(cold.reversal('nmos', 0.5)!).toBeLessThan(nominal.reversal('nmos', 0.5)!);
  });

  it('a die drawn with the default magnitudes sits at its own temperature and process point', () => {
    const chip = new BehavioralChip({ seed: 11, sizes: [2, 1], physics: 'sky130' });
    const t = chip.hiddenTruth();
    const expectedCurves = sky130DieCurves({
      temperatureC: t.temperatureC,
      zN: -t.process.dVthN / SKY130_MAGNITUDES.globalVthSigma,
      zP: -t.process.dVthP / SKY130_MAGNITUDES.globalVthSigma,
    });
    chip.setGateVoltages(0, gatesWith(chip, 0, [[0, 0, 0.5]]));
    const truth = chip.hiddenTruth().layers[0];
    const ctx = { capacitance: NOMINAL_CIRCUIT.capacitance, vRest: 1.3, vThreshold: 0.9, t0: chip.t0 };
    const want = synapseDrive(expectedCurves, false, 0.5, ctx, truth.local.dVth[0], truth.gain[0]).b;
    const nominalB = synapseDrive(nominal, false, 0.5, ctx).b;
    expect(truth.conductanceGain[0]).toBeCloseTo(want / nominalB, 10);
    expect(Math.abs(truth.conductanceGain[0] - 1)).toBeGreaterThan(1e-3);
  });
});
