/**
 * WEIGHTS_PATCH data of protocol 2 (PROTOCOL.md 10.13): scattered cells of one layer's weight
 * memory as a sequence of segments, starting at cell `offset`:
 *
 *   head = varint(n << 1 | mode), n >= 1
 *   mode 0 SPARSE: n entries of varint(gap << bits | code): cell = pos + gap, then pos = cell + 1
 *   mode 1 DENSE:  varint(gap) then n x u16le(code): cells pos + gap .. pos + gap + n - 1
 *
 * `bits` is the DAC's (HELLO `dac.bits`); a sparse entry is a u32, so its gap is below
 * 2^(32 - bits) (the encoder re-sends an unchanged cell to bridge a longer one). `pos` starts at
 * `offset`, so cells only ever increase (no cell twice in a frame). With a 10-bit DAC a sparse
 * entry costs 2 bytes for a gap below 16, 3 below 2048, 4 below 262144; a dense run 2 bytes per
 * cell. The encoder sends runs of (nearly) consecutive changed cells dense and the rest sparse.
 */
import { ByteReader, ByteWriter, varintBytes } from './varint.ts';

export interface PatchFrame {
  /** First cell the frame writes. */
  offset: number;
  data: Uint8Array;
  /** Cells written. */
  count: number;
  /** One past the last cell written: the frame touches cells offset .. end - 1 only. */
  end: number;
}

type Segment = { sparse: true; cells: number[]; codes: number[] } | { sparse: false; start: number; codes: Uint16Array };

/** The u32 of a sparse entry: gap above the code's `bits` bits. */
const sparseValue = (gap: number, code: number, bits: number) => gap * 2 ** bits + code;

/** The longest gap one sparse entry can carry with `bits`-bit codes. */
export function maxSparseGap(bits: number): number {
  return 2 ** (32 - bits) - 1;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new RangeError(`DAC bits must be 1..16, got ${bits}`);
}

/**
 * Frames that turn `prev` into `next` (same layer), each with at most `maxData` data bytes.
 * Cells equal in both are not sent, except inside a dense run where re-sending a lone unchanged
 * cell costs less than a sparse entry.
 */
export function encodePatch(prev: Uint16Array, next: Uint16Array, maxData: number, bits: number): PatchFrame[] {
  checkBits(bits);
  if (prev.length !== next.length) throw new RangeError(`encodePatch: prev has ${prev.length} codes, next ${next.length}; they must be the same layer`);
  if (!Number.isInteger(maxData) || maxData < 8) throw new RangeError(`encodePatch: maxData must be a whole number >= 8, got ${maxData}`);
  const changed: number[] = [];
  for (let i = 0; i < next.length; i++) if (prev[i] !== next[i]) changed.push(i);

  const frames: PatchFrame[] = [];
  let segs: Segment[] = [];
  let used = 0;
  let pos = 0;
  let offset = -1;
  let count = 0;
  const close = () => {
    if (segs.length === 0) return;
    const w = new ByteWriter(used);
    let p = offset;
    for (const s of segs) {
      if (s.sparse) {
        w.varint(s.cells.length * 2);
        s.cells.forEach((c, k) => {
          w.varint(sparseValue(c - p, s.codes[k]!, bits));
          p = c + 1;
        });
      } else {
        w.varint(s.codes.length * 2 + 1);
        w.varint(s.start - p);
        for (const c of s.codes) w.u16(c);
        p = s.start + s.codes.length;
      }
    }
    frames.push({ offset, data: w.finish(), count, end: p });
    segs = [];
    used = 0;
    offset = -1;
    count = 0;
  };
  const open = (cell: number) => {
    if (offset < 0) {
      offset = cell;
      pos = cell;
    }
  };

  const gapLimit = maxSparseGap(bits);
  const addSparse = (cell: number) => {
    // a gap too long for one entry: re-send the cell the longest gap away (its code is unchanged)
    while (offset >= 0 && cell - pos > gapLimit) addSparse(pos + gapLimit);
    open(cell);
    let last: Segment | undefined = segs[segs.length - 1];
    let cost = varintBytes(sparseValue(cell - pos, next[cell]!, bits));
    if (last?.sparse) cost += varintBytes((last.cells.length + 1) * 2) - varintBytes(last.cells.length * 2);
    else cost += 1;
    if (used + cost > maxData) {
      close();
      open(cell);
      last = undefined;
      cost = 1 + varintBytes(sparseValue(0, next[cell]!, bits));
    }
    if (!last?.sparse) {
      last = { sparse: true, cells: [], codes: [] };
      segs.push(last);
    }
    last.cells.push(cell);
    last.codes.push(next[cell]!);
    used += cost;
    pos = cell + 1;
    count++;
  };

  const addDense = (start: number, n: number) => {
    while (n > 0) {
      open(start);
      const fixed = varintBytes(start - pos) + 3; // gap, head (up to 3 bytes)
      const fit = Math.min(n, Math.floor((maxData - used - fixed) / 2));
      if (fit < 1) {
        close();
        continue;
      }
      // a tail too short to be worth a dense segment in the next frame still goes here when it fits
      segs.push({ sparse: false, start, codes: next.slice(start, start + fit) });
      used += varintBytes(start - pos) + varintBytes(fit * 2 + 1) + 2 * fit;
      pos = start + fit;
      count += fit;
      start += fit;
      n -= fit;
      if (n > 0) close();
    }
  };

  let i = 0;
  while (i < changed.length) {
    // a cluster: changed cells at most one unchanged cell apart
    let j = i;
    while (j + 1 < changed.length && changed[j + 1]! - changed[j]! <= 2) j++;
    const k = j - i + 1;
    const span = changed[j]! - changed[i]! + 1;
    if (k >= 3 && 2 * span + 4 <= 3 * k) addDense(changed[i]!, span);
    else for (let q = i; q <= j; q++) addSparse(changed[q]!);
    i = j + 1;
  }
  close();
  return frames;
}

/**
 * The cells and codes of one WEIGHTS_PATCH frame, in increasing cell order. Malformed data is a
 * ProtocolError('bad-payload') naming `what`; whether the cells exist and the codes are safe is
 * the receiver's check.
 */
export function decodePatch(data: Uint8Array, offset: number, bits: number, what: string): { cells: Float64Array; codes: Uint16Array } {
  checkBits(bits);
  const r = new ByteReader(data, what);
  // every cell costs at least 1 byte: this bounds the arrays
  const cells = new Float64Array(data.length);
  const codes = new Uint16Array(data.length);
  const unit = 2 ** bits;
  let n = 0;
  let pos = offset;
  while (!r.done) {
    const head = r.varint();
    const count = Math.floor(head / 2);
    if (count < 1) r.fail(`segment at byte ${r.pos} has no cells`);
    if (head & 1) {
      pos += r.varint();
      for (let k = 0; k < count; k++) {
        if (n >= cells.length) r.fail('more cells than bytes');
        cells[n] = pos++;
        codes[n++] = r.u16();
      }
    } else {
      for (let k = 0; k < count; k++) {
        const v = r.varint();
        pos += Math.floor(v / unit);
        if (n >= cells.length) r.fail('more cells than bytes');
        cells[n] = pos++;
        codes[n++] = v % unit;
      }
    }
  }
  return { cells: cells.subarray(0, n), codes: codes.subarray(0, n) };
}
