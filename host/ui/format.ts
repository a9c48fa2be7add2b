/** Number, duration and rate formatting shared by the progress bar, tables and reports. */

import path from 'node:path';

/** Characters of `s` as shown on a terminal: ANSI colour/cursor sequences take no room. */
export function visibleWidth(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').length;
}

/**
 * A number for people: integers as they are, other values with `digits` significant
 * digits (trailing zeros dropped), exponent form when very large or small.
 * NaN -> "NaN", infinities -> "inf" / "-inf".
 */
export function formatNumber(v: number, digits = 4): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return trimExp(v.toExponential(Math.max(0, digits - 1)));
  let s = v.toPrecision(digits);
  if (s.includes('e')) return trimExp(v.toExponential(Math.max(0, digits - 1)));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

function trimExp(s: string): string {
  // 1.200e-5 -> 1.2e-5
  return s.replace(/\.?0+e/, 'e').replace('e+', 'e');
}

/**
 * Decimals that give the largest |value| in a column `digits` significant digits, so a
 * column of numbers shares one format (aligned decimal points). Undefined when the
 * column needs exponent form.
 */
export function columnDecimals(values: readonly number[], digits = 4): number | undefined {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.every((v) => Number.isInteger(v))) return 0;
  const maxAbs = Math.max(...finite.map(Math.abs));
  if (maxAbs === 0) return 0;
  if (maxAbs < 1e-3 || maxAbs >= 1e7) return undefined;
  const mag = Math.floor(Math.log10(maxAbs));
  return Math.min(8, Math.max(0, digits - 1 - mag));
}

/** Seconds as "0.35s", "42s", "3m05s", "2h07m", "3d04h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  if (seconds < 10) return `${seconds.toFixed(seconds < 1 ? 2 : 1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** A count per second with an SI prefix: "950 it/s", "12.3k it/s", "1.2M it/s". */
export function formatRate(perSecond: number, unit = 'it'): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `-- ${unit}/s`;
  const prefixes: [number, string][] = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  const trim = (x: string) => (x.includes('.') ? x.replace(/\.?0+$/, '') : x);
  for (const [f, p] of prefixes) {
    // 0.9995 * f: values that would round to "1000" take the next prefix instead.
    if (perSecond >= 0.9995 * f) {
      const x = perSecond / f;
      return `${x >= 100 ? Math.round(x) : trim(x.toPrecision(3))}${p} ${unit}/s`;
    }
  }
  return `${perSecond >= 10 ? Math.round(perSecond) : trim(perSecond.toPrecision(2))} ${unit}/s`;
}

/** Custom progress fields as "loss=0.1234 acc=0.91". */
export function formatFields(fields: Readonly<Record<string, number | string | undefined>>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
    .join(' ');
}

/** A fraction as a percentage with two decimals ("86.24 %"); "n/a" when missing or not finite. */
export function formatPercent(x: number | undefined | null): string {
  return x === undefined || x === null || !Number.isFinite(x) ? 'n/a' : `${(100 * x).toFixed(2)} %`;
}

/** A path for people: relative to the working directory when inside it, absolute otherwise. */
export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(p);
}
