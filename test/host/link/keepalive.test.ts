import { afterEach, describe, expect, it } from 'vitest';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import type { Transport } from '../../../host/link/link-client.ts';
import { duplexPair, MockBoard, serveBoard } from '../../../firmware-protocol/mock-board/index.ts';
import type { ChipRunOptions } from '../../../models/chips/chip-backend.ts';
import { ToyBackend } from '../device/toy-backend.ts';

/** A chip that needs `ms` per RUN, reporting progress every 50 ms when asked to. */
class SlowBackend extends ToyBackend {
  constructor(
    private readonly ms: number,
    private readonly report: boolean,
  ) {
    super([4, 3, 2]);
  }
  override async run(inputTicks: Uint16Array, batch: number, opts: ChipRunOptions = {}): Promise<Uint16Array[]> {
    const steps = Math.ceil(this.ms / 50);
    for (let k = 1; k <= steps; k++) {
      await new Promise((r) => setTimeout(r, 50));
      if (this.report) opts.onProgress?.({ done: k, total: steps });
    }
    return super.run(inputTicks, batch);
  }
}

const open: ChipDevice[] = [];

async function deviceOn(backend: SlowBackend): Promise<{ device: ChipDevice; progress: number[] }> {
  const [host, dev] = duplexPair();
  const server = serveBoard(new MockBoard(backend), dev);
  const transport: Transport = {
    description: 'slow mock',
    stream: host,
    bytesPerSecond: Infinity,
    close: async () => {
      host.destroy();
      await server.close();
    },
  };
  const device = await ChipDevice.over(transport, { retries: 0 });
  open.push(device);
  const progress: number[] = [];
  device.events$.subscribe((e) => {
    if (e.type === 'PROGRESS' && e.event.task === 'run') progress.push(e.event.done);
  });
  return { device, progress };
}

afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

describe('PROGRESS keeps a long request alive', () => {
  it('a RUN longer than its timeout completes while the device reports progress', async () => {
    const { device, progress } = await deviceOn(new SlowBackend(2400, true));
    const out = await device.run(new Uint16Array(4).fill(5), 1, { timeoutMs: 800 });
    expect(out).toHaveLength(2);
    // Throttled to a few events a second by the board, not one per backend report.
    expect(progress.length).toBeGreaterThanOrEqual(6);
    expect(progress.length).toBeLessThan(48);
  });

  it('the same RUN times out when the device stays silent', async () => {
    const { device } = await deviceOn(new SlowBackend(2400, false));
    await expect(device.run(new Uint16Array(4).fill(5), 1, { timeoutMs: 800 })).rejects.toThrow(/timed out|timeout/i);
  });
});
