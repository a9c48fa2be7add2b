/**
 * Protocol 2's packed encodings: varints, spike records (RUN_PACKED) and weight patches
 * (WEIGHTS_PATCH). Round trips on random data, the encoder's choice of the smallest form,
 * the refusal of malformed bytes, and the byte targets of issue 28 measured on encoded frames.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteReader,
  ByteWriter,
  decodePatch,
  decodeRecords,
  encodePatch,
  encodeRecords,
  encodeRequest,
  maxPatchDataBytes,
  maxRecordBytes,
  maxWireBytes,
  recordSize,
  ProtocolError,
  varintBytes,
  weightsPatchPayloadBytes,
  maxCodesPerChunk,
  weightsWritePayloadBytes,
  runPackedResponseMaxBytes,
  maxPackedBatchFor,
} from '../../firmware-protocol/index.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

/** Sample-major ticks where each line is active with probability `p`. */
const ticksArb = fc
  .record({ batch: fc.integer({ min: 1, max: 6 }), width: fc.integer({ min: 1, max: 300 }), p: fc.double({ min: 0, max: 1, noNaN: true }), seed: fc.integer() })
  .chain(({ batch, width, p }) =>
    fc
      .array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.oneof(fc.integer({ min: 0, max: 126 }), fc.integer({ min: 0, max: 0xfffe }))), {
        minLength: batch * width,
        maxLength: batch * width,
      })
      .map((cells) => ({ batch, width, t: Uint16Array.from(cells, ([u, tick]) => (u < p ? tick : SILENT_TICK)) })),
  );

describe('varints', () => {
  it('round-trip every u32 in the shortest form', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 50 }), (vs) => {
        const w = new ByteWriter();
        for (const v of vs) w.varint(v);
        const b = w.finish();
        expect(b.length).toBe(vs.reduce((s, v) => s + varintBytes(v), 0));
        const r = new ByteReader(b, 'x');
        expect(vs.map(() => r.varint())).toEqual(vs);
        expect(r.done).toBe(true);
      }),
    );
  });
  it.each([
    ['cut off', [0x80]],
    ['redundant zero group', [0x81, 0x00]],
    ['beyond 32 bits', [0xff, 0xff, 0xff, 0xff, 0x1f]],
    ['longer than 5 bytes', [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ])('refuses a varint %s', (_n, bytes) => {
    expect(() => new ByteReader(Uint8Array.from(bytes), 'f').varint()).toThrow(ProtocolError);
  });
});

describe('spike records', () => {
  it('round-trip random batches, each record in its smallest form', () => {
    fc.assert(
      fc.property(ticksArb, ({ batch, width, t }) => {
        const b = encodeRecords(t, batch, width);
        expect(decodeRecords(b, batch, width, 'r')).toEqual(t);
        let want = 0;
        for (let s = 0; s < batch; s++) want += recordSize(t, s * width, width).bytes;
        expect(b.length).toBe(want);
        expect(b.length).toBeLessThanOrEqual(batch * maxRecordBytes(width));
      }),
      { numRuns: 200 },
    );
  });

  it('round-trip random batches with PACKED records allowed, never larger than without', () => {
    fc.assert(
      fc.property(ticksArb, ({ batch, width, t }) => {
        const b = encodeRecords(t, batch, width, true);
        expect(decodeRecords(b, batch, width, 'r')).toEqual(t);
        expect(b.length).toBeLessThanOrEqual(encodeRecords(t, batch, width).length);
      }),
      { numRuns: 200 },
    );
  });

  it('packs every line firing within a narrow spread in a few bits, and a board without the feature refuses it', () => {
    const w = 256;
    const t = Uint16Array.from({ length: w }, (_, j) => 300 + ((j * 37) % 60));
    t[5] = SILENT_TICK;
    const r = recordSize(t, 0, w, true);
    expect(r).toMatchObject({ mode: 3, bits: 6, base: 300 });
    expect(r.bytes).toBe(1 + 2 + (w * 6) / 8);
    expect(recordSize(t, 0, w).bytes).toBe(1 + 2 * 255 + 1);
    const b = encodeRecords(t, 1, w, true);
    expect(decodeRecords(b, 1, w, 'r')).toEqual(t);
    expect(() => decodeRecords(b, 1, w, 'r', false)).toThrow(/PACKED\) needs the bit-packed feature/);
  });

  it('picks sparse for few active lines, dense varint for many small ticks, dense u16 for many large ticks', () => {
    const w = 100;
    const few = new Uint16Array(w).fill(SILENT_TICK);
    few[7] = 1000;
    expect(recordSize(few, 0, w)).toMatchObject({ bytes: 1 + 1 + 2, mode: 0 });
    const small = Uint16Array.from({ length: w }, (_, j) => j % 100);
    expect(recordSize(small, 0, w).mode).toBe(1);
    const large = Uint16Array.from({ length: w }, () => 40000);
    expect(recordSize(large, 0, w)).toMatchObject({ bytes: 1 + 2 * w, mode: 2 });
    expect(recordSize(new Uint16Array(w).fill(SILENT_TICK), 0, w)).toMatchObject({ bytes: 1, mode: 0 });
  });

  it.each([
    ['a line past the width', [0x04, 0x05, 0x01], 1, 4],
    ['a listed line with the silent tick', [0x04, 0x00, 0xff, 0xff, 0x03], 1, 4],
    ['reserved mode 3', [0x03], 1, 4],
    ['a dense head with a count', [0x05, 0, 0, 0, 0], 1, 4],
    ['fewer records than the batch', [0x00], 2, 4],
    ['bytes after the last record', [0x00, 0x00], 1, 4],
    ['a dense u16 record cut short', [0x02, 0x01, 0x00], 1, 4],
  ])('refuses %s', (_n, bytes, batch, width) => {
    expect(() => decodeRecords(Uint8Array.from(bytes), batch, width, 'RUN_PACKED.inputs')).toThrow(/RUN_PACKED\.inputs: /);
  });

  it('a single-synapse probe on 784 inputs costs at most 16 wire bytes per sample (request; and its worst-case reply for one layer)', () => {
    // target of issue 28: measured on the encoded frame, 32 probes per RUN_PACKED
    const batch = 32;
    const t = new Uint16Array(batch * 784).fill(SILENT_TICK);
    for (let s = 0; s < batch; s++) t[s * 784 + ((s * 97) % 784)] = 1999;
    const wire = encodeRequest('RUN_PACKED', 1, { batch, inputs: encodeRecords(t, batch, 784), layers: Uint8Array.of(0) }, { version: 2 });
    expect(wire.length / batch).toBeLessThanOrEqual(16);
    // one sample alone, frame overhead included
    const one = encodeRequest('RUN_PACKED', 1, { batch: 1, inputs: encodeRecords(t.subarray(0, 784), 1, 784), layers: Uint8Array.of(0) }, { version: 2 });
    expect(one.length).toBeLessThan(50);
  });

  it('sizes the worst-case reply so a device can refuse before running', () => {
    const outs = [256, 128, 10];
    const b = maxPackedBatchFor(16384, outs);
    expect(runPackedResponseMaxBytes(b, outs)).toBeLessThanOrEqual(16384);
    expect(runPackedResponseMaxBytes(b + 1, outs)).toBeGreaterThan(16384);
    const t = outs.map((o) => new Uint16Array(b * o).fill(40000)); // every neuron fires, at large ticks: the dense u16 form
    const wire = encodeRequest('RUN_PACKED', 1, { batch: b, inputs: Uint8Array.of(0) }, { version: 2 });
    expect(wire.length).toBeGreaterThan(0);
    const spikes = t.map((x, l) => encodeRecords(x, b, outs[l]!));
    expect(spikes.reduce((s, x) => s + x.length, 0)).toBe(b * outs.reduce((s, o) => s + 1 + 2 * o, 0));
  });
});

/** Index of the first cell where a and b differ, -1 when equal (toEqual is slow on 400k-element arrays). */
function firstDifference(a: Uint16Array, b: Uint16Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Applies patch frames to a copy of `prev`. */
function apply(prev: Uint16Array, frames: { offset: number; data: Uint8Array; count: number; end: number }[], bits: number): Uint16Array {
  const out = prev.slice();
  for (const f of frames) {
    const { cells, codes } = decodePatch(f.data, f.offset, bits, 'WEIGHTS_PATCH.data');
    if (cells.length !== f.count) throw new Error(`frame at ${f.offset}: ${cells.length} cells, says ${f.count}`);
    for (let k = 0; k < cells.length; k++) {
      const c = cells[k]!;
      if (c < f.offset || c >= f.end || (k > 0 && c <= cells[k - 1]!)) throw new Error(`frame at ${f.offset}..${f.end}: cell ${c} out of order or span`);
      out[c] = codes[k]!;
    }
  }
  return out;
}

const changesArb = fc
  .record({
    bits: fc.integer({ min: 12, max: 16 }),
    n: fc.integer({ min: 1, max: 3000 }),
    p: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.01, noNaN: true })),
    runs: fc.boolean(),
    maxData: fc.integer({ min: 8, max: 3000 }),
  })
  .chain(({ bits, n, p, runs, maxData }) =>
    fc
      .tuple(
        fc.array(fc.integer({ min: 0, max: 4095 }), { minLength: n, maxLength: n }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: n, maxLength: n }),
      )
      .map(([codes, u]) => {
        const prev = Uint16Array.from(codes);
        const next = prev.slice();
        let on = false;
        for (let i = 0; i < n; i++) {
          // runs: changes come in stretches (rows of a layer), otherwise independently
          on = runs ? (u[i]! < 0.05 ? !on : on) : u[i]! < p;
          if (on && (!runs || u[i]! < 0.9)) next[i] = (prev[i]! + 1 + (i % 7)) & 0xfff;
        }
        return { prev, next, maxData, bits };
      }),
  );

describe('weight patches', () => {
  it('turn prev into next, every frame within its data budget, touching only its span', () => {
    fc.assert(
      fc.property(changesArb, ({ prev, next, maxData, bits }) => {
        const frames = encodePatch(prev, next, maxData, bits);
        for (const f of frames) expect(f.data.length).toBeLessThanOrEqual(maxData);
        expect(firstDifference(apply(prev, frames, bits), next)).toBe(-1);
        if (prev.every((c, i) => c === next[i])) expect(frames).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it.each([1 / 16384, 1e-3, 0.01, 0.05, 0.2, 0.5, 0.9, 1])(
    'a changed-only upload, %f of a 784 x 256 layer changed, costs at most min(full upload, 4 bytes per changed code + frame overhead) on the wire',
    (fraction) => {
      // The host sends the patch or, when that is not smaller, the full upload (ChipDevice.uploadChanged).
      const size = 784 * 2 * 256;
      const maxPayload = 16384;
      const chunk = maxCodesPerChunk(maxPayload);
      let full = 0;
      for (let off = 0; off < size; off += chunk) full += maxWireBytes(weightsWritePayloadBytes(Math.min(chunk, size - off), 0, off));
      let a = Math.round(fraction * 1e6);
      const rnd = () => (a = (Math.imul(a, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      const prev = Uint16Array.from({ length: size }, () => Math.floor(rnd() * 1024));
      const next = prev.slice();
      let changed = 0;
      for (let i = 0; i < size; i++) {
        if (rnd() < fraction) {
          next[i] = (prev[i]! + 1) % 1024;
          changed++;
        }
      }
      const frames = encodePatch(prev, next, maxPatchDataBytes(maxPayload), 10);
      expect(firstDifference(apply(prev, frames, 10), next)).toBe(-1);
      let patch = 0;
      let overhead = 0;
      for (const f of frames) {
        patch += maxWireBytes(weightsPatchPayloadBytes(f.data.length, 0, f.offset));
        overhead += maxWireBytes(weightsPatchPayloadBytes(0, 0, f.offset));
      }
      const sent = Math.min(patch, full);
      expect(sent).toBeLessThanOrEqual(Math.min(full, 4 * changed + overhead));
      if (fraction <= 0.05) expect(patch).toBeLessThan(full);
    },
  );

  it.each([
    ['a segment with no cells', [0x00]],
    ['a sparse entry cut short', [0x02, 0x80]],
    ['a dense run cut short', [0x05, 0x00, 0x01, 0x00, 0x02]],
  ])('refuses %s', (_n, bytes) => {
    expect(() => decodePatch(Uint8Array.from(bytes), 0, 10, 'WEIGHTS_PATCH.data')).toThrow(/WEIGHTS_PATCH\.data: /);
  });

  it('bridges a gap longer than one sparse entry carries (16-bit codes) by re-sending an unchanged cell', () => {
    const prev = new Uint16Array(200_000).fill(7);
    const next = prev.slice();
    next[3] = 9;
    next[150_000] = 9;
    const frames = encodePatch(prev, next, 1000, 16);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.count).toBe(4); // 3, 3 + 65536, 3 + 2 x 65536, 150000
    expect(firstDifference(apply(prev, frames, 16), next)).toBe(-1);
  });
});
