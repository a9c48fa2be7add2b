import { describe, expect, it } from 'vitest';
import { NMOS, PMOS, dualRailLayer } from '../../models/chips/chip-backend.ts';
import { DEFAULT_DAC, DEFAULT_SAFE } from '../../models/chips/sky130-nominal.ts';
import { Rng } from '../../models/datasets/rng.ts';
import { candidateBlocks, DEFAULT_PROBE_SIZES, eiBlock, patternBlocks, pickCodes, scanGrid, sweepBlocks } from '../../calibration/probe-plan.ts';
import { codeWindow } from '../../calibration/probe-configs.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

const g = dualRailLayer(6, 4);
const ctx = { layer: 0, geometry: g, dac: DEFAULT_DAC, safe: DEFAULT_SAFE, driven: 5, windowTicks: 2000 };

describe('probe design', () => {
  it('scan grids stay inside the safe windows and run from off toward full drive', () => {
    for (const pol of [NMOS, PMOS]) {
      const [lo, hi] = codeWindow(DEFAULT_DAC, DEFAULT_SAFE, pol);
      const grid = scanGrid(DEFAULT_DAC, DEFAULT_SAFE, pol, 10);
      expect(grid.every((c) => c >= lo && c <= hi)).toBe(true);
      expect(pol === NMOS ? grid[1] > grid[0] : grid[1] < grid[0]).toBe(true);
    }
  });

  it('pickCodes interpolates the code whose delay hits each target (log-linear reference)', () => {
    // delay = 4000 * exp(-(c - 200) / 10): the code for delay D is 200 + 10 ln(4000 / D).
    const times = new Map<number, number>();
    for (let c = 200; c <= 260; c += 10) times.set(c, 4000 * Math.exp(-(c - 200) / 10));
    times.set(190, Infinity);
    const codes = pickCodes(times, 2000, [0.1, 0.45]);
    expect(codes[0]).toBe(Math.round(200 + 10 * Math.log(4000 / 200)));
    expect(codes[1]).toBe(Math.round(200 + 10 * Math.log(4000 / 900)));
    expect(pickCodes(new Map([[5, Infinity]]), 2000, [0.1])).toEqual([]);
  });

  it('sweeps drive one input at a time; patterns only drive driven inputs; held-out is measured twice', () => {
    const [b] = sweepBlocks(ctx, NMOS, [230]);
    expect(b.batch).toBe(5);
    for (let s = 0; s < b.batch; s++) {
      const on = Array.from(b.inputTicks.subarray(s * 6, s * 6 + 6))
        .map((t, j) => (t === SILENT_TICK ? -1 : j))
        .filter((j) => j >= 0);
      expect(on).toEqual([s]);
    }
    const blocks = patternBlocks(ctx, [230, 220], [820, 830], { ...DEFAULT_PROBE_SIZES, patternsPerConfig: 20 }, 3, false);
    const held = patternBlocks(ctx, [230, 220], [820, 830], { ...DEFAULT_PROBE_SIZES, heldOutPatterns: 20 }, 3, true);
    expect(held.map((h) => h.repeat)).toEqual([0, 1]);
    expect(held[0].inputTicks).toEqual(held[1].inputTicks);
    for (const blk of [...blocks, ...held]) {
      for (let s = 0; s < blk.batch; s++) expect(blk.inputTicks[s * 6 + 5]).toBe(SILENT_TICK);
    }
    // Held-out patterns differ from every fit block.
    expect(blocks.some((blk) => blk.inputTicks.length === held[0].inputTicks.length && blk.inputTicks.every((t, k) => t === held[0].inputTicks[k]))).toBe(
      false,
    );
  });

  it('an E/I block makes each synapse a pure exciter or a pure inhibitor', () => {
    const blk = eiBlock(ctx, [230, 220, 210], [820], 10, new Rng(4), 'pattern');
    const [offN] = codeWindow(DEFAULT_DAC, DEFAULT_SAFE, NMOS);
    const [, offP] = codeWindow(DEFAULT_DAC, DEFAULT_SAFE, PMOS);
    for (let j = 0; j < 5; j++) {
      for (let i = 0; i < 4; i++) {
        const n = blk.codes[2 * j * 4 + i];
        const p = blk.codes[(2 * j + 1) * 4 + i];
        expect((n === offN) !== (p === offP)).toBe(true);
      }
    }
  });

  it('adaptive candidates: reproducible per seed, drawn apart from the fit and held-out patterns, driven inputs only', () => {
    const a = candidateBlocks(ctx, [230, 220], [820, 830], 3, 16, 5);
    const b = candidateBlocks(ctx, [230, 220], [820, 830], 3, 16, 5);
    expect(a.length).toBe(3);
    a.forEach((blk, q) => {
      expect(blk.kind).toBe('pattern');
      expect(blk.batch).toBe(16);
      expect(blk.inputTicks).toEqual(b[q].inputTicks);
      expect(blk.codes).toEqual(b[q].codes);
      for (let s = 0; s < blk.batch; s++) expect(blk.inputTicks[s * 6 + 5]).toBe(SILENT_TICK);
    });
    // Configurations differ from one another and from another seed's.
    expect(a[0].codes).not.toEqual(a[1].codes);
    expect(candidateBlocks(ctx, [230, 220], [820, 830], 1, 16, 6)[0].inputTicks).not.toEqual(a[0].inputTicks);
    const same = (x: Uint16Array, y: Uint16Array) => x.length === y.length && x.every((t, k) => t === y[k]);
    const others = [
      ...patternBlocks(ctx, [230, 220], [820, 830], { ...DEFAULT_PROBE_SIZES, patternsPerConfig: 16 }, 5, false),
      ...patternBlocks(ctx, [230, 220], [820, 830], { ...DEFAULT_PROBE_SIZES, heldOutPatterns: 16 }, 5, true),
    ];
    for (const c of a) for (const o of others) expect(same(c.inputTicks, o.inputTicks)).toBe(false);
  });
});
