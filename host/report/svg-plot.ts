/**
 * Report charts as standalone SVG documents (that also embed in the HTML reports): line charts
 * (learning curves, transfer curves), scatter (predicted vs measured), spike rasters and histograms
 * here, heat maps in heat-map.ts. Observable Plot draws them (see plot-frame.ts); these functions
 * turn the project's data into marks.
 *
 * Each mark group carries a class (plot-area, series, points, layer, spikes, bars, cells...) and, for
 * a named series, its name as data-name, so tests and readers can find them.
 */
import * as Plot from '@observablehq/plot';
import { colorOf, dataName, extent, finite, frameMark, noData, render, safeExtent, textWidth, type LegendItem, type PlotFrame } from './plot-frame.ts';

export { heatMap, type HeatMapMark, type HeatMapSpec } from './heat-map.ts';
export { PALETTE, type PlotFrame } from './plot-frame.ts';
// ---------------------------------------------------------------------- line chart

export interface LineSeries {
  name: string;
  /** Defaults to 1, 2, ..., n (epochs). */
  x?: ArrayLike<number>;
  /** Non-finite values (and values <= 0 on a log axis) leave a gap. */
  y: ArrayLike<number>;
  color?: string;
  dashed?: boolean;
  /** Draw a dot at each point (default: when the series has at most 40 points). */
  markers?: boolean;
}

export interface LineChartSpec extends PlotFrame {
  series: LineSeries[];
  yLog?: boolean;
  /** Fix the axes instead of fitting the data (marks outside are clipped). */
  xDomain?: [number, number];
  yDomain?: [number, number];
  legend?: boolean;
}

/** Lines over the exact x extent of the data, on a y axis widened to round ticks. */
export function lineChart(spec: LineChartSpec): string {
  const yOk = (v: number) => Number.isFinite(v) && (!spec.yLog || v > 0);
  const series = spec.series.map((s, i) => {
    const n = s.y.length;
    const x = s.x ?? Array.from({ length: n }, (_, k) => k + 1);
    if (x.length !== n) throw new RangeError(`lineChart: series "${s.name}" has ${x.length} x values but ${n} y values`);
    const points = Array.from({ length: n }, (_, k) => ({ x: x[k]!, y: yOk(s.y[k]!) && Number.isFinite(x[k]!) ? s.y[k]! : NaN }));
    return { ...s, points, color: colorOf(s.color, i) };
  });
  const empty = !series.some((s) => s.points.some((p) => Number.isFinite(p.y)));
  // Epochs and neuron indices: whole-number ticks on a short integer axis (Plot would tick 0.2, 0.4...).
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter(Number.isFinite);
  const [xlo, xhi] = spec.xDomain ?? extent([xs]);
  const xTicks =
    !empty && xs.every(Number.isInteger) && xhi - xlo <= 10 ? Array.from({ length: Math.floor(xhi - xlo) + 1 }, (_, k) => Math.ceil(xlo) + k) : undefined;
  // A log axis over many decades: ticks and grid lines at the powers of ten only, labelled 0.01 or 1e-6
  // (Plot would add a grid line at every 2..9 and SI prefixes such as 10µ).
  const [ylo, yhi] = spec.yDomain ?? extent(series.map((s) => s.points.map((p) => p.y)));
  const [e0, e1] = [Math.floor(Math.log10(ylo)), Math.ceil(Math.log10(yhi))];
  const decades = spec.yLog && e1 - e0 > 2 ? Array.from({ length: e1 - e0 + 1 }, (_, k) => 10 ** (e0 + k)) : undefined;
  const decadeLabel = (v: number) => (v >= 1e-3 && v < 1e5 ? String(Number(v.toPrecision(1))) : v.toExponential(0).replace('e+', 'e').replace('-', '\u2212'));
  const marks: Plot.Markish[] = series.flatMap((s) => {
    // Clipped to the plot area only on fixed axes: markers at the data's edges stay whole.
    const common = { x: 'x', y: 'y', clip: Boolean(spec.xDomain ?? spec.yDomain), ...dataName(s.name) };
    const line = Plot.line(s.points, { ...common, stroke: s.color, strokeWidth: 2, strokeDasharray: s.dashed ? '6 4' : undefined, className: 'series' });
    const dots =
      (s.markers ?? s.points.length <= 40)
        ? [
            Plot.dot(
              s.points.filter((p) => Number.isFinite(p.y)),
              { ...common, fill: s.color, r: 2.5, className: 'markers' },
            ),
          ]
        : [];
    return [line, ...dots];
  });
  const legend =
    (spec.legend ?? series.length > 1) ? series.map((s) => ({ name: s.name, color: s.color, kind: s.dashed ? ('dashed' as const) : ('line' as const) })) : [];
  return render(
    'line-chart',
    spec,
    {
      x: { domain: spec.xDomain ?? (empty ? [0, 1] : undefined), ticks: xTicks, tickFormat: xTicks ? 'd' : undefined, grid: true },
      y: {
        type: spec.yLog ? 'log' : 'linear',
        domain: spec.yDomain ?? (empty ? [0, 1] : undefined),
        nice: !spec.yDomain,
        grid: true,
        ticks: decades,
        tickFormat: decades ? decadeLabel : undefined,
      },
      marks: [...marks, frameMark(), empty ? noData() : null],
    },
    { legend },
  );
}

// ------------------------------------------------------------------------- scatter

export interface ScatterGroup {
  name?: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
}

export interface ScatterSpec extends PlotFrame {
  groups: ScatterGroup[];
  /** Draw y = x (default true) on a square plot with the same range on both axes. */
  identity?: boolean;
  /** A note in the top-left corner, e.g. "RMSE 0.8 ticks". */
  annotation?: string;
  pointRadius?: number;
  domain?: [number, number];
}

export function scatterPlot(spec: ScatterSpec): string {
  const identity = spec.identity ?? true;
  const groups = spec.groups.map((g, i) => {
    if (g.x.length !== g.y.length) throw new RangeError(`scatterPlot: group "${g.name ?? i}" has ${g.x.length} x values but ${g.y.length} y values`);
    const points = Array.from(g.x, (x, k) => ({ x, y: g.y[k]! })).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    return { ...g, points, color: colorOf(g.color, i) };
  });
  // The data extent plus 4 % on each side; with the identity line, one range for both axes.
  const padded = (e: [number, number]): [number, number] => {
    const [lo, hi] = safeExtent(e);
    return [lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo)];
  };
  const xs = groups.map((g) => g.points.map((p) => p.x));
  const ys = groups.map((g) => g.points.map((p) => p.y));
  const xDomain = spec.domain ?? padded(extent(identity ? [...xs, ...ys] : xs));
  const yDomain = identity ? xDomain : (spec.domain ?? padded(extent(ys)));
  const total = groups.reduce((n, g) => n + g.points.length, 0);
  const named = groups.filter((g) => g.name);
  const legend =
    named.length > 1 || (named.length === 1 && groups.length > 1) ? named.map((g) => ({ name: g.name!, color: g.color, kind: 'point' as const })) : [];
  return render(
    'scatter',
    { width: 480, height: 480, ...spec },
    {
      x: { domain: xDomain, ticks: 6, grid: true },
      y: { domain: yDomain, ticks: 6, grid: true },
      marks: [
        identity
          ? Plot.line(
              [
                [xDomain[0], xDomain[0]],
                [xDomain[1], xDomain[1]],
              ],
              { stroke: '#999999', strokeDasharray: '4 3', className: 'identity' },
            )
          : null,
        ...groups.map((g) =>
          Plot.dot(g.points, {
            x: 'x',
            y: 'y',
            r: spec.pointRadius ?? 3,
            fill: g.color,
            fillOpacity: 0.7,
            clip: true,
            className: 'points',
            ...dataName(g.name ?? ''),
          }),
        ),
        spec.annotation
          ? Plot.text([spec.annotation], { frameAnchor: 'top-left', dx: 8, dy: 10, fontSize: 12, textAnchor: 'start', className: 'annotation' })
          : null,
        frameMark(),
        total === 0 ? noData() : null,
      ],
    },
    // Equal units on both axes: y = x at 45 degrees.
    { legend, square: identity },
  );
}

// -------------------------------------------------------------------------- raster

export interface RasterLayer {
  name: string;
  /** One first-spike time per neuron; non-finite = silent. */
  times?: ArrayLike<number>;
  /** Or any number of spikes per neuron as parallel arrays (neuron index, time). */
  events?: { neuron: ArrayLike<number>; time: ArrayLike<number> };
  /** Neuron count (default: times.length, or max event neuron + 1). */
  neurons?: number;
  /** The layer's time window end; drawn as a dashed line. */
  horizon?: number;
  color?: string;
}

export interface RasterSpec extends PlotFrame {
  layers: RasterLayer[];
  /** Time axis range (default: 0 .. the latest spike or horizon, widened to round ticks). */
  tDomain?: [number, number];
  /** Mark silent neurons in the right margin (default true). */
  showSilent?: boolean;
}

/**
 * One band per layer (input at the top, neuron 0 at the top of its band), a vertical tick per
 * spike. Bands share the height in proportion to sqrt(neurons): big input layers stay readable
 * without squeezing a 10-neuron output layer into a sliver.
 */
export function spikeRaster(spec: RasterSpec): string {
  const GAP = 0.25;
  let [top, tmax] = [0, -Infinity];
  const spikes: { t: number; y1: number; y2: number; layer: number }[] = [];
  const silent: { y: number }[] = [];
  const bands = spec.layers.map((l, li) => {
    if (l.events && l.events.neuron.length !== l.events.time.length) {
      throw new RangeError(`spikeRaster: layer "${l.name}" has ${l.events.neuron.length} event neurons but ${l.events.time.length} event times`);
    }
    const neurons = Math.max(0, l.neurons ?? l.times?.length ?? extent([l.events?.neuron ?? []])[1] + 1) || 0;
    const h = Math.sqrt(Math.max(1, neurons));
    const band = { ...l, neurons, y1: top, y2: top + h, color: colorOf(l.color, li), silent: 0, spikes: 0 };
    const row = h / Math.max(1, neurons);
    const put = (n: number, t: number) => {
      if (!(n >= 0 && n < neurons) || !Number.isFinite(t)) return;
      spikes.push({ t, y1: top + (n + 0.1) * row, y2: top + (n + 0.9) * row, layer: li });
      band.spikes++;
      tmax = Math.max(tmax, t);
    };
    for (let n = 0; n < (l.times?.length ?? 0); n++) {
      if (Number.isFinite(l.times![n]!)) put(n, l.times![n]!);
      else {
        band.silent++;
        silent.push({ y: top + (n + 0.5) * row });
      }
    }
    for (let k = 0; k < (l.events?.neuron.length ?? 0); k++) put(l.events!.neuron[k]!, l.events!.time[k]!);
    if (finite(l.horizon)) tmax = Math.max(tmax, l.horizon);
    top += h + GAP;
    return band;
  });
  const tDomain = spec.tDomain ?? [0, tmax > 0 ? tmax : 1];
  const showSilent = spec.showSilent ?? true;
  const label = (b: (typeof bands)[number]) => `${b.neurons} neurons\n${b.times ? `${b.silent} silent` : `${b.spikes} spikes`}`;
  const marginLeft = 24 + Math.max(50, ...bands.map((b) => textWidth(b.name, 11)));
  const marks: Plot.Markish[] = bands.flatMap((b, li) => [
    Plot.rect([b], { y1: 'y1', y2: 'y2', fill: li % 2 ? '#f2f2f2' : '#f8f8f8', fillOpacity: 0.6, stroke: '#dddddd', className: 'layer', ...dataName(b.name) }),
    Plot.ruleX(
      spikes.filter((s) => s.layer === li),
      { x: 't', y1: 'y1', y2: 'y2', stroke: b.color, strokeWidth: b.neurons <= 100 ? 2 : 1.5, className: 'spikes', ...dataName(b.name) },
    ),
    finite(b.horizon) ? Plot.ruleX([b.horizon], { y1: b.y1, y2: b.y2, stroke: '#555555', strokeDasharray: '4 3', className: 'horizon' }) : null,
    Plot.text([b.name], { frameAnchor: 'left', y: (b.y1 + b.y2) / 2, dx: -8, dy: -8, textAnchor: 'end', fontWeight: 600, className: 'layer-name' }),
    Plot.text([label(b)], {
      frameAnchor: 'left',
      y: (b.y1 + b.y2) / 2,
      dx: -8,
      dy: 8,
      textAnchor: 'end',
      fontSize: 10,
      fill: '#666666',
      lineAnchor: 'middle',
      className: 'layer-info',
      ...dataName(b.name),
    }),
  ]);
  // Silent neurons: a short grey dash in the right margin, level with the neuron's row.
  if (showSilent && silent.length)
    marks.push(Plot.text(silent, { y: 'y', text: () => '\u2014', frameAnchor: 'right', textAnchor: 'start', dx: 3, fill: '#888888', className: 'silent' }));
  return render(
    'raster',
    { height: 120 + 90 * bands.length, ...spec, yLabel: undefined },
    {
      marginLeft,
      marginRight: 24,
      x: { domain: tDomain, nice: spec.tDomain === undefined, grid: true },
      y: { domain: [0, Math.max(1, top - GAP)], reverse: true, axis: null },
      marks: [...marks, bands.length === 0 ? noData() : null],
    },
  );
}

// ----------------------------------------------------------------------- histogram

export interface HistogramSeries {
  name: string;
  values: ArrayLike<number>;
  color?: string;
}

export interface HistogramSpec extends PlotFrame {
  series: HistogramSeries[];
  /** Default: Sturges' rule on the largest series, between 5 and 60. */
  bins?: number;
  range?: [number, number];
  /** Plot fractions of each series instead of counts (compares series of different size). */
  density?: boolean;
}

/** Overlaid histograms on shared bins; non-finite values (silent spikes) and values outside the range are counted in the legend. */
export function histogram(spec: HistogramSpec): string {
  const maxN = Math.max(0, ...spec.series.map((s) => s.values.length));
  const bins = spec.bins ?? Math.max(5, Math.min(60, Math.ceil(Math.log2(Math.max(1, maxN)) + 1)));
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`histogram: bins must be a positive integer, got ${bins}`);
  const [lo, hi] = safeExtent(spec.range ?? extent(spec.series.map((s) => s.values)));
  const thresholds = Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
  // Plot's bins are half-open [a, b); the range maximum belongs in the last one.
  const lastMid = (thresholds[bins - 1]! + hi) / 2;
  const several = spec.series.length > 1;
  const legend: LegendItem[] = [];
  const marks = spec.series.map((s, i) => {
    const color = colorOf(s.color, i);
    const inside = Array.from(s.values).filter((v) => v >= lo && v <= hi);
    const nonFinite = Array.from(s.values).filter((v) => !Number.isFinite(v)).length;
    const outside = s.values.length - inside.length - nonFinite;
    const extra = [nonFinite ? `${nonFinite} non-finite` : '', outside ? `${outside} outside` : ''].filter(Boolean).join(', ');
    legend.push({ name: extra ? `${s.name} (${extra})` : s.name, color, kind: 'box' });
    // One mark per series: bars overlap instead of stacking. Density divides by every value of the series, counted or not.
    const reduce = spec.density ? { reduceIndex: (index: number[]) => index.length / Math.max(1, s.values.length) } : 'count';
    return Plot.rectY(
      inside,
      Plot.binX<Plot.RectYOptions>(
        { y: reduce },
        {
          x: (v: number) => Math.min(v, lastMid),
          thresholds,
          domain: [lo, hi],
          fill: color,
          fillOpacity: several ? 0.4 : 0.75,
          stroke: color,
          strokeWidth: several ? 1.2 : 0.6,
          insetLeft: 0.5,
          insetRight: 0.5,
          className: 'bars',
          ...dataName(s.name),
        },
      ),
    );
  });
  const showLegend = several || legend.some((l, i) => l.name !== spec.series[i]!.name);
  return render(
    'histogram',
    { ...spec, yLabel: spec.yLabel ?? (spec.density ? 'fraction' : 'count') },
    {
      x: { domain: [lo, hi] },
      y: { grid: true, nice: true, domain: maxN === 0 ? [0, 1] : undefined },
      marks: [...marks, Plot.ruleY([0]), frameMark(), maxN === 0 ? noData() : null],
    },
    { legend: showLegend ? legend : [] },
  );
}
