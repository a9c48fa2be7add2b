/**
 * Reader for ngspice "raw" output files (`ngspice -b -r out.raw`), binary or ASCII
 * (`SPICE_ASCIIRAWFILE=1` or `set filetype=ascii`). Real-valued plots only: transient and DC
 * sweeps, which is all the chip models run.
 *
 * Layout: text header lines `Key: value` (Title, Date, Plotname, Flags, No. Variables, No. Points),
 * then `Variables:` with one `\t<index>\t<name>\t<type>` line per vector, then either `Binary:`
 * followed by points x variables little-endian float64, or `Values:` followed by, per point, its
 * index and one value per variable. A file may hold several plots back to back; the first is read.
 */

import type { SpiceVectors } from './engine.ts';

export class RawFileError extends Error {
  override name = 'RawFileError';
}

/** ngspice spells branch currents `v1#branch` in raw files; the chip models use `i(v1)`. */
export function normaliseVectorName(name: string): string {
  const n = name.trim().toLowerCase();
  const m = /^(.*)#branch$/.exec(n);
  if (m) return `i(${m[1]})`;
  if (n === 'v-sweep') return 'v(v-sweep)';
  return n;
}

interface Header {
  plotname: string;
  flags: string;
  nVars: number;
  nPoints: number;
  names: string[];
  dataStart: number;
  binary: boolean;
}

function readLine(buf: Uint8Array, pos: number): { line: string; next: number } {
  let end = pos;
  while (end < buf.length && buf[end] !== 0x0a) end++;
  const line = Buffer.from(buf.buffer, buf.byteOffset + pos, end - pos)
    .toString('latin1')
    .replace(/\r$/, '');
  return { line, next: Math.min(end + 1, buf.length) };
}

function parseHeader(buf: Uint8Array): Header {
  let pos = 0;
  const fields = new Map<string, string>();
  for (;;) {
    if (pos >= buf.length) throw new RawFileError('raw file ends before its Variables section');
    const { line, next } = readLine(buf, pos);
    pos = next;
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].trim().toLowerCase();
    if (key === 'variables') break;
    fields.set(key, m[2].trim());
  }
  const nVars = Number(fields.get('no. variables'));
  const nPoints = Number(fields.get('no. points'));
  if (!Number.isInteger(nVars) || nVars < 1) throw new RawFileError(`raw file: bad 'No. Variables' (${fields.get('no. variables')})`);
  if (!Number.isInteger(nPoints) || nPoints < 0) throw new RawFileError(`raw file: bad 'No. Points' (${fields.get('no. points')})`);
  const flags = (fields.get('flags') ?? 'real').toLowerCase();
  if (flags.includes('complex')) throw new RawFileError('raw file holds a complex plot; only real plots (tran, dc) are supported');
  const names: string[] = [];
  for (let k = 0; k < nVars; k++) {
    const { line, next } = readLine(buf, pos);
    pos = next;
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2 || Number(parts[0]) !== k) throw new RawFileError(`raw file: variable line ${k} is malformed: '${line}'`);
    names.push(normaliseVectorName(parts[1]));
  }
  for (;;) {
    if (pos >= buf.length) throw new RawFileError('raw file has no Binary: or Values: section');
    const { line, next } = readLine(buf, pos);
    pos = next;
    const t = line.trim().toLowerCase();
    if (t === 'binary:') return { plotname: fields.get('plotname') ?? '', flags, nVars, nPoints, names, dataStart: pos, binary: true };
    if (t === 'values:') return { plotname: fields.get('plotname') ?? '', flags, nVars, nPoints, names, dataStart: pos, binary: false };
  }
}

/**
 * Parses the first plot of a raw file. A run cut short may leave fewer points than the header
 * announces; the complete points present are returned (callers check the range they needed).
 */
export function parseRawFile(buf: Uint8Array): SpiceVectors & { plotname: string } {
  const h = parseHeader(buf);
  const data = h.names.map(() => new Float64Array(h.nPoints));
  let points = 0;
  if (h.binary) {
    const avail = Math.floor((buf.length - h.dataStart) / (8 * h.nVars));
    points = Math.min(h.nPoints, avail);
    const view = new DataView(buf.buffer, buf.byteOffset + h.dataStart, points * 8 * h.nVars);
    for (let p = 0; p < points; p++) {
      for (let v = 0; v < h.nVars; v++) data[v][p] = view.getFloat64((p * h.nVars + v) * 8, true);
    }
  } else {
    const text = Buffer.from(buf.buffer, buf.byteOffset + h.dataStart, buf.length - h.dataStart).toString('latin1');
    const tokens = text.split(/\s+/).filter((s) => s !== '');
    let k = 0;
    for (; points < h.nPoints; points++) {
      if (k + 1 + h.nVars > tokens.length) break; // cut short
      const idx = tokens[k];
      if (!/^\d+$/.test(idx)) break; // the next plot's header
      if (Number(idx) !== points) throw new RawFileError(`raw file: point ${points} is labelled ${idx}`);
      for (let v = 0; v < h.nVars; v++) {
        const x = Number(tokens[k + 1 + v]);
        if (Number.isNaN(x)) throw new RawFileError(`raw file: value '${tokens[k + 1 + v]}' of point ${points} is not a number`);
        data[v][points] = x;
      }
      k += 1 + h.nVars;
    }
  }
  return {
    plotname: h.plotname,
    names: h.names,
    data: points === h.nPoints ? data : data.map((d) => d.slice(0, points)),
  };
}
