/**
 * `spikeloop mock-board --pty --device mock:...` serves the board a mock device address
 * describes, with every option the in-process mock takes: chip faults, RUN delay, line pacing.
 * The pty board must answer exactly as the in-process mock of the same address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wireSeconds } from '../../firmware-protocol/mock-board/line.ts';
import { ChipDevice } from '../../host/device/chip-device.ts';
import { haveSocat, startChildBoard, type ChildBoard } from './helpers.ts';

const CHIP = 'mock:behavioral?seed=3&geometry=16-8-4&faults=dead-neuron:0.2';
const BOARD = `${CHIP}&runDelayMs=40&baud=115200`;
const socat = haveSocat();

describe.skipIf(!socat)('mock-board --pty with a mock: address', () => {
  let board: ChildBoard;
  let remote: ChipDevice;
  let local: ChipDevice;
  let healthy: ChipDevice;

  beforeAll(async () => {
    board = await startChildBoard(['--device', BOARD]);
    remote = await ChipDevice.open(`pty:${board.hostPath}?baud=115200`);
    local = await ChipDevice.open(CHIP);
    healthy = await ChipDevice.open('mock:behavioral?seed=3&geometry=16-8-4');
  }, 30_000);
  afterAll(async () => {
    await remote?.close();
    await local?.close();
    await healthy?.close();
    if (board) expect((await board.stop()).code).toBe(0);
  });

  it('serves the chip with its faults: RUN results equal the in-process mock of the same address', async () => {
    expect(remote.info.chipId).toBe(local.info.chipId);
    const batch = 8;
    const inputs = new Uint16Array(batch * 16).map((_, i) => (i * 37) % 900);
    for (const d of [remote, local, healthy]) {
      const l = d.info.layers[0]!;
      const [n] = d.safeCodeRanges;
      await d.uploadWeights(0, new Uint16Array(l.rowInput.length * l.outputs).fill(n.hi));
    }
    const t0 = performance.now();
    const got = await remote.run(inputs, batch);
    const ms = performance.now() - t0;
    const want = await local.run(inputs, batch);
    const ok = await healthy.run(inputs, batch);
    expect(Buffer.from(got[0]!.buffer).equals(Buffer.from(want[0]!.buffer))).toBe(true);
    // The dead neuron (layer 0, output 2) never fires on the faulty chip; it does on the healthy one.
    const col = (a: Uint16Array) => Array.from({ length: batch }, (_, b) => a[b * 8 + 2]);
    expect(col(got[0]!).every((t) => t === 0xffff)).toBe(true);
    expect(col(ok[0]!).some((t) => t !== 0xffff)).toBe(true);
    // runDelayMs reached the board
    expect(ms).toBeGreaterThanOrEqual(40);
  });

  it('paces the line to the baud rate it was given', async () => {
    const s0 = remote.link.stats;
    const t0 = performance.now();
    await remote.ping(new Uint8Array(1500).fill(7));
    const ms = performance.now() - t0;
    const s1 = remote.link.stats;
    const bytes = s1.bytesOut - s0.bytesOut + s1.bytesIn - s0.bytesIn;
    expect(ms).toBeGreaterThanOrEqual(1000 * wireSeconds(bytes, 115_200) - 1);
  });
});
