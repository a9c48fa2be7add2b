/** Heat maps for the reports: a matrix as coloured cells, drawn like the other charts (plot-frame.ts). */
import * as Plot from '@observablehq/plot';
import { document, extent, FONT, frameMark, noData, render, safeExtent, type PlotFrame, type SvgNode } from './plot-frame.ts';

const SILENT_FILL = '#3a3a3a';

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
  // A few rows or columns: ticks at the cell edges, not at halves.
  const wholeTicks = (n: number) => (n > 0 && n <= 10 ? { ticks: Array.from({ length: n + 1 }, (_, k) => k), tickFormat: 'd' } : {});
  // The colour ramp (a small Plot chart of its own: Plot's ramp legend needs a canvas) and a
  // "silent" swatch sit in the header, right-aligned.
  const ramp = (top: number) => {
    // Drawn on a linear axis over log10 of the values with `log` (Plot's log axis labels only some
    // ticks): 64 colour steps, five ticks at two significant digits, evenly spaced in that axis.
    const [d0, d1] = color.domain;
    const f = spec.log ? Math.log10 : (v: number) => v;
    const at = (k: number) => f(d0) + ((f(d1) - f(d0)) * k) / 64;
    const value = (x: number) => (spec.log ? 10 ** x : x);
    const steps = Array.from({ length: 64 }, (_, k) => ({ x1: at(k), x2: at(k + 1), v: value(at(k + 0.5)) }));
    const ticks = [...new Set([0, 16, 32, 48, 64].map((k) => Number(value(at(k)).toPrecision(2))))];
    const el = Plot.plot({
      document,
      width: 240,
      height: 44,
      marginTop: 16,
      marginBottom: 16,
      marginLeft: 14,
      marginRight: 14,
      style: { fontSize: '10px', fontFamily: FONT },
      className: 'spikeloop-ramp',
      x: { domain: [f(d0), f(d1)], label: null, ticks: ticks.map(f), tickFormat: (x: number) => String(Number(value(x).toPrecision(2))), tickSize: 4 },
      color,
      marks: [
        Plot.rect(steps, { x1: 'x1', x2: 'x2', fill: 'v', stroke: 'v', shapeRendering: 'crispEdges' }),
        Plot.text([spec.colorLabel ?? ''], { frameAnchor: 'top-left', dy: -9, textAnchor: 'start' }),
      ],
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
      x: { domain: [0, Math.max(1, cols)], ...wholeTicks(cols) },
      y: { domain: [0, Math.max(1, rows)], reverse: true, ...wholeTicks(rows) },
      color,
      marks: [
        Plot.rect(cells, { x1: 'x1', x2: 'x2', y1: 'y1', y2: 'y2', fill: 'v', shapeRendering: 'crispEdges', className: 'cells' }),
        Plot.rect(silent, { x1: 'x1', x2: 'x2', y1: 'y1', y2: 'y2', fill: SILENT_FILL, shapeRendering: 'crispEdges', className: 'silent-cells' }),
        Plot.dot(spec.marks ?? [], {
          x: (m: HeatMapMark) => m.col + 0.5,
          y: (m: HeatMapMark) => m.row + 0.5,
          r: 6,
          stroke: '#d62728',
          strokeWidth: 2,
          className: 'marks',
        }),
        frameMark(),
        rows * cols === 0 ? noData() : null,
      ],
    },
    { overlay: ramp },
  );
}
