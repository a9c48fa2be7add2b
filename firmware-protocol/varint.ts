/**
 * Unsigned LEB128 varints of protocol 2's packed arrays (PROTOCOL.md section 2.1): 7 bits per
 * byte, low group first, high bit set on every byte but the last. Values are u32; the encoding
 * is the shortest (a receiver refuses a redundant trailing 0x00 group and more than 5 bytes).
 */
import { ProtocolError } from './errors.ts';

/** Bytes of `v` as a varint. */
export function varintBytes(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Growable byte buffer with varint and u16 writers. */
export class ByteWriter {
  private buf: Uint8Array;
  length = 0;
  constructor(capacity = 64) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.length + n, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
  }
  varint(v: number): void {
    this.room(5);
    let x = v >>> 0;
    while (x >= 0x80) {
      this.buf[this.length++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    this.buf[this.length++] = x;
  }
  u16(v: number): void {
    this.room(2);
    this.buf[this.length++] = v & 0xff;
    this.buf[this.length++] = v >>> 8;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /**
   * `n` values of `bits` bits each (1..16), `value(k)` for k < n, as a bit stream: value k at bits
   * k x bits .. (k + 1) x bits - 1, lowest bit first, byte 0 first; ceil(n x bits / 8) bytes, the
   * unused top bits of the last byte 0.
   */
  bits(n: number, bits: number, value: (k: number) => number): void {
    const bytes = Math.ceil((n * bits) / 8);
    this.room(bytes);
    const b = this.buf;
    b.fill(0, this.length, this.length + bytes);
    let at = this.length * 8;
    for (let k = 0; k < n; k++, at += bits) {
      // at most 16 bits starting anywhere in a byte span 3 bytes
      const v = value(k) * 2 ** (at & 7);
      const i = at >>> 3;
      b[i] = b[i]! | (v & 0xff);
      if (v > 0xff) b[i + 1] = b[i + 1]! | ((v >>> 8) & 0xff);
      if (v > 0xffff) b[i + 2] = b[i + 2]! | ((v >>> 16) & 0xff);
    }
    this.length += bytes;
  }
  /** A copy of what was written. */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Reads varints and u16s from a byte array; every failure is a ProtocolError('bad-payload') naming `what` and the offset. */
export class ByteReader {
  pos = 0;
  constructor(
    readonly b: Uint8Array,
    readonly what: string,
  ) {}
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  fail(msg: string): never {
    throw new ProtocolError('bad-payload', `${this.what}: ${msg}`, { value: this.pos });
  }
  varint(): number {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.b.length) this.fail(`varint cut off at byte ${this.pos} of ${this.b.length}`);
      const c = this.b[this.pos++]!;
      if (i > 0 && c === 0) this.fail(`varint at byte ${this.pos - 1 - i} is not in its shortest form`);
      if (i === 4 && c > 0x0f) this.fail(`varint at byte ${this.pos - 5} exceeds 32 bits`);
      v += (c & 0x7f) * 2 ** (7 * i);
      if (c < 0x80) return v;
    }
    return this.fail(`varint at byte ${this.pos - 5} longer than 5 bytes`);
  }
  /** The next `n` bytes (a view). */
  bytes(n: number): Uint8Array {
    if (this.pos + n > this.b.length) this.fail(`${n} bytes cut off at byte ${this.pos} of ${this.b.length}`);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** `n` values of `bits` bits each written by ByteWriter.bits, to `put(k, value)`. */
  bits(n: number, bits: number, put: (k: number, value: number) => void): void {
    const b = this.bytes(Math.ceil((n * bits) / 8));
    const mask = 2 ** bits - 1;
    let at = 0;
    for (let k = 0; k < n; k++, at += bits) {
      const i = at >>> 3;
      const word = b[i]! | ((b[i + 1] ?? 0) << 8) | ((b[i + 2] ?? 0) << 16);
      put(k, (word >>> (at & 7)) & mask);
    }
  }
  u16(): number {
    if (this.pos + 2 > this.b.length) this.fail(`u16 cut off at byte ${this.pos} of ${this.b.length}`);
    const v = this.b[this.pos]! | (this.b[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }
}
