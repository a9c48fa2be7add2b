import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NMOS } from '../../../models/chips/chip-backend.ts';
import { ChipOptionsError, createChip, IdealChip } from '../../../models/chips/index.ts';
import { mulberry } from '../rng.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';
import { expectOneOutputMoved, randomGates, randomInputs } from './gates.ts';

describe('ideal chip', () => {
  it('defaults: 784-256-128-10 dual-rail, 1 ns ticks, windows inside 16 bits', async () => {
    const chip = await createChip('ideal', {});
    expect(chip.geometry.map((g) => [g.inputs, g.outputs, g.rowInput.length])).toEqual([
      [784, 256, 1568],
      [256, 128, 512],
      [128, 10, 256],
    ]);
    expect(chip.timing.tickSeconds).toBe(1e-9);
    expect(chip.timing.horizonTicks).toEqual([2000, 4000, 6000]);
    expect(chip.dac).toEqual({ bits: 10, vMin: 0, vMax: 1.8 });
    expect(chip.neuronVoltages(0)).toEqual({ vRest: 1.3, vThreshold: 0.9 });
    expect(chip.supply().supplyV).toBe(1.8);
  });

  it('one synapse matches the SI closed form of C dv/dt = -I0 (1 + lambda v)', async () => {
    const chip = new IdealChip({ sizes: [1, 1] });
    const vg = 0.55;
    // EKV written out: Is = 2 n kp (W/L) UT^2, I0 = Is ln(1 + exp((Vg - Vth)/(2 n UT)))^2.
    const ut = (1.380649e-23 * 300.15) / 1.602176634e-19;
    const is = 2 * 1.221 * 53.3e-6 * 4 * ut * ut;
    const i0 = is * Math.log1p(Math.exp((vg - 0.609) / (2 * 1.221 * ut))) ** 2;
    const lambda = 0.846;
    const t = ((103.3e-15 / (lambda * i0)) * Math.log((1.3 + 1 / lambda) / (0.9 + 1 / lambda))) / 1e-9;
    chip.setGateVoltages(0, Float64Array.of(vg, 1.8));
    const [out] = await chip.run(Uint16Array.of(100), 1);
    expect(t).toBeGreaterThan(300); // lands well inside the 2000-tick window
    expect(Math.abs(out[0] - Math.floor(100 + t))).toBeLessThanOrEqual(1);
  });

  it('all synapses off, or all inputs silent, give silent ticks', async () => {
    const chip = new IdealChip({ sizes: [8, 4, 2] });
    const rnd = mulberry(1);
    let out = await chip.run(randomInputs(3 * 8, rnd), 3);
    for (const o of out) expect(Array.from(o).every((t) => t === SILENT_TICK)).toBe(true);
    randomGates(chip, rnd).forEach((v, l) => chip.setGateVoltages(l, v));
    out = await chip.run(new Uint16Array(2 * 8).fill(SILENT_TICK), 2);
    for (const o of out) expect(Array.from(o).every((t) => t === SILENT_TICK)).toBe(true);
  });

  it('fires inside every window for typical gates, and outputs are deterministic', async () => {
    const a = await createChip('ideal', { seed: '3', geometry: '16-8-4' });
    const b = await createChip('ideal', { seed: '3', geometry: '16-8-4' });
    const rnd = mulberry(2);
    const gates = randomGates(a, rnd);
    gates.forEach((v, l) => {
      a.setGateVoltages(l, v);
      b.setGateVoltages(l, v);
    });
    const x = randomInputs(5 * 16, rnd);
    const ra = await a.run(x, 5);
    const ra2 = await a.run(x, 5);
    const rb = await b.run(x, 5);
    expect(ra).toEqual(ra2);
    expect(ra).toEqual(rb);
    expect(a.chipId).toBe(b.chipId);
    ra.forEach((o, l) => {
      const fired = Array.from(o).filter((t) => t !== SILENT_TICK);
      expect(fired.length).toBeGreaterThan(0);
      for (const t of fired) expect(t).toBeLessThanOrEqual(a.timing.horizonTicks[l]);
    });
  });

  it('more gate drive never delays a spike: NMOS up -> earlier, PMOS down -> later (property)', async () => {
    const chip = new IdealChip({ sizes: [6, 3] });
    const g = chip.geometry[0];
    let changed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.integer({ min: 0, max: 11 }),
        fc.integer({ min: 0, max: 2 }),
        fc.double({ min: 0.001, max: 0.1, noNaN: true }),
        async (seed, row, col, step) => {
          const rnd = mulberry(seed);
          const [v] = randomGates(chip, rnd);
          const x = randomInputs(4 * 6, rnd);
          chip.setGateVoltages(0, v);
          const [before] = await chip.run(x, 4);
          const k = row * g.outputs + col;
          const nmos = g.rowPolarity[row] === NMOS;
          v[k] = nmos ? v[k] + step : v[k] - step;
          chip.setGateVoltages(0, v);
          const [after] = await chip.run(x, 4);
          changed += expectOneOutputMoved(g, before, after, 4, col, nmos);
        },
      ),
      { numRuns: 60 },
    );
    // The property must not pass vacuously: gate steps do move spikes.
    expect(changed).toBeGreaterThan(10);
  });

  it('a lower threshold voltage (larger swing) delays spikes', async () => {
    const chip = new IdealChip({ sizes: [4, 2] });
    chip.setGateVoltages(0, Float64Array.from([0.55, 0.55, 1.8, 1.8, 0.55, 0.55, 1.8, 1.8, 0.55, 0.55, 1.8, 1.8, 0.55, 0.55, 1.8, 1.8]));
    const x = Uint16Array.of(0, 10, 20, 30);
    const [t1] = await chip.run(x, 1);
    chip.setNeuronVoltages(0, 1.3, 0.8);
    const [t2] = await chip.run(x, 1);
    expect(t2[0]).toBeGreaterThan(t1[0]);
    expect(() => chip.setNeuronVoltages(0, 1.3, 1.4)).toThrow(RangeError);
  });

  it('rejects bad arguments with messages that name the value', async () => {
    const chip = new IdealChip({ sizes: [2, 1] });
    expect(() => chip.setGateVoltages(1, new Float64Array(4))).toThrow(/layer 1 does not exist/);
    expect(() => chip.setGateVoltages(0, new Float64Array(3))).toThrow(/4 values/);
    expect(() => chip.setGateVoltages(0, Float64Array.of(0, 2.5, 0, 0))).toThrow(/\[1\] = 2.5 V/);
    expect(() => chip.setGateVoltages(0, Float64Array.of(0, NaN, 0, 0))).toThrow(/NaN/);
    await expect(chip.run(new Uint16Array(3), 1)).rejects.toThrow(/batch\*inputs/);
    await expect(chip.run(new Uint16Array(2), 1.5)).rejects.toThrow(/batch/);
  });
});

describe('createChip', () => {
  it('names unknown kinds and options with what is accepted', async () => {
    await expect(createChip('idael', {})).rejects.toThrow(/unknown chip kind 'idael'; accepted kinds: ideal/);
    await expect(createChip('ideal', { geom: '2-1' })).rejects.toThrow(/unknown option 'geom'.*seed, geometry/);
    await expect(createChip('ideal', { geometry: '2-x' })).rejects.toThrow(/geometry='2-x'.*784-256-128-10/);
    await expect(createChip('ideal', { geometry: '2-0' })).rejects.toThrow(/size 1 = 0/);
    await expect(createChip('ideal', { seed: 'seven' })).rejects.toThrow(ChipOptionsError);
    await expect(createChip('toString', {})).rejects.toThrow(/unknown chip kind/);
    await expect(createChip('ideal', { constructor: 'x' })).rejects.toThrow(/unknown option 'constructor'/);
  });

  it('builds the requested geometry', async () => {
    const chip = await createChip('ideal', { seed: '7', geometry: '16-8-4' });
    expect(chip.chipId).toBe('ideal-7');
    expect(chip.geometry.map((g) => [g.inputs, g.outputs])).toEqual([
      [16, 8],
      [8, 4],
    ]);
    expect(chip.timing.horizonTicks).toEqual([2000, 4000]);
  });
});
