import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { duplexPair } from '../../../firmware-protocol/mock-board/duplex-pair.ts';

describe('duplexPair', () => {
  it('carries bytes both ways', async () => {
    const [a, b] = duplexPair();
    const gotB = once(b, 'data');
    a.write(Buffer.from([1, 2, 3]));
    expect([...((await gotB)[0] as Buffer)]).toEqual([1, 2, 3]);
    const gotA = once(a, 'data');
    b.write(Buffer.from([4]));
    expect([...((await gotA)[0] as Buffer)]).toEqual([4]);
    a.destroy();
    b.destroy();
  });

  it('delivers everything in order under backpressure', async () => {
    const [a, b] = duplexPair();
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1000, i & 0xff));
    const received: Buffer[] = [];
    b.on('data', (c: Buffer) => received.push(c));
    for (const c of chunks) if (!a.write(c)) await once(a, 'drain');
    a.end();
    await once(b, 'end');
    expect(Buffer.concat(received).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('ends the other side when one side ends or is destroyed', async () => {
    const [a, b] = duplexPair();
    b.resume();
    const ended = once(b, 'end');
    a.end();
    await ended;
    const [c, d] = duplexPair();
    d.resume();
    const ended2 = once(d, 'end');
    c.destroy();
    await ended2;
  });
});
