/**
 * Packed spike records of protocol 2 (PROTOCOL.md section 2.1): one record per sample gives
 * the spike tick of each of `width` lines (inputs of layer 0 in a RUN_PACKED request, outputs
 * of a layer in its reply). Three forms; the encoder writes the smallest (ties: the lower mode):
 *
 *   head = varint(n << 2 | mode)
 *   mode 0 SPARSE:       n entries of varint(gap) varint(tick); line = previous line + 1 + gap
 *                        (the first: gap); lines not listed are silent; tick < 0xFFFF
 *   mode 1 DENSE_VARINT: n = 0, then `width` varints: 0 = silent, v = tick v - 1
 *   mode 2 DENSE_U16:    n = 0, then `width` u16 LE ticks, 0xFFFF = silent
 *   mode 3 PACKED:       n = bits (1..16), then varint(base) and `width` values of `bits` bits
 *                        (ByteWriter.bits): all ones = silent, v = tick base + v. Only between
 *                        sides that agreed on it (the `bit-packed` feature): the encoder writes
 *                        it when asked to (`packed`), the decoder always reads it
 *
 * A single active input costs 5 bytes; a silent sample 1; all lines at most 1 + 2 x width.
 * PACKED is for replies where every neuron fires: 256 ticks spread over 60 take 6 bits each
 * instead of a 2-byte varint.
 */
import { SILENT_TICK } from '../wire/ticks.ts';
import { ByteReader, ByteWriter, varintBytes } from './varint.ts';

export const RecordMode = { SPARSE: 0, DENSE_VARINT: 1, DENSE_U16: 2, PACKED: 3 } as const;

/** The HELLO feature of a board that reads and writes PACKED spike records and PACKED WEIGHTS_EDIT segments. */
export const BIT_PACKED_FEATURE = 'bit-packed';

/** Bits per line of a PACKED record whose ticks span lo..hi (all ones is kept for silent). */
export function packedBits(lo: number, hi: number): number {
  let b = 1;
  while (2 ** b - 2 < hi - lo) b++;
  return b;
}

/** Largest record over `width` lines (the dense u16 form, which every smaller choice beats or ties). */
export function maxRecordBytes(width: number): number {
  return 1 + 2 * width;
}

/** Bytes of the smallest record of one sample, and its mode (PACKED only when `packed`; then `bits` and `base` too). */
export function recordSize(t: Uint16Array, start: number, width: number, packed = false): { bytes: number; mode: number; bits: number; base: number } {
  let sparse = 0;
  let n = 0;
  let dense = 1;
  let last = -1;
  let lo = SILENT_TICK;
  let hi = -1;
  for (let j = 0; j < width; j++) {
    const v = t[start + j]!;
    if (v === SILENT_TICK) {
      dense += 1;
      continue;
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    dense += varintBytes(v + 1);
    sparse += varintBytes(j - last - 1) + varintBytes(v);
    last = j;
    n++;
  }
  sparse += varintBytes(n * 4);
  const u16 = maxRecordBytes(width);
  const bits = n > 0 ? packedBits(lo, hi) : 0;
  const pack = packed && n > 0 ? varintBytes(bits * 4 + 3) + varintBytes(lo) + Math.ceil((width * bits) / 8) : Infinity;
  const best = Math.min(sparse, dense, u16, pack);
  if (sparse === best) return { bytes: sparse, mode: RecordMode.SPARSE, bits: 0, base: 0 };
  if (dense === best) return { bytes: dense, mode: RecordMode.DENSE_VARINT, bits: 0, base: 0 };
  if (u16 === best) return { bytes: u16, mode: RecordMode.DENSE_U16, bits: 0, base: 0 };
  return { bytes: pack, mode: RecordMode.PACKED, bits, base: lo };
}

/** Appends the smallest record of one sample (`width` ticks from `start`; PACKED among the forms when `packed`). */
export function writeRecord(w: ByteWriter, t: Uint16Array, start: number, width: number, packed = false): void {
  const { mode, bits, base } = recordSize(t, start, width, packed);
  if (mode === RecordMode.SPARSE) {
    let n = 0;
    for (let j = 0; j < width; j++) if (t[start + j] !== SILENT_TICK) n++;
    w.varint(n * 4);
    let last = -1;
    for (let j = 0; j < width; j++) {
      const v = t[start + j]!;
      if (v === SILENT_TICK) continue;
      w.varint(j - last - 1);
      w.varint(v);
      last = j;
    }
  } else if (mode === RecordMode.DENSE_VARINT) {
    w.varint(RecordMode.DENSE_VARINT);
    for (let j = 0; j < width; j++) {
      const v = t[start + j]!;
      w.varint(v === SILENT_TICK ? 0 : v + 1);
    }
  } else if (mode === RecordMode.DENSE_U16) {
    w.varint(RecordMode.DENSE_U16);
    for (let j = 0; j < width; j++) w.u16(t[start + j]!);
  } else {
    w.varint(bits * 4 + RecordMode.PACKED);
    w.varint(base);
    const silent = 2 ** bits - 1;
    w.bits(width, bits, (j) => (t[start + j] === SILENT_TICK ? silent : t[start + j]! - base));
  }
}

/** Records of `batch` samples of `width` ticks each (sample-major `t`); PACKED among the forms when `packed`. */
export function encodeRecords(t: Uint16Array, batch: number, width: number, packed = false): Uint8Array {
  if (t.length !== batch * width) throw new RangeError(`encodeRecords: ${t.length} ticks, batch ${batch} x width ${width} needs ${batch * width}`);
  const w = new ByteWriter(batch * 8);
  for (let s = 0; s < batch; s++) writeRecord(w, t, s * width, width, packed);
  return w.finish();
}

/**
 * Decodes exactly `batch` records over `width` lines into sample-major ticks (0xFFFF = silent).
 * Throws ProtocolError('bad-payload') naming `what`, the sample and the byte offset; PACKED records
 * too when not `allowPacked` (a board that does not announce the feature).
 */
export function decodeRecords(b: Uint8Array, batch: number, width: number, what: string, allowPacked = true): Uint16Array {
  const out = new Uint16Array(batch * width).fill(SILENT_TICK);
  const r = new ByteReader(b, what);
  for (let s = 0; s < batch; s++) {
    if (r.done) r.fail(`${batch} records expected, the bytes end after ${s}`);
    const at = s * width;
    const head = r.varint();
    const mode = head & 3;
    const n = Math.floor(head / 4);
    if (mode === RecordMode.SPARSE) {
      if (n > width) r.fail(`sample ${s}: ${n} sparse entries for ${width} lines`);
      let line = -1;
      for (let k = 0; k < n; k++) {
        line += 1 + r.varint();
        if (line >= width) r.fail(`sample ${s}: line ${line} is past the last of ${width} lines`);
        const tick = r.varint();
        if (tick >= SILENT_TICK) r.fail(`sample ${s}: tick ${tick} of line ${line} (a listed line must have a tick < 65535)`);
        out[at + line] = tick;
      }
    } else if (mode === RecordMode.DENSE_VARINT || mode === RecordMode.DENSE_U16) {
      if (n !== 0) r.fail(`sample ${s}: dense record head ${head} must have count 0`);
      for (let j = 0; j < width; j++) {
        if (mode === RecordMode.DENSE_U16) out[at + j] = r.u16();
        else {
          const v = r.varint();
          if (v > SILENT_TICK) r.fail(`sample ${s}: line ${j} value ${v} (at most 65535 = tick 65534)`);
          out[at + j] = v === 0 ? SILENT_TICK : v - 1;
        }
      }
    } else {
      if (!allowPacked) r.fail(`sample ${s}: record mode 3 (PACKED) needs the ${BIT_PACKED_FEATURE} feature`);
      if (n < 1 || n > 16) r.fail(`sample ${s}: PACKED record of ${n} bits per line (1..16)`);
      const base = r.varint();
      const silent = 2 ** n - 1;
      r.bits(width, n, (j, v) => {
        if (v === silent) return;
        if (base + v >= SILENT_TICK) r.fail(`sample ${s}: line ${j} tick ${base + v} (base ${base} + ${v}) is not below 65535`);
        out[at + j] = base + v;
      });
    }
  }
  if (!r.done) r.fail(`${b.length - r.pos} bytes left after ${batch} records`);
  return out;
}
