/**
 * Die-level spread of the SPICE chip: each seed draws its MIM capacitance, supply and temperature,
 * the same in both modes, and every netlist the die runs carries them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { drawDie } from '../../../../models/chips/spice/mismatch.ts';
import { SpiceChip } from '../../../../models/chips/spice/spice-chip.ts';

const chips: SpiceChip[] = [];
afterAll(async () => {
  for (const c of chips) await c.close();
});

function line(text: string, name: string): string[] {
  const l = text.split('\n').find((s) => s.startsWith(`${name} `));
  if (!l) throw new Error(`no line ${name}`);
  return l.split(/\s+/);
}

describe('SPICE die spread', () => {
  it('draws C, supply and temperature per seed with the documented spread', () => {
    expect(drawDie(4)).toEqual(drawDie(4));
    const dies = Array.from({ length: 400 }, (_, s) => drawDie(s));
    const stats = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      return { m, sd: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) };
    };
    const c = stats(dies.map((d) => d.capacitanceScale));
    const v = stats(dies.map((d) => d.supplyV));
    const t = stats(dies.map((d) => d.temperatureC));
    // 400 draws: sd within about 15 % of sigma, means within 3.5 standard errors.
    expect(c.sd).toBeGreaterThan(0.025);
    expect(c.sd).toBeLessThan(0.035);
    expect(Math.abs(c.m - 1)).toBeLessThan(0.006);
    expect(v.sd).toBeGreaterThan(0.0075);
    expect(v.sd).toBeLessThan(0.0105);
    expect(Math.abs(v.m - 1.8)).toBeLessThan(0.0016);
    expect(t.sd).toBeGreaterThan(1.25);
    expect(t.sd).toBeLessThan(1.75);
    expect(Math.abs(t.m - 27)).toBeLessThan(0.27);
  });

  it('puts the die in its netlists and reports its supply and temperature', async () => {
    const chip = await SpiceChip.create({ seed: 11, sizes: [2, 1], workers: 0 });
    const flat = await SpiceChip.create({ seed: 11, sizes: [2, 1], workers: 0, dieSpread: false });
    chips.push(chip, flat);
    const d = drawDie(11);
    expect(chip.die).toEqual(d);
    expect(chip.supply()).toEqual({ supplyV: d.supplyV, temperatureC: d.temperatureC });
    const x = Float64Array.of(0, Infinity);
    const net = chip.neuronNetlist(0, 0, x);
    expect(Number(line(net, 'Cmem')[3])).toBeCloseTo(103.3e-15 * d.capacitanceScale, 25);
    expect(Number(line(net, 'Vdd')[3])).toBeCloseTo(d.supplyV, 12);
    expect(Number(line(net, '.temp')[1])).toBeCloseTo(d.temperatureC, 9);
    const nominal = flat.neuronNetlist(0, 0, x);
    expect(Number(line(nominal, 'Cmem')[3])).toBeCloseTo(103.3e-15, 25);
    expect(Number(line(nominal, 'Vdd')[3])).toBe(1.8);
    expect(nominal).not.toContain('.temp');
    expect(flat.supply()).toEqual({ supplyV: 1.8, temperatureC: 27 });
  });
});
