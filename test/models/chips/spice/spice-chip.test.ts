/**
 * The SPICE chip behind createChip: option checking, defaults, table-mode runs on the default
 * array, a transient run end to end, and failures surfacing as SpiceError with their netlist.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NMOS, type ChipBackend } from '../../../../models/chips/chip-backend.ts';
import { buildChip, ChipOptionsError, CHIP_KINDS, createChip, parseChipOptions, type ChipBuildProgress } from '../../../../models/chips/index.ts';
import { deviceJobCount } from '../../../../models/chips/spice/tables.ts';
import { DEFAULT_DESIGN } from '../../../../models/chips/spice/design.ts';
import { SpiceError } from '../../../../models/chips/spice/errors.ts';
import { SpiceChip, type SpiceProgress } from '../../../../models/chips/spice/spice-chip.ts';
import { mulberry } from '../../rng.ts';
import { SILENT_TICK } from '../../../../wire/ticks.ts';

/** Long tests (a cold table cache means SPICE characterisation first): generous limit, still run in CI. */
const LONG = 240_000;

const open: ChipBackend[] = [];
afterAll(async () => {
  for (const c of open) await c.close?.();
});

function randomGates(chip: ChipBackend, rnd: () => number): void {
  chip.geometry.forEach((g, l) => {
    const v = new Float64Array(g.rowInput.length * g.outputs);
    for (let r = 0; r < g.rowInput.length; r++) {
      for (let i = 0; i < g.outputs; i++) v[r * g.outputs + i] = g.rowPolarity[r] === NMOS ? 0.45 + 0.1 * rnd() : 1.3 + 0.3 * rnd();
    }
    chip.setGateVoltages(l, v);
  });
}

describe('createChip("spice")', () => {
  it('is registered and rejects malformed options by name', async () => {
    expect(CHIP_KINDS).toContain('spice');
    await expect(createChip('spice', { mode: 'fast' })).rejects.toThrow(/mode='fast'.*transient.*table/);
    await expect(createChip('spice', { engine: 'hspice' })).rejects.toThrow(/engine='hspice'.*wasm.*ngspice/);
    await expect(createChip('spice', { workers: 'two' })).rejects.toThrow(ChipOptionsError);
    await expect(createChip('spice', { geometry: '16' })).rejects.toThrow(/geometry/);
    await expect(createChip('spice', { temperature: '85' })).rejects.toThrow(/unknown option 'temperature'.*seed, geometry, engine, mode, workers/);
    await expect(createChip('spice', { geometry: '5000-2', mode: 'transient' })).rejects.toThrow(/mode=table/);
  });

  it('refuses engine=ngspice clearly when no ngspice is installed', async () => {
    const path = process.env.PATH;
    process.env.PATH = '';
    try {
      await expect(createChip('spice', { engine: 'ngspice' })).rejects.toThrow(/ngspice executable on the PATH/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('defaults to a 16-8-4 dual-rail transient chip with the board timing', async () => {
    const chip = await createChip('spice', { seed: '9' });
    open.push(chip);
    expect(chip.chipId).toBe('spice-9');
    expect(chip.geometry.map((g) => [g.inputs, g.outputs, g.rowInput.length])).toEqual([
      [16, 8, 32],
      [8, 4, 16],
    ]);
    expect(chip.timing).toEqual({ tickSeconds: 1e-9, horizonTicks: [2000, 4000] });
    expect(chip.neuronVoltages(1)).toEqual({ vRest: 1.3, vThreshold: 0.9 });
    expect((chip as SpiceChip).mode).toBe('transient');
    expect(() => chip.setGateVoltages(0, new Float64Array(3))).toThrow(/rows\*outputs = 256/);
    expect(() => chip.setGateVoltages(0, new Float64Array(256).fill(2.5))).toThrow(/outside the DAC range/);
    expect(() => chip.neuronVoltages(2)).toThrow(/layers 0..1/);
  });
});

describe('SPICE chip in table mode', () => {
  it(
    'runs the default array: ticks inside the windows, silence propagates, progress reported',
    async () => {
      const chip = (await createChip('spice', { seed: '5', mode: 'table' })) as SpiceChip;
      open.push(chip);
      const rnd = mulberry(11);
      randomGates(chip, rnd);
      const batch = 6;
      const ticks = Uint16Array.from({ length: batch * 16 }, (_, k) => (k < 16 ? SILENT_TICK : rnd() < 0.2 ? SILENT_TICK : Math.floor(rnd() * 1200)));
      const events: SpiceProgress[] = [];
      const out = await chip.run(ticks, batch, { onProgress: (p) => events.push(p) });
      expect(out.map((o) => o.length)).toEqual([batch * 8, batch * 4]);
      // Sample 0 has no input spikes: everything stays silent.
      expect(Array.from(out[0].subarray(0, 8))).toEqual(new Array(8).fill(SILENT_TICK));
      expect(Array.from(out[1].subarray(0, 4))).toEqual(new Array(4).fill(SILENT_TICK));
      let fired = 0;
      out.forEach((o, l) => {
        for (const t of o) {
          if (t === SILENT_TICK) continue;
          fired++;
          expect(t).toBeLessThanOrEqual(chip.timing.horizonTicks[l]);
        }
      });
      expect(fired).toBeGreaterThan(10);
      expect(events.filter((e) => e.phase === 'simulate').map((e) => e.layer)).toEqual([0, 1]);
      // Deterministic: the same chip and inputs give the same ticks.
      expect(await chip.run(ticks, batch)).toEqual(out);
    },
    LONG,
  );

  it(
    'reports each characterisation step to the build hooks',
    async () => {
      // Seed 5's tables are the cache's after the test above (or after this first build).
      await createChip('spice', { seed: '5', mode: 'table' }).then((c) => c.close?.());
      const events: ChipBuildProgress[] = [];
      const chip = await buildChip(parseChipOptions('spice', { seed: '5', mode: 'table' }), { onProgress: (p) => events.push(p) });
      open.push(chip);
      const total = deviceJobCount(DEFAULT_DESIGN) + chip.geometry.length;
      expect(events.map((e) => e.done)).toEqual(Array.from({ length: total + 1 }, (_, k) => k));
      expect(new Set(events.map((e) => e.total))).toEqual(new Set([total]));
      expect(events.slice(1).every((e) => e.cached === true && typeof e.step === 'string' && e.step.length > 0)).toBe(true);
      expect(events[0].stage).toMatch(/sky130 devices in SPICE/);
      // Concurrent jobs end in any order; each job is reported once.
      const steps = events.slice(1).map((e) => e.step);
      expect(new Set(steps).size).toBe(deviceJobCount(DEFAULT_DESIGN) + 1);
      expect(steps.filter((n) => n === steps.at(-1)).length).toBe(chip.geometry.length);
    },
    LONG,
  );

  it(
    'is time-invariant: inputs 100 ns later give a spike 100 ns later',
    async () => {
      const chip = (await createChip('spice', { seed: '5', mode: 'table', geometry: '4-1' })) as SpiceChip;
      open.push(chip);
      chip.setGateVoltages(0, Float64Array.from([0.5, 1.8, 0.5, 1.8, 0.5, 1.8, 0.5, 1.8]));
      // Not from t = 0: inputs there switch on while the precharge still holds the membrane (no kick).
      const t = await chip.layerSpikeTimes(0, Float64Array.from([50e-9, 50e-9, 50e-9, 50e-9, 150e-9, 150e-9, 150e-9, 150e-9]), 2);
      // Only pA leakage acts during the extra 100 ns of waiting: a few ps.
      expect(t[1] - t[0]).toBeCloseTo(100e-9, 10);
    },
    LONG,
  );
});

describe('SPICE chip in transient mode', () => {
  it(
    'runs netlists end to end and quantises spikes to ticks',
    async () => {
      const chip = await SpiceChip.create({ seed: 2, sizes: [3, 2], workers: 2 });
      open.push(chip);
      chip.setGateVoltages(0, Float64Array.from([0.55, 0.6, 1.8, 1.8, 0.55, 0.5, 1.8, 1.4, 0, 0, 1.8, 1.8]));
      const ticks = Uint16Array.from([0, 200, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK]);
      const [out] = await chip.run(ticks, 2);
      const t = await chip.layerSpikeTimes(0, Float64Array.from([0, 200e-9, Infinity]), 1);
      expect(Array.from(out.subarray(0, 2))).toEqual(Array.from(t, (x) => Math.floor(x / 1e-9)));
      expect(Array.from(out.subarray(2))).toEqual([SILENT_TICK, SILENT_TICK]);
      expect(out[0]).toBeGreaterThan(0);
    },
    LONG,
  );

  it('reports a failing simulation as a SpiceError with the netlist it ran', async () => {
    // 1.1 um lies between the binned sizes of the sky130 models: ngspice finds no model.
    const chip = await SpiceChip.create({ sizes: [1, 1], workers: 0, design: { ...DEFAULT_DESIGN, synapse: { w: 1.1e-6, l: 0.25e-6 } } });
    open.push(chip);
    const err = await chip.run(Uint16Array.of(0), 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpiceError);
    expect((err as SpiceError).netlist).toContain('w=0.0000011');
    expect((err as SpiceError).messages.join('\n')).toMatch(/model/i);
  });
});
