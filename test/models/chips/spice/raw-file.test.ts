import { describe, expect, it } from 'vitest';
import { normaliseVectorName, parseRawFile, RawFileError } from '../../../../models/chips/spice/raw-file.ts';

/** A raw file written the way ngspice lays it out, from known values (the independent reference). */
function rawFile(names: string[], points: number[][], binary: boolean, header: Partial<Record<string, string>> = {}): Uint8Array {
  const lines = [
    'Title: test circuit',
    'Date: Thu Jan  1 00:00:00  2026',
    `Plotname: ${header.plotname ?? 'Transient Analysis'}`,
    `Flags: ${header.flags ?? 'real'}`,
    `No. Variables: ${names.length}`,
    `No. Points: ${header.points ?? points.length}`,
    'Variables:',
    ...names.map((n, k) => `\t${k}\t${n}\t${k === 0 ? 'time' : 'voltage'}`),
  ];
  if (!binary) {
    const body = points
      .map(
        (p, k) =>
          `${k}\t${p[0].toExponential(15)}\n${p
            .slice(1)
            .map((x) => `\t${x.toExponential(15)}`)
            .join('\n')}`,
      )
      .join('\n');
    return Buffer.from(`${lines.join('\n')}\nValues:\n${body}\n`, 'latin1');
  }
  const head = Buffer.from(`${lines.join('\n')}\nBinary:\n`, 'latin1');
  const data = Buffer.alloc(points.length * names.length * 8);
  points.forEach((p, k) => p.forEach((x, v) => data.writeDoubleLE(x, (k * names.length + v) * 8)));
  return Buffer.concat([head, data]);
}

const names = ['time', 'v(out)', 'V1#branch'];
const points = [
  [0, 0.001, -1e-12],
  [1e-9, 0.5, -2.5e-9],
  [2.5e-9, 1.7999999999, 3.14159e-6],
];

describe('ngspice raw files', () => {
  for (const binary of [true, false]) {
    it(`reads a ${binary ? 'binary' : 'ASCII'} real plot exactly, normalising branch names`, () => {
      const r = parseRawFile(rawFile(names, points, binary));
      expect(r.plotname).toBe('Transient Analysis');
      expect(r.names).toEqual(['time', 'v(out)', 'i(v1)']);
      for (let v = 0; v < names.length; v++) expect(Array.from(r.data[v])).toEqual(points.map((p) => p[v]));
    });
  }

  it('keeps the complete points of a run cut short (binary)', () => {
    const full = rawFile(names, points, true, { points: '5' });
    const r = parseRawFile(full.subarray(0, full.length - 8)); // last point incomplete too
    expect(r.data[0].length).toBe(2);
    expect(Array.from(r.data[1])).toEqual([0.001, 0.5]);
  });

  it('rejects complex plots and malformed headers with a named problem', () => {
    expect(() => parseRawFile(rawFile(names, points, true, { flags: 'complex' }))).toThrow(/complex/);
    expect(() => parseRawFile(Buffer.from('Title: x\nNo. Variables: 2\n'))).toThrow(RawFileError);
    expect(() => parseRawFile(rawFile(names, points, true, { points: 'many' }))).toThrow(/No. Points/);
  });

  it('normalises vector names the way both engines report them', () => {
    expect(normaliseVectorName('Vm#branch')).toBe('i(vm)');
    expect(normaliseVectorName('v-sweep')).toBe('v(v-sweep)');
    expect(normaliseVectorName('V(OUT)')).toBe('v(out)');
  });
});
