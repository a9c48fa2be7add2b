/** Test helpers: encode any tagged message, decode a byte string completely. */
import { encodeError, encodeEvent, encodeRequest, encodeResponse } from '../../../firmware-protocol/frame.ts';
import { FrameDecoder, type DecodeEvent } from '../../../firmware-protocol/decoder.ts';
import type { AnyMessage } from './arbitraries.ts';

export function encodeAny(m: AnyMessage, seq: number): Uint8Array {
  switch (m.dir) {
    case 'request':
      return encodeRequest(m.name, seq, m.msg as never);
    case 'response':
      return encodeResponse(m.name, seq, m.msg as never);
    case 'event':
      return encodeEvent(m.name, seq, m.msg as never);
    case 'error':
      return encodeError(seq, m.msg.code, m.msg.message);
  }
}

export function decodeAll(bytes: Uint8Array, opts?: { maxFrameBytes?: number }): DecodeEvent[] {
  return new FrameDecoder(opts).push(bytes);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
