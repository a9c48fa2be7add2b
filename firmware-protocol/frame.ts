/**
 * Frame encoding: `COBS(header | payload | crc32c(header | payload) LE) 0x00`.
 * header = version u8 | type u8 | flags u8 | reserved u8 (0) | seq u16 LE | payload length u16 LE.
 */
import { cobsEncode } from './cobs.ts';
import { crc32c } from './crc32c.ts';
import { ProtocolError } from './errors.ts';
import { packPayload } from './msgpack.ts';
import { schemaFor, toWire } from './schemas.ts';
import { ErrorCode, Flags, MsgType, PROTOCOL_VERSION, TYPE_SINCE, type Catalog, type EventName, type Events, type RequestName } from './messages.ts';

export const HEADER_BYTES = 8;
export const CRC_BYTES = 4;
/** The protocol ceiling of a payload, set by the u16 length field. A device announces its own (smaller) limit in HELLO. */
export const MAX_PAYLOAD = 0xffff;

export interface FrameHeader {
  version: number;
  type: number;
  flags: number;
  seq: number;
}

function checkU(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new ProtocolError('schema', `frame header ${name}: expected an integer in 0..${max}, got ${v}`, { field: name, value: v });
  }
}

/**
 * Assembles the wire bytes of a frame around an already packed payload, without looking at it.
 * Used by encodeFrame and to craft test frames (wrong versions, payloads that break a schema).
 */
export function encodeRawFrame(header: FrameHeader, payload: Uint8Array): Uint8Array {
  checkU('version', header.version, 0xff);
  checkU('type', header.type, 0xff);
  checkU('flags', header.flags, 0xff);
  checkU('seq', header.seq, 0xffff);
  if (payload.length > MAX_PAYLOAD) {
    throw new ProtocolError('oversize', `payload of ${payload.length} bytes exceeds the protocol limit of ${MAX_PAYLOAD}`, { value: payload.length });
  }
  const body = new Uint8Array(HEADER_BYTES + payload.length + CRC_BYTES);
  const dv = new DataView(body.buffer);
  body[0] = header.version;
  body[1] = header.type;
  body[2] = header.flags;
  body[3] = 0;
  dv.setUint16(4, header.seq, true);
  dv.setUint16(6, payload.length, true);
  body.set(payload, HEADER_BYTES);
  const n = HEADER_BYTES + payload.length;
  dv.setUint32(n, crc32c(body.subarray(0, n)), true);
  const enc = cobsEncode(body);
  const wire = new Uint8Array(enc.length + 1);
  wire.set(enc);
  return wire; // last byte stays 0x00: the delimiter
}

export interface EncodeOptions {
  /** Header version byte; default PROTOCOL_VERSION. */
  version?: number;
  /** Refuse payloads larger than this (the peer's announced maxPayload); default MAX_PAYLOAD. */
  maxPayload?: number;
}

/**
 * Validates `message` against the schema selected by (type, flags), packs it and returns the
 * complete wire bytes including the trailing 0x00. Throws ProtocolError naming the field.
 */
export function encodeFrame(type: number, flags: number, seq: number, message: unknown, opts: EncodeOptions = {}): Uint8Array {
  const entry = schemaFor(type, flags);
  if (!entry) {
    throw new ProtocolError('unknown-type', `no message of type 0x${type.toString(16).padStart(2, '0')} with flags 0x${flags.toString(16)} in the catalogue`, {
      value: type,
    });
  }
  const version = opts.version ?? PROTOCOL_VERSION;
  const since = TYPE_SINCE[entry.name];
  if (since !== undefined && version < since) {
    throw new ProtocolError('schema', `${entry.label} exists from protocol ${since} on; it cannot be written in a version ${version} frame`, {
      field: 'version',
      value: version,
    });
  }
  const payload = packPayload(toWire(entry, message));
  const limit = opts.maxPayload ?? MAX_PAYLOAD;
  if (payload.length > limit) {
    throw new ProtocolError(
      'oversize',
      `${entry.label}: payload of ${payload.length} bytes exceeds the limit of ${limit} bytes; split it (see maxCodesPerChunk / maxBatchFor)`,
      { value: payload.length },
    );
  }
  return encodeRawFrame({ version, type, flags, seq }, payload);
}

export function encodeRequest<K extends RequestName>(name: K, seq: number, msg: Catalog[K]['request'], opts?: EncodeOptions): Uint8Array {
  return encodeFrame(MsgType[name], 0, seq, msg, opts);
}

export function encodeResponse<K extends RequestName>(name: K, seq: number, msg: Catalog[K]['response'], opts?: EncodeOptions): Uint8Array {
  return encodeFrame(MsgType[name], Flags.RESPONSE, seq, msg, opts);
}

export function encodeEvent<K extends EventName>(name: K, seq: number, msg: Events[K], opts?: EncodeOptions): Uint8Array {
  return encodeFrame(MsgType[name], Flags.EVENT, seq, msg, opts);
}

/** An ERROR answer to the request with this seq. Messages longer than 1000 characters are cut. */
export function encodeError(seq: number, code: number, message: string, opts?: EncodeOptions): Uint8Array {
  const text = message.length > 1000 ? `${message.slice(0, 997)}...` : message;
  return encodeFrame(MsgType.ERROR, Flags.RESPONSE, seq, { code, message: text }, opts);
}

/** The ErrorCode name of a numeric code, or `CODE_<n>` for codes this side does not know. */
export function errorCodeName(code: number): string {
  for (const [k, v] of Object.entries(ErrorCode)) if (v === code) return k;
  return `CODE_${code}`;
}
