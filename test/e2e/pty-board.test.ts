/**
 * The whole host path over a real pseudo-terminal: a mock board in a child process
 * (`spikeloop mock-board --pty`), the host's serialport transport, link and ChipDevice.
 * Results must equal the same chip backend run in process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChipDevice } from '../../host/device/chip-device.ts';
import { haveSocat, startChildBoard, type ChildBoard } from './helpers.ts';

const GEOMETRY = '784-256-128-10';
const SEED = 11;
const socat = haveSocat();
if (!socat) console.warn('e2e skipped: socat is not installed (apt-get install socat); CI installs it');

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

describe.skipIf(!socat)('end to end over a pseudo-terminal', () => {
  let board: ChildBoard;
  let remote: ChipDevice;
  let local: ChipDevice;

  beforeAll(async () => {
    board = await startChildBoard(['--chip', 'behavioral', '--geometry', GEOMETRY, '--seed', String(SEED)]);
    remote = await ChipDevice.open(`pty:${board.hostPath}`);
    local = await ChipDevice.open(`mock:behavioral?seed=${SEED}&geometry=${GEOMETRY}`);
  });
  afterAll(async () => {
    await remote?.close();
    await local?.close();
    if (board) {
      const { code, stdout } = await board.stop();
      expect(code).toBe(0);
      expect(stdout).toHaveLength(2); // {"pty"} first, then the stop line
    }
  });

  it('says HELLO with the geometry the child was started with', () => {
    const i = remote.info;
    expect([i.layers[0]!.inputs, ...i.layers.map((l) => l.outputs)].join('-')).toBe(GEOMETRY);
    expect(i.layers[0]!.rowInput.length).toBe(2 * 784);
    expect(i.chipId).toBe(local.info.chipId);
  });

  it('uploads a 784x256 dual-rail layer, verifies its CRC and runs a batch identical to the in-process backend', async () => {
    const l = remote.info.layers[0]!;
    const [n, p] = remote.safeCodeRanges;
    const r = lcg(5);
    const codes = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => {
      const w = l.rowPolarity[Math.floor(i / l.outputs)] ? p : n;
      return w.lo + Math.floor(r() * (w.hi - w.lo + 1));
    });
    expect(codes.length).toBe(1568 * 256);
    let last = 0;
    await remote.uploadWeights(0, codes, { onProgress: (x) => (last = x.done) });
    expect(last).toBe(codes.length);
    const v = await remote.verifyWeights(0, codes);
    expect(v.ok, v.detail).toBe(true);
    await local.uploadWeights(0, codes);

    const batch = 24;
    const inputs = new Uint16Array(batch * 784).map(() => (r() < 0.5 ? 0xffff : Math.floor(r() * 2000)));
    const got = await remote.run(inputs, batch);
    const want = await local.run(inputs, batch);
    expect(got.map((a) => a.length)).toEqual([batch * 256, batch * 128, batch * 10]);
    for (let k = 0; k < got.length; k++) expect(Buffer.from(got[k]!.buffer).equals(Buffer.from(want[k]!.buffer))).toBe(true);
    // not a vacuous comparison: the first layer really spiked
    expect(got[0]!.filter((t) => t !== 0xffff).length).toBeGreaterThan(batch * 10);
    expect(remote.link.stats).toMatchObject({ timeouts: 0, decodeErrors: 0, retries: 0 });
  });
});
