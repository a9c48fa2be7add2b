/**
 * Report charts as standalone SVG documents (that also embed in the HTML reports): line charts
 * (learning curves, transfer curves), scatter (predicted vs measured), spike rasters, histograms and
 * heat maps. Observable Plot draws them on a linkedom document, so no browser or canvas is needed
 * and every function stays synchronous; this module only turns the project's data into marks and
 * adds what Plot leaves to HTML (the title and a legend row) inside the SVG.
 *
 * Each mark group carries a class (plot-area, series, points, layer, spikes, bars, cells...) and, for
 * a named series, its name as data-name, so tests and readers can find them.
 */
import * as Plot from '@observablehq/plot';
import { DOMParser } from 'linkedom';
import { escapeXml } from './escape-xml.ts';

/** Colour-blind-safe palette (Okabe-Ito, minus yellow, plus grey). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F7F7F', '#000000'];
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const SILENT_FILL = '#3a3a3a';
// An XML document, not an HTML one: linkedom then serialises as XML (escaping '<' in attribute values too).
const document = new DOMParser().parseFromString('<svg xmlns="http://www.w3.org/2000/svg"/>', 'image/svg+xml');

/** The part of a linkedom element used here (the project compiles without the DOM library). */
interface SvgNode {
  outerHTML: string;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): SvgNode | null;
}

export interface PlotFrame {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
}

interface LegendItem {
  name: string;
  color: string;
  kind: 'line' | 'dashed' | 'point' | 'box';
}

/** Rough width of text in pixels (average glyph ~0.58 em in sans-serif). */
const textWidth = (s: string, size: number) => s.length * size * 0.58;
const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
const colorOf = (given: string | undefined, i: number) => given ?? PALETTE[i % PALETTE.length]!;

function extent(arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) [lo, hi] = [Math.min(lo, a[i]!), Math.max(hi, a[i]!)];
  return [lo, hi];
}

/** Widen an empty or zero-width extent so that it has width. */
function safeExtent([lo, hi]: [number, number]): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) return lo === 0 ? [-1, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  return [lo, hi];
}

/** Swatches laid out in rows of at most `width` pixels. */
function legendMarkup(items: LegendItem[], x0: number, y0: number, width: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  let x = 0;
  let y = 0;
  let svg = `<g class="legend" transform="translate(${x0},${y0})" font-size="11" text-anchor="start">`;
  for (const it of items) {
    const w = 30 + textWidth(it.name, 11) + 14;
    if (x > 0 && x + w > width) [x, y] = [0, y + 16];
    const cy = y + 8;
    if (it.kind === 'point') svg += `<circle cx="${x + 12}" cy="${cy}" r="3.5" fill="${it.color}"/>`;
    else if (it.kind === 'box') svg += `<rect x="${x + 5}" y="${cy - 5}" width="14" height="10" fill="${it.color}" fill-opacity="0.5" stroke="${it.color}"/>`;
    else svg += `<line x1="${x + 2}" y1="${cy}" x2="${x + 22}" y2="${cy}" stroke="${it.color}" stroke-width="2"${it.kind === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`;
    svg += `<text x="${x + 28}" y="${cy + 4}" fill="#333333">${escapeXml(it.name)}</text>`;
    x += w;
  }
  return { svg: svg + '</g>', height: y + 20 };
}

interface Extras {
  legend?: LegendItem[];
  /** Markup drawn last, given the top of the header (below the title): the heat map's colour ramp. */
  overlay?: (top: number, width: number) => string;
  /** A square plot area (scatter with the identity line). */
  square?: boolean;
}

/** Plot's SVG with the title, the legend and the y label in a header above the plot area. */
function render(kind: string, frame: PlotFrame, options: Plot.PlotOptions, { legend = [], overlay, square }: Extras = {}): string {
  const width = frame.width ?? options.width ?? 640;
  const titleH = frame.title ? 28 : 6;
  const legendW = width - 100;
  const legendH = legendMarkup(legend, 0, 0, legendW).height;
  // The x label centred under its axis; the y label ("↑ loss") just above the plot area, where
  // it never collides with the tick labels, whose width Plot fits the left margin to (Plot would
  // put it at the very top, above the title).
  const yLabel = options.y?.label ?? null;
  const marginTop = titleH + legendH + (options.marginTop ?? 12) + (yLabel !== null ? 18 : 0);
  const marginBottom = frame.xLabel ? 42 : 30;
  // Square: a fixed left margin (Plot would fit it to the tick labels after sizing the height).
  const fixed = square ? { marginLeft: 56, height: width - 56 - 24 + marginTop + marginBottom } : {};
  const svg = Plot.plot({
    document,
    width,
    height: frame.height ?? 400,
    marginRight: 24,
    marginBottom,
    style: { background: '#ffffff', fontSize: '11px', fontFamily: FONT },
    className: 'spikeloop-plot',
    ...options,
    ...fixed,
    x: { labelAnchor: 'center', labelArrow: 'none', ...options.x },
    y: { ...options.y, label: null },
    marginTop,
  }) as unknown as SvgNode;
  svg.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  svg.setAttribute('class', `spikeloop-plot ${kind}`);
  // Plot chose the left margin from the tick labels; the legend starts where the plot area does.
  const left = Number(svg.querySelector('.plot-area')?.getAttribute('x') ?? 40);
  let s = svg.outerHTML;
  const open = s.indexOf('>') + 1;
  if (frame.title) s = `${s.slice(0, open)}<title>${escapeXml(frame.title)}</title>${s.slice(open)}`;
  let head = legendMarkup(legend, left, titleH, legendW).svg + (overlay?.(titleH, width) ?? '');
  if (yLabel !== null) head += `<text class="y-label" x="4" y="${marginTop - 10}" text-anchor="start" fill="#333333">${options.y?.reverse ? '\u2193' : '\u2191'} ${escapeXml(yLabel)}</text>`;
  if (frame.title) head += `<text class="title" x="${width / 2}" y="19" text-anchor="middle" font-size="14" font-weight="600" fill="#333333">${escapeXml(frame.title)}</text>`;
  return s.slice(0, -'</svg>'.length) + head + '</svg>';
}

/** Mark options that put the series name on the mark's group as data-name. */
function dataName(name: string): { render: Plot.RenderFunction } {
  return {
    render(index, scales, values, dimensions, context, next) {
      const g = next!(index, scales, values, dimensions, context) as unknown as SvgNode | null;
      g?.setAttribute('data-name', name);
      return g as never;
    },
  };
}

const noData = () => Plot.text(['no data'], { frameAnchor: 'middle', fill: '#888888', fontSize: 12, className: 'no-data' });
const frameMark = () => Plot.frame({ stroke: '#333333', className: 'plot-area' });

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
  const xTicks = !empty && xs.every(Number.isInteger) && xhi - xlo <= 10 ? Array.from({ length: Math.floor(xhi - xlo) + 1 }, (_, k) => Math.ceil(xlo) + k) : undefined;
  // A log axis over many decades: ticks and grid lines at the powers of ten only, labelled 0.01 or 1e-6
  // (Plot would add a grid line at every 2..9 and SI prefixes such as 10µ).
  const [ylo, yhi] = spec.yDomain ?? extent(series.map((s) => s.points.map((p) => p.y)));
  const [e0, e1] = [Math.floor(Math.log10(ylo)), Math.ceil(Math.log10(yhi))];
  const decades = spec.yLog && e1 - e0 > 2 ? Array.from({ length: e1 - e0 + 1 }, (_, k) => 10 ** (e0 + k)) : undefined;
  const decadeLabel = (v: number) => (v >= 1e-3 && v < 1e5 ? String(Number(v.toPrecision(1))) : v.toExponential(0).replace('e+', 'e').replace('-', '\u2212'));
  const marks: Plot.Markish[] = series.flatMap((s) => {
    const common = { x: 'x', y: 'y', clip: true, ...dataName(s.name) };
    const line = Plot.line(s.points, { ...common, stroke: s.color, strokeWidth: 2, strokeDasharray: s.dashed ? '6 4' : undefined, className: 'series' });
    const dots = (s.markers ?? s.points.length <= 40) ? [Plot.dot(s.points.filter((p) => Number.isFinite(p.y)), { ...common, fill: s.color, r: 2.5, className: 'markers' })] : [];
    return [line, ...dots];
  });
  const legend = (spec.legend ?? series.length > 1) ? series.map((s) => ({ name: s.name, color: s.color, kind: s.dashed ? ('dashed' as const) : ('line' as const) })) : [];
  return render(
    'line-chart',
    spec,
    {
      x: { label: spec.xLabel ?? null, domain: spec.xDomain ?? (empty ? [0, 1] : undefined), ticks: xTicks, tickFormat: xTicks ? 'd' : undefined, grid: true },
      y: { label: spec.yLabel ?? null, type: spec.yLog ? 'log' : 'linear', domain: spec.yDomain ?? (empty ? [0, 1] : undefined), nice: !spec.yDomain, grid: true, ticks: decades, tickFormat: decades ? decadeLabel : undefined },
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
  const legend = named.length > 1 || (named.length === 1 && groups.length > 1) ? named.map((g) => ({ name: g.name!, color: g.color, kind: 'point' as const })) : [];
  return render(
    'scatter',
    { width: 480, height: 480, ...spec },
    {
      x: { label: spec.xLabel ?? null, domain: xDomain, ticks: 6, grid: true },
      y: { label: spec.yLabel ?? null, domain: yDomain, ticks: 6, grid: true },
      marks: [
        identity ? Plot.line([[xDomain[0], xDomain[0]], [xDomain[1], xDomain[1]]], { stroke: '#999999', strokeDasharray: '4 3', className: 'identity' }) : null,
        ...groups.map((g) => Plot.dot(g.points, { x: 'x', y: 'y', r: spec.pointRadius ?? 3, fill: g.color, fillOpacity: 0.7, clip: true, className: 'points', ...dataName(g.name ?? '') })),
        spec.annotation ? Plot.text([spec.annotation], { frameAnchor: 'top-left', dx: 8, dy: 10, fontSize: 12, textAnchor: 'start', className: 'annotation' }) : null,
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
  let top = 0;
  let tmax = -Infinity;
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
    Plot.text([label(b)], { frameAnchor: 'left', y: (b.y1 + b.y2) / 2, dx: -8, dy: 8, textAnchor: 'end', fontSize: 10, fill: '#666666', lineAnchor: 'middle', className: 'layer-info', ...dataName(b.name) }),
  ]);
  // Silent neurons: a short grey dash in the right margin, level with the neuron's row.
  if (showSilent && silent.length) marks.push(Plot.text(silent, { y: 'y', text: () => '\u2014', frameAnchor: 'right', textAnchor: 'start', dx: 3, fill: '#888888', className: 'silent' }));
  return render(
    'raster',
    { height: 120 + 90 * bands.length, ...spec, yLabel: undefined },
    {
      marginLeft,
      marginRight: 24,
      x: { label: spec.xLabel ?? null, domain: tDomain, nice: spec.tDomain === undefined, grid: true },
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
    return Plot.rectY(inside, Plot.binX<Plot.RectYOptions>({ y: reduce }, { x: (v: number) => Math.min(v, lastMid), thresholds, domain: [lo, hi], fill: color, fillOpacity: several ? 0.4 : 0.75, stroke: color, strokeWidth: several ? 1.2 : 0.6, insetLeft: 0.5, insetRight: 0.5, className: 'bars', ...dataName(s.name) }));
  });
  const showLegend = several || legend.some((l, i) => l.name !== spec.series[i]!.name);
  return render(
    'histogram',
    spec,
    {
      x: { label: spec.xLabel ?? null, domain: [lo, hi] },
      y: { label: spec.yLabel ?? (spec.density ? 'fraction' : 'count'), grid: true, nice: true, domain: maxN === 0 ? [0, 1] : undefined },
      marks: [...marks, Plot.ruleY([0]), frameMark(), maxN === 0 ? noData() : null],
    },
    { legend: showLegend ? legend : [] },
  );
}

// ------------------------------------------------------------------------ heat map

export interface HeatMapMark {
  row: number;
  col: number;
}

export interface HeatMapSpec extends PlotFrame {
  /** rows x cols values, row-major. +Infinity is drawn as "silent" (dark grey), NaN as blank. */
  values: ArrayLike<number>;
  rows: number;
  cols: number;
  /** Colour by log10 of the value (values <= 0 count as blank). */
  log?: boolean;
  /** Colour range (default: the finite data extent). */
  domain?: [number, number];
  /** Larger maps are averaged in blocks so that neither axis has more than this many cells. Default 128. */
  maxCells?: number;
  /** Cells to circle (e.g. flagged synapses); drawn on top, whatever the block size. */
  marks?: HeatMapMark[];
  colorLabel?: string;
}

/**
 * A matrix as coloured cells (viridis; rows top to bottom) with a colour ramp in the header. Big
 * matrices are block-averaged (geometric means with `log`), so the file stays small.
 */
export function heatMap(spec: HeatMapSpec): string {
  const { rows, cols, values } = spec;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || values.length !== rows * cols) {
    throw new RangeError(`heatMap: values must hold rows x cols = ${rows} x ${cols} numbers, got ${values.length}`);
  }
  const maxCells = spec.maxCells ?? 128;
  const br = Math.max(1, Math.ceil(rows / maxCells));
  const bc = Math.max(1, Math.ceil(cols / maxCells));
  const tf = (v: number) => (spec.log ? (v > 0 ? Math.log10(v) : NaN) : v);
  const cells: { x1: number; x2: number; y1: number; y2: number; v: number }[] = [];
  const silent: typeof cells = [];
  for (let R = 0; R * br < rows; R++) {
    for (let C = 0; C * bc < cols; C++) {
      let [sum, n, quiet] = [0, 0, 0];
      for (let r = R * br; r < Math.min(rows, (R + 1) * br); r++) {
        for (let c = C * bc; c < Math.min(cols, (C + 1) * bc); c++) {
          const v = values[r * cols + c]!;
          const t = tf(v);
          if (v === Infinity) quiet++;
          else if (Number.isFinite(t)) [sum, n] = [sum + t, n + 1];
        }
      }
      const cell = { x1: C * bc, x2: Math.min(cols, (C + 1) * bc), y1: R * br, y2: Math.min(rows, (R + 1) * br), v: spec.log ? 10 ** (sum / n) : sum / n };
      if (n > 0) cells.push(cell);
      else if (quiet > 0) silent.push(cell);
    }
  }
  const color = {
    type: spec.log ? ('log' as const) : ('linear' as const),
    scheme: 'viridis' as const,
    domain: spec.domain ?? (cells.length ? safeExtent(extent([cells.map((c) => c.v)])) : [1, 10]),
    clamp: true,
    label: spec.colorLabel ?? null,
  };
  const width = spec.width ?? 640;
  // The colour ramp (a small Plot chart of its own: Plot's ramp legend needs a canvas) and a
  // "silent" swatch sit in the header, right-aligned.
  const ramp = (top: number) => {
    const [d0, d1] = color.domain;
    const at = (k: number) => (spec.log ? d0 * (d1 / d0) ** (k / 64) : d0 + ((d1 - d0) * k) / 64);
    const steps = Array.from({ length: 64 }, (_, k) => ({ x1: at(k), x2: at(k + 1) }));
    const mid = (d: { x1: number; x2: number }) => (spec.log ? Math.sqrt(d.x1 * d.x2) : (d.x1 + d.x2) / 2);
    const el = Plot.plot({
      document,
      width: 240,
      height: 44,
      marginTop: 16,
      marginBottom: 16,
      marginLeft: 10,
      marginRight: 10,
      style: { fontSize: '10px', fontFamily: FONT },
      className: 'spikeloop-ramp',
      x: { type: color.type, domain: [d0, d1], label: null, ticks: 4, tickSize: 4 },
      color,
      marks: [Plot.rect(steps, { x1: 'x1', x2: 'x2', fill: mid, stroke: mid, shapeRendering: 'crispEdges' }), Plot.text([spec.colorLabel ?? ''], { frameAnchor: 'top-left', dy: -9, textAnchor: 'start' })],
    }) as unknown as SvgNode;
    el.setAttribute('x', String(width - 24 - 240 - 50));
    el.setAttribute('y', String(top));
    return `<g class="color-bar">${el.outerHTML}<rect x="${width - 70}" y="${top + 14}" width="12" height="14" fill="${SILENT_FILL}"/><text x="${width - 54}" y="${top + 25}" font-size="10" text-anchor="start" fill="#333333">silent</text></g>`;
  };
  return render(
    'heat-map',
    { height: 460, ...spec, width },
    {
      marginTop: 56,
      x: { label: spec.xLabel ?? null, domain: [0, Math.max(1, cols)] },
      y: { label: spec.yLabel ?? null, domain: [0, Math.max(1, rows)], reverse: true },
      color,
      marks: [
        Plot.rect(cells, { x1: 'x1', x2: 'x2', y1: 'y1', y2: 'y2', fill: 'v', shapeRendering: 'crispEdges', className: 'cells' }),
        Plot.rect(silent, { x1: 'x1', x2: 'x2', y1: 'y1', y2: 'y2', fill: SILENT_FILL, shapeRendering: 'crispEdges', className: 'silent-cells' }),
        Plot.dot(spec.marks ?? [], { x: (m: HeatMapMark) => m.col + 0.5, y: (m: HeatMapMark) => m.row + 0.5, r: 6, stroke: '#d62728', strokeWidth: 2, className: 'marks' }),
        frameMark(),
        rows * cols === 0 ? noData() : null,
      ],
    },
    { overlay: ramp },
  );
}
