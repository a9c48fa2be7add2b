import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeArrays, encodeArrays, loadArrays, loadArraysSync, saveArrays, saveArraysSync, TensorFileError } from '../../../models/io/tensor-file.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spikeloop-tensor-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const concat = (chunks: Uint8Array[]) => new Uint8Array(Buffer.concat(chunks));

function sample() {
  return {
    meta: { name: 'layer-weights', version: 3, note: 'unit test', nested: { a: [1, 2] } },
    arrays: {
      w: { data: Float32Array.from([0.5, -1.25, 3e-8, 7, 8, 9]), shape: [2, 3] },
      bias: Float64Array.from([Math.PI, -0, 1e300]),
      codes: Uint16Array.from([0, 1, 0xffff]),
      odd: Uint8Array.from([1, 2, 3, 4, 5]),
      empty: new Float32Array(0),
      i32: Int32Array.from([-2147483648, 2147483647]),
    },
  };
}

describe('tensor-file round trip', () => {
  it('returns identical values, dtypes, shapes and metadata (file, async and sync)', async () => {
    const { meta, arrays } = sample();
    const p = join(dir, 'm.slt');
    await saveArrays(p, meta, arrays);
    for (const loaded of [await loadArrays(p), loadArraysSync(p)]) {
      expect(loaded.meta).toEqual(meta);
      expect(loaded.dtypes).toEqual({ w: 'float32', bias: 'float64', codes: 'uint16', odd: 'uint8', empty: 'float32', i32: 'int32' });
      expect(loaded.shapes).toEqual({ w: [2, 3], bias: [3], codes: [3], odd: [5], empty: [0], i32: [2] });
      expect(loaded.arrays.w).toBeInstanceOf(Float32Array);
      expect([...loaded.arrays.w!]).toEqual([...arrays.w.data]);
      expect(Object.is(loaded.arrays.bias![1], -0)).toBe(true);
      expect([...loaded.arrays.bias!]).toEqual([...arrays.bias]);
      expect([...loaded.arrays.codes!]).toEqual([0, 1, 0xffff]);
      expect([...loaded.arrays.odd!]).toEqual([1, 2, 3, 4, 5]);
      expect([...loaded.arrays.i32!]).toEqual([-2147483648, 2147483647]);
    }
    saveArraysSync(p, { name: 'x' }, { a: Float32Array.of(1) });
    expect(loadArraysSync(p).arrays.a![0]).toBe(1);
  });

  it('stores float32 little-endian at the offset the header names (independent byte check)', () => {
    const bytes = concat(encodeArrays({ name: 'n' }, { v: Float32Array.of(1.5) }));
    const dv = new DataView(bytes.buffer);
    const headerLen = dv.getUint32(12, true);
    const header = JSON.parse(Buffer.from(bytes.subarray(24, 24 + headerLen)).toString('utf8'));
    const dataStart = Math.ceil((24 + headerLen) / 8) * 8;
    // 1.5f = 0x3FC00000, little-endian: 00 00 C0 3F
    expect([...bytes.subarray(dataStart + header.arrays[0].offset, dataStart + header.arrays[0].offset + 4)]).toEqual([0, 0, 0xc0, 0x3f]);
  });

  it('property: any float32/float64/uint16 arrays round-trip bit-exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: false }), { maxLength: 40 }),
        fc.array(fc.double(), { maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }),
        (f, d, u) => {
          const arrays = { f: Float32Array.from(f), d: Float64Array.from(d), u: Uint16Array.from(u) };
          const got = decodeArrays(concat(encodeArrays({ name: 'p' }, arrays)));
          expect(new Uint8Array(got.arrays.f!.buffer, got.arrays.f!.byteOffset, got.arrays.f!.byteLength)).toEqual(new Uint8Array(arrays.f.buffer));
          expect([...got.arrays.d!]).toEqual([...arrays.d]);
          expect([...got.arrays.u!]).toEqual(u);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('tensor-file rejects bad input when saving', () => {
  it('shape that does not match the length', () => {
    expect(() => encodeArrays({ name: 'n' }, { w: { data: new Float32Array(5), shape: [2, 3] } })).toThrow(/shape \[2, 3\] but 5 elements/);
  });
  it('a plain array instead of a typed array', () => {
    expect(() => encodeArrays({ name: 'n' }, { w: [1, 2] as unknown as Float32Array })).toThrow(/"w" is not a supported typed array/);
  });
  it('missing name', () => {
    expect(() => encodeArrays({} as { name: string }, {})).toThrow(/meta.name/);
  });
});

describe('tensor-file detects damage with a clear message', () => {
  const good = () => concat(encodeArrays(sample().meta, sample().arrays));

  it('truncation anywhere is reported (property over the cut point)', () => {
    const bytes = good();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.byteLength - 1 }), (cut) => {
        expect(() => decodeArrays(bytes.subarray(0, cut), 'cut.slt')).toThrow(TensorFileError);
      }),
      { numRuns: 200 },
    );
    expect(() => decodeArrays(bytes.subarray(0, bytes.byteLength - 3), 'cut.slt')).toThrow(/cut\.slt: truncated/);
  });

  it('any single flipped bit is detected', () => {
    const bytes = good();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.byteLength * 8 - 1 }), (bit) => {
        const b = bytes.slice();
        b[bit >> 3]! ^= 1 << (bit & 7);
        // A flip inside the space padding after the header or the zero padding between blobs is
        // harmless and still decodes to the same arrays; everything else must throw.
        let decoded;
        try {
          decoded = decodeArrays(b, 'flip.slt');
        } catch (err) {
          expect(err).toBeInstanceOf(TensorFileError);
          return;
        }
        const ref = decodeArrays(bytes);
        for (const k of Object.keys(ref.arrays)) expect([...decoded.arrays[k]!]).toEqual([...ref.arrays[k]!]);
        expect(decoded.meta).toEqual(ref.meta);
      }),
      { numRuns: 300 },
    );
  });

  it('data CRC mismatch names the array', () => {
    const bytes = good();
    bytes[bytes.byteLength - 20]! ^= 0xff; // inside the last blob region
    expect(() => decodeArrays(bytes, 'x.slt')).toThrow(/x\.slt: array "\w+": data CRC mismatch/);
  });

  it('wrong magic says it is not a tensor file', () => {
    const bytes = good();
    bytes[1] = 0x50;
    expect(() => decodeArrays(bytes, 'x.slt')).toThrow(/not a spikeloop tensor file/);
  });

  it('a newer format version asks to upgrade', () => {
    const bytes = good();
    new DataView(bytes.buffer).setUint32(8, 99, true);
    expect(() => decodeArrays(bytes, 'x.slt')).toThrow(/version 99 is newer.*upgrade spikeloop/);
  });

  it('trailing garbage is reported', () => {
    const bytes = concat([good(), new Uint8Array(8)]);
    expect(() => decodeArrays(bytes, 'x.slt')).toThrow(/8 unexpected bytes/);
  });

  it('a forged header with an inconsistent byte length is rejected by name', () => {
    const json = JSON.stringify({
      format: 'spikeloop-tensors',
      meta: { name: 'n' },
      arrays: [{ name: 'w', dtype: 'float32', shape: [3], offset: 0, byteLength: 8, crc32: 0 }],
      dataBytes: 8,
    });
    const hb = Buffer.from(json);
    const start = Math.ceil((24 + hb.byteLength) / 8) * 8;
    const bytes = new Uint8Array(start + 8).fill(0x20);
    bytes.set([0x89, 0x53, 0x4c, 0x54, 0x0d, 0x0a, 0x1a, 0x0a]);
    const dv = new DataView(bytes.buffer);
    dv.setUint32(8, 1, true);
    dv.setUint32(12, hb.byteLength, true);
    bytes.set(hb, 24);
    // A correct header CRC, so that the shape check is what fails.
    dv.setUint32(16, crc32(hb), true);
    expect(() => decodeArrays(bytes, 'forged.slt')).toThrow(/array "w": shape \[3\] of float32 needs 12 bytes but the header says 8/);
  });

  it('loadArrays names the file path in the error', async () => {
    const p = join(dir, 'broken.slt');
    writeFileSync(p, 'hello, I am text');
    await expect(loadArrays(p)).rejects.toThrow(p);
    const ok = join(dir, 'ok.slt');
    await saveArrays(ok, { name: 'n' }, { a: Float32Array.of(1, 2) });
    writeFileSync(ok, readFileSync(ok).subarray(0, 30));
    await expect(loadArrays(ok)).rejects.toThrow(/ok\.slt: truncated/);
  });
});
