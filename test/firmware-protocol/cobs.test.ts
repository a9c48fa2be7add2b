import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cobsDecode, cobsEncode, cobsMaxEncodedLength } from '../../firmware-protocol/cobs.ts';
import { ProtocolError } from '../../firmware-protocol/errors.ts';

const h = (s: string) =>
  Uint8Array.from(
    s
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((x) => parseInt(x, 16)),
  );
const range = (a: number, b: number) => Uint8Array.from({ length: b - a + 1 }, (_, i) => a + i);
const cat = (...p: Uint8Array[]) => Uint8Array.from(p.flatMap((x) => [...x]));

// The published examples of the COBS article on Wikipedia (encoded form shown without the 0x00 delimiter).
const vectors: [string, Uint8Array, Uint8Array][] = [
  ['1: one zero', h('00'), h('01 01')],
  ['2: two zeros', h('00 00'), h('01 01 01')],
  ['3', h('00 11 00'), h('01 02 11 01')],
  ['4', h('11 22 00 33'), h('03 11 22 02 33')],
  ['5', h('11 22 33 44'), h('05 11 22 33 44')],
  ['6', h('11 00 00 00'), h('02 11 01 01 01')],
  ['7: 01..FE', range(1, 254), cat(h('FF'), range(1, 254))],
  ['8: 00..FE', range(0, 254), cat(h('01 FF'), range(1, 254))],
  ['9: 01..FF', range(1, 255), cat(h('FF'), range(1, 254), h('02 FF'))],
  ['10: 02..FF 00', cat(range(2, 255), h('00')), cat(h('FF'), range(2, 255), h('01 01'))],
  ['11: 03..FF 00 01', cat(range(3, 255), h('00 01')), cat(h('FE'), range(3, 255), h('02 01'))],
];

describe('COBS', () => {
  it.each(vectors)('published example %s', (_name, raw, enc) => {
    expect(cobsEncode(raw)).toEqual(enc);
    expect(cobsDecode(enc)).toEqual(raw);
  });

  it('encodes the empty string as 01', () => {
    expect(cobsEncode(new Uint8Array())).toEqual(h('01'));
    expect(cobsDecode(h('01'))).toEqual(new Uint8Array());
  });

  it('round-trips any bytes, emits no zero and stays within the overhead bound', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (raw) => {
        const enc = cobsEncode(raw);
        expect(enc.includes(0)).toBe(false);
        expect(enc.length).toBeLessThanOrEqual(cobsMaxEncodedLength(raw.length));
        expect(enc.length).toBeLessThanOrEqual(raw.length + Math.ceil(raw.length / 254) + 1);
        expect(cobsDecode(enc)).toEqual(raw);
      }),
    );
  });

  it('has exactly one byte of overhead per started 254-byte run of non-zero data', () => {
    const raw = new Uint8Array(1000).fill(7);
    expect(cobsEncode(raw).length).toBe(1000 + Math.ceil(1000 / 254));
  });

  it('accepts the non-canonical empty block after a final full block', () => {
    expect(cobsDecode(cat(h('FF'), range(1, 254), h('01')))).toEqual(range(1, 254));
  });

  it.each([
    ['empty input', h('')],
    ['zero code byte', h('00 11')],
    ['zero data byte', h('03 11 00')],
    ['block past the end', h('05 11 22')],
    ['block past the end after a zero', h('02 11 04 22')],
  ])('refuses %s with a framing error', (_name, bad) => {
    let err: unknown;
    try {
      cobsDecode(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('framing');
  });
});
