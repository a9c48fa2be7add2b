import { beforeEach, describe, expect, it } from 'vitest';
import { MockBoard } from '../../../firmware-protocol/mock-board/board.ts';
import { FrameDecoder, type DecodeEvent } from '../../../firmware-protocol/decoder.ts';
import { encodeRawFrame, encodeRequest, encodeResponse } from '../../../firmware-protocol/frame.ts';
import { crc32c } from '../../../firmware-protocol/crc32c.ts';
import { maxBatchFor } from '../../../firmware-protocol/limits.ts';
import { ErrorCode, Flags, MsgType, type Catalog, type Frame, type RequestName } from '../../../firmware-protocol/messages.ts';
import { GAIN, ToyChip, VT_N } from '../helpers/toy-chip.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

const STEP = 1.8 / 1023; // the toy chip's 10-bit DAC over 0..1.8 V
/** Independent reference of the code windows: brute force over all codes. */
const codesIn = (lo: number, hi: number) => [...Array(1024).keys()].filter((c) => c * STEP >= lo - 1e-12 && c * STEP <= hi + 1e-12);
const NMOS_CODES = codesIn(0.4, 1.2);
const PMOS_CODES = codesIn(0.6, 1.4);
const NMOS_OFF = NMOS_CODES[0]!;
const PMOS_OFF = PMOS_CODES.at(-1)!;

type Reply = { frames: Frame[]; errors: DecodeEvent[] };

let chip: ToyChip;
let board: MockBoard;
let now: number;
let seq = 0;

async function send(wire: Uint8Array): Promise<Reply> {
  const evs = new FrameDecoder({ versions: [board.minProtocol, board.protocol] }).push(wire);
  const out: Uint8Array[] = [];
  for (const ev of evs) out.push(...(await board.handle(ev)));
  const back = new FrameDecoder();
  const decoded = out.flatMap((f) => back.push(f));
  return { frames: decoded.filter((e) => e.kind === 'frame').map((e) => (e as { frame: Frame }).frame), errors: decoded.filter((e) => e.kind === 'error') };
}

async function ask<K extends RequestName>(name: K, msg: Catalog[K]['request']): Promise<Catalog[K]['response']> {
  const s = ++seq;
  const r = await send(encodeRequest(name, s, msg));
  expect(r.frames).toHaveLength(1);
  const f = r.frames[0]!;
  expect(f.seq).toBe(s);
  if (f.type === MsgType.ERROR) throw Object.assign(new Error((f.message as { message: string }).message), f.message);
  expect(f).toMatchObject({ type: MsgType[name], flags: Flags.RESPONSE });
  return f.message as Catalog[K]['response'];
}

async function refusal<K extends RequestName>(name: K, msg: Catalog[K]['request']): Promise<{ code: number; message: string }> {
  const s = ++seq;
  const r = await send(encodeRequest(name, s, msg));
  expect(r.frames).toHaveLength(1);
  expect(r.frames[0]).toMatchObject({ type: MsgType.ERROR, flags: Flags.RESPONSE, seq: s });
  return r.frames[0]!.message as { code: number; message: string };
}

/** Weight memory the board should hold after construction: off codes per row polarity. */
function offMemory(layer: number): Uint16Array {
  const g = chip.geometry[layer]!;
  const w = new Uint16Array(g.rowInput.length * g.outputs);
  for (let r = 0; r < g.rowInput.length; r++) w.fill(g.rowPolarity[r] === 0 ? NMOS_OFF : PMOS_OFF, r * g.outputs, (r + 1) * g.outputs);
  return w;
}

function crcOf(codes: Uint16Array): number {
  const b = new Uint8Array(codes.length * 2);
  const dv = new DataView(b.buffer);
  codes.forEach((c, i) => dv.setUint16(2 * i, c, true));
  return crc32c(b);
}

beforeEach(() => {
  chip = new ToyChip();
  now = 1000;
  board = new MockBoard(chip, { clock: () => now, boardId: 'bench-1', firmware: 'fw-test/0.1' });
});

describe('MockBoard: HELLO, PING, STATUS', () => {
  it('announces the backend geometry, DAC, safe windows and limits', async () => {
    const h = await ask('HELLO', { hostProtocol: 1, host: 'test' });
    expect(h).toMatchObject({
      protocol: 2,
      minProtocol: 1,
      firmware: 'fw-test/0.1',
      boardId: 'bench-1',
      chipId: 'toy-chip-1',
      maxPayload: 16384,
      tickSeconds: 1e-8,
    });
    expect(h.layers.map((l) => [l.inputs, l.outputs, l.horizonTicks])).toEqual([
      [4, 3, 200],
      [3, 2, 200],
    ]);
    expect(h.layers[0]!.rowInput).toEqual(chip.geometry[0]!.rowInput);
    expect(h.layers[0]!.rowPolarity).toEqual(chip.geometry[0]!.rowPolarity);
    expect(h.dac).toEqual({ bits: 10, vMin: 0, vMax: 1.8 });
    expect(h.safe).toEqual({ nmos: [0.4, 1.2], pmos: [0.6, 1.4] });
    expect(h.maxBatch).toBe(maxBatchFor(16384, chip.geometry));
    expect(h.features).toContain('neuron-config');
  });

  it('sizes maxBatch so that the largest RUN and its reply fit its maxPayload', async () => {
    board = new MockBoard(chip, { maxPayload: 256 });
    const h = await ask('HELLO', { hostProtocol: 1, host: 'test' });
    const b = h.maxBatch;
    expect(b).toBeGreaterThan(1);
    const r = await ask('RUN', { batch: b, inputs: new Uint16Array(b * 4).fill(SILENT_TICK) });
    expect(r.batch).toBe(b);
    expect((await refusal('RUN', { batch: b + 1, inputs: new Uint16Array((b + 1) * 4) })).code).toBe(ErrorCode.TOO_LARGE);
  });

  it('echoes PING with and without data', async () => {
    expect(await ask('PING', { nonce: 42 })).toEqual({ nonce: 42 });
    expect(await ask('PING', { nonce: 7, data: Uint8Array.of(0, 1, 2, 0) })).toEqual({ nonce: 7, data: Uint8Array.of(0, 1, 2, 0) });
  });

  it('reports supply, uptime and the link counters in STATUS', async () => {
    await send(Uint8Array.of(0x05, 0x11, 0x22, 0x33, 0x44, 0x00)); // damaged: framing
    const bad = encodeRequest('PING', 1, { nonce: 1 });
    bad[bad.length - 3] ^= 0xff; // CRC byte
    await send(bad);
    await send(encodeRawFrame({ version: 1, type: 0x66, flags: 0, seq: 3 }, Uint8Array.of(0x80)));
    now += 2500;
    const s = await ask('STATUS', {});
    expect(s.supplyV).toBe(1.8);
    expect(s.temperatureC).toBe(27);
    expect(s.uptimeMs).toBe(2500);
    expect(s.counters).toMatchObject({ framingErrors: 1, crcErrors: 1, unknownType: 1, refused: 1, framesOk: 1 });
  });
});

describe('MockBoard: weight memory', () => {
  it('starts with every row off: NMOS gates at the low end, PMOS gates at the high end of their windows', () => {
    expect(NMOS_OFF).toBe(228);
    expect(PMOS_OFF).toBe(795);
    expect(board.readWeights(0)).toEqual(offMemory(0));
    expect(board.readWeights(1)).toEqual(offMemory(1));
  });

  it('writes chunks and reads back CRC-32C of the codes as u16 LE', async () => {
    const want = offMemory(0);
    const chunk = Uint16Array.of(NMOS_CODES[10]!, NMOS_CODES[20]!, NMOS_CODES[30]!, PMOS_CODES[5]!, PMOS_CODES[6]!, PMOS_CODES[7]!);
    // offset 0: row 0 (NMOS) outputs 0..2, row 1 (PMOS) outputs 0..2
    expect(await ask('WEIGHTS_WRITE', { layer: 0, offset: 0, codes: chunk })).toEqual({ layer: 0, offset: 0, count: 6 });
    want.set(chunk, 0);
    const last = Uint16Array.of(PMOS_CODES[0]!);
    await ask('WEIGHTS_WRITE', { layer: 0, offset: want.length - 1, codes: last }); // last row is PMOS
    want.set(last, want.length - 1);
    expect(board.readWeights(0)).toEqual(want);
    expect(await ask('WEIGHTS_CRC', { layer: 0 })).toEqual({ layer: 0, count: want.length, crc: crcOf(want) });
    expect(await ask('WEIGHTS_CRC', { layer: 1 })).toEqual({ layer: 1, count: offMemory(1).length, crc: crcOf(offMemory(1)) });
  });

  it.each<[string, number, Uint16Array, RegExp]>([
    ['an NMOS code below the NMOS window', 0, Uint16Array.of(NMOS_CODES[0]! - 1), /codes\[0\].*row 0 NMOS.*outside the safe window 0\.4 V\.\.1\.2 V/],
    ['an NMOS code above the NMOS window', 1, Uint16Array.of(NMOS_CODES[1]!, NMOS_CODES.at(-1)! + 1), /codes\[1\].*NMOS/],
    ['a PMOS code outside the PMOS window (but inside the NMOS one)', 3, Uint16Array.of(NMOS_CODES[0]!), /row 1 PMOS/],
    ['a code beyond the DAC', 0, Uint16Array.of(1024), /exceeds the 10-bit DAC/],
  ])('refuses %s with OUT_OF_RANGE and writes nothing of the chunk', async (_n, offset, codes, re) => {
    const before = board.readWeights(0);
    const e = await refusal('WEIGHTS_WRITE', { layer: 0, offset, codes });
    expect(e.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(e.message).toMatch(re);
    expect(e.message).toMatch(/nothing of this chunk was written/);
    expect(board.readWeights(0)).toEqual(before);
  });

  it('refuses a write past the end of the layer and a layer that does not exist', async () => {
    const size = offMemory(1).length;
    const e1 = await refusal('WEIGHTS_WRITE', { layer: 1, offset: size - 1, codes: Uint16Array.of(NMOS_OFF, NMOS_OFF) });
    expect(e1.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(e1.message).toMatch(/run past the end/);
    expect((await refusal('WEIGHTS_WRITE', { layer: 2, offset: 0, codes: Uint16Array.of(NMOS_OFF) })).code).toBe(ErrorCode.BAD_LAYER);
    expect((await refusal('WEIGHTS_CRC', { layer: 9 })).code).toBe(ErrorCode.BAD_LAYER);
    expect((await refusal('NEURON_CONFIG', { layer: 2 })).code).toBe(ErrorCode.BAD_LAYER);
    expect(board.readWeights(1)).toEqual(offMemory(1));
  });

  it('RESET restores the off codes and the power-on neuron voltages', async () => {
    await ask('WEIGHTS_WRITE', { layer: 1, offset: 0, codes: Uint16Array.of(NMOS_CODES[50]!) });
    await ask('NEURON_CONFIG', { layer: 1, vThreshold: 1.0 });
    expect(await ask('RESET', {})).toEqual({});
    expect(board.readWeights(1)).toEqual(offMemory(1));
    expect(await ask('NEURON_CONFIG', { layer: 1 })).toEqual({ layer: 1, vRest: 1.3, vThreshold: 0.9 });
  });
});

describe('MockBoard: RUN', () => {
  it('drives codes as vMin + code * step volts and returns every layer of the backend', async () => {
    const c = NMOS_CODES[200]!;
    await ask('WEIGHTS_WRITE', { layer: 0, offset: 0, codes: Uint16Array.of(c) }); // input 0 -> output 0, NMOS
    const r = await ask('RUN', {
      batch: 2,
      inputs: Uint16Array.of(5, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK),
    });
    // volts on the chip: independent formula
    expect(chip.gates[0]![0]).toBeCloseTo(c * STEP, 12);
    expect(chip.gates[0]![3]).toBeCloseTo(PMOS_OFF * STEP, 12); // row 1 (PMOS of input 0), output 0
    expect(chip.gates[1]![0]).toBeCloseTo(NMOS_OFF * STEP, 12);
    // analytic spike time of output 0: from tick 5 the membrane falls by D per tick (NMOS + PMOS rows of input 0)
    const D = GAIN * (c * STEP - VT_N) - GAIN * Math.max(0, 1.8 - PMOS_OFF * STEP - 0.4);
    const k = 0.4 / D;
    expect(Math.abs(k - Math.round(k))).toBeGreaterThan(1e-6); // not on a tick boundary
    expect(r.layers[0]![0]).toBe(5 + Math.ceil(k) - 1);
    expect([...r.layers[0]!.subarray(1, 3)]).toEqual([SILENT_TICK, SILENT_TICK]);
    expect([...r.layers[0]!.subarray(3)]).toEqual([SILENT_TICK, SILENT_TICK, SILENT_TICK]); // sample 1: all silent
    expect(r.layers).toHaveLength(2);
    expect(r.layers[1]).toHaveLength(4);
  });

  it('pushes gate voltages only for layers changed since the last run', async () => {
    await ask('RUN', { batch: 1, inputs: new Uint16Array(4).fill(SILENT_TICK) });
    expect(chip.setCalls).toEqual([0, 1]);
    await ask('RUN', { batch: 1, inputs: new Uint16Array(4).fill(SILENT_TICK) });
    expect(chip.setCalls).toEqual([0, 1]);
    await ask('WEIGHTS_WRITE', { layer: 1, offset: 0, codes: Uint16Array.of(NMOS_OFF + 1) });
    await ask('RUN', { batch: 1, inputs: new Uint16Array(4).fill(SILENT_TICK) });
    expect(chip.setCalls).toEqual([0, 1, 1]);
  });

  it('refuses a wrong input length with BAD_PAYLOAD naming the expected count, touching nothing', async () => {
    const e = await refusal('RUN', { batch: 2, inputs: new Uint16Array(6) });
    expect(e).toEqual({ code: ErrorCode.BAD_PAYLOAD, message: 'RUN.inputs: expected batch*4 = 8 ticks, got 6' });
    expect(chip.setCalls).toEqual([]);
  });

  it('turns a backend failure into HARDWARE_FAULT and keeps serving', async () => {
    chip.failRun = new Error('comparator stuck');
    const e = await refusal('RUN', { batch: 1, inputs: new Uint16Array(4) });
    expect(e.code).toBe(ErrorCode.HARDWARE_FAULT);
    expect(e.message).toMatch(/comparator stuck/);
    chip.failRun = null;
    expect((await ask('RUN', { batch: 1, inputs: new Uint16Array(4) })).batch).toBe(1);
  });

  it('turns a malformed backend result into INTERNAL', async () => {
    chip.run = async () => [new Uint16Array(1)];
    expect((await refusal('RUN', { batch: 1, inputs: new Uint16Array(4) })).code).toBe(ErrorCode.INTERNAL);
  });
});

describe('MockBoard: NEURON_CONFIG and SELF_TEST', () => {
  it('reads and sets neuron voltages, refusing values the chip rejects', async () => {
    expect(await ask('NEURON_CONFIG', { layer: 0 })).toEqual({ layer: 0, vRest: 1.3, vThreshold: 0.9 });
    expect(await ask('NEURON_CONFIG', { layer: 0, vThreshold: 0.8 })).toEqual({ layer: 0, vRest: 1.3, vThreshold: 0.8 });
    const e = await refusal('NEURON_CONFIG', { layer: 0, vRest: 0.5, vThreshold: 0.7 });
    expect(e.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(await ask('NEURON_CONFIG', { layer: 0 })).toEqual({ layer: 0, vRest: 1.3, vThreshold: 0.8 });
  });

  it('answers UNSUPPORTED to setting fixed neuron voltages, and does not announce the feature', async () => {
    chip = new ToyChip({ programmableNeurons: false });
    board = new MockBoard(chip);
    expect((await ask('HELLO', { hostProtocol: 1, host: 't' })).features).not.toContain('neuron-config');
    expect((await refusal('NEURON_CONFIG', { layer: 0, vRest: 1.2 })).code).toBe(ErrorCode.UNSUPPORTED);
    expect(await ask('NEURON_CONFIG', { layer: 1 })).toEqual({ layer: 1, vRest: 1.3, vThreshold: 0.9 });
  });

  it('runs every self-test with PROGRESS events and honest results', async () => {
    const events: Frame[] = [];
    const dec = new FrameDecoder();
    board.subscribe((f) => dec.push(f).forEach((e) => e.kind === 'frame' && events.push(e.frame)));
    const r = await ask('SELF_TEST', {});
    expect(r.results.map((x) => [x.name, x.ok])).toEqual([
      ['dac', true],
      ['timer', true],
      ['supply', true],
    ]);
    expect(r.results[0]!.detail).toMatch(/^(\d+) DAC channels/);
    expect(Number(r.results[0]!.detail.split(' ')[0])).toBe(8 * 3 + 6 * 2);
    const progress = events.filter((e) => e.type === MsgType.PROGRESS && (e.message as { task: string }).task === 'self-test');
    expect(progress.map((e) => (e.message as { done: number }).done)).toEqual([0, 1, 2, 3]);
    expect(events.every((e) => e.flags === Flags.EVENT)).toBe(true);
    expect(new Set(events.map((e) => e.seq)).size).toBe(events.length); // the device's own counter
  });

  it('reports a supply outside tolerance as a failed test, and refuses unknown tests', async () => {
    chip.supplyV = 1.6;
    const r = await ask('SELF_TEST', { tests: ['supply'] });
    expect(r.results).toHaveLength(1);
    expect(r.results[0]).toMatchObject({ name: 'supply', ok: false });
    expect(r.results[0]!.detail).toMatch(/1\.600 V/);
    expect((await refusal('SELF_TEST', { tests: ['dac', 'smoke'] })).code).toBe(ErrorCode.UNSUPPORTED);
  });
});

describe('MockBoard: frames it cannot act on', () => {
  it('answers decode errors that carry a header with the matching code and seq, and ignores damaged frames', async () => {
    const unknown = await send(encodeRawFrame({ version: 1, type: 0x66, flags: 0, seq: 11 }, Uint8Array.of(0x80)));
    expect(unknown.frames[0]).toMatchObject({ type: MsgType.ERROR, seq: 11, message: { code: ErrorCode.UNKNOWN_TYPE } });
    const version = await send(encodeRawFrame({ version: 9, type: MsgType.STATUS, flags: 0, seq: 12 }, Uint8Array.of(0x80)));
    expect(version.frames[0]).toMatchObject({ type: MsgType.ERROR, seq: 12, message: { code: ErrorCode.VERSION } });
    const badPayload = await send(encodeRawFrame({ version: 1, type: MsgType.WEIGHTS_CRC, flags: 0, seq: 13 }, Uint8Array.of(0x80)));
    expect(badPayload.frames[0]).toMatchObject({ type: MsgType.ERROR, seq: 13, message: { code: ErrorCode.BAD_PAYLOAD } });
    expect((badPayload.frames[0]!.message as { message: string }).message).toMatch(/WEIGHTS_CRC\.layer/);
    const damaged = encodeRequest('STATUS', 14, {});
    damaged[2] ^= 0x40;
    expect((await send(damaged)).frames).toEqual([]);
  });

  it('answers HELLO of any header version, in the negotiated version', async () => {
    const r = await send(encodeRequest('HELLO', 31, { hostProtocol: 3, host: 'future' }, { version: 3 }));
    expect(r.frames[0]).toMatchObject({ version: 2, type: MsgType.HELLO, flags: Flags.RESPONSE, seq: 31, message: { protocol: 2, minProtocol: 1 } });
    board = new MockBoard(chip, { protocol: 1 });
    const old = await send(encodeRequest('HELLO', 32, { hostProtocol: 2, host: 'now' }, { version: 2 }));
    expect(old.frames[0]).toMatchObject({ version: 1, type: MsgType.HELLO, seq: 32, message: { protocol: 1, minProtocol: 1 } });
  });

  it('answers HELLO even when it is larger than the maxPayload it announces', async () => {
    board = new MockBoard(chip, { maxPayload: 64 });
    const h = await ask('HELLO', { hostProtocol: 1, host: 't' });
    expect(h.maxPayload).toBe(64);
    expect((await refusal('SELF_TEST', {})).code).toBe(ErrorCode.TOO_LARGE);
  });

  it('refuses responses and events sent to it as UNKNOWN_TYPE', async () => {
    const r = await send(encodeResponse('PING', 21, { nonce: 1 }));
    expect(r.frames[0]).toMatchObject({ type: MsgType.ERROR, seq: 21, message: { code: ErrorCode.UNKNOWN_TYPE } });
  });

  it('emits unsolicited events with the EVENT flag and its own counter', async () => {
    const dec = new FrameDecoder();
    const a = dec.push(board.emitEvent('ALERT', { kind: 'brown-out', value: 1.52, text: 'supply sag' }))[0]!;
    const b = dec.push(board.emitEvent('LOG', { level: 'warn', text: 'hot' }))[0]!;
    expect(a).toMatchObject({ kind: 'frame', frame: { type: MsgType.ALERT, flags: Flags.EVENT, seq: 0, message: { kind: 'brown-out', value: 1.52 } } });
    expect(b).toMatchObject({ kind: 'frame', frame: { type: MsgType.LOG, flags: Flags.EVENT, seq: 1 } });
  });
});
