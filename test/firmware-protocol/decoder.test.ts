import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder, MAX_FRAME_BYTES, type DecodeEvent } from '../../firmware-protocol/decoder.ts';
import { encodeRawFrame, encodeRequest, MAX_PAYLOAD } from '../../firmware-protocol/frame.ts';
import { cobsEncode } from '../../firmware-protocol/cobs.ts';
import { crc32c } from '../../firmware-protocol/crc32c.ts';
import { Flags, MsgType } from '../../firmware-protocol/messages.ts';
import { anyMessage } from './helpers/arbitraries.ts';
import { concat, decodeAll, encodeAny } from './helpers/frames.ts';

const frames = (evs: DecodeEvent[]) => evs.filter((e) => e.kind === 'frame').map((e) => (e as { frame: unknown }).frame);
const errors = (evs: DecodeEvent[]) => evs.filter((e) => e.kind === 'error') as Extract<DecodeEvent, { kind: 'error' }>[];
const msgpack = (...b: number[]) => Uint8Array.from(b);
const str = (s: string) => [0xa0 | s.length, ...new TextEncoder().encode(s)];

describe('FrameDecoder: frames with a good CRC but nothing to act on', () => {
  it('reports an unknown type with its header', () => {
    const evs = decodeAll(encodeRawFrame({ version: 1, type: 0x44, flags: 0, seq: 77 }, msgpack(0x80)));
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ kind: 'error', error: { code: 'unknown-type' }, header: { type: 0x44, seq: 77 } });
  });

  it('reports a catalogue type with a flag it has no schema for as unknown', () => {
    const d = new FrameDecoder();
    d.push(encodeRawFrame({ version: 1, type: MsgType.RUN, flags: Flags.EVENT, seq: 1 }, msgpack(0x80)));
    d.push(encodeRawFrame({ version: 1, type: MsgType.PROGRESS, flags: 0, seq: 2 }, msgpack(0x80)));
    expect(d.stats.unknownType).toBe(2);
  });

  it('reports a foreign version with its header, except for HELLO and ERROR', () => {
    const run = encodeRawFrame({ version: 3, type: MsgType.STATUS, flags: 0, seq: 5 }, msgpack(0x80));
    expect(decodeAll(run)[0]).toMatchObject({ kind: 'error', error: { code: 'version' }, header: { version: 3, seq: 5 } });
    // a decoder limited to version 1 (a board from before protocol 2) refuses version-2 frames
    const v2 = encodeRawFrame({ version: 2, type: MsgType.STATUS, flags: 0, seq: 7 }, msgpack(0x80));
    expect(new FrameDecoder({ versions: [1, 1] }).push(v2)[0]).toMatchObject({ kind: 'error', error: { code: 'version' }, header: { version: 2, seq: 7 } });
    expect(decodeAll(v2)[0]).toMatchObject({ kind: 'frame', frame: { version: 2, seq: 7 } });
    const hello = encodeRawFrame({ version: 7, type: MsgType.HELLO, flags: 0, seq: 6 }, msgpack(0x82, ...str('hostProtocol'), 7, ...str('host'), ...str('h')));
    expect(decodeAll(hello)[0]).toMatchObject({ kind: 'frame', frame: { version: 7, message: { hostProtocol: 7, host: 'h' } } });
  });

  it.each<[string, Uint8Array, RegExp]>([
    ['an empty payload', msgpack(), /empty/],
    ['a schema violation', msgpack(0x81, ...str('layer'), 0xcd, 0x01, 0x00), /WEIGHTS_CRC\.layer: expected an integer in 0\.\.255, got 256/],
    ['a missing field', msgpack(0x80), /WEIGHTS_CRC\.layer/],
    ['trailing bytes', msgpack(0x81, ...str('layer'), 1, 0xc0), /trailing/],
    ['an extension type (timestamp)', msgpack(0x81, ...str('layer'), 0xd6, 0xff, 0, 0, 0, 0), /extension/],
    ['an integer map key', msgpack(0x81, 0x01, 0x01), /not a string/],
    ['a __proto__ key', msgpack(0x81, ...str('__proto__'), 0x80), /__proto__/],
    ['the never-used byte 0xc1', msgpack(0x81, ...str('layer'), 0xc1), /0xc1/],
    ['a truncated value', msgpack(0x81, ...str('layer'), 0xcd, 0x01), /truncated/],
    ['an absurd array length', msgpack(0xdd, 0xff, 0xff, 0xff, 0xff), /cannot fit/],
  ])('reports %s as bad-payload with its header', (_n, payload, re) => {
    const evs = decodeAll(encodeRawFrame({ version: 1, type: MsgType.WEIGHTS_CRC, flags: 0, seq: 9 }, payload));
    expect(evs).toHaveLength(1);
    const e = errors(evs)[0]!;
    expect(e.error.code).toBe('bad-payload');
    expect(e.error.message).toMatch(re);
    expect(e.header).toEqual({ version: 1, type: MsgType.WEIGHTS_CRC, flags: 0, seq: 9 });
  });

  it('refuses a u16 array of odd byte length', () => {
    const payload = msgpack(0x82, ...str('batch'), 1, ...str('inputs'), 0xc4, 3, 1, 2, 3);
    const e = errors(decodeAll(encodeRawFrame({ version: 1, type: MsgType.RUN, flags: 0, seq: 1 }, payload)))[0]!;
    expect(e.error.message).toMatch(/^RUN\.inputs: bin length must be even/);
  });
});

describe('FrameDecoder: damaged frames are never acted on', () => {
  const good = encodeRequest('WEIGHTS_CRC', 3, { layer: 1 });

  it('reports a flipped bit as a CRC error without a header', () => {
    const bad = good.slice();
    bad[12] ^= 0x01; // a payload byte, which stays non-zero
    expect(bad.subarray(0, -1).includes(0)).toBe(false);
    const evs = decodeAll(bad);
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ kind: 'error', error: { code: 'crc' } });
    expect(errors(evs)[0]!.header).toBeUndefined();
  });

  it('reports a frame shorter than header + CRC as framing', () => {
    const evs = decodeAll(concat(cobsEncode(Uint8Array.from([1, 2, 3, 4, 5])), Uint8Array.of(0)));
    expect(evs).toMatchObject([{ kind: 'error', error: { code: 'framing' } }]);
  });

  it('reports a length field that disagrees with the payload as framing, even with a good CRC', () => {
    const body = Uint8Array.from([1, MsgType.STATUS, 0, 0, 1, 0, 5, 0, 0x80]);
    const crc = new Uint8Array(4);
    new DataView(crc.buffer).setUint32(0, crc32c(body), true);
    const evs = decodeAll(concat(cobsEncode(concat(body, crc)), Uint8Array.of(0)));
    expect(evs).toMatchObject([{ kind: 'error', error: { code: 'framing', message: expect.stringMatching(/length/) } }]);
    expect(errors(evs)[0]!.header).toBeUndefined();
  });

  it('ignores empty frames (consecutive delimiters) silently', () => {
    const evs = decodeAll(concat(Uint8Array.of(0, 0, 0), good, Uint8Array.of(0)));
    expect(evs).toHaveLength(1);
    expect(evs[0]!.kind).toBe('frame');
  });

  it('drops a frame longer than maxFrameBytes and resynchronises on the next 0x00', () => {
    const d = new FrameDecoder({ maxFrameBytes: 100 });
    const junk = new Uint8Array(250).fill(0x55);
    const evs = [...d.push(junk.subarray(0, 120)), ...d.push(junk.subarray(120)), ...d.push(concat(Uint8Array.of(0), good))];
    expect(errors(evs).map((e) => e.error.code)).toEqual(['oversize']);
    expect(frames(evs)).toHaveLength(1);
    expect(d.stats.oversize).toBe(1);
    expect(d.stats.bytesDiscarded).toBe(250);
  });

  it('accepts the largest legal frame by default', () => {
    const big = encodeRequest('PING', 1, { nonce: 1, data: new Uint8Array(MAX_PAYLOAD - 30).fill(1) });
    expect(big.length - 1).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(frames(decodeAll(big))).toHaveLength(1);
  });

  it('detects every corruption of a frame and never decodes it into a different message', () => {
    const corruption = fc.oneof(
      fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('drop' as const), at: fc.nat(), bit: fc.constant(0) }),
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(anyMessage, fc.array(corruption, { minLength: 1, maxLength: 3 }), anyMessage, (m, cs, next) => {
        const wire = encodeAny(m, 100);
        const body = [...wire.subarray(0, -1)];
        for (const c of cs) {
          const at = c.at % (body.length + (c.op === 'insert' ? 1 : 0));
          if (c.op === 'flip') body[at]! ^= 1 << c.bit;
          else if (c.op === 'drop') body.splice(at, 1);
          else body.splice(at, 0, c.bit);
        }
        const corrupted = Uint8Array.from(body);
        const follower = encodeAny(next, 200);
        const evs = decodeAll(concat(corrupted, Uint8Array.of(0), follower));
        const got = frames(evs) as { seq: number; message: unknown }[];
        // the frame after the damage always survives
        expect(got.at(-1)).toMatchObject({ seq: 200 });
        expect(got.at(-1)!.message).toEqual(next.msg);
        const before = got.slice(0, -1);
        if (errors(evs).length === 0) {
          // undetected only when the bytes still mean exactly the original frame
          expect(before).toHaveLength(1);
          expect(before[0]).toMatchObject({ seq: 100 });
          expect(before[0]!.message).toEqual(m.msg);
        }
        for (const f of before) {
          expect(f.seq).toBe(100);
          expect(f.message).toEqual(m.msg);
        }
        // a damaged frame is never reported with a header
        for (const e of errors(evs)) if (['crc', 'framing', 'oversize'].includes(e.error.code)) expect(e.header).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('never loses the frame after random garbage, with or without a delimiter in between', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.boolean(), anyMessage, anyMessage, (garbage, delimit, a, b) => {
        const fa = encodeAny(a, 1);
        const fb = encodeAny(b, 2);
        const stream = concat(fa, garbage, delimit ? Uint8Array.of(0) : new Uint8Array(), fb);
        const got = frames(decodeAll(stream)) as { seq: number; message: unknown }[];
        expect(got[0]).toMatchObject({ seq: 1 });
        expect(got[0]!.message).toEqual(a.msg);
        expect(got.at(-1)).toMatchObject({ seq: 2 });
        expect(got.at(-1)!.message).toEqual(b.msg);
      }),
      { numRuns: 300 },
    );
  });

  it('counts the garbage it discards in front of a glued frame', () => {
    const d = new FrameDecoder();
    const evs = d.push(concat(Uint8Array.of(0x11, 0x22, 0x33), good));
    expect(evs.map((e) => e.kind)).toEqual(['error', 'frame']);
    expect(errors(evs)[0]!.error.code).toBe('framing');
    expect(d.stats).toMatchObject({ framingErrors: 1, bytesDiscarded: 3, framesOk: 1 });
  });
});

describe('FrameDecoder: chunking', () => {
  it('gives the same events byte by byte, in random chunks and all at once', () => {
    const item = fc.oneof(
      anyMessage.map((m) => ({ m, g: null as Uint8Array | null })),
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((g) => ({ m: null, g })),
    );
    fc.assert(
      fc.property(
        fc.array(item, { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        (items, sizes) => {
          const stream = concat(...items.map((it, i) => (it.m ? encodeAny(it.m, i) : it.g!)));
          const whole = decodeAll(stream);
          const bytewise = new FrameDecoder();
          const one: DecodeEvent[] = [];
          for (let i = 0; i < stream.length; i++) one.push(...bytewise.push(stream.subarray(i, i + 1)));
          const chunked = new FrameDecoder();
          const many: DecodeEvent[] = [];
          for (let i = 0, k = 0; i < stream.length; k++) {
            const n = sizes[k % sizes.length]!;
            many.push(...chunked.push(stream.subarray(i, i + n)));
            i += n;
          }
          expect(one).toEqual(whole);
          expect(many).toEqual(whole);
          expect(bytewise.stats).toEqual(chunked.stats);
        },
      ),
      { numRuns: 150 },
    );
  });
});
