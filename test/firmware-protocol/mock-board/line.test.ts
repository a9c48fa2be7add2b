/**
 * The emulated line in front of a mock board: bytes never arrive before a UART at the given
 * rate could have carried them (10 bits per byte), in order, and byte errors follow the seed.
 * The timing assertions are lower bounds (elapsed >= wire time), which a slow machine cannot
 * break.
 */
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../../../firmware-protocol/mock-board/duplex-pair.ts';
import { EmulatedLine, wireSeconds } from '../../../firmware-protocol/mock-board/line.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';

function collect(stream: NodeJS.ReadableStream, n: number): Promise<{ bytes: Buffer; at: number }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (b: Buffer) => {
      parts.push(b);
      got += b.length;
      if (got >= n) {
        stream.off('data', onData);
        resolve({ bytes: Buffer.concat(parts), at: performance.now() });
      }
    };
    stream.on('data', onData);
  });
}

const payload = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

describe('EmulatedLine pacing', () => {
  it('delivers board -> host no faster than the baud rate, in order', async () => {
    const [host, dev] = duplexPair();
    const line = new EmulatedLine(dev, { baud: 115_200 });
    const data = payload(3000);
    const t0 = performance.now();
    const got = collect(host, data.length);
    for (let i = 0; i < data.length; i += 100) line.write(data.subarray(i, i + 100));
    const { bytes, at } = await got;
    expect(bytes.equals(data)).toBe(true);
    expect(at - t0).toBeGreaterThanOrEqual(1000 * wireSeconds(3000, 115_200) - 1); // 260 ms
    line.destroy();
  });

  it('delivers host -> board no faster than the baud rate plus the latency', async () => {
    const [host, dev] = duplexPair();
    const line = new EmulatedLine(dev, { baud: 230_400, latencyMs: 30 });
    const data = payload(2000);
    const t0 = performance.now();
    const got = collect(line, data.length);
    host.write(data.subarray(0, 1000));
    host.write(data.subarray(1000));
    const { bytes, at } = await got;
    expect(bytes.equals(data)).toBe(true);
    expect(at - t0).toBeGreaterThanOrEqual(1000 * wireSeconds(2000, 230_400) + 30 - 1);
    line.destroy();
  });

  it('holds a write until its bytes have left the sender (backpressure a UART would give)', async () => {
    const [host, dev] = duplexPair();
    host.resume();
    const line = new EmulatedLine(dev, { baud: 96_000 });
    const t0 = performance.now();
    await new Promise<void>((r) => line.write(payload(960), () => r()));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1000 * wireSeconds(960, 96_000) - 1); // 100 ms
    line.destroy();
  });
});

describe('EmulatedLine byte errors', () => {
  async function pass(seed: number, rate: number, n: number): Promise<{ out: Buffer; flipped: number }> {
    const [host, dev] = duplexPair();
    const line = new EmulatedLine(dev, { byteErrorRate: rate, errorSeed: seed });
    const got = collect(host, n);
    line.write(payload(n));
    const { bytes } = await got;
    const flipped = line.stats.flippedToHost;
    line.destroy();
    return { out: bytes, flipped };
  }

  it('flips bytes at the rate, the same ones for the same seed, others for another seed', async () => {
    const n = 200_000;
    const a = await pass(5, 1e-3, n);
    const b = await pass(5, 1e-3, n);
    const c = await pass(6, 1e-3, n);
    const diff = (x: Buffer) => {
      const ref = payload(n);
      let k = 0;
      for (let i = 0; i < n; i++) if (x[i] !== ref[i]) k++;
      return k;
    };
    expect(diff(a.out)).toBe(a.flipped);
    // 200 expected; a 5-sigma band of the binomial
    expect(a.flipped).toBeGreaterThan(200 - 5 * Math.sqrt(200));
    expect(a.flipped).toBeLessThan(200 + 5 * Math.sqrt(200));
    expect(b.out.equals(a.out)).toBe(true);
    expect(c.out.equals(a.out)).toBe(false);
  });

  it('a zero rate changes nothing', async () => {
    const r = await pass(1, 0, 10_000);
    expect(r.out.equals(payload(10_000))).toBe(true);
    expect(r.flipped).toBe(0);
  });
});

describe('paced in-process mock device', () => {
  it('a PING round trip takes at least the wire time of its bytes; the host knows the rate', async () => {
    const dev = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4&baud=115200');
    try {
      expect(dev.link.transport.bytesPerSecond).toBe(11_520);
      const s0 = dev.link.stats;
      const t0 = performance.now();
      await dev.ping(new Uint8Array(2000).fill(0x55));
      const ms = performance.now() - t0;
      const s1 = dev.link.stats;
      const bytes = s1.bytesOut - s0.bytesOut + (s1.bytesIn - s0.bytesIn);
      expect(bytes).toBeGreaterThan(4000);
      // The reply starts only once the request has fully arrived: the two directions add up.
      expect(ms).toBeGreaterThanOrEqual(1000 * wireSeconds(bytes, 115_200) - 1);
    } finally {
      await dev.close();
    }
  });

  it('a noisy mock still answers every request (retries recover)', async () => {
    const run = async () => {
      const dev = await ChipDevice.open('mock:ideal?seed=1&geometry=16-8-4&byteErrorRate=5e-4&errorSeed=4', {
        retries: 8,
        timeouts: { PING: 100, HELLO: 200 },
      });
      try {
        for (let i = 0; i < 30; i++) await dev.ping(new Uint8Array(200).fill(i));
        return dev.link.stats;
      } finally {
        await dev.close();
      }
    };
    const a = await run();
    expect(a.decodeErrors + a.retries).toBeGreaterThan(0);
    expect(a.failed).toBe(0);
  }, 30_000);
});
