import { describe, expect, it } from 'vitest';
import { histogram, lineChart, scatterPlot, spikeRaster } from '../../../host/report/svg-plot.ts';
import { byClass, byName, findAll, parseXml, pathCommands, textOf, type XmlElement } from './xml-check.ts';

// These tests read the SVG that Observable Plot actually draws: the plot area is the frame
// rect (class plot-area), mark groups carry the classes and data-name attributes set in svg-plot.ts.

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

const named = (svg: XmlElement, name: string) => findAll(svg, (e) => e.attrs['data-name'] === name);

/** The y-axis tick labels as numbers, with their pixel height (Plot places each with translate(x,y)). */
function yTicks(svg: XmlElement): { value: number; y: number }[] {
  const g = findAll(svg, (e) => e.attrs['aria-label'] === 'y-axis tick label')[0]!;
  return findAll(g, byName('text')).map((t) => ({
    value: Number(textOf(t).replace('\u2212', '-').replaceAll(',', '')),
    y: Number(/translate\([^,]+,([^)]+)\)/.exec(t.attrs.transform!)![1]),
  }));
}

/** First-level path of a line series, by name. */
function seriesPath(svg: XmlElement, name: string): [string, number[]][] {
  const g = named(svg, name).find((e) => e.attrs['aria-label'] === 'line')!;
  return pathCommands(findAll(g, byName('path'))[0]!.attrs.d!);
}

describe('lineChart', () => {
  const spec = {
    title: 'Learning <curves> & "more"',
    xLabel: 'epoch',
    yLabel: 'loss <log>',
    series: [
      { name: 'train', x: [0, 25, 50, 75, 100], y: [2, 1, 0.5, 0.25, 0.2] },
      { name: 'val <&>', x: [0, 25, 50, 75, 100], y: [2.1, 1.2, 0.6, 0.4, 0.35], dashed: true },
    ],
  };

  it('is well-formed SVG with title, labels and legend text escaped, and one group per series', () => {
    const text = lineChart(spec);
    const svg = checkSvgRoot(text);
    expect(textOf(findAll(svg, byClass('title'))[0]!)).toBe('Learning <curves> & "more"');
    expect(textOf(findAll(svg, byName('title'))[0]!)).toBe('Learning <curves> & "more"');
    expect(textOf(findAll(svg, byClass('y-label'))[0]!)).toBe('\u2191 loss <log>');
    expect(textOf(findAll(svg, (e) => e.attrs['aria-label'] === 'x-axis label')[0]!)).toBe('epoch');
    const legend = findAll(findAll(svg, byClass('legend'))[0]!, byName('text')).map(textOf);
    expect(legend).toEqual(['train', 'val <&>']);
    expect(findAll(svg, byClass('series')).length).toBe(2);
    expect(named(svg, 'val <&>').length).toBeGreaterThan(0);
    expect(text).not.toContain('val <&>');
    // The dashed series is drawn dashed, in the legend too.
    expect(findAll(svg, byClass('series'))[1]!.attrs['stroke-dasharray']).toBe('6 4');
    expect(findAll(findAll(svg, byClass('legend'))[0]!, byName('line'))[1]!.attrs['stroke-dasharray']).toBeDefined();
  });

  it('maps the x extent onto the plot edges and y onto the axis scale', () => {
    const svg = parseXml(lineChart({ ...spec, yDomain: [0, 4] }));
    const a = area(svg);
    const cmds = seriesPath(svg, 'train');
    const [xFirst, yFirst] = cmds[0]![1];
    const [xLast, yLast] = cmds[cmds.length - 1]![1];
    expect(xFirst).toBeCloseTo(a.x0, 1); // x = 0, the minimum: left edge
    expect(xLast).toBeCloseTo(a.x1, 1); // x = 100, the maximum: right edge
    expect(yFirst).toBeCloseTo(a.y1 - (2 / 4) * (a.y1 - a.y0), 1); // y = 2 of [0, 4]: middle
    expect(yLast).toBeCloseTo(a.y1 - (0.2 / 4) * (a.y1 - a.y0), 1);
    expect(cmds[2]![1][0]).toBeCloseTo((a.x0 + a.x1) / 2, 1); // x = 50: half-way
  });

  it('the y axis is widened to round ticks that cover the data, and each tick sits at its value', () => {
    const svg = parseXml(lineChart({ series: [{ name: 's', y: [0, 7.3] }] }));
    const a = area(svg);
    const ticks = yTicks(svg);
    const top = Math.max(...ticks.map((t) => t.value));
    expect(top).toBeGreaterThanOrEqual(7.3);
    expect(ticks.find((t) => t.value === top)!.y).toBeCloseTo(a.y0, 1); // nice: the top tick is the top edge
    const cmds = seriesPath(svg, 's');
    expect(cmds[1]![1][1]).toBeCloseTo(a.y1 - (7.3 / top) * (a.y1 - a.y0), 1);
    for (const t of ticks) expect(t.y).toBeCloseTo(a.y1 - (t.value / top) * (a.y1 - a.y0), 1);
  });

  it('ticks a short integer x axis (epochs) at whole numbers only', () => {
    const svg = parseXml(lineChart({ series: [{ name: 'acc', x: [0, 1, 2], y: [0.5, 0.6, 0.7] }] }));
    const g = findAll(svg, (e) => e.attrs['aria-label'] === 'x-axis tick label')[0]!;
    expect(findAll(g, byName('text')).map(textOf)).toEqual(['0', '1', '2']);
  });

  it('non-finite values break the line; a log axis spaces decades equally', () => {
    const svg = parseXml(lineChart({ yLog: true, series: [{ name: 's', x: [1, 2, 3, 4, 5], y: [1, 10, Number.NaN, 100, 0] }] }));
    const cmds = seriesPath(svg, 's');
    expect(cmds.map((c) => c[0]).join('')).toBe('MLMZ'); // (1, 10), then (4, 100) alone
    const ys = cmds.map((c) => c[1][1]!);
    expect(ys[0]! - ys[1]!).toBeCloseTo(ys[1]! - ys[2]!, 1);
  });

  it('rejects mismatched x and y, and draws an empty chart as "no data"', () => {
    expect(() => lineChart({ series: [{ name: 'bad', x: [1, 2], y: [1] }] })).toThrow(/"bad" has 2 x values but 1 y values/);
    const svg = checkSvgRoot(lineChart({ series: [] }));
    expect(textOf(findAll(svg, byClass('no-data'))[0]!)).toBe('no data');
  });
});

describe('scatterPlot', () => {
  it('draws y = x corner to corner of a square plot and puts points (v, v) on it', () => {
    const x = [0, 10, 20, 30, 40];
    const svg = checkSvgRoot(
      scatterPlot({
        groups: [
          { name: 'a <1>', x, y: x.map((v) => v + 1) },
          { name: 'b', x, y: x },
        ],
        annotation: 'RMSE < 1',
      }),
    );
    const a = area(svg);
    expect(a.x1 - a.x0).toBeCloseTo(a.y1 - a.y0, 0);
    const id = pathCommands(findAll(findAll(svg, byClass('identity'))[0]!, byName('path'))[0]!.attrs.d!);
    expect(id[0]![1][0]).toBeCloseTo(a.x0, 1);
    expect(id[0]![1][1]).toBeCloseTo(a.y1, 1);
    expect(id[1]![1][0]).toBeCloseTo(a.x1, 1);
    expect(id[1]![1][1]).toBeCloseTo(a.y0, 1);
    const bPoints = findAll(named(svg, 'b')[0]!, byName('circle'));
    expect(bPoints.length).toBe(5);
    // On the identity line: equal distance from the left and the bottom edge.
    for (const p of bPoints) expect(Number(p.attrs.cx) - a.x0).toBeCloseTo(a.y1 - Number(p.attrs.cy), 1);
    expect(textOf(findAll(svg, byClass('annotation'))[0]!)).toBe('RMSE < 1');
    expect(textOf(findAll(svg, byClass('legend'))[0]!)).toBe('a <1>b');
  });

  it('skips non-finite points and rejects mismatched groups', () => {
    const svg = parseXml(scatterPlot({ groups: [{ x: [1, Infinity, 3], y: [1, 2, Number.NaN] }] }));
    expect(findAll(findAll(svg, byClass('points'))[0]!, byName('circle')).length).toBe(1);
    expect(() => scatterPlot({ groups: [{ x: [1], y: [] }] })).toThrow(/1 x values but 0 y values/);
  });
});

describe('spikeRaster', () => {
  const layers = [
    { name: 'input', times: [0, 50, Infinity, 100], horizon: 100 },
    { name: 'out', times: [Infinity, 75] },
    { name: 'multi <m>', events: { neuron: [0, 0, 1], time: [10, 20, 30] } },
  ];

  it('one tick per spike on the time axis, bands in order, silent neurons counted and marked', () => {
    const svg = checkSvgRoot(spikeRaster({ tDomain: [0, 100], layers }));
    const bands = findAll(svg, byClass('layer')).map((g) => findAll(g, byName('rect'))[0]!);
    expect(findAll(svg, byClass('layer')).map((l) => l.attrs['data-name'])).toEqual(['input', 'out', 'multi <m>']);
    const x0 = Number(bands[0]!.attrs.x);
    const x1 = x0 + Number(bands[0]!.attrs.width);
    const spikes = (name: string) => findAll(findAll(svg, (e) => byClass('spikes')(e) && e.attrs['data-name'] === name)[0]!, byName('line'));
    expect(spikes('input').length).toBe(3);
    expect(spikes('out').length).toBe(1);
    expect(spikes('multi <m>').length).toBe(3);
    const xs = spikes('input').map((l) => Number(l.attrs.x1));
    expect(xs[0]).toBeCloseTo(x0, 1);
    expect(xs[1]).toBeCloseTo((x0 + x1) / 2, 1);
    expect(xs[2]).toBeCloseTo(x1, 1);
    // Input neuron 0 is drawn above neuron 1 (rows go down), inside the input band.
    const ys = spikes('input').map((l) => Number(l.attrs.y1));
    expect(ys[0]).toBeLessThan(ys[1]!);
    const top = Number(bands[0]!.attrs.y);
    for (const y of ys) expect(y).toBeGreaterThanOrEqual(top);
    expect(Number(bands[1]!.attrs.y)).toBeGreaterThan(top + Number(bands[0]!.attrs.height));
    const info = findAll(svg, byClass('layer-info')).map(textOf);
    expect(info).toEqual(['4 neurons1 silent', '2 neurons1 silent', '2 neurons3 spikes']);
    expect(findAll(findAll(svg, byClass('silent'))[0]!, byName('text')).length).toBe(2);
    expect(findAll(svg, byClass('horizon')).length).toBe(1);
  });
});

describe('histogram', () => {
  it('bar heights follow the counts; the range maximum falls in the last bin; non-finite values are counted', () => {
    const svg = checkSvgRoot(histogram({ series: [{ name: 'e', values: [0, 1, 2, 3, 4, Infinity] }], bins: 4 }));
    const a = area(svg);
    const bars = findAll(findAll(svg, byClass('bars'))[0]!, byName('rect'));
    expect(bars.length).toBe(4);
    const hs = bars.map((b) => Number(b.attrs.height));
    expect(hs[0]).toBeCloseTo(hs[1]!, 6);
    expect(hs[3]! / hs[0]!).toBeCloseTo(2, 2);
    // Bars span the range (less half a pixel of inset on each side).
    expect(Number(bars[0]!.attrs.x)).toBeCloseTo(a.x0 + 0.5, 1);
    expect(Number(bars[3]!.attrs.x) + Number(bars[3]!.attrs.width)).toBeCloseTo(a.x1 - 0.5, 1);
    expect(textOf(findAll(svg, byClass('legend'))[0]!)).toBe('e (1 non-finite)');
  });

  it('with density, each series is a fraction of its own size', () => {
    const svg = parseXml(
      histogram({
        density: true,
        bins: 2,
        range: [0, 2],
        series: [
          { name: 'a', values: [0, 0, 0, 1.5] },
          { name: 'b', values: [0.5, 1.5, 5] },
        ],
      }),
    );
    const height = (name: string) => findAll(named(svg, name)[0]!, byName('rect')).map((r) => Number(r.attrs.height));
    const [a0, a1] = height('a');
    const [b0, b1] = height('b');
    expect(a0! / a1!).toBeCloseTo(3, 2); // 3/4 against 1/4
    expect(b0! / a0!).toBeCloseTo(1 / 3 / 0.75, 2); // 1/3 of b against 3/4 of a
    expect(b1).toBeCloseTo(b0!, 6);
    expect(textOf(findAll(svg, byClass('legend'))[0]!)).toContain('b (1 outside)');
  });

  it('empty input is a valid "no data" plot', () => {
    const svg = checkSvgRoot(histogram({ series: [{ name: 'none', values: [] }] }));
    expect(findAll(svg, byClass('no-data')).length).toBe(1);
  });
});
