/**
 * The mock board on its own thread (`thread=1`): the same chip answers the same requests with the
 * same bytes as in the host's thread, the line options still apply, and a chip that cannot be built
 * is refused with the reason.
 */
import { describe, expect, it } from 'vitest';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { openTransport } from '../../../host/link/transport.ts';
import type { ChipBuildProgress } from '../../../models/chips/index.ts';
import { safeCodeRange } from '../../../wire/dac.ts';

const CHIP = 'mock:behavioral?seed=11&geometry=16-8-4';

async function session(uri: string): Promise<{ hello: string; out: Uint16Array[]; verified: unknown }> {
  const d = await ChipDevice.open(uri);
  try {
    const l = d.info.layers[0]!;
    const range = [safeCodeRange(d.info.dac, d.info.safe.nmos)!, safeCodeRange(d.info.dac, d.info.safe.pmos)!];
    const codes = Uint16Array.from({ length: l.rowInput.length * l.outputs }, (_, k) => {
      const r = range[l.rowPolarity[Math.floor(k / l.outputs)]!]!;
      return r[0] + ((k * 37) % (r[1] - r[0] + 1));
    });
    await d.uploadWeights(0, codes);
    const batch = 5;
    const x = Uint16Array.from({ length: batch * l.inputs }, (_, k) => (k % 3 === 0 ? 65535 : (k * 53) % 900));
    const out = await d.run(x, batch);
    const verified = await d.verifyWeights(0, codes);
    // The link figures (measured rates, HELLO time) are timings, not what the board said.
    const { link: _link, ...said } = d.info;
    return { hello: JSON.stringify(said), out, verified };
  } finally {
    await d.close();
  }
}

describe('mock board on a thread', () => {
  it("passes the chip build's progress to the host as the in-thread build reports it", async () => {
    const uri = 'mock:spice?seed=5&mode=table&geometry=4-1';
    const here: ChipBuildProgress[] = [];
    await (await openTransport(uri, { onProgress: (p) => here.push(p) })).close();
    const crossed: ChipBuildProgress[] = [];
    await (await openTransport(`${uri}&thread=1`, { onProgress: (p) => crossed.push(p) })).close();
    expect(here.length).toBeGreaterThan(2);
    expect(crossed.map((e) => e.done)).toEqual(here.map((e) => e.done));
    // Jobs that run concurrently end in any order.
    const key = (e: ChipBuildProgress) => `${e.step}:${e.cached}:${e.total}`;
    expect(crossed.map(key).sort()).toEqual(here.map(key).sort());
  }, 300_000);

  it('answers as the in-thread board does', async () => {
    const inThread = await session(CHIP);
    const threaded = await session(`${CHIP}&thread=1`);
    expect(threaded.hello).toBe(inThread.hello);
    expect(threaded.out.map((a) => Array.from(a))).toEqual(inThread.out.map((a) => Array.from(a)));
    expect(threaded.verified).toEqual(inThread.verified);
    expect(threaded.out.some((a) => a.some((t) => t !== 65535))).toBe(true);
  }, 60_000);

  it('keeps the paced line: the rate is announced to the host and the run still answers', async () => {
    const t = await openTransport(`${CHIP}&thread=1&baud=115200&latencyMs=1`);
    expect(t.bytesPerSecond).toBe(11520);
    await t.close();
    const s = await session(`${CHIP}&thread=1&baud=921600&latencyMs=1`);
    expect(s.out.length).toBeGreaterThan(0);
  }, 60_000);

  it('refuses a chip it cannot build, naming why', async () => {
    await expect(openTransport('mock:behavioral?seed=1&geometry=16-8-4&thread=1&faults=dead-neuron:7')).rejects.toThrow(/cannot open .*dead-neuron|fault/);
  }, 60_000);
});
