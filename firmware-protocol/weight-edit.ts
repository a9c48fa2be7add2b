/**
 * WEIGHTS_EDIT data (protocol 2 with the `weights-edit` feature, PROTOCOL.md 10.15): segments that
 * change cells of one layer's weight memory at increasing indices, starting from `pos = offset`.
 * Each starts with `head = varint(n << 2 | mode)`, `n >= 1`:
 *
 *   mode 0 FILL  varint(gap) varint(code)    cells pos + gap .. pos + gap + n - 1 get `code`; pos = one past the last
 *   mode 1 STEP  n x varint(gap << 2 | low)  cell = pos + gap gets the code c in old - 1 .. old + 2 with c mod 4 = low
 *                                            (old: what the cell holds); pos = cell + 1
 *   mode 2 NEAR  varint(gap) ceil(n / 2) bytes  cells pos + gap + k (k < n) get the code c in old - 8 .. old + 7 with
 *                                            c mod 16 = nibble k (low nibble first); pos = one past the last
 *   mode 3 PACKED varint(gap) u8(bits) varint(base) varint(step), then ceil(n x bits / 8) bytes of n values
 *                                            (ByteWriter.bits): cell pos + gap + k gets base + v_k x step; pos = one past
 *                                            the last. Only to a board announcing `bit-packed` (else refused)
 *
 * FILL is for the probe configurations of bring-up and calibration (every synapse of a polarity at
 * one code, one synapse per row on): a few bytes per run whatever its length. STEP is for
 * fine-tuning, whose updates move most codes by one step: one byte per changed cell when changed
 * cells are less than 32 apart, against 2-3 for a WEIGHTS_PATCH entry. A STEP names its result
 * by its low bits, not by a difference, so applying a frame twice (a retry whose first attempt
 * landed) leaves the cell as once: the second time the cell already has those low bits. NEAR is
 * the same for a dense stretch of larger moves (Adam's first steps move a third of a layer's codes
 * by 3-5): half a byte per cell, changed or not.
 */
import { ByteReader, ByteWriter, varintBytes } from './varint.ts';
import type { PatchFrame } from './weight-patch.ts';

/** The HELLO feature of a board that takes WEIGHTS_EDIT. */
export const WEIGHTS_EDIT_FEATURE = 'weights-edit';

export const EditMode = { FILL: 0, STEP: 1, NEAR: 2, PACKED: 3 } as const;

/** Cells per block when choosing PACKED against FILL in a full upload. */
const PACKED_BLOCK = 256;

/** Cells per block when choosing NEAR against FILL and STEP. */
const NEAR_BLOCK = 32;

/** Runs of adjacent changed cells with one code at least this long go as FILL, not as steps. */
const MIN_FILL_RUN = 4;

/** The code a STEP with low bits `low` makes of a cell holding `old`. */
export function stepCode(old: number, low: number): number {
  return old - 1 + ((low - (old - 1)) & 3);
}

/** The code a NEAR nibble makes of a cell holding `old`. */
export function nearCode(old: number, nibble: number): number {
  return old - 8 + ((nibble - (old - 8)) & 15);
}

/** Whether `prev` -> `next` can be sent as a STEP (a change of -1, +1 or +2). */
function steppable(prev: number, next: number): boolean {
  const d = next - prev;
  return d === -1 || d === 1 || d === 2;
}

/** What to send, in cell order: a FILL run or one STEP cell. */
type Item =
  | { kind: 'fill'; start: number; count: number; code: number }
  | { kind: 'step'; cell: number; low: number }
  | { kind: 'near'; start: number; count: number; codes: Uint16Array }
  | { kind: 'packed'; start: number; count: number; codes: Uint16Array; base: number; step: number; bits: number };

/**
 * The items of cells lo .. hi - 1. A FILL run starts at a changed cell and goes on through every
 * cell with its code (re-writing an unchanged one costs nothing there); it is taken when at least
 * MIN_FILL_RUN cells long, or for a change a STEP cannot name.
 */
function pointItems(prev: Uint16Array, next: Uint16Array, lo: number, hi: number, out: Item[]): number {
  let bytes = 0;
  let i = lo;
  while (i < hi) {
    if (prev[i] === next[i]) {
      i++;
      continue;
    }
    const code = next[i]!;
    let j = i + 1;
    while (j < hi && next[j] === code) j++;
    // no unchanged cells at the end of a run
    while (j > i + 1 && prev[j - 1] === next[j - 1]) j--;
    if (j - i >= MIN_FILL_RUN || !steppable(prev[i]!, code)) {
      const count = j - i >= MIN_FILL_RUN ? j - i : 1;
      out.push({ kind: 'fill', start: i, count, code });
      bytes += 5;
      i += count;
    } else {
      out.push({ kind: 'step', cell: i, low: code & 3 });
      bytes += 1;
      i++;
    }
  }
  return bytes;
}

/**
 * The items that turn `prev` into `next`. Block by block, a block whose changes are all within
 * -8..+7 goes as NEAR (half a byte per cell) when that is smaller than its own FILL runs and
 * STEPs; NEAR blocks in a row make one segment, and the stretches between them go as FILL runs
 * (which may span blocks) and STEPs.
 */
function items(prev: Uint16Array, next: Uint16Array): Item[] {
  const out: Item[] = [];
  const scratch: Item[] = [];
  let near: { start: number; end: number } | undefined;
  let pointFrom = 0;
  for (let lo = 0; lo < next.length; lo += NEAR_BLOCK) {
    const hi = Math.min(next.length, lo + NEAR_BLOCK);
    let changed = false;
    let close = true;
    for (let i = lo; i < hi; i++) {
      const d = next[i]! - prev[i]!;
      if (d !== 0) changed = true;
      if (d < -8 || d > 7) close = false;
    }
    scratch.length = 0;
    const isNear = changed && close && Math.ceil((hi - lo) / 2) + (near ? 0 : 3) < pointItems(prev, next, lo, hi, scratch);
    if (isNear && near) near.end = hi;
    else if (isNear) {
      pointItems(prev, next, pointFrom, lo, out);
      near = { start: lo, end: hi };
    } else if (near) {
      out.push({ kind: 'near', start: near.start, count: near.end - near.start, codes: next.subarray(near.start, near.end) });
      near = undefined;
      pointFrom = lo;
    }
  }
  if (near) out.push({ kind: 'near', start: near.start, count: near.end - near.start, codes: next.subarray(near.start, near.end) });
  else pointItems(prev, next, pointFrom, next.length, out);
  return out;
}

/** Cuts items into frames of at most `maxData` bytes; a STEP segment gathers the STEP cells in a row. */
class EditWriter {
  readonly frames: PatchFrame[] = [];
  private w: ByteWriter | undefined;
  private offset = 0;
  private pos = 0;
  private count = 0;
  /** The open STEP segment: its entries, not yet written (their head depends on how many). */
  private steps: number[] = [];
  private stepBytes = 0;

  constructor(private readonly maxData: number) {}

  private get used(): number {
    return (this.w?.length ?? 0) + (this.steps.length ? varintBytes(this.steps.length * 4 + 1) + this.stepBytes : 0);
  }

  private open(first: number): void {
    if (this.w) return;
    this.w = new ByteWriter(Math.min(this.maxData, 4096));
    this.offset = first;
    this.pos = first;
    this.count = 0;
  }

  private flushSteps(): void {
    if (!this.steps.length) return;
    this.w!.varint(this.steps.length * 4 + 1);
    for (const v of this.steps) this.w!.varint(v);
    this.steps = [];
    this.stepBytes = 0;
  }

  close(): void {
    if (!this.w) return;
    this.flushSteps();
    this.frames.push({ offset: this.offset, data: this.w.finish(), count: this.count, end: this.pos });
    this.w = undefined;
  }

  add(it: Item): void {
    if (it.kind === 'near') {
      this.addNear(it);
      return;
    }
    if (it.kind === 'packed') {
      this.addPacked(it);
      return;
    }
    const first = it.kind === 'fill' ? it.start : it.cell;
    for (let fresh = false; ; fresh = true) {
      this.open(first);
      let cost: number;
      let v = 0;
      if (it.kind === 'fill') cost = varintBytes(it.count * 4) + varintBytes(it.start - this.pos) + varintBytes(it.code);
      else {
        v = (it.cell - this.pos) * 4 + it.low;
        cost = varintBytes(v) + (this.steps.length ? varintBytes((this.steps.length + 1) * 4 + 1) - varintBytes(this.steps.length * 4 + 1) : 1);
      }
      if (this.used + cost > this.maxData && !fresh) {
        this.close();
        continue;
      }
      if (it.kind === 'fill') {
        this.flushSteps();
        this.w!.varint(it.count * 4);
        this.w!.varint(it.start - this.pos);
        this.w!.varint(it.code);
        this.pos = it.start + it.count;
        this.count += it.count;
      } else {
        this.steps.push(v);
        this.stepBytes += varintBytes(v);
        this.pos = it.cell + 1;
        this.count++;
      }
      return;
    }
  }

  /** A PACKED run, cut into as many segments as the frames need. */
  private addPacked(it: Extract<Item, { kind: 'packed' }>): void {
    this.addSegments(it, {
      mode: EditMode.PACKED,
      what: 'encodeFills: maxData %d cannot hold a PACKED segment',
      // bits, base and step after the gap
      extra: 1 + varintBytes(it.base) + varintBytes(it.step),
      cells: (room) => Math.floor((room * 8) / it.bits),
      // a short piece at a frame's end is not worth its head: the next frame takes the run
      tooFew: (n, left, empty) => n < 1 || (n < left && n < 16 && !empty),
      body: (w, k, n) => {
        w.u8(it.bits);
        w.varint(it.base);
        w.varint(it.step);
        w.bits(n, it.bits, (q) => (it.codes[k + q]! - it.base) / it.step);
      },
    });
  }

  /** A NEAR run, cut into as many segments as the frames need. */
  private addNear(it: Extract<Item, { kind: 'near' }>): void {
    this.addSegments(it, {
      mode: EditMode.NEAR,
      what: 'encodeEdit: maxData %d cannot hold a NEAR segment',
      extra: 0,
      // half a byte per cell
      cells: (room) => 2 * room,
      // no room for a cell (room can be negative at a frame's end), or for two when two are left
      tooFew: (n, left) => n < 1 || (n < 2 && left >= 2),
      body: (w, k, n) => {
        for (let q = 0; q < n; q += 2) {
          const a = it.codes[k + q]! & 15;
          const b = q + 1 < n ? it.codes[k + q + 1]! & 15 : 0;
          w.u8(a | (b << 4));
        }
      },
    });
  }

  /**
   * A run of cells written as segments of one mode (head, gap, `extra` bytes, body), as many cells
   * in each frame as fit; a frame with too few for the rest is closed and the next one continues.
   */
  private addSegments(it: { start: number; count: number }, seg: SegmentKind): void {
    let start = it.start;
    let k = 0;
    while (k < it.count) {
      this.open(start);
      this.flushSteps();
      const left = it.count - k;
      // head (at most 5 bytes), gap and the mode's fixed fields, then the cells
      const room = this.maxData - this.w!.length - varintBytes(start - this.pos) - seg.extra - varintBytes(left * 4 + seg.mode);
      const n = Math.min(left, seg.cells(room));
      const empty = this.w!.length === 0;
      if (seg.tooFew(n, left, empty)) {
        if (empty) throw new RangeError(seg.what.replace('%d', String(this.maxData)));
        this.close();
        continue;
      }
      this.w!.varint(n * 4 + seg.mode);
      this.w!.varint(start - this.pos);
      seg.body(this.w!, k, n);
      this.pos = start + n;
      this.count += n;
      start += n;
      k += n;
      if (k < it.count) this.close();
    }
  }
}

/** How EditWriter.addSegments writes one mode's runs. */
interface SegmentKind {
  mode: (typeof EditMode)[keyof typeof EditMode];
  /** The error when even an empty frame cannot take a cell (%d: maxData). */
  what: string;
  /** Bytes of the segment after its head and gap, before the cells. */
  extra: number;
  /** Cells that fit in `room` bytes. */
  cells(room: number): number;
  /** Whether n of the `left` cells are too few for a segment here (`empty`: the frame holds nothing yet). */
  tooFew(n: number, left: number, empty: boolean): boolean;
  /** Writes the fixed fields and cells k .. k + n - 1 of the run. */
  body(w: ByteWriter, k: number, n: number): void;
}

/**
 * Frames that turn `prev` (what the device holds) into `next` (same layer), each with at most
 * `maxData` data bytes. Only changed cells are written, and unchanged ones inside a FILL run.
 */
export function encodeEdit(prev: Uint16Array, next: Uint16Array, maxData: number): PatchFrame[] {
  if (prev.length !== next.length) throw new RangeError(`encodeEdit: prev has ${prev.length} codes, next ${next.length}; they must be the same layer`);
  if (!Number.isInteger(maxData) || maxData < 16) throw new RangeError(`encodeEdit: maxData must be a whole number >= 16, got ${maxData}`);
  const w = new EditWriter(maxData);
  for (const it of items(prev, next)) w.add(it);
  w.close();
  return w.frames;
}

/**
 * Frames that write every cell of a layer with `next` whatever the device holds: FILL runs of
 * equal codes, and with `packed` (a board announcing `bit-packed`) PACKED runs where a block of
 * cells is smaller as base + v x step in a few bits (no STEP or NEAR, which read the old code).
 * Smaller than WEIGHTS_WRITE for the probe and memory-test configurations, where whole rows share
 * a code (FILL), alternate between two (a checkerboard: 1 bit per cell) or are spread over a window
 * narrower than the DAC (a random pattern: 10 bits instead of 16).
 */
export function encodeFills(next: Uint16Array, maxData: number, packed = false): PatchFrame[] {
  if (!Number.isInteger(maxData) || maxData < 16) throw new RangeError(`encodeFills: maxData must be a whole number >= 16, got ${maxData}`);
  const w = new EditWriter(maxData);
  const items: Item[] = [];
  const fills = (lo: number, hi: number) => {
    for (let i = lo; i < hi; ) {
      let j = i + 1;
      while (j < hi && next[j] === next[i]) j++;
      const last = items[items.length - 1];
      if (last?.kind === 'fill' && last.code === next[i] && last.start + last.count === i) last.count += j - i;
      else items.push({ kind: 'fill', start: i, count: j - i, code: next[i]! });
      i = j;
    }
  };
  if (!packed) fills(0, next.length);
  else {
    for (let lo = 0; lo < next.length; lo += PACKED_BLOCK) {
      const hi = Math.min(next.length, lo + PACKED_BLOCK);
      const p = packing(next, lo, hi);
      if (!p || p.bytes >= fillBytes(next, lo, hi)) {
        fills(lo, hi);
        continue;
      }
      const last = items[items.length - 1];
      if (last?.kind === 'packed' && last.start + last.count === lo) {
        // one segment for blocks in a row when their joint packing is as narrow as each alone
        const base = Math.min(last.base, p.base);
        const step = gcd(gcd(last.step, p.step), Math.abs(last.base - p.base));
        const top = Math.max(last.base + (2 ** last.bits - 1) * last.step, p.base + (2 ** p.bits - 1) * p.step);
        const bits = bitsFor((top - base) / step);
        if (bits === last.bits && bits === p.bits) {
          Object.assign(last, { base, step, count: hi - last.start, codes: next.subarray(last.start, hi) });
          continue;
        }
      }
      items.push({ kind: 'packed', start: lo, count: hi - lo, codes: next.subarray(lo, hi), ...p });
    }
  }
  for (const it of items) w.add(it);
  w.close();
  return w.frames;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Bits that hold 0..max. */
function bitsFor(max: number): number {
  let b = 1;
  while (2 ** b - 1 < max) b++;
  return b;
}

/** Data bytes of the FILL runs of cells lo..hi-1 (gaps 0). */
function fillBytes(next: Uint16Array, lo: number, hi: number): number {
  let s = 0;
  for (let i = lo; i < hi; ) {
    let j = i + 1;
    while (j < hi && next[j] === next[i]) j++;
    s += varintBytes((j - i) * 4) + 1 + varintBytes(next[i]!);
    i = j;
  }
  return s;
}

/** The PACKED form of cells lo..hi-1 (base, step, bits) and its data bytes; undefined when they all share a code. */
function packing(next: Uint16Array, lo: number, hi: number): { base: number; step: number; bits: number; bytes: number } | undefined {
  let base = 0xffff;
  let top = 0;
  for (let i = lo; i < hi; i++) {
    if (next[i]! < base) base = next[i]!;
    if (next[i]! > top) top = next[i]!;
  }
  if (top === base) return undefined;
  let step = 0;
  for (let i = lo; i < hi && step !== 1; i++) step = gcd(step, next[i]! - base);
  const bits = bitsFor((top - base) / step);
  return { base, step, bits, bytes: varintBytes((hi - lo) * 4 + 3) + 1 + 1 + varintBytes(base) + varintBytes(step) + Math.ceil(((hi - lo) * bits) / 8) };
}

/** Data bytes of the edit `prev` -> `next` in one frame (frames cut it at most a few bytes longer). */
export function editDataBytes(prev: Uint16Array, next: Uint16Array): number {
  return encodeEdit(prev, next, 2 ** 31).reduce((s, f) => s + f.data.length, 0);
}

/**
 * Applies one WEIGHTS_EDIT frame's data to a copy of the cells it touches: the cells and their new
 * codes in increasing cell order, read against `memory` (what the device holds). Malformed data or
 * a reserved mode is a ProtocolError('bad-payload') naming `what`. A cell at or past
 * `memory.length` stops the decoding: `pastEnd` names it (the receiver refuses the frame,
 * OUT_OF_RANGE); the safety of the codes is the receiver's check too.
 */
export function decodeEdit(
  data: Uint8Array,
  offset: number,
  memory: Uint16Array,
  what: string,
  allowPacked = true,
): { cells: Float64Array; codes: Uint16Array; pastEnd?: number } {
  const r = new ByteReader(data, what);
  let cells = new Float64Array(Math.max(16, data.length));
  let codes = new Uint16Array(cells.length);
  let n = 0;
  const put = (cell: number, code: number) => {
    if (n === cells.length) {
      const c2 = new Float64Array(cells.length * 2);
      c2.set(cells);
      cells = c2;
      const k2 = new Uint16Array(codes.length * 2);
      k2.set(codes);
      codes = k2;
    }
    cells[n] = cell;
    codes[n++] = code;
  };
  const result = (pastEnd?: number) => ({ cells: cells.subarray(0, n), codes: codes.subarray(0, n), ...(pastEnd === undefined ? {} : { pastEnd }) });
  let pos = offset;
  while (!r.done) {
    const head = r.varint();
    const count = Math.floor(head / 4);
    const mode = head & 3;
    if (count < 1) r.fail(`segment at byte ${r.pos} has no cells`);
    if (mode === EditMode.FILL) {
      const start = pos + r.varint();
      const code = r.varint();
      if (code > 0xffff) r.fail(`FILL code ${code} is not a u16`);
      if (start + count > memory.length) return result(start + count - 1);
      for (let k = 0; k < count; k++) put(start + k, code);
      pos = start + count;
    } else if (mode === EditMode.STEP) {
      for (let k = 0; k < count; k++) {
        const v = r.varint();
        const cell = pos + Math.floor(v / 4);
        if (cell >= memory.length) return result(cell);
        put(cell, stepCode(memory[cell]!, v & 3));
        pos = cell + 1;
      }
    } else if (mode === EditMode.NEAR) {
      const start = pos + r.varint();
      if (start + count > memory.length) return result(start + count - 1);
      const bytes = r.bytes(Math.ceil(count / 2));
      for (let k = 0; k < count; k++) put(start + k, nearCode(memory[start + k]!, (bytes[k >> 1]! >> (4 * (k & 1))) & 15));
      pos = start + count;
    } else {
      if (!allowPacked) r.fail(`segment mode 3 (PACKED) needs the bit-packed feature`);
      const start = pos + r.varint();
      const bits = r.bytes(1)[0]!;
      if (bits < 1 || bits > 16) r.fail(`PACKED segment of ${bits} bits per cell (1..16)`);
      const base = r.varint();
      const step = r.varint();
      if (step < 1) r.fail('PACKED step 0 (at least 1)');
      if (start + count > memory.length) return result(start + count - 1);
      r.bits(count, bits, (k, v) => {
        const code = base + v * step;
        if (code > 0xffff) r.fail(`PACKED code ${code} of cell ${start + k} is not a u16`);
        put(start + k, code);
      });
      pos = start + count;
    }
  }
  return result();
}
