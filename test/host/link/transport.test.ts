import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { keepPollerInterest, openTransport } from '../../../host/link/transport.ts';

/** The shape of @serialport/bindings-cpp's Poller: once() polls for the event, then listens. */
class FakePoller extends EventEmitter {
  calls: number[] = [];
  poll(flag = 0) {
    this.calls.push(flag);
  }
  override once(event: string, cb: (...a: unknown[]) => void): this {
    this.poll(event === 'readable' ? 1 : 2);
    return super.once(event, cb);
  }
}

describe('keepPollerInterest', () => {
  it('keeps watching for "writable" while a write waits, when the reader asks for "readable"', () => {
    const poller = new FakePoller();
    keepPollerInterest({ port: { poller } } as never);
    poller.once('writable', () => {}); // a write hit EAGAIN
    poller.once('readable', () => {}); // then the reader did
    expect(poller.calls).toEqual([0b10, 0b11]);
  });

  it('leaves other bindings alone', () => {
    expect(() => keepPollerInterest({ port: {} } as never)).not.toThrow();
    expect(() => keepPollerInterest({} as never)).not.toThrow();
  });
});

describe('openTransport', () => {
  it('opens the embedded mock and releases it on close', async () => {
    const t = await openTransport('mock:ideal?seed=1&geometry=4-2');
    expect(t.description).toBe('mock:ideal?seed=1&geometry=4-2');
    expect(t.bytesPerSecond).toBe(Infinity);
    await t.close();
    expect(t.stream.destroyed).toBe(true);
  });

  it('reports mock backends and options it cannot build', async () => {
    await expect(openTransport('mock:warp')).rejects.toThrow(/unknown chip kind 'warp'/);
    await expect(openTransport('mock:ideal?colour=blue')).rejects.toThrow(/unknown option 'colour'/);
  });
});
