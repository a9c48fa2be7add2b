import { afterEach, describe, expect, it } from 'vitest';
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { MockBoard } from '../../../firmware-protocol/mock-board/board.ts';
import { serveBoard, type BoardServer } from '../../../firmware-protocol/mock-board/serve.ts';
import { duplexPair } from '../../../firmware-protocol/mock-board/duplex-pair.ts';
import { openPtyPair } from '../../../firmware-protocol/mock-board/pty.ts';
import { FrameDecoder } from '../../../firmware-protocol/decoder.ts';
import { encodeRequest } from '../../../firmware-protocol/frame.ts';
import { Flags, MsgType, type Frame } from '../../../firmware-protocol/messages.ts';
import { ToyChip } from '../helpers/toy-chip.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

/** A minimal host: collects decoded frames and waits for a response by seq. */
function host(stream: Duplex) {
  const dec = new FrameDecoder();
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (c: Buffer) => {
    for (const e of dec.push(c)) if (e.kind === 'frame') frames.push(e.frame);
    waiters.splice(0).forEach((w) => w());
  });
  const until = async (pred: () => boolean): Promise<void> => {
    while (!pred()) await new Promise<void>((r) => waiters.push(r));
  };
  return {
    frames,
    dec,
    async reply(seq: number): Promise<Frame> {
      const find = () => frames.find((f) => f.seq === seq && f.flags & Flags.RESPONSE);
      await until(() => find() !== undefined);
      return find()!;
    },
    until,
  };
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('serveBoard over an in-memory duplex pair', () => {
  it('announces itself, answers HELLO and RUN in order, and survives garbage', async () => {
    const [hostEnd, deviceEnd] = duplexPair();
    const server = serveBoard(new MockBoard(new ToyChip()), deviceEnd);
    cleanup.push(async () => {
      await server.close();
      hostEnd.destroy();
      deviceEnd.destroy();
    });
    const h = host(hostEnd);
    hostEnd.write(Buffer.from([0x13, 0x37, 0x00, 0xaa])); // line noise, partly glued to the next frame
    hostEnd.write(encodeRequest('HELLO', 1, { hostProtocol: 1, host: 'vitest' }));
    const inputs = Uint16Array.of(0, 3, SILENT_TICK, 7, 1, 1, 1, 1);
    hostEnd.write(encodeRequest('RUN', 2, { batch: 2, inputs }));
    hostEnd.write(encodeRequest('STATUS', 3, {}));
    const hello = await h.reply(1);
    expect(hello).toMatchObject({ type: MsgType.HELLO, message: { chipId: 'toy-chip-1', maxPayload: 16384 } });
    const run = await h.reply(2);
    expect(run.type).toBe(MsgType.RUN);
    const ticks = run.message as { batch: number; layers: Uint16Array[] };
    // the same chip run directly with the board's power-on gate voltages
    const ref = new ToyChip();
    const board2 = new MockBoard(ref);
    await board2.handle({ kind: 'frame', frame: { version: 1, type: MsgType.RUN, flags: 0, seq: 1, message: { batch: 2, inputs } } });
    expect(ticks.layers).toEqual(await ref.run(inputs, 2));
    const status = await h.reply(3);
    expect((status.message as { counters: { framingErrors: number } }).counters.framingErrors).toBe(2);
    // responses in request order, after the start-up LOG event
    const order = h.frames.map((f) => (f.flags & Flags.EVENT ? `event:${f.type}` : `reply:${f.seq}`));
    expect(order).toEqual([`event:${MsgType.LOG}`, 'reply:1', 'reply:2', 'reply:3']);
    expect(server.stats.framesOk).toBe(3);
  });

  it('streams PROGRESS events before the SELF_TEST reply and forwards emitted ALERTs', async () => {
    const [hostEnd, deviceEnd] = duplexPair();
    const board = new MockBoard(new ToyChip());
    const server = serveBoard(board, deviceEnd, { announce: false });
    cleanup.push(async () => {
      await server.close();
      hostEnd.destroy();
    });
    const h = host(hostEnd);
    hostEnd.write(encodeRequest('SELF_TEST', 9, {}));
    await h.reply(9);
    board.emitEvent('ALERT', { kind: 'over-temperature', value: 91, text: 'hot' });
    await h.until(() => h.frames.some((f) => f.type === MsgType.ALERT));
    const types = h.frames.map((f) => f.type);
    expect(types.indexOf(MsgType.PROGRESS)).toBe(0);
    expect(types.lastIndexOf(MsgType.PROGRESS)).toBeLessThan(types.indexOf(MsgType.SELF_TEST));
    expect(types.at(-1)).toBe(MsgType.ALERT);
  });

  it('drops frames larger than its maxPayload as oversize and keeps serving', async () => {
    const [hostEnd, deviceEnd] = duplexPair();
    const server = serveBoard(new MockBoard(new ToyChip(), { maxPayload: 128 }), deviceEnd, { announce: false });
    cleanup.push(async () => {
      await server.close();
      hostEnd.destroy();
    });
    const h = host(hostEnd);
    hostEnd.write(encodeRequest('PING', 1, { nonce: 1, data: new Uint8Array(500).fill(3) }));
    hostEnd.write(encodeRequest('PING', 2, { nonce: 2 }));
    expect((await h.reply(2)).message).toEqual({ nonce: 2 });
    expect(h.frames.some((f) => f.seq === 1)).toBe(false);
    expect(server.stats.oversize).toBe(1);
  });

  it('answers BUSY when more requests wait than its queue holds', async () => {
    const [hostEnd, deviceEnd] = duplexPair();
    const chip = new ToyChip();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const run = chip.run.bind(chip);
    chip.run = async (t, b) => {
      await gate;
      return run(t, b);
    };
    const server = serveBoard(new MockBoard(chip), deviceEnd, { announce: false, maxQueue: 2 });
    cleanup.push(async () => {
      release();
      await server.close();
      hostEnd.destroy();
    });
    const h = host(hostEnd);
    const inputs = new Uint16Array(4).fill(SILENT_TICK);
    hostEnd.write(Buffer.concat([1, 2, 3, 4].map((s) => encodeRequest('RUN', s, { batch: 1, inputs }))));
    const busy = await h.reply(4);
    expect(busy).toMatchObject({ type: MsgType.ERROR, message: { code: 6 } });
    release();
    for (const s of [1, 2, 3]) expect((await h.reply(s)).type).toBe(MsgType.RUN);
  });
});

describe('serveBoard over a real pseudo-terminal (socat)', () => {
  it('tells the user to install socat when it is missing', async () => {
    await expect(openPtyPair({ socat: '/nonexistent/socat' })).rejects.toThrow(/apt-get install socat/);
  });

  it('answers HELLO and RUN through serialport on both ends', async () => {
    const pty = await openPtyPair();
    const device = new SerialPort({ path: pty.devicePath, baudRate: 115200 });
    const hostPort = new SerialPort({ path: pty.hostPath, baudRate: 115200 });
    let server: BoardServer | undefined;
    cleanup.push(async () => {
      await server?.close();
      await Promise.all([device, hostPort].map((p) => new Promise<void>((r) => (p.isOpen ? p.close(() => r()) : r()))));
      await pty.close();
    });
    await Promise.all([device, hostPort].map((p) => new Promise<void>((r, j) => p.once('open', r).once('error', j))));
    server = serveBoard(new MockBoard(new ToyChip()), device);
    const h = host(hostPort);
    hostPort.write(encodeRequest('HELLO', 100, { hostProtocol: 1, host: 'pty-test' }));
    expect((await h.reply(100)).message).toMatchObject({ protocol: 2, chipId: 'toy-chip-1' });
    hostPort.write(encodeRequest('RUN', 101, { batch: 1, inputs: Uint16Array.of(0, 0, 0, 0) }));
    const r = (await h.reply(101)).message as { layers: Uint16Array[] };
    expect(r.layers.map((l) => l.length)).toEqual([3, 2]);
    expect(h.dec.stats.crcErrors + h.dec.stats.framingErrors).toBe(0);
  });
});
