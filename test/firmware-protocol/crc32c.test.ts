import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { crc32c, crc32cTable } from '../../firmware-protocol/crc32c.ts';

const ascii = (s: string) => new TextEncoder().encode(s);

/** Independent reference: bit by bit, straight from the definition. */
function crc32cBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('CRC-32C', () => {
  it('has the catalogued check value for "123456789"', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
  });

  // RFC 3720 (iSCSI), appendix B.4
  it.each([
    ['32 zero bytes', new Uint8Array(32), 0x8a9136aa],
    ['32 bytes of 0xff', new Uint8Array(32).fill(0xff), 0x62a8ab43],
    ['32 incrementing bytes', Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    ['32 decrementing bytes', Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    [
      'an iSCSI SCSI Read (10) command PDU',
      Uint8Array.from([
        0x01, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x14, 0, 0, 0, 0x18, 0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0,
        0, 0, 0, 0, 0,
      ]),
      0xd9963a56,
    ],
  ])('matches RFC 3720 for %s', (_n, data, want) => {
    expect(crc32c(data)).toBe(want);
  });

  it('is 0 for no data and has the published first table entries', () => {
    expect(crc32c(new Uint8Array())).toBe(0);
    const t = crc32cTable();
    expect(t[1]).toBe(0xf26b8303);
    expect(t[128]).toBe(0x82f63b78);
  });

  it('equals the bitwise definition on random data of every alignment', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (d) => crc32c(d) === crc32cBitwise(d)));
  });

  it('is incremental: crc(b, crc(a)) = crc(a ++ b)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        return crc32c(b, crc32c(a)) === crc32c(ab);
      }),
    );
  });
});
