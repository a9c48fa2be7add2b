/**
 * The frame every report chart shares: Observable Plot on a linkedom XML document (no browser, no
 * canvas, synchronous), with the title, a legend row and the y label in a header above the plot
 * area, inside the SVG (Plot would put the title and legends in HTML around it). Charts are in
 * svg-plot.ts and heat-map.ts.
 */
import * as Plot from '@observablehq/plot';
import { DOMParser } from 'linkedom';
import { escapeXml } from './escape-xml.ts';

/** Colour-blind-safe palette (Okabe-Ito, minus yellow, plus grey). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7F7F7F', '#000000'];
export const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
// An XML document, not an HTML one: linkedom then serialises as XML (escaping '<' in attribute values too).
export const document = new DOMParser().parseFromString('<svg xmlns="http://www.w3.org/2000/svg"/>', 'image/svg+xml');

/** The part of a linkedom element used here (the project compiles without the DOM library). */
export interface SvgNode {
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

export interface LegendItem {
  name: string;
  color: string;
  kind: 'line' | 'dashed' | 'point' | 'box';
}

/** Rough width of text in pixels (average glyph ~0.58 em in sans-serif). */
export const textWidth = (s: string, size: number) => s.length * size * 0.58;
export const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);
export const colorOf = (given: string | undefined, i: number) => given ?? PALETTE[i % PALETTE.length]!;

export function extent(arrays: ArrayLike<number>[]): [number, number] {
  let [lo, hi] = [Infinity, -Infinity];
  for (const a of arrays) for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) [lo, hi] = [Math.min(lo, a[i]!), Math.max(hi, a[i]!)];
  return [lo, hi];
}

/** Widen an empty or zero-width extent so that it has width. */
export function safeExtent([lo, hi]: [number, number]): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (lo === hi) return lo === 0 ? [-1, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  return [lo, hi];
}

/** Swatches laid out in rows of at most `width` pixels. */
function legendMarkup(items: LegendItem[], x0: number, y0: number, width: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  let [x, y] = [0, 0];
  let svg = `<g class="legend" transform="translate(${x0},${y0})" font-size="11" text-anchor="start">`;
  for (const it of items) {
    const w = 30 + textWidth(it.name, 11) + 14;
    if (x > 0 && x + w > width) [x, y] = [0, y + 16];
    const cy = y + 8;
    if (it.kind === 'point') svg += `<circle cx="${x + 12}" cy="${cy}" r="3.5" fill="${it.color}"/>`;
    else if (it.kind === 'box') svg += `<rect x="${x + 5}" y="${cy - 5}" width="14" height="10" fill="${it.color}" fill-opacity="0.5" stroke="${it.color}"/>`;
    else
      svg += `<line x1="${x + 2}" y1="${cy}" x2="${x + 22}" y2="${cy}" stroke="${it.color}" stroke-width="2"${it.kind === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`;
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
export function render(kind: string, frame: PlotFrame, options: Plot.PlotOptions, { legend = [], overlay, square }: Extras = {}): string {
  const width = frame.width ?? options.width ?? 640;
  const titleH = frame.title ? 28 : 6;
  const legendW = width - 100;
  const legendH = legendMarkup(legend, 0, 0, legendW).height;
  // The x label centred under its axis; the y label ("↑ loss") just above the plot area, where
  // it never collides with the tick labels, whose width Plot fits the left margin to (Plot would
  // put it at the very top, above the title).
  const yLabel = frame.yLabel ?? null;
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
    x: { label: frame.xLabel ?? null, labelAnchor: 'center', labelArrow: 'none', ...options.x },
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
  if (yLabel !== null)
    head += `<text class="y-label" x="4" y="${marginTop - 10}" text-anchor="start" fill="#333333">${options.y?.reverse ? '\u2193' : '\u2191'} ${escapeXml(yLabel)}</text>`;
  if (frame.title)
    head += `<text class="title" x="${width / 2}" y="19" text-anchor="middle" font-size="14" font-weight="600" fill="#333333">${escapeXml(frame.title)}</text>`;
  // Coordinates to two decimals: Plot writes 302.00000000000006, which would make the files far larger.
  s = s.replace(
    / (x|y|x1|x2|y1|y2|cx|cy|width|height|d|transform)="([^"]*)"/g,
    (_, k: string, v: string) => ` ${k}="${v.replace(/\d+\.\d{3,}/g, (n) => String(Math.round(Number(n) * 100) / 100))}"`,
  );
  return s.slice(0, -'</svg>'.length) + head + '</svg>';
}

/** Mark options that put the series name on the mark's group as data-name. */
export function dataName(name: string): { render: Plot.RenderFunction } {
  return {
    render(index, scales, values, dimensions, context, next) {
      const g = next!(index, scales, values, dimensions, context) as unknown as SvgNode | null;
      g?.setAttribute('data-name', name);
      return g as never;
    },
  };
}

export const noData = () => Plot.text(['no data'], { frameAnchor: 'middle', fill: '#888888', fontSize: 12, className: 'no-data' });
export const frameMark = () => Plot.frame({ stroke: '#333333', className: 'plot-area' });
