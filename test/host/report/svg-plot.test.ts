import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  computeHistogram,
  histogram,
  lineChart,
  linearTicks,
  logTicks,
  scatterPlot,
  spikeRaster,
} from '../../../host/report/svg-plot.ts';
import { byClass, byName, findAll, parseXml, pathCommands, textOf, type XmlElement } from './xml-check.ts';

function area(svg: XmlElement) {
  const r = findAll(svg, byClass('plot-area'))[0]!;
  const x = Number(r.attrs.x);
  const y = Number(r.attrs.y);
  return { x0: x, x1: x + Number(r.attrs.width), y0: y, y1: y + Number(r.attrs.height) };
}

function checkSvgRoot(text: string): XmlElement {
  const svg = parseXml(text);
  expect(svg.name).toBe('svg');
  expect(svg.attrs.xmlns).toBe('http://www.w3.org/2000/svg');
  expect(Number(svg.attrs.width)).toBeGreaterThan(0);
  expect(svg.attrs.viewBox).toBe(`0 0 ${svg.attrs.width} ${svg.attrs.height}`);
  return svg;
}

describe('ticks', () => {
  it('nice linear ticks cover the data with evenly spaced round steps', () => {
    fc.assert(
      fc.property(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.double({ min: 1e-3, max: 1e6, noNaN: true }), (lo, span) => {
        const hi = lo + span;
        const t = linearTicks(lo, hi, 6, true);
        expect(t.domain[0]).toBeLessThanOrEqual(lo + 1e-9 * span);
        expect(t.domain[1]).toBeGreaterThanOrEqual(hi - 1e-9 * span);
        expect(t.values.length).toBeGreaterThanOrEqual(2);
        expect(t.values.length).toBeLessThanOrEqual(9);
        const step = t.values[1]! - t.values[0]!;
        // (differences of large tick values carry rounding error, hence the tolerances)
        const m = step / 10 ** Math.floor(Math.log10(step) + 1e-6);
        expect([1, 2, 2.5, 5, 10].some((k) => Math.abs(m - k) < 1e-4)).toBe(true);
        for (let i = 2; i < t.values.length; i++) expect(t.values[i]! - t.values[i - 1]!).toBeCloseTo(step, 6);
        expect(new Set(t.labels).size).toBe(t.labels.length);
        // the widened domain wastes less than one step on each side
        expect(lo - t.domain[0]).toBeLessThan(step * (1 + 1e-9));
      }),
    );
  });

  it('tight ticks stay inside the domain', () => {
    const t = linearTicks(-2.7, 262.3, 6, false);
    expect(t.domain).toEqual([-2.7, 262.3]);
    expect(t.values).toEqual([0, 50, 100, 150, 200, 250]);
  });

  it('labels keep needed decimals and use a real minus sign', () => {
    expect(linearTicks(0, 1, 6).labels).toEqual(['0.0', '0.2', '0.4', '0.6', '0.8', '1.0']);
    expect(linearTicks(-10, 10, 5).labels).toContain('\u22125');
    expect(linearTicks(0, 12.5, 6).labels).toEqual(['0.0', '2.5', '5.0', '7.5', '10.0', '12.5']);
  });

  it('log ticks are powers of ten covering the range', () => {
    const t = logTicks(0.013, 2.7);
    expect(t.domain).toEqual([0.01, 10]);
    expect(t.values).toEqual([0.01, 0.1, 1, 10]);
    // two decades or less: 2 and 5 multiples as well
    expect(logTicks(0.13, 2.7).values).toEqual([0.1, 0.2, 0.5, 1, 2, 5, 10]);
  });
});

describe('lineChart', () => {
  const spec = {
    title: 'Learning <curves> & "more"',
    xLabel: 'epoch',
    yLabel: 'loss',
    series: [
      { name: 'train', x: [0, 25, 50, 75, 100], y: [2, 1, 0.5, 0.25, 0.2] },
      { name: 'val', x: [0, 25, 50, 75, 100], y: [2.1, 1.2, 0.6, 0.4, 0.35], dashed: true },
    ],
  };

  it('is well-formed SVG with escaped text, legend and labels', () => {
    const svg = checkSvgRoot(lineChart(spec));
    expect(textOf(findAll(svg, byClass('title'))[0]!)).toBe('Learning <curves> & "more"');
    expect(textOf(findAll(svg, byClass('legend'))[0]!)).toContain('train');
    expect(findAll(svg, byClass('series')).length).toBe(2);
  });

  it('maps the x extent onto the plot edges and y onto the axis scale', () => {
    const svg = parseXml(lineChart({ ...spec, yDomain: [0, 4] }));
    const a = area(svg);
    const path = findAll(svg, byClass('series'))[0]!.children.find((c) => typeof c !== 'string' && c.name === 'path') as XmlElement;
    const cmds = pathCommands(path.attrs.d!);
    const [xFirst, yFirst] = cmds[0]![1];
    const [xLast, yLast] = cmds[cmds.length - 1]![1];
    expect(xFirst).toBeCloseTo(a.x0, 1); // x = 0, the minimum
    expect(xLast).toBeCloseTo(a.x1, 1); // x = 100, the maximum: right edge
    expect(yFirst).toBeCloseTo(a.y1 - (2 / 4) * (a.y1 - a.y0), 1); // y = 2 of [0, 4]: middle
    expect(yLast).toBeCloseTo(a.y1 - (0.2 / 4) * (a.y1 - a.y0), 1);
    // the middle point x = 50 is half-way
    expect(cmds[2]![1][0]).toBeCloseTo((a.x0 + a.x1) / 2, 1);
  });

  it('the largest y on an automatic axis is inside the plot and at the right height', () => {
    const svg = parseXml(lineChart({ series: [{ name: 's', y: [0, 7.3] }] }));
    const a = area(svg);
    const ticks = findAll(findAll(svg, byClass('y-axis'))[0]!, byName('text')).map((t) => Number(textOf(t).replace('\u2212', '-')));
    const top = Math.max(...ticks);
    const pathEl = findAll(svg, byName('path'))[0]!;
    const cmds = pathCommands(pathEl.attrs.d!);
    expect(cmds[1]![1][1]).toBeCloseTo(a.y1 - (7.3 / top) * (a.y1 - a.y0), 1);
    expect(top).toBeGreaterThanOrEqual(7.3);
  });

  it('non-finite values break the line; a log axis spaces decades equally', () => {
    const svg = parseXml(lineChart({ yLog: true, series: [{ name: 's', x: [1, 2, 3, 4, 5], y: [1, 10, Number.NaN, 100, 0] }] }));
    const d = findAll(svg, byName('path'))[0]!.attrs.d!;
    const cmds = pathCommands(d);
    expect(cmds.map((c) => c[0]).join('')).toBe('MLM');
    const ys = cmds.map((c) => c[1][1]!);
    expect(ys[0]! - ys[1]!).toBeCloseTo(ys[1]! - ys[2]!, 1);
  });

  it('rejects mismatched x and y, and draws an empty chart as "no data"', () => {
    expect(() => lineChart({ series: [{ name: 'bad', x: [1, 2], y: [1] }] })).toThrow(/"bad" has 2 x values but 1 y values/);
    const svg = checkSvgRoot(lineChart({ series: [] }));
    expect(findAll(svg, byClass('no-data')).length).toBe(1);
  });
});

describe('scatterPlot', () => {
  it('draws y = x corner to corner of a square plot and puts points (v, v) on it', () => {
    const x = [0, 10, 20, 30, 40];
    const svg = checkSvgRoot(scatterPlot({ groups: [{ name: 'a <1>', x, y: x.map((v) => v + 1) }, { name: 'b', x, y: x }], annotation: 'RMSE < 1' }));
    const a = area(svg);
    expect(a.x1 - a.x0).toBeCloseTo(a.y1 - a.y0, 1);
    const id = findAll(svg, byClass('identity'))[0]!;
    expect(Number(id.attrs.x1)).toBeCloseTo(a.x0, 1);
    expect(Number(id.attrs.y1)).toBeCloseTo(a.y1, 1);
    expect(Number(id.attrs.x2)).toBeCloseTo(a.x1, 1);
    expect(Number(id.attrs.y2)).toBeCloseTo(a.y0, 1);
    const bPoints = findAll(findAll(svg, (e) => e.attrs['data-name'] === 'b')[0]!, byClass('point'));
    expect(bPoints.length).toBe(5);
    // on the identity line: equal distance from the left and the bottom edge
    for (const p of bPoints) expect(Number(p.attrs.cx) - a.x0).toBeCloseTo(a.y1 - Number(p.attrs.cy), 1);
    expect(textOf(findAll(svg, byClass('annotation'))[0]!)).toBe('RMSE < 1');
    expect(findAll(svg, (e) => e.attrs['data-name'] === 'a <1>').length).toBe(1);
  });

  it('skips non-finite points and rejects mismatched groups', () => {
    const svg = parseXml(scatterPlot({ groups: [{ x: [1, Infinity, 3], y: [1, 2, Number.NaN] }] }));
    expect(findAll(svg, byClass('point')).length).toBe(1);
    expect(() => scatterPlot({ groups: [{ x: [1], y: [] }] })).toThrow(/1 x values but 0 y values/);
  });
});

describe('spikeRaster', () => {
  it('one tick per spike, silent neurons counted, spikes placed on the time axis', () => {
    const svg = checkSvgRoot(
      spikeRaster({
        tDomain: [0, 100],
        layers: [
          { name: 'input', times: [0, 50, Infinity, 100], horizon: 100 },
          { name: 'out', times: [Infinity, 75] },
          { name: 'multi', events: { neuron: [0, 0, 1], time: [10, 20, 30] } },
        ],
      }),
    );
    const a = area2(svg);
    const layers = findAll(svg, byClass('layer'));
    expect(layers.map((l) => l.attrs['data-name'])).toEqual(['input', 'out', 'multi']);
    const spikes = (l: XmlElement) => pathCommands(findAll(l, byClass('spikes'))[0]!.attrs.d!).filter((c) => c[0] === 'M');
    expect(spikes(layers[0]!).length).toBe(3);
    expect(spikes(layers[1]!).length).toBe(1);
    expect(spikes(layers[2]!).length).toBe(3);
    const xs = spikes(layers[0]!).map((c) => c[1][0]!);
    expect(xs[0]).toBeCloseTo(a.x0, 1);
    expect(xs[1]).toBeCloseTo((a.x0 + a.x1) / 2, 1);
    expect(xs[2]).toBeCloseTo(a.x1, 1);
    expect(textOf(layers[0]!)).toContain('1 silent');
    expect(textOf(layers[2]!)).toContain('3 spikes');
    // input neuron 0 is drawn above neuron 1 (rows go down)
    const ys = spikes(layers[0]!).map((c) => c[1][1]!);
    expect(ys[0]).toBeLessThan(ys[1]!);
  });
});

/** The raster has no single plot-area rect; its time axis spans the layer bands. */
function area2(svg: XmlElement) {
  const band = findAll(svg, byClass('layer'))[0]!.children.find((c) => typeof c !== 'string' && c.name === 'rect') as XmlElement;
  return { x0: Number(band.attrs.x), x1: Number(band.attrs.x) + Number(band.attrs.width) };
}

describe('histogram', () => {
  it('computeHistogram agrees with a brute-force count', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: -50, max: 50, noNaN: true }), fc.constant(Infinity), fc.constant(Number.NaN)), { maxLength: 80 }), fc.integer({ min: 1, max: 12 }), (vals, bins) => {
        const range: [number, number] = [-20, 20];
        const h = computeHistogram(vals, bins, range);
        const w = 40 / bins;
        const ref = new Array(bins).fill(0);
        let outside = 0;
        let nonFinite = 0;
        for (const v of vals) {
          if (!Number.isFinite(v)) nonFinite++;
          else if (v < -20 || v > 20) outside++;
          else {
            let b = 0;
            while (b < bins - 1 && v >= -20 + (b + 1) * w) b++;
            ref[b]++;
          }
        }
        expect([...h.counts]).toEqual(ref);
        expect(h.below + h.above).toBe(outside);
        expect(h.nonFinite).toBe(nonFinite);
      }),
    );
  });

  it('the maximum falls in the last bin; bar heights follow the counts', () => {
    const h = computeHistogram([0, 1, 2, 3, 4], 4);
    expect([...h.counts]).toEqual([1, 1, 1, 2]);
    const svg = checkSvgRoot(histogram({ series: [{ name: 'e', values: [0, 1, 2, 3, 4, Infinity] }], bins: 4 }));
    const a = area(svg);
    const bars = findAll(svg, byClass('bar'));
    expect(bars.length).toBe(4);
    const hs = bars.map((b) => Number(b.attrs.height));
    expect(hs[3]! / hs[0]!).toBeCloseTo(2, 2);
    expect(Number(bars[3]!.attrs.x) + Number(bars[3]!.attrs.width)).toBeCloseTo(a.x1, 1);
    expect(Number(bars[0]!.attrs.x)).toBeCloseTo(a.x0, 1);
    expect(textOf(svg)).toContain('1 non-finite');
  });

  it('empty input is a valid "no data" plot', () => {
    const svg = checkSvgRoot(histogram({ series: [{ name: 'none', values: [] }] }));
    expect(findAll(svg, byClass('no-data')).length).toBe(1);
  });
});
