/**
 * Incremental frame decoder: bytes in any chunking -> frames and errors, in order.
 *
 * Frames end at 0x00. Between delimiters the bytes are COBS-decoded, checked for length and
 * CRC, then the payload is unpacked and validated. A damaged frame is reported without its
 * header and must never be acted on. A frame with a good CRC but an unknown type, a foreign
 * version or a bad payload is reported WITH its header, so a device can answer ERROR on that
 * seq. Garbage glued in front of a good frame (no 0x00 between them) is found and discarded
 * so the frame survives; an accumulation beyond maxFrameBytes is dropped up to the next 0x00.
 */
import { cobsDecode, cobsMaxEncodedLength } from './cobs.ts';
import { crc32c } from './crc32c.ts';
import { ProtocolError } from './errors.ts';
import { CRC_BYTES, HEADER_BYTES, MAX_PAYLOAD, type FrameHeader } from './frame.ts';
import { MIN_PROTOCOL_VERSION, MsgType, PROTOCOL_VERSION, TYPE_SINCE, type Frame, type ReceiveCounters } from './messages.ts';
import { unpackPayload } from './msgpack.ts';
import { fromWire, schemaFor, typeName } from './schemas.ts';

/** A decoded frame, or an error with the header when the CRC was good and, for damaged bytes, how many were dropped. */
export type DecodeEvent = { kind: 'frame'; frame: Frame } | { kind: 'error'; error: ProtocolError; header?: FrameHeader; bytes?: number };

export interface DecoderStats extends ReceiveCounters {
  bytesDiscarded: number;
}

/** Encoded bytes between two delimiters of the largest legal frame. */
export const MAX_FRAME_BYTES = cobsMaxEncodedLength(HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES);

/** Versions whose frames this decoder reads. HELLO and ERROR are read in any version (their shape is frozen). */
const VERSION_FREE_TYPES: ReadonlySet<number> = new Set([MsgType.HELLO, MsgType.ERROR]);

export interface FrameDecoderOptions {
  /** Largest encoded frame (bytes between delimiters) accepted; default MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  /**
   * Header versions read ([lowest, highest]); default every version this implementation speaks.
   * A frame of a type newer than its header version is an unknown type.
   */
  versions?: readonly [number, number];
}

type BodyResult = { ok: true; header: FrameHeader; payload: Uint8Array } | { ok: false; error: ProtocolError };

export class FrameDecoder {
  readonly stats: DecoderStats = {
    framesOk: 0,
    crcErrors: 0,
    framingErrors: 0,
    oversize: 0,
    unknownType: 0,
    badPayload: 0,
    versionErrors: 0,
    bytesDiscarded: 0,
  };
  readonly maxFrameBytes: number;
  readonly versions: readonly [number, number];
  private buf: Uint8Array;
  private len = 0;
  private skipping = false;

  constructor(opts: FrameDecoderOptions = {}) {
    const max = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < HEADER_BYTES + CRC_BYTES + 1) {
      throw new RangeError(`FrameDecoder maxFrameBytes: expected an integer >= ${HEADER_BYTES + CRC_BYTES + 1}, got ${max}`);
    }
    this.maxFrameBytes = max;
    this.versions = opts.versions ?? [MIN_PROTOCOL_VERSION, PROTOCOL_VERSION];
    this.buf = new Uint8Array(Math.min(max, 4096));
  }

  /** Bytes held of an unfinished frame. */
  get pending(): number {
    return this.len;
  }

  /** Forgets a partial frame (e.g. after reopening a port). Counts its bytes as discarded. */
  reset(): void {
    this.stats.bytesDiscarded += this.len;
    this.len = 0;
    this.skipping = false;
  }

  push(bytes: Uint8Array): DecodeEvent[] {
    const out: DecodeEvent[] = [];
    let i = 0;
    const n = bytes.length;
    while (i < n) {
      const z = bytes.indexOf(0, i);
      const end = z < 0 ? n : z;
      if (this.skipping) {
        this.stats.bytesDiscarded += end - i;
      } else if (end > i) {
        this.append(bytes.subarray(i, end), out);
      }
      if (z < 0) break;
      // delimiter
      if (this.skipping) this.skipping = false;
      else if (this.len > 0) this.finish(out);
      i = z + 1;
    }
    return out;
  }

  private append(chunk: Uint8Array, out: DecodeEvent[]): void {
    const need = this.len + chunk.length;
    if (need > this.maxFrameBytes) {
      this.stats.oversize++;
      this.stats.bytesDiscarded += need;
      out.push({
        kind: 'error',
        error: new ProtocolError('oversize', `frame longer than ${this.maxFrameBytes} bytes without a 0x00 delimiter; skipped to the next 0x00`, {
          value: need,
        }),
        bytes: need,
      });
      this.len = 0;
      this.skipping = true;
      return;
    }
    if (need > this.buf.length) {
      const grown = new Uint8Array(Math.min(this.maxFrameBytes, Math.max(need, this.buf.length * 2)));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    this.buf.set(chunk, this.len);
    this.len = need;
  }

  private finish(out: DecodeEvent[]): void {
    const enc = this.buf.subarray(0, this.len);
    this.len = 0;
    let res = parseBody(enc);
    if (!res.ok) {
      const k = findGluedFrame(enc);
      if (k > 0) {
        this.stats.framingErrors++;
        this.stats.bytesDiscarded += k;
        out.push({ kind: 'error', error: new ProtocolError('framing', `${k} bytes of garbage before a frame discarded`, { value: k }), bytes: k });
        res = parseBody(enc.subarray(k));
      }
    }
    if (!res.ok) {
      if (res.error.code === 'crc') this.stats.crcErrors++;
      else this.stats.framingErrors++;
      this.stats.bytesDiscarded += enc.length;
      out.push({ kind: 'error', error: res.error, bytes: enc.length });
      return;
    }
    out.push(this.interpret(res.header, res.payload));
  }

  private interpret(header: FrameHeader, payload: Uint8Array): DecodeEvent {
    const hexType = `0x${header.type.toString(16).padStart(2, '0')}`;
    const [vLo, vHi] = this.versions;
    if ((header.version < vLo || header.version > vHi) && !VERSION_FREE_TYPES.has(header.type)) {
      this.stats.versionErrors++;
      const speaks = vLo === vHi ? `${vLo}` : `${vLo}..${vHi}`;
      return {
        kind: 'error',
        header,
        error: new ProtocolError(
          'version',
          `frame of type ${hexType} has protocol version ${header.version}; this side speaks ${speaks} (say HELLO to negotiate)`,
          {
            field: 'version',
            value: header.version,
          },
        ),
      };
    }
    const name = typeName(header.type);
    const since = name === undefined ? undefined : TYPE_SINCE[name];
    if (since !== undefined && header.version < since) {
      this.stats.unknownType++;
      return {
        kind: 'error',
        header,
        error: new ProtocolError('unknown-type', `type ${hexType} (${name}) exists from protocol ${since} on; this frame is version ${header.version}`, {
          value: header.type,
        }),
      };
    }
    const entry = schemaFor(header.type, header.flags);
    if (!entry) {
      this.stats.unknownType++;
      return {
        kind: 'error',
        header,
        error: new ProtocolError('unknown-type', `no message of type ${hexType} with flags 0x${header.flags.toString(16)} in the catalogue`, {
          value: header.type,
        }),
      };
    }
    try {
      const message = fromWire(entry, unpackPayload(payload));
      this.stats.framesOk++;
      return { kind: 'frame', frame: { ...header, message } };
    } catch (e) {
      this.stats.badPayload++;
      const error =
        e instanceof ProtocolError
          ? e.code === 'bad-payload'
            ? e
            : new ProtocolError('bad-payload', e.message, { field: e.field, value: e.value, cause: e })
          : new ProtocolError('bad-payload', `${entry.label}: ${(e as Error).message}`, { cause: e });
      return { kind: 'error', header, error };
    }
  }
}

/** COBS-decodes and checks one frame's bytes (no delimiter). */
function parseBody(enc: Uint8Array): BodyResult {
  let body: Uint8Array;
  try {
    body = cobsDecode(enc);
  } catch (e) {
    return { ok: false, error: e as ProtocolError };
  }
  const min = HEADER_BYTES + CRC_BYTES;
  if (body.length < min) {
    return {
      ok: false,
      error: new ProtocolError('framing', `frame of ${body.length} bytes is shorter than header + CRC (${min} bytes)`, { value: body.length }),
    };
  }
  const n = body.length - CRC_BYTES;
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const want = dv.getUint32(n, true);
  const got = crc32c(body.subarray(0, n));
  if (want !== got) {
    return {
      ok: false,
      error: new ProtocolError(
        'crc',
        `CRC-32C mismatch: frame says 0x${want.toString(16).padStart(8, '0')}, bytes give 0x${got.toString(16).padStart(8, '0')}`,
      ),
    };
  }
  const payloadLen = dv.getUint16(6, true);
  if (payloadLen !== n - HEADER_BYTES) {
    return {
      ok: false,
      error: new ProtocolError('framing', `header payload length ${payloadLen} disagrees with the ${n - HEADER_BYTES} payload bytes received`, {
        value: payloadLen,
      }),
    };
  }
  return {
    ok: true,
    header: { version: body[0]!, type: body[1]!, flags: body[2]!, seq: dv.getUint16(4, true) },
    payload: body.subarray(HEADER_BYTES, n),
  };
}

/**
 * When bytes between two delimiters do not form a frame, looks for a good frame that starts
 * later (garbage glued in front of it with no 0x00 between). Bytes between delimiters contain
 * no zero, so a start offset k is valid COBS exactly when its block chain lands on the end;
 * both that and the decoded length of every suffix come from one backward pass. Candidates
 * must also agree with their header's length field before the CRC is computed. Returns the
 * smallest such k whose frame passes the CRC, or 0.
 */
function findGluedFrame(enc: Uint8Array): number {
  const n = enc.length;
  const min = HEADER_BYTES + CRC_BYTES;
  // dlen[k] = decoded length of enc[k..n) when its chain lands on n, else -1
  const dlen = new Int32Array(n + 1);
  dlen[n] = 0;
  for (let k = n - 1; k >= 0; k--) {
    const c = enc[k]!;
    const next = k + c;
    if (next === n) dlen[k] = c - 1;
    else if (next < n && dlen[next]! >= 0) dlen[k] = c - 1 + (c < 0xff ? 1 : 0) + dlen[next]!;
    else dlen[k] = -1;
  }
  const head = new Uint8Array(HEADER_BYTES);
  for (let k = 1; k < n; k++) {
    const L = dlen[k]!;
    if (L < min) continue;
    // decode the first 8 bytes of the suffix to read the length field
    let h = 0;
    let p = k;
    while (h < HEADER_BYTES) {
      const c = enc[p]!;
      for (let j = 1; j < c && h < HEADER_BYTES; j++) head[h++] = enc[p + j]!;
      if (h < HEADER_BYTES && c < 0xff) head[h++] = 0;
      p += c;
    }
    if ((head[6]! | (head[7]! << 8)) !== L - min) continue;
    if (parseBody(enc.subarray(k)).ok) return k;
  }
  return 0;
}
