/**
 * Payload MessagePack: one value, maps with string keys, `bin` for byte arrays, no extension
 * types. msgpackr does the packing; a strict structural scan runs before unpacking so that
 * anything a C firmware's msgpack library would not produce (extensions, 0xC1, non-string
 * keys, duplicate keys, trailing bytes) is refused instead of being given a JavaScript meaning.
 * The scan also notes where floats sit: JavaScript reads float64 1.0 as the number 1, so floats
 * come back boxed (`new Number(x)`) and only schema fields typed `number` accept them; an
 * integer field refuses 1.0 as PROTOCOL.md section 2 says.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from './errors.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

/** Nesting deeper than this is refused (no message of the catalogue nests beyond 4). */
export const MAX_DEPTH = 16;

/**
 * Packs a wire-form value (byte arrays as Uint8Array, no other typed arrays). Map keys are
 * written in insertion order, integers in their shortest form, other numbers as float64.
 */
export function packPayload(value: unknown): Uint8Array {
  // a copy: msgpackr returns a view into a buffer it reuses for later calls
  return new Uint8Array(packr.pack(plain(value, 0)));
}

/** Copies maps without their undefined entries (absent optional fields); refuses non-byte typed arrays. */
function plain(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (depth > MAX_DEPTH) throw new ProtocolError('schema', `payload: nesting deeper than ${MAX_DEPTH} levels`);
  if (ArrayBuffer.isView(v)) {
    if (v instanceof Uint8Array) return v;
    throw new ProtocolError('schema', `payload: ${v.constructor.name} must be converted to little-endian bytes before packing`);
  }
  if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x, depth + 1);
  return out;
}

/**
 * Unpacks exactly one MessagePack value; `bin` values come back as Uint8Array views of `bytes`,
 * floats (float32/float64 on the wire) as Number objects so that an integer field can tell 1.0
 * from 1 (schemas.ts `finite` unboxes them).
 */
export function unpackPayload(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new ProtocolError('bad-payload', 'payload: empty (expected one MessagePack value; an empty message is the empty map 0x80)');
  const scanState: ScanState = { path: [], floats: [] };
  const end = scan(bytes, 0, 0, scanState);
  if (end !== bytes.length) {
    throw new ProtocolError('bad-payload', `payload: ${bytes.length - end} trailing bytes after the MessagePack value (at offset ${end})`);
  }
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (e) {
    throw new ProtocolError('bad-payload', `payload: MessagePack decoding failed: ${(e as Error).message}`, { cause: e });
  }
  for (const path of scanState.floats) value = boxAt(value, path, 0);
  return value;
}

/** Replaces the number at `path` with a Number object (a float from the wire). */
function boxAt(v: unknown, path: readonly (string | number)[], i: number): unknown {
  if (i === path.length) return typeof v === 'number' ? new Number(v) : v;
  const k = path[i]!;
  if (v !== null && typeof v === 'object') (v as Record<string | number, unknown>)[k] = boxAt((v as Record<string | number, unknown>)[k], path, i + 1);
  return v;
}

/** Where the scan is (map keys and array indices) and where it saw floats. */
interface ScanState {
  path: (string | number)[];
  floats: (string | number)[][];
}

const keyDecoder = new TextDecoder('utf-8', { fatal: false });

function bad(msg: string): never {
  throw new ProtocolError('bad-payload', `payload: ${msg}`);
}

function need(b: Uint8Array, pos: number, n: number): void {
  if (pos + n > b.length) bad(`truncated MessagePack value (need ${n} bytes at offset ${pos}, have ${b.length - pos})`);
}

function be16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}
function be32(b: Uint8Array, p: number): number {
  return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
}

const PROTO_KEY = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

/** Walks one value starting at `pos`; returns the offset after it. Throws on anything outside the profile. */
function scan(b: Uint8Array, pos: number, depth: number, st: ScanState): number {
  if (depth > MAX_DEPTH) bad(`nesting deeper than ${MAX_DEPTH} levels at offset ${pos}`);
  need(b, pos, 1);
  const t = b[pos]!;
  if (t <= 0x7f || t >= 0xe0) return pos + 1; // fixints
  if (t <= 0x8f) return scanMap(b, pos + 1, t & 0x0f, depth, st);
  if (t <= 0x9f) return scanArray(b, pos + 1, t & 0x0f, depth, st);
  if (t <= 0xbf) return skip(b, pos + 1, t & 0x1f);
  switch (t) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return pos + 1;
    // bin 8/16/32 and str 8/16/32: a length, then that many bytes
    case 0xc4:
    case 0xd9:
      need(b, pos, 2);
      return skip(b, pos + 2, b[pos + 1]!);
    case 0xc5:
    case 0xda:
      need(b, pos, 3);
      return skip(b, pos + 3, be16(b, pos + 1));
    case 0xc6:
    case 0xdb:
      need(b, pos, 5);
      return skip(b, pos + 5, be32(b, pos + 1));
    case 0xca:
      st.floats.push([...st.path]);
      return skip(b, pos + 1, 4);
    case 0xcb:
      st.floats.push([...st.path]);
      return skip(b, pos + 1, 8);
    case 0xcc:
    case 0xd0:
      return skip(b, pos + 1, 1);
    case 0xcd:
    case 0xd1:
      return skip(b, pos + 1, 2);
    case 0xce:
    case 0xd2:
      return skip(b, pos + 1, 4);
    case 0xcf:
    case 0xd3:
      return skip(b, pos + 1, 8);
    case 0xdc:
      need(b, pos, 3);
      return scanArray(b, pos + 3, be16(b, pos + 1), depth, st);
    case 0xdd:
      need(b, pos, 5);
      return scanArray(b, pos + 5, be32(b, pos + 1), depth, st);
    case 0xde:
      need(b, pos, 3);
      return scanMap(b, pos + 3, be16(b, pos + 1), depth, st);
    case 0xdf:
      need(b, pos, 5);
      return scanMap(b, pos + 5, be32(b, pos + 1), depth, st);
    case 0xc1:
      return bad(`byte 0xc1 (never used in MessagePack) at offset ${pos}`);
    default:
      return bad(`extension type 0x${t.toString(16)} at offset ${pos} is not allowed in this protocol`);
  }
}

function skip(b: Uint8Array, pos: number, n: number): number {
  need(b, pos, n);
  return pos + n;
}

function scanArray(b: Uint8Array, pos: number, count: number, depth: number, st: ScanState): number {
  if (count > b.length - pos) bad(`array of ${count} elements at offset ${pos} cannot fit in the payload`);
  for (let i = 0; i < count; i++) {
    st.path.push(i);
    pos = scan(b, pos, depth + 1, st);
    st.path.pop();
  }
  return pos;
}

function scanMap(b: Uint8Array, pos: number, count: number, depth: number, st: ScanState): number {
  if (2 * count > b.length - pos) bad(`map of ${count} entries at offset ${pos} cannot fit in the payload`);
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    need(b, pos, 1);
    const t = b[pos]!;
    let len: number;
    let start: number;
    if (t >= 0xa0 && t <= 0xbf) {
      len = t & 0x1f;
      start = pos + 1;
    } else if (t === 0xd9) {
      need(b, pos, 2);
      len = b[pos + 1]!;
      start = pos + 2;
    } else if (t === 0xda) {
      need(b, pos, 3);
      len = be16(b, pos + 1);
      start = pos + 3;
    } else if (t === 0xdb) {
      need(b, pos, 5);
      len = be32(b, pos + 1);
      start = pos + 5;
    } else return bad(`map key at offset ${pos} is not a string (type byte 0x${t.toString(16)})`);
    need(b, start, len);
    if (len === PROTO_KEY.length && PROTO_KEY.every((c, k) => b[start + k] === c)) bad(`map key "__proto__" at offset ${pos} is not allowed`);
    // A C receiver that stops at the first match and msgpackr (last one wins) would disagree.
    const k = keyDecoder.decode(b.subarray(start, start + len));
    if (seen.has(k)) bad(`duplicate map key ${JSON.stringify(k)} at offset ${pos}`);
    seen.add(k);
    st.path.push(k);
    pos = scan(b, start + len, depth + 1, st);
    st.path.pop();
  }
  return pos;
}
