/**
 * WEIGHTS_EDIT data (PROTOCOL.md 10.15): FILL runs and STEP entries. Random round trips against
 * an independent reference (apply the decoded cells to a copy of the memory: it must equal `next`),
 * idempotence (a frame applied twice, as after a retry whose first attempt landed), the encoder's
 * costs against WEIGHTS_PATCH for the two loads it is for, and the refusal of malformed data.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError, decodeEdit, editDataBytes, encodeEdit, encodeFills, encodePatch, nearCode, stepCode } from '../../firmware-protocol/index.ts';

const BITS = 10;
const MAX = 2 ** BITS - 1;

function apply(memory: Uint16Array, data: Uint8Array, offset: number): { written: number; pastEnd?: number } {
  const d = decodeEdit(data, offset, memory, 'test');
  if (d.pastEnd === undefined) for (let k = 0; k < d.cells.length; k++) memory[d.cells[k]!] = d.codes[k]!;
  return { written: d.cells.length, pastEnd: d.pastEnd };
}

/** prev and next of one layer: unchanged cells, small steps, runs of one code and arbitrary new codes. */
const editArb = fc
  .record({ n: fc.integer({ min: 1, max: 600 }), seed: fc.integer() })
  .chain(({ n }) =>
    fc.tuple(
      fc.array(fc.integer({ min: 1, max: MAX - 2 }), { minLength: n, maxLength: n }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: MAX }), fc.integer({ min: 1, max: 30 })), { minLength: n, maxLength: n }),
    ),
  )
  .map(([base, ops]) => {
    const prev = Uint16Array.from(base);
    const next = prev.slice();
    for (let i = 0; i < next.length; i++) {
      const [kind, code, len] = ops[i]!;
      if (kind <= 3) continue; // unchanged
      if (kind === 4) next[i] = prev[i]! - 1;
      else if (kind === 5) next[i] = prev[i]! + 1;
      else if (kind === 6) next[i] = prev[i]! + 2;
      else if (kind === 7) next[i] = code;
      else if (kind === 8) next.fill(code, i, Math.min(next.length, i + len));
      else for (let k = i; k < Math.min(next.length, i + len); k++) next[k] = Math.max(0, Math.min(MAX, prev[k]! + (code % 16) - 8));
    }
    return { prev, next };
  });

describe('weight edits (FILL and STEP)', () => {
  it('STEP names the code within -1..+2 of the old one by its low two bits', () => {
    for (let old = 1; old < 200; old++) for (const d of [-1, 0, 1, 2]) expect(stepCode(old, (old + d) & 3)).toBe(old + d);
  });

  it('turn prev into next, every frame within its data budget, writing no cell outside its span', () => {
    fc.assert(
      fc.property(editArb, fc.integer({ min: 16, max: 300 }), ({ prev, next }, maxData) => {
        const frames = encodeEdit(prev, next, maxData);
        const mem = prev.slice();
        let last = -1;
        for (const f of frames) {
          expect(f.data.length).toBeLessThanOrEqual(maxData);
          expect(f.offset).toBeGreaterThan(last);
          const d = decodeEdit(f.data, f.offset, mem, 'test');
          expect(d.pastEnd).toBeUndefined();
          expect(d.cells.length).toBe(f.count);
          for (const c of d.cells) {
            expect(c).toBeGreaterThanOrEqual(f.offset);
            expect(c).toBeLessThan(f.end);
          }
          apply(mem, f.data, f.offset);
          last = f.end - 1;
        }
        expect(Array.from(mem)).toEqual(Array.from(next));
        const oneStream = frames.reduce((s, f) => s + f.data.length, 0);
        if (frames.length === 1) expect(oneStream).toBe(editDataBytes(prev, next));
      }),
      { numRuns: 300 },
    );
  });

  it('starts a new frame for a one-cell NEAR tail that no longer fits (a random run found it writing n = -2)', () => {
    const prev = new Uint16Array(65).fill(1);
    prev[32] = prev[37] = 121;
    prev[60] = 122;
    const next = Uint16Array.from([
      1, 1, 1, 0, 128, 0, 1, 4, 1, 1, 1, 128, 128, 128, 0, 128, 4, 5, 5, 5, 4, 4, 4, 0, 4, 4, 4, 8, 8, 0, 8, 8, 128, 8, 8, 0, 8, 128, 0, 128, 128, 128, 0, 128,
      128, 0, 0, 128, 128, 129, 129, 0, 129, 0, 129, 129, 0, 7, 128, 128, 128, 7, 7, 7, 7,
    ]);
    const frames = encodeEdit(prev, next, 90);
    const mem = prev.slice();
    for (const f of frames) {
      expect(f.data.length).toBeLessThanOrEqual(90);
      apply(mem, f.data, f.offset);
    }
    expect(Array.from(mem)).toEqual(Array.from(next));
  });

  it('is idempotent: a frame applied twice leaves the memory as applied once', () => {
    fc.assert(
      fc.property(editArb, ({ prev, next }) => {
        const mem = prev.slice();
        for (const f of encodeEdit(prev, next, 64)) {
          apply(mem, f.data, f.offset);
          apply(mem, f.data, f.offset);
        }
        expect(Array.from(mem)).toEqual(Array.from(next));
      }),
      { numRuns: 200 },
    );
  });

  it('fine-tuning steps cost about a byte per changed cell: about half of WEIGHTS_PATCH at 1 in 5 and 1 in 20 changed', () => {
    // A 784 x 256 dual-rail layer, some cells one step up or down (a fine-tuning batch), at random places.
    const n = 1568 * 256;
    const prev = new Uint16Array(n).map((_, i) => 300 + (i % 400));
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (const [every, ratio] of [
      [5, 0.55],
      [20, 0.55],
    ] as const) {
      const next = prev.slice();
      let changed = 0;
      for (let i = 0; i < n; i++) {
        if (rand() * every >= 1) continue;
        next[i] = prev[i]! + (rand() < 0.5 ? 1 : -1);
        changed++;
      }
      const edit = encodeEdit(prev, next, 16_000).reduce((s, f) => s + f.data.length, 0);
      const patch = encodePatch(prev, next, 16_000, BITS).reduce((s, f) => s + f.data.length, 0);
      expect(edit).toBeLessThan(1.3 * changed); // a gap of 32 or more takes a second byte
      expect(edit).toBeLessThan(ratio * patch);
    }
  });

  it('a probe configuration (each polarity at one code per row) costs a few bytes per row, not two per cell', () => {
    const rows = 1568;
    const outs = 256;
    const prev = new Uint16Array(rows * outs).map((_, i) => 200 + ((i * 7) % 300));
    const next = new Uint16Array(rows * outs).map((_, i) => (Math.floor(i / outs) % 2 ? 900 : 450));
    const frames = encodeEdit(prev, next, 16_000);
    const bytes = frames.reduce((s, f) => s + f.data.length, 0);
    expect(bytes).toBeLessThanOrEqual(6 * rows);
    expect(frames.reduce((s, f) => s + f.count, 0)).toBe(rows * outs); // unchanged cells inside a run are re-written
    const mem = prev.slice();
    for (const f of frames) apply(mem, f.data, f.offset);
    expect(Array.from(mem)).toEqual(Array.from(next));
  });

  it('NEAR names codes within -8..+7 by their low nibble: the first Adam steps (a third of a layer moved by 3-5) at about half a byte per cell', () => {
    for (let old = 8; old < 300; old++) for (let d = -8; d <= 7; d++) expect(nearCode(old, (old + d) & 15)).toBe(old + d);
    const n = 1568 * 256;
    const prev = new Uint16Array(n).map((_, i) => 300 + (i % 400));
    let seed = 99;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const next = prev.map((c) => (rand() < 0.4 ? c - 3 - Math.floor(rand() * 3) : c));
    const frames = encodeEdit(prev, next, 16_000);
    const bytes = frames.reduce((s, f) => s + f.data.length, 0);
    expect(bytes).toBeLessThan(0.53 * n);
    const patch = encodePatch(prev, next, 16_000, BITS).reduce((s, f) => s + f.data.length, 0);
    expect(bytes).toBeLessThan(0.6 * patch);
    const mem = prev.slice();
    for (const f of frames) {
      apply(mem, f.data, f.offset);
      apply(mem, f.data, f.offset); // and again: idempotent
    }
    expect(Array.from(mem)).toEqual(Array.from(next));
  });

  it('FILL-only frames write every cell whatever the memory held (a full upload of unknown content)', () => {
    fc.assert(
      fc.property(editArb, fc.integer({ min: 16, max: 200 }), ({ prev, next }, maxData) => {
        const frames = encodeFills(next, maxData);
        const mem = prev.slice(); // any content: FILL never reads it
        for (const f of frames) {
          expect(f.data.length).toBeLessThanOrEqual(maxData);
          apply(mem, f.data, f.offset);
        }
        expect(Array.from(mem)).toEqual(Array.from(next));
        expect(frames.reduce((s, f) => s + f.count, 0)).toBe(next.length);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a reserved mode, a segment without cells and cut-off data, and reports a cell past the end', () => {
    const mem = new Uint16Array(100).fill(5);
    const bad = (data: number[]) => () => decodeEdit(Uint8Array.from(data), 0, mem, 'WEIGHTS_EDIT.data');
    const withoutPacked = (data: number[]) => () => decodeEdit(Uint8Array.from(data), 0, mem, 'WEIGHTS_EDIT.data', false);
    expect(withoutPacked([(1 << 2) | 3, 0, 1, 0, 1, 0])).toThrow(ProtocolError);
    expect(withoutPacked([(1 << 2) | 3, 0, 1, 0, 1, 0])).toThrow(/PACKED\) needs the bit-packed feature/);
    expect(bad([(1 << 2) | 3, 0])).toThrow(/cut off/);
    expect(bad([(1 << 2) | 3, 0, 17, 0, 1, 0])).toThrow(/17 bits per cell/);
    expect(bad([(1 << 2) | 3, 0, 1, 0, 0, 0])).toThrow(/step 0/);
    expect(bad([(3 << 2) | 2, 0, 0x21])).toThrow(/cut off/); // NEAR of 3 cells needs 2 bytes
    expect(bad([0 | 1, 0])).toThrow(/no cells/);
    expect(bad([(2 << 2) | 1, 0])).toThrow(/cut off/);
    expect(bad([(1 << 2) | 0, 0])).toThrow(/cut off/);
    expect(decodeEdit(Uint8Array.of(3 << 2, 98, 7), 0, mem, 'x').pastEnd).toBe(100);
    expect(decodeEdit(Uint8Array.of((1 << 2) | 1, 0x90, 0x03), 0, mem, 'x').pastEnd).toBe(100); // STEP at gap 100
  });
});

describe('PACKED segments (feature bit-packed)', () => {
  /** A layer's codes: runs of one code, alternating pairs, and codes spread over a window, in random stretches. */
  const fullArb = fc
    .array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 400 }), fc.integer({ min: 0, max: MAX }), fc.integer({ min: 0, max: MAX })), {
      minLength: 1,
      maxLength: 8,
    })
    .map((parts) => {
      const out: number[] = [];
      let r = 1;
      for (const [kind, len, a, b] of parts) {
        for (let k = 0; k < len; k++) {
          r = (r * 1103515245 + 12345) >>> 0;
          out.push(kind === 0 ? a : kind === 1 ? (k % 2 ? a : b) : Math.min(a, b) + (r % (Math.abs(a - b) + 1)));
        }
      }
      return Uint16Array.from(out);
    });

  it('write every cell of any layer (decoded against a memory of other codes), whatever the frame size', () => {
    fc.assert(
      fc.property(fullArb, fc.integer({ min: 16, max: 700 }), (next, maxData) => {
        const mem = new Uint16Array(next.length).fill(MAX);
        const frames = encodeFills(next, maxData, true);
        for (const f of frames) {
          expect(f.data.length).toBeLessThanOrEqual(maxData);
          apply(mem, f.data, f.offset);
        }
        expect(Array.from(mem)).toEqual(Array.from(next));
        // never more than FILL runs alone
        const fillsOnly = encodeFills(next, maxData).reduce((s, f) => s + f.data.length, 0);
        expect(frames.reduce((s, f) => s + f.data.length, 0)).toBeLessThanOrEqual(fillsOnly + 8 * frames.length);
      }),
      { numRuns: 200 },
    );
  });

  it('carry a checkerboard in about 1 bit a cell and a random pattern over a 10-bit window in about 10', () => {
    const n = 256 * 64;
    const board = Uint16Array.from({ length: n }, (_, i) => ((Math.floor(i / 256) + i) % 2 ? 568 : 0));
    let r = 7;
    const random = Uint16Array.from({ length: n }, () => {
      r = (r * 1103515245 + 12345) >>> 0;
      return r % 569;
    });
    const bytes = (c: Uint16Array) => encodeFills(c, 16000, true).reduce((s, f) => s + f.data.length, 0);
    expect(bytes(board)).toBeLessThan((n / 8) * 1.3);
    expect(bytes(random)).toBeLessThan(((n * 10) / 8) * 1.05);
    expect(bytes(random)).toBeLessThan(encodeFills(random, 16000).reduce((s, f) => s + f.data.length, 0) / 2.5);
  });

  it('decode a hand-made segment: 5 cells from 3, base 100, step 10, 3 bits', () => {
    const mem = new Uint16Array(10);
    // head (5 << 2 | 3), gap 3, bits 3, base 100, step 10, values 0 1 2 7 5 (LSB first: 000 001 010 111 101)
    const v = [0, 1, 2, 7, 5];
    let word = 0;
    v.forEach((x, k) => (word |= x << (3 * k)));
    const data = Uint8Array.of((5 << 2) | 3, 3, 3, 100, 10, word & 0xff, (word >> 8) & 0xff);
    apply(mem, data, 0);
    expect(Array.from(mem)).toEqual([0, 0, 0, 100, 110, 120, 170, 150, 0, 0]);
  });
});
