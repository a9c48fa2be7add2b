/**
 * Plain-text tables for the end of a run: aligned columns, numbers right-aligned with
 * one shared number of decimals per column, in plain, box or Markdown style.
 */
import { columnDecimals, formatNumber, visibleWidth } from './format.ts';

export interface Column {
  key: string;
  title?: string;
  /** Default: right for numeric columns, left otherwise. */
  align?: 'left' | 'right';
  /** Fixed decimals for numbers; default: chosen per column (see format.ts). */
  decimals?: number;
  /** Significant digits when decimals are chosen automatically. Default 4. */
  digits?: number;
  /** Full control over a cell's text. */
  format?: (value: unknown, row: Readonly<Record<string, unknown>>) => string;
}

export type TableStyle = 'plain' | 'box' | 'markdown';

export interface TableOptions {
  columns?: (string | Column)[];
  title?: string;
  style?: TableStyle;
}

/** One value as table text: numbers via formatNumber, null/undefined as "-", booleans yes/no. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v.replace(/\r?\n/g, ' ');
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v) ?? String(v);
}

/** Cell strings and alignment for every column (shared by text and HTML tables). */
export function tableCells(
  rows: readonly Readonly<Record<string, unknown>>[],
  columnsArg?: (string | Column)[],
): { titles: string[]; cells: string[][]; align: ('left' | 'right')[] } {
  const columns: Column[] = (columnsArg ?? [...new Set(rows.flatMap((r) => Object.keys(r)))]).map((c) => (typeof c === 'string' ? { key: c } : c));
  const titles = columns.map((c) => c.title ?? c.key);
  const align: ('left' | 'right')[] = [];
  const cols = columns.map((c) => {
    const values = rows.map((r) => r[c.key]);
    const present = values.filter((v) => v !== null && v !== undefined);
    const numeric = present.length > 0 && present.every((v) => typeof v === 'number');
    align.push(c.align ?? (numeric ? 'right' : 'left'));
    const decimals = c.decimals ?? (numeric ? columnDecimals(present as number[], c.digits ?? 4) : undefined);
    return values.map((v, i) => {
      if (c.format) return c.format(v, rows[i]!);
      if (typeof v === 'number' && Number.isFinite(v) && decimals !== undefined) return v.toFixed(decimals);
      return cellText(v);
    });
  });
  const cells = rows.map((_, i) => cols.map((col) => col[i]!));
  return { titles, cells, align };
}

function pad(s: string, w: number, a: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, w - visibleWidth(s)));
  return a === 'right' ? fill + s : s + fill;
}

/** Render rows (objects keyed by column) as a text table. */
export function renderTable(rows: readonly Readonly<Record<string, unknown>>[], opts: TableOptions = {}): string {
  const { titles, cells, align } = tableCells(rows, opts.columns);
  const style = opts.style ?? 'plain';
  const widths = titles.map((t, j) => Math.max(visibleWidth(t), ...cells.map((r) => visibleWidth(r[j]!)), style === 'markdown' ? 3 : 1));
  const lines: string[] = [];
  if (opts.title) lines.push(style === 'markdown' ? `**${opts.title}**\n` : opts.title);
  const row = (vals: string[], head = false) => vals.map((v, j) => pad(v, widths[j]!, head ? (align[j] === 'right' ? 'right' : 'left') : align[j]!));
  if (style === 'markdown') {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    lines.push(`| ${row(titles.map(esc), true).join(' | ')} |`);
    lines.push(`| ${widths.map((w, j) => (align[j] === 'right' ? '-'.repeat(w - 1) + ':' : '-'.repeat(w))).join(' | ')} |`);
    for (const r of cells) lines.push(`| ${row(r.map(esc)).join(' | ')} |`);
  } else if (style === 'box') {
    const rule = (l: string, m: string, r: string) => l + widths.map((w) => '\u2500'.repeat(w + 2)).join(m) + r;
    lines.push(rule('\u250c', '\u252c', '\u2510'));
    lines.push(`\u2502 ${row(titles, true).join(' \u2502 ')} \u2502`);
    lines.push(rule('\u251c', '\u253c', '\u2524'));
    for (const r of cells) lines.push(`\u2502 ${row(r).join(' \u2502 ')} \u2502`);
    lines.push(rule('\u2514', '\u2534', '\u2518'));
  } else {
    lines.push(row(titles, true).join('  ').trimEnd());
    lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const r of cells) lines.push(row(r).join('  ').trimEnd());
  }
  return lines.join('\n') + '\n';
}

/** A two-column key/value summary ("accuracy   0.9132"). */
export function renderKeyValue(pairs: Readonly<Record<string, unknown>> | readonly (readonly [string, unknown])[], opts: { title?: string } = {}): string {
  const entries = Array.isArray(pairs) ? (pairs as [string, unknown][]) : Object.entries(pairs);
  const w = Math.max(0, ...entries.map(([k]) => visibleWidth(k)));
  const lines = entries.map(([k, v]) => `${pad(k, w, 'left')}  ${cellText(v)}`);
  if (opts.title) lines.unshift(opts.title);
  return lines.join('\n') + '\n';
}
