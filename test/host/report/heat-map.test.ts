import { describe, expect, it } from 'vitest';
import { heatMap } from '../../../host/report/heat-map.ts';
import { byClass, byName, findAll, parseXml, textOf } from './xml-check.ts';

function cells(svg: string) {
  const root = parseXml(svg);
  const group = findAll(root, byClass('cells'))[0]!;
  return findAll(group, byName('rect'));
}

describe('heatMap', () => {
  it('draws one cell per value, the smallest and largest at the ends of the colour ramp', () => {
    const svg = heatMap({ values: [1, 2, 3, 4, 5, 6], rows: 2, cols: 3 });
    const c = cells(svg);
    expect(c).toHaveLength(6);
    expect(c[0]!.attrs.fill).toBe('#440154');
    expect(c[5]!.attrs.fill).toBe('#fde725');
    // Row-major: the second row sits below the first.
    expect(Number(c[3]!.attrs.y)).toBeGreaterThan(Number(c[0]!.attrs.y));
    expect(Number(c[1]!.attrs.x)).toBeGreaterThan(Number(c[0]!.attrs.x));
  });

  it('shows silent (Infinity) cells in grey, leaves NaN blank, and circles marks', () => {
    const svg = heatMap({ values: [1, Infinity, NaN, 4], rows: 2, cols: 2, marks: [{ row: 1, col: 0 }], colorLabel: 'ticks <t>' });
    const root = parseXml(svg);
    expect(cells(svg)).toHaveLength(2);
    const silent = findAll(root, byClass('silent-cells'))[0]!;
    expect(silent.attrs.fill).toBe('#3a3a3a');
    const [s] = findAll(silent, byName('rect'));
    const [first] = cells(svg);
    // The silent cell is the second of the first row: right of the first cell, level with it.
    expect(Number(s!.attrs.x)).toBeCloseTo(Number(first!.attrs.x) + Number(first!.attrs.width), 1);
    expect(s!.attrs.y).toBe(first!.attrs.y);
    const circles = findAll(findAll(root, byClass('marks'))[0]!, byName('circle'));
    expect(circles).toHaveLength(1);
    // Row 1, column 0: centred on the lower-left cell.
    expect(Number(circles[0]!.attrs.cx)).toBeCloseTo(Number(first!.attrs.x) + Number(first!.attrs.width) / 2, 1);
    expect(textOf(findAll(root, byClass('color-bar'))[0]!)).toContain('ticks <t>');
  });

  it('averages big matrices in blocks (log space with log) so the file stays small', () => {
    const rows = 1000;
    const cols = 300;
    const values = new Float64Array(rows * cols).fill(10);
    values.fill(1000, 0, cols * 8); // first 8 rows
    const svg = heatMap({ values, rows, cols, log: true, maxCells: 100, domain: [10, 1000] });
    const c = cells(svg);
    expect(c).toHaveLength(100 * 100);
    // Block rows of 10 input rows: the first block mixes 8 rows at 1000 and 2 at 10 -> log mean 2.6,
    // between the ends of the ramp; the rest sit at the bottom.
    expect(c[0]!.attrs.fill).not.toBe('#fde725');
    expect(c[0]!.attrs.fill).not.toBe('#440154');
    expect(c[150]!.attrs.fill).toBe('#440154');
  });

  it('refuses values that do not match rows x cols', () => {
    expect(() => heatMap({ values: [1, 2, 3], rows: 2, cols: 2 })).toThrow(/rows x cols = 2 x 2/);
  });
});
