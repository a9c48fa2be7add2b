/**
 * PROTOCOL.md section 2: integers are integers (a float 1.0 in an integer field is refused, a
 * float in a number field is accepted) and a map has each key once. msgpackr alone reads
 * float64 1.0 as 1 and keeps the last of two equal keys, so both need the strict scan.
 */
import { describe, expect, it } from 'vitest';
import { encodeRawFrame, FrameDecoder, MsgType, unpackPayload, ProtocolError } from '../../firmware-protocol/index.ts';

const te = new TextEncoder();
const str = (k: string) => [0xa0 | k.length, ...te.encode(k)];
const f64 = (v: number) => {
  const b = new Uint8Array(9);
  b[0] = 0xcb;
  new DataView(b.buffer).setFloat64(1, v);
  return [...b];
};
const f32 = (v: number) => {
  const b = new Uint8Array(5);
  b[0] = 0xca;
  new DataView(b.buffer).setFloat32(1, v);
  return [...b];
};

function decode(type: number, payload: number[]) {
  const evs = new FrameDecoder().push(encodeRawFrame({ version: 1, type, flags: 0, seq: 5 }, Uint8Array.from(payload)));
  expect(evs).toHaveLength(1);
  return evs[0]!;
}

describe('strict payloads', () => {
  it.each([
    [
      'RUN.batch float64 1.0',
      MsgType.RUN,
      [0x82, ...str('batch'), ...f64(1), ...str('inputs'), 0xc4, 2, 0, 0],
      /RUN\.batch: expected an integer.*got 1 \(a MessagePack float\)/,
    ],
    [
      'WEIGHTS_WRITE.layer float32 1.0',
      MsgType.WEIGHTS_WRITE,
      [0x83, ...str('layer'), ...f32(1), ...str('offset'), 0, ...str('codes'), 0xc4, 2, 1, 0],
      /WEIGHTS_WRITE\.layer: expected an integer/,
    ],
    [
      'WEIGHTS_WRITE.layer float64 1.5',
      MsgType.WEIGHTS_WRITE,
      [0x83, ...str('layer'), ...f64(1.5), ...str('offset'), 0, ...str('codes'), 0xc4, 2, 1, 0],
      /WEIGHTS_WRITE\.layer: expected an integer/,
    ],
    [
      'WEIGHTS_WRITE.offset float64 0.0',
      MsgType.WEIGHTS_WRITE,
      [0x83, ...str('layer'), 0, ...str('offset'), ...f64(0), ...str('codes'), 0xc4, 2, 1, 0],
      /WEIGHTS_WRITE\.offset: expected an integer/,
    ],
    ['PING.nonce float64 -0.0', MsgType.PING, [0x81, ...str('nonce'), ...f64(-0)], /PING\.nonce: expected an integer/],
  ])('refuses a float in an integer field: %s', (_n, type, payload, msg) => {
    const ev = decode(type, payload);
    expect(ev.kind).toBe('error');
    if (ev.kind !== 'error') return;
    expect(ev.error.code).toBe('bad-payload');
    expect(ev.error.message).toMatch(msg);
  });

  it('accepts floats and ints in number fields, also inside arrays', () => {
    const ev = decode(MsgType.NEURON_CONFIG, [0x83, ...str('layer'), 1, ...str('vRest'), ...f64(1), ...str('vThreshold'), ...f32(0.5)]);
    if (ev.kind !== 'frame') throw ev.error;
    expect(ev.frame.message).toEqual({ layer: 1, vRest: 1, vThreshold: 0.5 });
    expect(typeof (ev.frame.message as { vRest: unknown }).vRest).toBe('number');
    const v = unpackPayload(Uint8Array.from([0x81, ...str('w'), 0x92, ...f64(2), 3])) as { w: unknown[] };
    expect(v.w[0]).toBeInstanceOf(Number);
    expect(v.w[1]).toBe(3);
  });

  it.each([
    ['top level', [0x82, ...str('layer'), 1, ...str('layer'), 2]],
    ['nested', [0x81, ...str('m'), 0x82, ...str('a'), 1, ...str('a'), 1]],
    ['equal keys in different encodings (fixstr, str8)', [0x82, ...str('layer'), 1, 0xd9, 5, ...te.encode('layer'), 1]],
  ])('refuses duplicate map keys: %s', (_n, payload) => {
    expect(() => unpackPayload(Uint8Array.from(payload))).toThrow(ProtocolError);
    expect(() => unpackPayload(Uint8Array.from(payload))).toThrow(/duplicate map key/);
  });

  it('a frame with a duplicate key is a bad payload with its header (answerable)', () => {
    const ev = decode(MsgType.WEIGHTS_CRC, [0x82, ...str('layer'), 1, ...str('layer'), 0]);
    expect(ev.kind).toBe('error');
    if (ev.kind === 'error') {
      expect(ev.error.code).toBe('bad-payload');
      expect(ev.header?.seq).toBe(5);
    }
  });
});
