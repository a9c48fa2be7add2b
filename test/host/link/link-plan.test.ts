/**
 * The host plans for the link: timeouts scale to the expected work once the device's service
 * time is known, a write that keeps failing is split, the rate is known after HELLO, and long
 * work is announced with its wire time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MockBoard, serveBoard } from '../../../firmware-protocol/mock-board/index.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { LinkTimeoutError } from '../../../host/link/errors.ts';
import { ADAPTIVE_FLOOR_MS, LinkClient } from '../../../host/link/link-client.ts';
import { ToyBackend } from '../device/toy-backend.ts';
import { FakeDevice, pipePair, transportOf } from './helpers.ts';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('adaptive timeouts', () => {
  it('a request type answered quickly gets a timeout near the floor, not its fixed 10 s', async () => {
    const [host, dev] = pipePair();
    let answer = true;
    new FakeDevice(dev, (f, d) => answer && d.echo(f));
    const client = new LinkClient(transportOf(host), { timeouts: { PING: 10_000 }, retries: 0 });
    open.push(client);
    for (let i = 0; i < 3; i++) await client.request('PING', { nonce: i });
    expect(client.plannedTimeoutMs('PING')).toBe(ADAPTIVE_FLOOR_MS);
    answer = false;
    const err = await client.request('PING', { nonce: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkTimeoutError);
    // The reported limit is what the host waited: the floor (plus no wire time: unpaced)
    expect((err as LinkTimeoutError).timeoutMs).toBe(ADAPTIVE_FLOOR_MS);
  });

  it('scales with the expected work: a slow device per unit gets a longer allowance, capped at the fixed timeout', async () => {
    const [host, dev] = pipePair();
    new FakeDevice(dev, (f, d) => setTimeout(() => d.echo(f), 30));
    const client = new LinkClient(transportOf(host), { timeouts: { PING: 10_000 } });
    open.push(client);
    // 30 ms for 1 unit: about 30 ms per unit
    for (let i = 0; i < 3; i++) await client.request('PING', { nonce: i }, { expect: { work: 1 } });
    const small = client.plannedTimeoutMs('PING', { work: 1 });
    // 20 units: below the cap unless the 30 ms timer fired after 125 ms (a loaded machine runs them late)
    const big = client.plannedTimeoutMs('PING', { work: 20 });
    expect(small).toBe(ADAPTIVE_FLOOR_MS);
    expect(big).toBeGreaterThan(4 * 20 * 25); // 4 x 20 units x at least 25 ms
    expect(big).toBeLessThan(10_000);
    expect(client.plannedTimeoutMs('PING', { work: 1e6 })).toBe(10_000);
  });

  it('an explicit timeoutMs is kept as given', async () => {
    const [host, dev] = pipePair();
    new FakeDevice(dev);
    const client = new LinkClient(transportOf(host), { retries: 0 });
    open.push(client);
    for (let i = 0; i < 3; i++) await client.request('PING', { nonce: i });
    const err = await client.request('STATUS', {}, { timeoutMs: 30 }).catch((e: unknown) => e);
    expect((err as LinkTimeoutError).timeoutMs).toBe(30);
  });
});

describe('splitting writes that keep failing', () => {
  it('a line that loses every long frame still takes the upload, in halves', async () => {
    const backend = new ToyBackend([30, 50]);
    const board = new MockBoard(backend, { maxPayload: 1024 });
    const [host, dev] = pipePair();
    // Frames of more than 300 bytes never arrive (a line whose error rate kills long frames).
    host.mangle = (b) => (b.length > 300 ? new Uint8Array(0) : b);
    open.push(serveBoard(board, dev, { announce: false }));
    const device = await ChipDevice.over(transportOf(host), { retries: 1, timeouts: { WEIGHTS_WRITE: 60 } });
    open.push(device);
    const l = device.info.layers[0]!;
    const [n, p] = device.safeCodeRanges;
    const codes = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => (l.rowPolarity[Math.floor(i / l.outputs)] ? p.lo + (i % 7) : n.lo + (i % 5)));
    expect(device.info.chunkCodes * 2).toBeGreaterThan(300); // whole chunks really are too long
    await device.uploadWeights(0, codes);
    expect(device.splitWrites).toBeGreaterThan(0);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(codes));
    expect((await device.verifyWeights(0, codes)).ok).toBe(true);
  });

  it('a changed-only upload (WEIGHTS_EDIT or WEIGHTS_PATCH) that keeps failing is encoded again in halves', async () => {
    const backend = new ToyBackend([30, 50]);
    const board = new MockBoard(backend, { maxPayload: 1024 });
    const [host, dev] = pipePair();
    open.push(serveBoard(board, dev, { announce: false }));
    const device = await ChipDevice.over(transportOf(host), { retries: 1, timeouts: { WEIGHTS_WRITE: 60, WEIGHTS_PATCH: 60, WEIGHTS_EDIT: 60 } });
    open.push(device);
    expect(device.info.negotiatedProtocol).toBe(2);
    const l = device.info.layers[0]!;
    const [n, p] = device.safeCodeRanges;
    const win = (i: number) => (l.rowPolarity[Math.floor(i / l.outputs)] ? p : n);
    const prev = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => win(i).lo);
    await device.uploadWeights(0, prev);
    // Every third cell changes: a patch frame of maxPayload is far longer than the 300 bytes that get through.
    const next = prev.map((c, i) => (i % 3 === 0 ? Math.min(win(i).hi, c + 1 + (i % 4)) : c));
    host.mangle = (b) => (b.length > 300 ? new Uint8Array(0) : b);
    const r = await device.uploadChanged(0, prev, next);
    expect(['edit', 'patch']).toContain(r.via);
    expect(device.splitWrites).toBeGreaterThan(0);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(next));
    expect((await device.verifyWeights(0, next)).ok).toBe(true);
  });
});

describe('link plan at HELLO', () => {
  it('knows the rate of a paced mock, and announces long work with its wire time', async () => {
    const notices: string[] = [];
    const dev = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4&baud=115200', { notice: (l) => notices.push(l), noticeAfterS: 0.01 });
    open.push(dev);
    expect(dev.info.link.nominalBytesPerSecond).toBe(11_520);
    expect(dev.info.link.bytesPerSecond).toBe(11_520);
    expect(dev.info.link.measuredBytesPerSecond).toBeGreaterThan(0);
    const l = dev.info.layers[0]!;
    const [n, p] = dev.safeCodeRanges;
    await dev.uploadWeights(
      0,
      // codes spread over each row's window: a full upload of about 10 bits a code (rows of one code would go as a few FILL runs)
      new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => {
        const spread = (i * 2654435761) % 1000;
        return l.rowPolarity[Math.floor(i / l.outputs)] ? p.hi - (spread % (p.hi - p.lo + 1)) : n.lo + (spread % (n.hi - n.lo + 1));
      }),
    );
    expect(notices.some((t) => /upload of layer 0: .* MB out, .* about \d+ s on the wire at 11520 B\/s/.test(t))).toBe(true);
  });

  it('an unpaced mock measures its rate at HELLO and announces nothing (no known line rate)', async () => {
    const notices: string[] = [];
    const dev = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4', { notice: (l) => notices.push(l), noticeAfterS: 0 });
    open.push(dev);
    expect(dev.info.link.nominalBytesPerSecond).toBe(Infinity);
    expect(dev.info.link.bytesPerSecond).toBe(dev.info.link.measuredBytesPerSecond);
    expect(dev.info.link.measuredBytesPerSecond).toBeGreaterThan(0);
    await dev.run(new Uint16Array(16).fill(3), 1);
    const l = dev.info.layers[0]!;
    const [n, p] = dev.safeCodeRanges;
    await dev.uploadWeights(
      0,
      // codes that change from cell to cell: a full WEIGHTS_WRITE upload (rows of one code would go as a few FILL runs)
      new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => (l.rowPolarity[Math.floor(i / l.outputs)] ? p.hi - (i % 2) : n.lo + (i % 2))),
    );
    expect(notices).toEqual([]);
  });

  it('estimates the wire time of a RUN sample: the protocol-1 bound first, then what the RUNs so far took', async () => {
    const dev = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4&baud=115200', { notice: () => {} });
    open.push(dev);
    // 16 inputs and 8 + 4 outputs as u16, at 11,520 B/s
    expect(dev.runWireSecondsPerSample()).toBeCloseTo((16 * 2 + 12 * 2) / 11_520, 9);
    const ticks = new Uint16Array(4 * 16).fill(0xffff);
    for (let s = 0; s < 4; s++) ticks[s * 16 + s] = 10; // one active input per sample: a few bytes packed
    await dev.run(ticks, 4);
    const est = dev.runWireSecondsPerSample()!;
    expect(est).toBeGreaterThan(0);
    expect(est).toBeLessThan((16 * 2) / 11_520);
    const unpaced = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4', { notice: () => {} });
    open.push(unpaced);
    expect(unpaced.runWireSecondsPerSample()).toBeUndefined();
  });
});
