/**
 * The board's protocol-2 messages: RUN_PACKED gives the same spikes as RUN, for the layers
 * asked; WEIGHTS_PATCH writes the same memory as WEIGHTS_WRITE and, like it, writes nothing of
 * a frame that has an unsafe code or a cell past the end. A version-1 board refuses both.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { MockBoard } from '../../../firmware-protocol/mock-board/board.ts';
import { FrameDecoder } from '../../../firmware-protocol/decoder.ts';
import { encodeRequest } from '../../../firmware-protocol/frame.ts';
import { ErrorCode, Flags, MsgType, type Catalog, type Frame, type RequestName } from '../../../firmware-protocol/messages.ts';
import { decodeRecords, encodeRecords } from '../../../firmware-protocol/spike-records.ts';
import { encodePatch } from '../../../firmware-protocol/weight-patch.ts';
import { maxPackedBatchFor } from '../../../firmware-protocol/limits.ts';
import { ToyChip } from '../helpers/toy-chip.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

let chip: ToyChip;
let board: MockBoard;
let seq = 0;

beforeEach(() => {
  chip = new ToyChip({
    layers: [
      [6, 5],
      [5, 3],
    ],
    horizonTicks: [300, 400],
  });
  board = new MockBoard(chip, { maxPayload: 512 });
});

async function exchange<K extends RequestName>(name: K, msg: Catalog[K]['request'], version = 2): Promise<Frame> {
  const s = ++seq;
  const evs = new FrameDecoder({ versions: [board.minProtocol, board.protocol] }).push(encodeRequest(name, s, msg, { version }));
  const out: Uint8Array[] = [];
  for (const ev of evs) out.push(...(await board.handle(ev)));
  const frames = out.flatMap((f) => new FrameDecoder().push(f));
  expect(frames).toHaveLength(1);
  const ev = frames[0]!;
  if (ev.kind !== 'frame') throw ev.error;
  expect(ev.frame).toMatchObject({ seq: s, flags: Flags.RESPONSE, version });
  return ev.frame;
}
async function ask<K extends RequestName>(name: K, msg: Catalog[K]['request'], version = 2): Promise<Catalog[K]['response']> {
  const f = await exchange(name, msg, version);
  if (f.type === MsgType.ERROR) throw new Error((f.message as { message: string }).message);
  return f.message as Catalog[K]['response'];
}
async function refusal<K extends RequestName>(name: K, msg: Catalog[K]['request'], version = 2): Promise<{ code: number; message: string }> {
  const f = await exchange(name, msg, version);
  expect(f.type).toBe(MsgType.ERROR);
  return f.message as { code: number; message: string };
}

/** Strong NMOS synapses everywhere, so spikes happen. */
async function loud(): Promise<void> {
  for (let l = 0; l < 2; l++) {
    const g = chip.geometry[l]!;
    const codes = new Uint16Array(g.rowInput.length * g.outputs);
    for (let r = 0; r < g.rowInput.length; r++) codes.fill(g.rowPolarity[r] === 0 ? Math.min(682, 600 + 8 * r) : 780, r * g.outputs, (r + 1) * g.outputs);
    await ask('WEIGHTS_WRITE', { layer: l, offset: 0, codes }, 1);
  }
}

describe('MockBoard: RUN_PACKED', () => {
  it('gives the spikes RUN gives, for every layer or the ones asked for', async () => {
    await loud();
    const batch = 4;
    const inputs = new Uint16Array(batch * 6).fill(SILENT_TICK);
    inputs.set([0, 5, SILENT_TICK, 20, SILENT_TICK, SILENT_TICK], 0); // some inputs
    inputs.set([3, 3, 3, 3, 3, 3], 6); // all inputs
    inputs[15] = 100; // one input (sample 2); sample 3 silent
    const ref = await ask('RUN', { batch, inputs }, 1);
    const all = await ask('RUN_PACKED', { batch, inputs: encodeRecords(inputs, batch, 6) });
    expect([...all.layers]).toEqual([0, 1]);
    expect(decodeRecords(all.spikes[0]!, batch, 5, 'l0')).toEqual(ref.layers[0]);
    expect(decodeRecords(all.spikes[1]!, batch, 3, 'l1')).toEqual(ref.layers[1]);
    expect(ref.layers[1]!.some((t) => t !== SILENT_TICK)).toBe(true); // the comparison is not all-silent
    const one = await ask('RUN_PACKED', { batch, inputs: encodeRecords(inputs, batch, 6), layers: Uint8Array.of(1) });
    expect([...one.layers]).toEqual([1]);
    expect(one.spikes).toHaveLength(1);
    expect(decodeRecords(one.spikes[0]!, batch, 3, 'l1')).toEqual(ref.layers[1]);
  });

  it('refuses a missing layer, a batch whose worst-case reply exceeds maxPayload, and malformed records', async () => {
    const inputs = encodeRecords(new Uint16Array(6).fill(SILENT_TICK), 1, 6);
    expect(await refusal('RUN_PACKED', { batch: 1, inputs, layers: Uint8Array.of(0, 2) })).toMatchObject({
      code: ErrorCode.BAD_LAYER,
      message: expect.stringMatching(/layer 2/),
    });
    const b = maxPackedBatchFor(512, [5, 3]);
    const many = encodeRecords(new Uint16Array((b + 1) * 6).fill(SILENT_TICK), b + 1, 6);
    expect(await refusal('RUN_PACKED', { batch: b + 1, inputs: many })).toMatchObject({
      code: ErrorCode.TOO_LARGE,
      message: expect.stringMatching(/split the batch/),
    });
    expect((await ask('RUN_PACKED', { batch: b, inputs: many.subarray(0, b) })).batch).toBe(b);
    expect(await refusal('RUN_PACKED', { batch: 2, inputs })).toMatchObject({
      code: ErrorCode.BAD_PAYLOAD,
      message: expect.stringMatching(/RUN_PACKED\.inputs: 2 records expected/),
    });
    expect(await refusal('RUN_PACKED', { batch: 1, inputs: Uint8Array.of(0x04, 0x06, 0x01) })).toMatchObject({
      code: ErrorCode.BAD_PAYLOAD,
      message: expect.stringMatching(/line 6 is past the last of 6 lines/),
    });
  });
});

describe('MockBoard: WEIGHTS_PATCH', () => {
  it('writes the same memory as WEIGHTS_WRITE of the whole layer', async () => {
    const prev = board.readWeights(0);
    const next = prev.slice();
    for (const [i, c] of [
      [0, 500],
      [1, 501],
      [2, 502],
      [3, 503],
      [9, 400],
      [29, 610],
    ] as const)
      next[i] = c; // row 0 NMOS, rows 1 and 5 PMOS
    const frames = encodePatch(prev, next, 60, chip.dac.bits);
    for (const f of frames)
      expect(await ask('WEIGHTS_PATCH', { layer: 0, offset: f.offset, data: f.data })).toEqual({ layer: 0, offset: f.offset, count: f.count });
    expect(board.readWeights(0)).toEqual(next);
  });

  it('writes nothing of a frame with an unsafe code or a cell past the end', async () => {
    const before = board.readWeights(0);
    const g = chip.geometry[0]!;
    const size = g.rowInput.length * g.outputs;
    const next = before.slice();
    next[0] = 500; // fine
    next[6] = 2; // row 1 is PMOS: code 2 drives 0 V, far below its window
    const [f] = encodePatch(before, next, 100, chip.dac.bits);
    expect(await refusal('WEIGHTS_PATCH', { layer: 0, offset: f!.offset, data: f!.data })).toMatchObject({
      code: ErrorCode.OUT_OF_RANGE,
      message: expect.stringMatching(/nothing of this chunk was written/),
    });
    expect(board.readWeights(0)).toEqual(before);
    // one sparse entry at cell size (gap 0 from offset size)
    expect(await refusal('WEIGHTS_PATCH', { layer: 0, offset: size, data: Uint8Array.of(0x02, 0xf4, 0x03) })).toMatchObject({
      code: ErrorCode.OUT_OF_RANGE,
      message: expect.stringMatching(/past the end/),
    });
    expect(await refusal('WEIGHTS_PATCH', { layer: 5, offset: 0, data: Uint8Array.of(0x02, 0x00) })).toMatchObject({ code: ErrorCode.BAD_LAYER });
    expect(await refusal('WEIGHTS_PATCH', { layer: 0, offset: 0, data: Uint8Array.of(0x00) })).toMatchObject({
      code: ErrorCode.BAD_PAYLOAD,
      message: expect.stringMatching(/WEIGHTS_PATCH\.data/),
    });
    expect(board.readWeights(0)).toEqual(before);
  });
});

describe('a version-1 board', () => {
  it('refuses the protocol-2 messages, and a version-2 frame, but serves version 1', async () => {
    board = new MockBoard(chip, { protocol: 1 });
    const f = await exchange('RUN_PACKED', { batch: 1, inputs: Uint8Array.of(0) }, 2).catch((e) => e);
    // its decoder does not read version 2: ERROR VERSION, sent in its own version
    expect(f).toBeInstanceOf(Error);
    const s = ++seq;
    const evs = new FrameDecoder({ versions: [1, 1] }).push(
      encodeRequest('WEIGHTS_PATCH', s, { layer: 0, offset: 0, data: Uint8Array.of(2, 0) }, { version: 2 }),
    );
    const out = (await board.handle(evs[0]!)).flatMap((b) => new FrameDecoder().push(b));
    expect(out[0]).toMatchObject({ kind: 'frame', frame: { version: 1, type: MsgType.ERROR, seq: s, message: { code: ErrorCode.VERSION } } });
    expect((await ask('WEIGHTS_CRC', { layer: 0 }, 1)).layer).toBe(0);
  });
});

describe('MockBoard: NAK', () => {
  /** What the board sends back for these bytes, decoded. */
  async function answers(bytes: Uint8Array): Promise<Frame[]> {
    const out: Uint8Array[] = [];
    for (const ev of new FrameDecoder({ versions: [board.minProtocol, board.protocol] }).push(bytes)) out.push(...(await board.handle(ev)));
    return out.flatMap((f) => new FrameDecoder().push(f)).map((ev) => (ev.kind === 'frame' ? ev.frame : Promise.reject(ev.error)) as Frame);
  }
  const damaged = () => {
    const f = encodeRequest('PING', 9, { nonce: 1 }, { version: 2 });
    f[5] = f[5] === 0x42 ? 0x43 : 0x42; // a changed byte inside the frame: the CRC fails
    return f;
  };

  it('answers a damaged frame with a NAK event once a version-2 session is negotiated, and nothing in version 1', async () => {
    expect(await answers(damaged())).toEqual([]); // no HELLO yet: the session is version 1
    await ask('HELLO', { hostProtocol: 2, host: 'test' });
    const [nak1] = await answers(damaged());
    // `after`: the seq of the last intact request, here the HELLO
    expect(nak1).toMatchObject({ type: MsgType.NAK, flags: Flags.EVENT, version: 2, message: { error: 'crc', damaged: 1, after: seq } });
    await ask('STATUS', {});
    const [nak2] = await answers(damaged());
    expect(nak2!.message).toEqual({ error: 'crc', damaged: 2, after: seq });
    expect(nak2!.seq).toBe((nak1!.seq + 1) & 0xffff);
    await ask('HELLO', { hostProtocol: 1, host: 'test' }, 1);
    expect(await answers(damaged())).toEqual([]);
  });

  it('sends no NAK for line garbage too short to be a frame glued in front of a good one', async () => {
    await ask('HELLO', { hostProtocol: 2, host: 'test' });
    const good = encodeRequest('PING', 10, { nonce: 2 }, { version: 2 });
    const frames = await answers(Uint8Array.from([0x13, 0x37, ...good]));
    expect(frames.map((f) => f.type)).toEqual([MsgType.PING]);
  });
});
