import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cobsDecode } from '../../firmware-protocol/cobs.ts';
import { crc32c } from '../../firmware-protocol/crc32c.ts';
import { ProtocolError } from '../../firmware-protocol/errors.ts';
import { encodeError, encodeFrame, encodeRawFrame, encodeRequest, encodeResponse, MAX_PAYLOAD } from '../../firmware-protocol/frame.ts';
import { ErrorCode, Flags, MsgType, PROTOCOL_VERSION } from '../../firmware-protocol/messages.ts';
import { anyMessage } from './helpers/arbitraries.ts';
import { decodeAll, encodeAny } from './helpers/frames.ts';
import { helloResponse } from './helpers/hello.ts';

function thrown(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('frame layout', () => {
  it('is COBS(header | payload | crc32c LE) followed by 0x00', () => {
    const wire = encodeRequest('WEIGHTS_CRC', 0x1234, { layer: 3 });
    expect(wire[wire.length - 1]).toBe(0);
    expect(wire.subarray(0, -1).includes(0)).toBe(false);
    const body = cobsDecode(wire.subarray(0, -1));
    // payload {"layer": 3} in MessagePack: fixmap(1), fixstr "layer", fixint 3
    const payload = Uint8Array.from([0x81, 0xa5, ...new TextEncoder().encode('layer'), 0x03]);
    expect([...body.subarray(0, 8)]).toEqual([PROTOCOL_VERSION, MsgType.WEIGHTS_CRC, 0, 0, 0x34, 0x12, payload.length, 0]);
    expect(body.subarray(8, 8 + payload.length)).toEqual(payload);
    const crc = crc32c(body.subarray(0, 8 + payload.length));
    expect([...body.subarray(-4)]).toEqual([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24]);
  });

  it('writes u16 arrays as bin with little-endian elements', () => {
    const wire = encodeRequest('RUN', 1, { batch: 1, inputs: Uint16Array.from([0x0102, 0xffff]) });
    const body = cobsDecode(wire.subarray(0, -1));
    const hex = Buffer.from(body.subarray(8, -4)).toString('hex');
    expect(hex).toContain('c404' + '0201' + 'ffff');
  });

  it('sets RESPONSE on responses and ERROR frames and EVENT on events', () => {
    const d = decodeAll(encodeError(9, ErrorCode.BUSY, 'busy'));
    expect(d[0]).toMatchObject({ kind: 'frame', frame: { type: MsgType.ERROR, flags: Flags.RESPONSE, seq: 9, message: { code: 6, message: 'busy' } } });
  });
});

describe('round trip', () => {
  it('decodes every valid message of every type and direction to itself', () => {
    fc.assert(
      fc.property(anyMessage, fc.integer({ min: 0, max: 0xffff }), (m, seq) => {
        const events = decodeAll(encodeAny(m, seq));
        expect(events).toHaveLength(1);
        const ev = events[0]!;
        if (ev.kind !== 'frame') throw ev.error;
        expect(ev.frame.seq).toBe(seq);
        expect(ev.frame.version).toBe(PROTOCOL_VERSION);
        expect(ev.frame.message).toEqual(m.msg);
      }),
      { numRuns: 400 },
    );
  });

  it('encodes a message the same way twice (deterministic bytes)', () => {
    fc.assert(fc.property(anyMessage, (m) => Buffer.from(encodeAny(m, 1)).equals(Buffer.from(encodeAny(m, 1)))));
  });

  it('drops unknown map keys on decode (forward compatibility)', () => {
    const payload = Uint8Array.from([0x82, 0xa5, ...new TextEncoder().encode('layer'), 0x02, 0xa3, 0x6e, 0x65, 0x77, 0xc3]);
    const d = decodeAll(encodeRawFrame({ version: 1, type: MsgType.WEIGHTS_CRC, flags: 0, seq: 5 }, payload));
    expect(d[0]).toMatchObject({ kind: 'frame', frame: { message: { layer: 2 } } });
    expect((d[0] as { frame: { message: object } }).frame.message).not.toHaveProperty('new');
  });
});

describe('encode refuses invalid messages, naming the field', () => {
  it.each<[string, () => unknown, string]>([
    ['RUN inputs not a multiple of batch', () => encodeRequest('RUN', 1, { batch: 2, inputs: new Uint16Array(3) }), 'RUN.inputs'],
    ['RUN batch 0', () => encodeRequest('RUN', 1, { batch: 0, inputs: new Uint16Array(3) }), 'RUN.batch'],
    ['layer above u8', () => encodeRequest('WEIGHTS_CRC', 1, { layer: 256 }), 'WEIGHTS_CRC.layer'],
    [
      'codes of the wrong array type',
      () => encodeRequest('WEIGHTS_WRITE', 1, { layer: 0, offset: 0, codes: new Uint8Array(2) as never }),
      'WEIGHTS_WRITE.codes',
    ],
    ['empty codes', () => encodeRequest('WEIGHTS_WRITE', 1, { layer: 0, offset: 0, codes: new Uint16Array(0) }), 'WEIGHTS_WRITE.codes'],
    ['NaN voltage', () => encodeRequest('NEURON_CONFIG', 1, { layer: 0, vRest: NaN }), 'NEURON_CONFIG.vRest'],
    ['empty host name', () => encodeRequest('HELLO', 1, { hostProtocol: 1, host: '' }), 'HELLO.host'],
    ['fractional nonce', () => encodeRequest('PING', 1, { nonce: 0.5 }), 'PING.nonce'],
    [
      'rowPolarity shorter than rowInput',
      () =>
        encodeResponse(
          'HELLO',
          1,
          helloResponse({
            layers: [{ inputs: 2, outputs: 1, rowInput: Uint16Array.from([0, 0, 1, 1]), rowPolarity: Uint8Array.from([0, 1, 0]), horizonTicks: 10 }],
          }),
        ),
      'HELLO response.layers[0].rowPolarity',
    ],
    [
      'layers that do not chain',
      () =>
        encodeResponse(
          'HELLO',
          1,
          helloResponse({
            layers: [
              { inputs: 1, outputs: 2, rowInput: Uint16Array.from([0]), rowPolarity: Uint8Array.from([0]), horizonTicks: 10 },
              { inputs: 3, outputs: 1, rowInput: Uint16Array.from([0]), rowPolarity: Uint8Array.from([0]), horizonTicks: 10 },
            ],
          }),
        ),
      'HELLO response.layers[1].inputs',
    ],
    ['progress done > total', () => encodeFrame(MsgType.PROGRESS, Flags.EVENT, 1, { task: 't', done: 3, total: 2 }), 'PROGRESS.done'],
    ['error code 0', () => encodeError(1, 0, 'x'), 'ERROR.code'],
  ])('%s', (_n, fn, where) => {
    const e = thrown(fn);
    expect(e.code).toBe('schema');
    expect(e.message.startsWith(`${where}: `)).toBe(true);
  });

  it('reports the expected and actual value', () => {
    const e = thrown(() => encodeRequest('WEIGHTS_CRC', 1, { layer: 300 }));
    expect(e.message).toBe('WEIGHTS_CRC.layer: expected an integer in 0..255, got 300');
    expect(e.field).toBe('layer');
    expect(e.value).toBe(300);
  });

  it('refuses types and flag combinations outside the catalogue', () => {
    expect(thrown(() => encodeFrame(0x44, 0, 1, {})).code).toBe('unknown-type');
    expect(thrown(() => encodeFrame(MsgType.HELLO, Flags.EVENT, 1, {})).code).toBe('unknown-type');
    expect(thrown(() => encodeFrame(MsgType.LOG, 0, 1, { level: 'info', text: '' })).code).toBe('unknown-type');
  });

  it('refuses bad header fields and payloads above the limit', () => {
    expect(thrown(() => encodeRequest('STATUS', 0x10000, {})).message).toMatch(/seq/);
    const big = { nonce: 1, data: new Uint8Array(MAX_PAYLOAD) };
    expect(thrown(() => encodeRequest('PING', 1, big)).code).toBe('oversize');
    expect(thrown(() => encodeRequest('PING', 1, { nonce: 1, data: new Uint8Array(200) }, { maxPayload: 100 })).code).toBe('oversize');
  });
});
