/**
 * Dependency-free SVG plots for run reports: line charts (learning curves), scatter
 * (predicted vs measured, with the identity line), spike rasters (neurons x time, one
 * band per layer), histograms and heat maps (a matrix as coloured cells). Each function returns one standalone, well-formed
 * SVG document as a string that also embeds directly in HTML.
 *
 * Geometry: the plot area is the rectangle with class "plot-area"; data map linearly (or
 * logarithmically) onto it, so a point at the x-domain maximum lies on its right edge.
 * Line charts use the exact x extent of the data; y axes (and scatter axes) are widened
 * to "nice" tick values.
 */

// ---------------------------------------------------------------------------- basics

/** Colour-blind-safe palette (Okabe-Ito, minus yellow, plus grey). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F7F7F', '#000000'];
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const GRID = '#e6e6e6';
const AXIS = '#333333';

export function escapeXml(s: string): string {
  let out = '';
  for (const ch of s) {
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&apos;';
    else {
      const c = ch.codePointAt(0)!;
      // Control characters other than tab/newline are not allowed in XML 1.0.
      out += c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d ? ' ' : ch;
    }
  }
  return out;
}

/** Coordinates with two decimals: plenty for screens, keeps files small. */
const f2 = (v: number) => String(Math.round(v * 100) / 100);

/** Rough width of text in pixels (average glyph ~0.58 em in sans-serif). */
const textWidth = (s: string, size: number) => s.length * size * 0.58;

export interface PlotFrame {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
}

export interface Ticks {
  /** Domain widened to whole steps (nice) or as given. */
  domain: [number, number];
  values: number[];
  labels: string[];
}

/** Fewest decimals that print `step` exactly (so 2.5-steps keep their ".5"). */
function stepDecimals(step: number): number {
  for (let d = 0; d <= 20; d++) {
    const v = step * 10 ** d;
    if (Math.round(v) >= 1 && Math.abs(v - Math.round(v)) < 1e-6 * v) return d;
  }
  return 20;
}

/** Labels for evenly spaced ticks: one format for the whole axis (fixed, or exponent form for huge/tiny values). */
function tickLabels(values: number[], step: number): string[] {
  const minus = (t: string) => (t.startsWith('-') ? '\u2212' + t.slice(1) : t);
  const maxAbs = Math.max(0, ...values.map(Math.abs));
  if (maxAbs >= 1e6 || (maxAbs > 0 && maxAbs < 1e-3)) {
    // Mantissa digits that resolve one step at the largest exponent on the axis.
    const stepExp = Math.floor(Math.log10(step) + 1e-9);
    const extra = stepDecimals(step / 10 ** stepExp);
    const topExp = Math.floor(Math.log10(maxAbs) + 1e-9);
    const digits = Math.max(0, Math.min(15, topExp - stepExp + extra));
    return values.map((v) => (v === 0 ? '0' : minus(v.toExponential(digits).replace(/\.?0+e/, 'e').replace('e+', 'e'))));
  }
  const d = stepDecimals(step);
  return values.map((v) => minus(v.toFixed(d)));
}

/** Expand a degenerate or empty extent so that it has width. */
function safeExtent(lo: number, hi: number): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - d, hi + d];
  }
  return [lo, hi];
}

/**
 * Round-number ticks, about `count` of them, with steps of 1, 2, 2.5 or 5 times a power
 * of ten. With `nice` the domain grows to whole steps, choosing the step that wastes the
 * least room; otherwise the domain is [lo, hi] and the ticks are the round values inside.
 */
export function linearTicks(lo: number, hi: number, count = 6, nice = true): Ticks {
  [lo, hi] = safeExtent(lo, hi);
  const span = hi - lo;
  const raw = span / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let best: { step: number; start: number; n: number; score: number } | undefined;
  for (const m of [1, 2, 2.5, 5, 10, 20]) {
    const step = m * mag;
    let start = nice ? Math.floor(lo / step + 1e-9) * step : Math.ceil(lo / step - 1e-9) * step;
    let end = nice ? Math.ceil(hi / step - 1e-9) * step : Math.floor(hi / step + 1e-9) * step;
    // Far from zero, k * step rounds to a float just inside the data: widen by one step then.
    if (nice && start > lo) start -= step;
    if (nice && end < hi) end += step;
    const n = Math.round((end - start) / step) + 1;
    if (n < 2 || n > count + 3) continue;
    const waste = nice ? (end - start) / span - 1 : 0;
    const score = waste + 0.08 * Math.abs(n - count) + (m === 2.5 ? 0.05 : 0);
    if (!best || score < best.score) best = { step, start, n, score };
  }
  // Only a very short range inside one step (nice = false) gets here: tick its ends.
  best ??= { step: span, start: lo, n: 2, score: 0 };
  const places = Math.min(100, stepDecimals(best.step) + 6);
  const values: number[] = [];
  for (let i = 0; i < best.n; i++) values.push(Number((best.start + i * best.step).toFixed(places)));
  const domain: [number, number] = nice ? [values[0]!, values[values.length - 1]!] : [lo, hi];
  return { domain, values, labels: tickLabels(values, best.step) };
}

/** Ticks at powers of ten (and 2, 5 multiples when the range is short). Requires lo > 0. */
export function logTicks(lo: number, hi: number): Ticks {
  if (!(lo > 0) || !(hi > 0)) [lo, hi] = [1, 10];
  if (lo === hi) [lo, hi] = [lo / 2, hi * 2];
  const e0 = Math.floor(Math.log10(lo) + 1e-9);
  const e1 = Math.ceil(Math.log10(hi) - 1e-9);
  const domain: [number, number] = [10 ** e0, 10 ** e1];
  const mult = e1 - e0 <= 2 ? [1, 2, 5] : [1];
  const values: number[] = [];
  for (let e = e0; e <= e1; e++) for (const m of mult) if (m * 10 ** e <= domain[1] * (1 + 1e-9)) values.push(Number((m * 10 ** e).toPrecision(12)));
  const labels = values.map((v) => (v >= 1e-3 && v < 1e5 ? String(v) : v.toExponential(0).replace('e+', 'e')).replace('-', '\u2212'));
  return { domain, values, labels };
}

type Scale = (v: number) => number;

function makeScale(domain: [number, number], range: [number, number], log = false): Scale {
  const [d0, d1] = log ? [Math.log10(domain[0]), Math.log10(domain[1])] : domain;
  const [r0, r1] = range;
  const k = (r1 - r0) / (d1 - d0);
  return log ? (v) => r0 + (Math.log10(v) - d0) * k : (v) => r0 + (v - d0) * k;
}

interface Area {
  width: number;
  height: number;
  x0: number;
  x1: number;
  y0: number; // top
  y1: number; // bottom
}

function layout(frame: PlotFrame, yTickLabels: string[], opts: { rightExtra?: number; leftExtra?: number } = {}): Area {
  const width = frame.width ?? 640;
  const height = frame.height ?? 400;
  const tickW = Math.max(0, ...yTickLabels.map((l) => textWidth(l, 11)));
  const left = 14 + tickW + (frame.yLabel ? 20 : 0) + (opts.leftExtra ?? 0);
  const top = frame.title ? 34 : 14;
  const bottom = 30 + (frame.xLabel ? 20 : 0);
  const right = 18 + (opts.rightExtra ?? 0);
  return { width, height, x0: left, x1: Math.max(left + 10, width - right), y0: top, y1: Math.max(top + 10, height - bottom) };
}

function open(frame: PlotFrame, a: Area, kind: string): string {
  const t = frame.title ? `<title>${escapeXml(frame.title)}</title>` : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="spikeloop-plot ${kind}" width="${a.width}" height="${a.height}" viewBox="0 0 ${a.width} ${a.height}" font-family="${escapeXml(FONT)}" font-size="12">` +
    t +
    `<rect width="${a.width}" height="${a.height}" fill="#ffffff"/>`
  );
}

function titleAndLabels(frame: PlotFrame, a: Area): string {
  let s = '';
  if (frame.title) s += `<text class="title" x="${f2(a.width / 2)}" y="20" text-anchor="middle" font-size="14" font-weight="600" fill="${AXIS}">${escapeXml(frame.title)}</text>`;
  if (frame.xLabel) s += `<text class="x-label" x="${f2((a.x0 + a.x1) / 2)}" y="${f2(a.height - 8)}" text-anchor="middle" fill="${AXIS}">${escapeXml(frame.xLabel)}</text>`;
  if (frame.yLabel) {
    const cy = (a.y0 + a.y1) / 2;
    s += `<text class="y-label" x="14" y="${f2(cy)}" text-anchor="middle" transform="rotate(-90 14 ${f2(cy)})" fill="${AXIS}">${escapeXml(frame.yLabel)}</text>`;
  }
  return s;
}

function xAxis(a: Area, ticks: Ticks, sx: Scale, grid = true): string {
  let s = '<g class="x-axis">';
  for (let i = 0; i < ticks.values.length; i++) {
    const x = sx(ticks.values[i]!);
    if (x < a.x0 - 0.5 || x > a.x1 + 0.5) continue;
    if (grid) s += `<line x1="${f2(x)}" y1="${f2(a.y0)}" x2="${f2(x)}" y2="${f2(a.y1)}" stroke="${GRID}"/>`;
    s += `<line x1="${f2(x)}" y1="${f2(a.y1)}" x2="${f2(x)}" y2="${f2(a.y1 + 5)}" stroke="${AXIS}"/>`;
    s += `<text x="${f2(x)}" y="${f2(a.y1 + 18)}" text-anchor="middle" font-size="11" fill="${AXIS}">${escapeXml(ticks.labels[i]!)}</text>`;
  }
  return s + '</g>';
}

function yAxis(a: Area, ticks: Ticks, sy: Scale, grid = true): string {
  let s = '<g class="y-axis">';
  for (let i = 0; i < ticks.values.length; i++) {
    const y = sy(ticks.values[i]!);
    if (y < a.y0 - 0.5 || y > a.y1 + 0.5) continue;
    if (grid) s += `<line x1="${f2(a.x0)}" y1="${f2(y)}" x2="${f2(a.x1)}" y2="${f2(y)}" stroke="${GRID}"/>`;
    s += `<line x1="${f2(a.x0 - 5)}" y1="${f2(y)}" x2="${f2(a.x0)}" y2="${f2(y)}" stroke="${AXIS}"/>`;
    s += `<text x="${f2(a.x0 - 8)}" y="${f2(y + 4)}" text-anchor="end" font-size="11" fill="${AXIS}">${escapeXml(ticks.labels[i]!)}</text>`;
  }
  return s + '</g>';
}

function frameRect(a: Area): string {
  return `<rect class="plot-area" x="${f2(a.x0)}" y="${f2(a.y0)}" width="${f2(a.x1 - a.x0)}" height="${f2(a.y1 - a.y0)}" fill="none" stroke="${AXIS}"/>`;
}

let clipCounter = 0;
function clipDef(a: Area): { id: string; def: string } {
  const id = `splot-clip-${++clipCounter}`;
  return { id, def: `<defs><clipPath id="${id}"><rect x="${f2(a.x0)}" y="${f2(a.y0)}" width="${f2(a.x1 - a.x0)}" height="${f2(a.y1 - a.y0)}"/></clipPath></defs>` };
}

function noData(a: Area): string {
  return `<text class="no-data" x="${f2((a.x0 + a.x1) / 2)}" y="${f2((a.y0 + a.y1) / 2)}" text-anchor="middle" fill="#888888">no data</text>`;
}

interface LegendItem {
  name: string;
  color: string;
  kind: 'line' | 'dashed' | 'point' | 'box';
}

/** A legend in the plot corner that covers the fewest data points. */
function legend(a: Area, items: LegendItem[], points: [number, number][]): string {
  if (items.length === 0) return '';
  const lineH = 16;
  const w = 34 + Math.max(...items.map((i) => textWidth(i.name, 11)));
  const h = 8 + items.length * lineH;
  const corners: [number, number][] = [
    [a.x1 - w - 8, a.y0 + 8],
    [a.x0 + 8, a.y0 + 8],
    [a.x1 - w - 8, a.y1 - h - 8],
    [a.x0 + 8, a.y1 - h - 8],
  ];
  let best = corners[0]!;
  let bestCount = Infinity;
  for (const c of corners) {
    let n = 0;
    for (const [px, py] of points) if (px >= c[0] && px <= c[0] + w && py >= c[1] && py <= c[1] + h) n++;
    if (n < bestCount) {
      bestCount = n;
      best = c;
    }
  }
  const [lx, ly] = best;
  let s = `<g class="legend"><rect x="${f2(lx)}" y="${f2(ly)}" width="${f2(w)}" height="${f2(h)}" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`;
  items.forEach((it, i) => {
    const cy = ly + 4 + lineH * i + lineH / 2;
    if (it.kind === 'point') s += `<circle cx="${f2(lx + 16)}" cy="${f2(cy)}" r="3.5" fill="${it.color}"/>`;
    else if (it.kind === 'box') s += `<rect x="${f2(lx + 9)}" y="${f2(cy - 5)}" width="14" height="10" fill="${it.color}" fill-opacity="0.45" stroke="${it.color}"/>`;
    else s += `<line x1="${f2(lx + 6)}" y1="${f2(cy)}" x2="${f2(lx + 26)}" y2="${f2(cy)}" stroke="${it.color}" stroke-width="2"${it.kind === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`;
    s += `<text x="${f2(lx + 32)}" y="${f2(cy + 4)}" font-size="11" fill="${AXIS}">${escapeXml(it.name)}</text>`;
  });
  return s + '</g>';
}

function extent(arrays: ArrayLike<number>[], accept: (v: number) => boolean = Number.isFinite): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const arr of arrays) {
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      if (!accept(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

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
  /** Fix the axes instead of fitting the data (values outside are clipped). */
  xDomain?: [number, number];
  yDomain?: [number, number];
  legend?: boolean;
}

export function lineChart(spec: LineChartSpec): string {
  const series = spec.series.map((s, i) => {
    const n = s.y.length;
    const x = s.x ?? Float64Array.from({ length: n }, (_, k) => k + 1);
    if (x.length !== n) throw new RangeError(`lineChart: series "${s.name}" has ${x.length} x values but ${n} y values`);
    return { ...s, x, color: s.color ?? PALETTE[i % PALETTE.length]! };
  });
  const yOk = spec.yLog ? (v: number) => Number.isFinite(v) && v > 0 : Number.isFinite;
  const [ylo, yhi] = spec.yDomain ?? extent(series.map((s) => s.y), yOk);
  const [xlo, xhi] = spec.xDomain ?? extent(series.map((s) => s.x));
  const empty = !Number.isFinite(ylo) || !Number.isFinite(xlo);
  const yt = spec.yLog ? logTicks(ylo, yhi) : linearTicks(ylo, yhi, 6, spec.yDomain === undefined);
  const xt = linearTicks(xlo, xhi, 7, false);
  const a = layout(spec, yt.labels);
  const sx = makeScale(xt.domain, [a.x0, a.x1]);
  const sy = makeScale(yt.domain, [a.y1, a.y0], spec.yLog);
  const clip = clipDef(a);
  let body = clip.def + xAxis(a, xt, sx) + yAxis(a, yt, sy);
  const legendPts: [number, number][] = [];
  body += `<g clip-path="url(#${clip.id})">`;
  for (const s of series) {
    let d = '';
    let pen = false;
    let dots = '';
    const markers = s.markers ?? s.y.length <= 40;
    for (let i = 0; i < s.y.length; i++) {
      const xv = s.x[i]!;
      const yv = s.y[i]!;
      if (!Number.isFinite(xv) || !yOk(yv)) {
        pen = false;
        continue;
      }
      const px = sx(xv);
      const py = sy(yv);
      legendPts.push([px, py]);
      d += `${pen ? 'L' : 'M'}${f2(px)} ${f2(py)}`;
      pen = true;
      if (markers) dots += `<circle cx="${f2(px)}" cy="${f2(py)}" r="2.5" fill="${s.color}"/>`;
    }
    body += `<g class="series" data-name="${escapeXml(s.name)}">`;
    if (d) body += `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
    body += dots + '</g>';
  }
  body += '</g>';
  if (empty) body += noData(a);
  body += frameRect(a);
  if (spec.legend ?? series.length > 1) {
    body += legend(a, series.map((s) => ({ name: s.name, color: s.color, kind: s.dashed ? 'dashed' : 'line' })), legendPts);
  }
  return open(spec, a, 'line-chart') + body + titleAndLabels(spec, a) + '</svg>';
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
  /** Draw y = x (default true) and use the same range on both axes. */
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
    return { ...g, color: g.color ?? PALETTE[i % PALETTE.length]! };
  });
  // Scatter axes: the data extent plus 4 % on each side, round ticks inside.
  const padded = (lo: number, hi: number): [number, number] => {
    [lo, hi] = safeExtent(lo, hi);
    const m = 0.04 * (hi - lo);
    return [lo - m, hi + m];
  };
  let xt: Ticks;
  let yt: Ticks;
  if (identity) {
    const [xlo, xhi] = extent(groups.map((g) => g.x));
    const [ylo, yhi] = extent(groups.map((g) => g.y));
    const [lo, hi] = spec.domain ?? padded(Math.min(xlo, ylo), Math.max(xhi, yhi));
    xt = yt = linearTicks(lo, hi, 6, false);
  } else {
    xt = linearTicks(...(spec.domain ?? padded(...extent(groups.map((g) => g.x)))), 6, false);
    yt = linearTicks(...(spec.domain ?? padded(...extent(groups.map((g) => g.y)))), 6, false);
  }
  const frame = { width: 480, height: 480, ...spec };
  const a0 = layout(frame, yt.labels);
  // With the identity line, make the plot area square so y = x is at 45 degrees.
  let a = a0;
  if (identity) {
    const side = Math.min(a0.x1 - a0.x0, a0.y1 - a0.y0);
    a = { ...a0, x1: a0.x0 + side, y0: a0.y1 - side };
  }
  const sx = makeScale(xt.domain, [a.x0, a.x1]);
  const sy = makeScale(yt.domain, [a.y1, a.y0]);
  const clip = clipDef(a);
  let body = clip.def + xAxis(a, xt, sx) + yAxis(a, yt, sy) + `<g clip-path="url(#${clip.id})">`;
  if (identity) {
    const [d0, d1] = xt.domain;
    body += `<line class="identity" x1="${f2(sx(d0))}" y1="${f2(sy(d0))}" x2="${f2(sx(d1))}" y2="${f2(sy(d1))}" stroke="#999999" stroke-dasharray="4 3"/>`;
  }
  const r = spec.pointRadius ?? 3;
  const pts: [number, number][] = [];
  let total = 0;
  for (const g of groups) {
    body += `<g class="points" data-name="${escapeXml(g.name ?? '')}" fill="${g.color}" fill-opacity="0.7">`;
    for (let i = 0; i < g.x.length; i++) {
      const xv = g.x[i]!;
      const yv = g.y[i]!;
      if (!Number.isFinite(xv) || !Number.isFinite(yv)) continue;
      const px = sx(xv);
      const py = sy(yv);
      pts.push([px, py]);
      body += `<circle class="point" cx="${f2(px)}" cy="${f2(py)}" r="${r}"/>`;
      total++;
    }
    body += '</g>';
  }
  body += '</g>';
  if (total === 0) body += noData(a);
  body += frameRect(a);
  if (spec.annotation) {
    body += `<text class="annotation" x="${f2(a.x0 + 8)}" y="${f2(a.y0 + 18)}" font-size="12" fill="${AXIS}">${escapeXml(spec.annotation)}</text>`;
  }
  const named = groups.filter((g) => g.name);
  if (named.length > 1 || (named.length === 1 && groups.length > 1)) {
    body += legend(a, named.map((g) => ({ name: g.name!, color: g.color, kind: 'point' as const })), spec.annotation ? [...pts, [a.x0 + 20, a.y0 + 14]] : pts);
  }
  return open(frame, a, 'scatter') + body + titleAndLabels(frame, { ...a, x1: a.x1 }) + '</svg>';
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
  /** Time axis range (default: 0 .. the latest spike or horizon). */
  tDomain?: [number, number];
  /** Mark silent neurons in the right margin (default true). */
  showSilent?: boolean;
}

export function spikeRaster(spec: RasterSpec): string {
  const layers = spec.layers.map((l, i) => {
    let neurons = l.neurons;
    if (neurons === undefined) {
      if (l.times) neurons = l.times.length;
      else {
        let m = -1;
        const ev = l.events?.neuron ?? [];
        for (let k = 0; k < ev.length; k++) m = Math.max(m, ev[k]!);
        neurons = m + 1;
      }
    }
    if (l.events && l.events.neuron.length !== l.events.time.length) {
      throw new RangeError(`spikeRaster: layer "${l.name}" has ${l.events.neuron.length} event neurons but ${l.events.time.length} event times`);
    }
    return { ...l, neurons: Math.max(0, neurons), color: l.color ?? PALETTE[i % PALETTE.length]! };
  });
  let tmax = -Infinity;
  for (const l of layers) {
    const [, hi] = extent([l.times ?? [], l.events?.time ?? []]);
    tmax = Math.max(tmax, hi, l.horizon ?? -Infinity);
  }
  const [t0, t1] = spec.tDomain ?? [0, Number.isFinite(tmax) && tmax > 0 ? tmax : 1];
  const xt = linearTicks(t0, t1, 7, spec.tDomain === undefined);
  const labels = layers.flatMap((l) => [l.name, `${l.neurons} neurons`]);
  const showSilent = spec.showSilent ?? true;
  const a = layout({ height: 120 + 90 * layers.length, ...spec, yLabel: undefined }, [], {
    leftExtra: Math.max(40, ...labels.map((s) => textWidth(s, 11))),
    rightExtra: showSilent ? 14 : 0,
  });
  const sx = makeScale(xt.domain, [a.x0, a.x1]);
  // Bands share the height in proportion to sqrt(neurons): big input layers stay readable
  // without squeezing a 10-neuron output layer into a sliver.
  const gap = 8;
  const weights = layers.map((l) => Math.sqrt(Math.max(1, l.neurons)));
  const wsum = weights.reduce((p, q) => p + q, 0) || 1;
  const avail = a.y1 - a.y0 - gap * Math.max(0, layers.length - 1);
  let body = xAxis(a, xt, sx);
  let y = a.y0;
  layers.forEach((l, li) => {
    const bandH = (avail * weights[li]!) / wsum;
    const rowH = l.neurons > 0 ? bandH / l.neurons : bandH;
    // At least 2 px so single spikes stay visible in a band of hundreds of neurons.
    const tickH = Math.max(2, Math.min(rowH * 0.8, 10));
    body += `<g class="layer" data-name="${escapeXml(l.name)}">`;
    body += `<rect x="${f2(a.x0)}" y="${f2(y)}" width="${f2(a.x1 - a.x0)}" height="${f2(bandH)}" fill="${li % 2 ? '#f2f2f2' : '#f8f8f8'}" fill-opacity="0.6" stroke="#dddddd"/>`;
    let d = '';
    let silentD = '';
    let silent = 0;
    let spikes = 0;
    const row = (n: number) => y + (n + 0.5) * rowH;
    const put = (n: number, t: number) => {
      if (!(n >= 0 && n < l.neurons)) return;
      if (!Number.isFinite(t)) return;
      const px = sx(t);
      if (px < a.x0 - 0.01 || px > a.x1 + 0.01) return;
      d += `M${f2(px)} ${f2(row(n) - tickH / 2)}v${f2(tickH)}`;
      spikes++;
    };
    if (l.times) {
      for (let n = 0; n < l.times.length; n++) {
        const t = l.times[n]!;
        if (Number.isFinite(t)) put(n, t);
        else {
          silent++;
          if (showSilent) silentD += `M${f2(a.x1 + 3)} ${f2(row(n))}h6`;
        }
      }
    }
    if (l.events) for (let k = 0; k < l.events.neuron.length; k++) put(l.events.neuron[k]!, l.events.time[k]!);
    if (d) body += `<path class="spikes" d="${d}" stroke="${l.color}" stroke-width="${tickH >= 3 ? 2 : 1.5}" fill="none"/>`;
    if (silentD) body += `<path class="silent" d="${silentD}" stroke="#bbbbbb" stroke-width="${f2(Math.max(0.5, Math.min(rowH * 0.8, 2)))}" fill="none"/>`;
    if (l.horizon !== undefined && Number.isFinite(l.horizon)) {
      const hx = sx(l.horizon);
      if (hx >= a.x0 && hx <= a.x1) body += `<line class="horizon" x1="${f2(hx)}" y1="${f2(y)}" x2="${f2(hx)}" y2="${f2(y + bandH)}" stroke="#555555" stroke-dasharray="4 3"/>`;
    }
    const cy = y + bandH / 2;
    const info = [`${l.neurons} neurons`, l.times ? `${silent} silent` : `${spikes} spikes`];
    const lx = f2(a.x0 - 8);
    body += `<text x="${lx}" y="${f2(cy - 9)}" text-anchor="end" font-size="11" font-weight="600" fill="${AXIS}">${escapeXml(l.name)}</text>`;
    body += `<text x="${lx}" y="${f2(cy + 4)}" text-anchor="end" font-size="10" fill="#666666">${info[0]}</text>`;
    body += `<text x="${lx}" y="${f2(cy + 16)}" text-anchor="end" font-size="10" fill="#666666">${info[1]}</text>`;
    body += '</g>';
    y += bandH + gap;
  });
  if (layers.length === 0) body += noData(a);
  return open(spec, a, 'raster') + body + titleAndLabels({ ...spec, yLabel: undefined }, a) + '</svg>';
}

// ----------------------------------------------------------------------- histogram

export interface HistogramResult {
  edges: Float64Array;
  counts: Uint32Array;
  /** Finite values below / above the range. */
  below: number;
  above: number;
  /** NaN and infinities (e.g. silent spike times). */
  nonFinite: number;
}

/**
 * Counts in `bins` equal bins over `range` (default: the finite data extent). Bins are
 * half-open [a, b) except the last, which includes the range maximum.
 */
export function computeHistogram(values: ArrayLike<number>, bins: number, range?: [number, number]): HistogramResult {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`histogram: bins must be a positive integer, got ${bins}`);
  const [lo, hi] = safeExtent(...(range ?? extent([values])));
  const edges = Float64Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  edges[bins] = hi;
  const counts = new Uint32Array(bins);
  let below = 0;
  let above = 0;
  let nonFinite = 0;
  const k = bins / (hi - lo);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) nonFinite++;
    else if (v < lo) below++;
    else if (v > hi) above++;
    else {
      // Arithmetic can land a value next to an edge in the wrong bin; the edges decide.
      let b = Math.min(bins - 1, Math.floor((v - lo) * k));
      if (b > 0 && v < edges[b]!) b--;
      else if (b < bins - 1 && v >= edges[b + 1]!) b++;
      counts[b]!++;
    }
  }
  return { edges, counts, below, above, nonFinite };
}

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

export function histogram(spec: HistogramSpec): string {
  const maxN = Math.max(0, ...spec.series.map((s) => s.values.length));
  const bins = spec.bins ?? Math.max(5, Math.min(60, Math.ceil(Math.log2(Math.max(1, maxN)) + 1)));
  const range = spec.range ?? extent(spec.series.map((s) => s.values));
  const results = spec.series.map((s, i) => ({
    s,
    color: s.color ?? PALETTE[i % PALETTE.length]!,
    h: computeHistogram(s.values, bins, Number.isFinite(range[0]) ? range : undefined),
  }));
  const heights = results.map(({ h, s }) => Array.from(h.counts, (c) => (spec.density ? c / Math.max(1, s.values.length) : c)));
  const ymax = Math.max(0, ...heights.flat());
  const edges = results[0]?.h.edges ?? Float64Array.of(0, 1);
  const xt = linearTicks(edges[0]!, edges[edges.length - 1]!, 7, false);
  const yt = linearTicks(0, ymax > 0 ? ymax : 1, 6, true);
  const a = layout({ yLabel: spec.density ? 'fraction' : 'count', ...spec }, yt.labels);
  const sx = makeScale(xt.domain, [a.x0, a.x1]);
  const sy = makeScale(yt.domain, [a.y1, a.y0]);
  let body = xAxis(a, xt, sx, false) + yAxis(a, yt, sy);
  const pts: [number, number][] = [];
  const several = results.length > 1;
  results.forEach(({ color }, si) => {
    body += `<g class="bars" data-name="${escapeXml(spec.series[si]!.name)}">`;
    heights[si]!.forEach((hv, b) => {
      if (hv <= 0) return;
      const x0 = sx(edges[b]!);
      const x1 = sx(edges[b + 1]!);
      const yTop = sy(hv);
      pts.push([(x0 + x1) / 2, yTop]);
      body += `<rect class="bar" x="${f2(x0)}" y="${f2(yTop)}" width="${f2(Math.max(0, x1 - x0))}" height="${f2(a.y1 - yTop)}" fill="${color}" fill-opacity="${several ? 0.4 : 0.75}" stroke="${color}" stroke-width="${several ? 1.2 : 0.6}"/>`;
    });
    body += '</g>';
  });
  if (maxN === 0) body += noData(a);
  body += frameRect(a);
  const items: LegendItem[] = results.map(({ s, color, h }) => {
    const extra = [h.nonFinite ? `${h.nonFinite} non-finite` : '', h.below + h.above ? `${h.below + h.above} outside` : ''].filter(Boolean).join(', ');
    return { name: extra ? `${s.name} (${extra})` : s.name, color, kind: 'box' as const };
  });
  if (several || items.some((i) => i.name !== spec.series[0]?.name)) body += legend(a, items, pts);
  return open(spec, a, 'histogram') + body + titleAndLabels({ yLabel: spec.density ? 'fraction' : 'count', ...spec }, a) + '</svg>';
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
  /** Cells to outline (e.g. flagged synapses); drawn on top, whatever the block size. */
  marks?: HeatMapMark[];
  colorLabel?: string;
}

/** Viridis, sampled at five stops: perceptually uniform and readable in grey. */
const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
const SILENT_FILL = '#3a3a3a';

function rampColor(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - k;
  const a = VIRIDIS[k]!;
  const b = VIRIDIS[k + 1]!;
  const ch = (s: string, i: number) => parseInt(s.slice(1 + 2 * i, 3 + 2 * i), 16);
  return '#' + [0, 1, 2].map((i) => Math.round(ch(a, i) + (ch(b, i) - ch(a, i)) * f).toString(16).padStart(2, '0')).join('');
}

/**
 * A matrix as coloured cells (rows top to bottom, columns left to right) with a colour bar; big
 * matrices are block-averaged (in log space with `log`), so the file stays small.
 */
export function heatMap(spec: HeatMapSpec): string {
  const { rows, cols, values } = spec;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || values.length !== rows * cols) {
    throw new RangeError(`heatMap: values must hold rows x cols = ${rows} x ${cols} numbers, got ${values.length}`);
  }
  const maxCells = spec.maxCells ?? 128;
  const br = Math.max(1, Math.ceil(rows / maxCells));
  const bc = Math.max(1, Math.ceil(cols / maxCells));
  const nr = Math.ceil(rows / br);
  const nc = Math.ceil(cols / bc);
  const tf = (v: number) => (spec.log ? (v > 0 ? Math.log10(v) : NaN) : v);
  // Block means; NaN = nothing finite, Infinity = only silent cells.
  const cells = new Float64Array(nr * nc);
  for (let R = 0; R < nr; R++) {
    for (let C = 0; C < nc; C++) {
      let sum = 0;
      let n = 0;
      let silent = 0;
      for (let r = R * br; r < Math.min(rows, (R + 1) * br); r++) {
        for (let c = C * bc; c < Math.min(cols, (C + 1) * bc); c++) {
          const v = values[r * cols + c]!;
          if (v === Infinity) silent++;
          else {
            const t = tf(v);
            if (Number.isFinite(t)) {
              sum += t;
              n++;
            }
          }
        }
      }
      cells[R * nc + C] = n > 0 ? sum / n : silent > 0 ? Infinity : NaN;
    }
  }
  const [lo, hi] = safeExtent(...(spec.domain ? ([tf(spec.domain[0]), tf(spec.domain[1])] as [number, number]) : extent([cells])));
  const yt = linearTicks(0, Math.max(1, rows), 6, false);
  const xt = linearTicks(0, Math.max(1, cols), 7, false);
  const a = layout({ height: 460, ...spec }, yt.labels, { rightExtra: 70 });
  const sx = makeScale([0, Math.max(1, cols)], [a.x0, a.x1]);
  const sy = makeScale([0, Math.max(1, rows)], [a.y0, a.y1]);
  let body = xAxis(a, xt, sx, false) + yAxis(a, yt, sy, false) + '<g class="cells" shape-rendering="crispEdges">';
  for (let R = 0; R < nr; R++) {
    for (let C = 0; C < nc; C++) {
      const v = cells[R * nc + C]!;
      if (Number.isNaN(v)) continue;
      const fill = v === Infinity ? SILENT_FILL : rampColor((v - lo) / (hi - lo));
      const x0 = sx(C * bc);
      const y0 = sy(R * br);
      body += `<rect x="${f2(x0)}" y="${f2(y0)}" width="${f2(sx(Math.min(cols, (C + 1) * bc)) - x0)}" height="${f2(sy(Math.min(rows, (R + 1) * br)) - y0)}" fill="${fill}"/>`;
    }
  }
  body += '</g>';
  if (spec.marks?.length) {
    body += '<g class="marks">';
    for (const m of spec.marks) {
      const cx = sx(m.col + 0.5);
      const cy = sy(m.row + 0.5);
      body += `<circle cx="${f2(cx)}" cy="${f2(cy)}" r="6" fill="none" stroke="#d62728" stroke-width="2"/>`;
    }
    body += '</g>';
  }
  body += frameRect(a);
  // Colour bar with its own axis.
  const bx = a.x1 + 14;
  const steps = 32;
  body += '<g class="color-bar">';
  for (let k = 0; k < steps; k++) {
    const y = a.y1 - ((k + 1) * (a.y1 - a.y0)) / steps;
    body += `<rect x="${f2(bx)}" y="${f2(y)}" width="12" height="${f2((a.y1 - a.y0) / steps + 0.5)}" fill="${rampColor((k + 0.5) / steps)}"/>`;
  }
  const ct = linearTicks(lo, hi, 5, false);
  const cs = makeScale([lo, hi], [a.y1, a.y0]);
  ct.values.forEach((v, i) => {
    const label = spec.log ? String(Number((10 ** v).toPrecision(2))) : ct.labels[i]!;
    body += `<text x="${f2(bx + 16)}" y="${f2(cs(v) + 4)}" font-size="10" fill="${AXIS}">${escapeXml(label)}</text>`;
  });
  if (spec.colorLabel) body += `<text x="${f2(bx)}" y="${f2(a.y0 - 6)}" font-size="10" fill="${AXIS}">${escapeXml(spec.colorLabel)}</text>`;
  body += `<rect x="${f2(bx)}" y="${f2(a.y1 + 8)}" width="12" height="8" fill="${SILENT_FILL}"/><text x="${f2(bx + 16)}" y="${f2(a.y1 + 16)}" font-size="10" fill="${AXIS}">silent</text>`;
  body += '</g>';
  if (rows * cols === 0) body += noData(a);
  return open(spec, a, 'heat-map') + body + titleAndLabels(spec, a) + '</svg>';
}
