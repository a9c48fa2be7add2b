import { afterEach, describe, expect, it } from 'vitest';
import { firstValueFrom, take, toArray } from 'rxjs';
import {
  ErrorCode,
  MsgType,
  encodeEvent,
  encodeRawFrame,
  encodeResponse,
  Flags,
  PROTOCOL_VERSION,
  packPayload,
  type Frame,
} from '../../../firmware-protocol/index.ts';
import { LinkClient, type LinkOptions } from '../../../host/link/link-client.ts';
import { DeviceError, LinkClosedError, LinkTimeoutError, ProtocolViolationError } from '../../../host/link/errors.ts';
import { FakeDevice, pipePair, sleep, tick, transportOf } from './helpers.ts';

const clients: LinkClient[] = [];
function setup(handle?: (f: Frame, d: FakeDevice) => void, opts: LinkOptions = {}) {
  const [host, dev] = pipePair();
  const client = new LinkClient(transportOf(host), { timeouts: { PING: 40 }, ...opts });
  clients.push(client);
  const device = new FakeDevice(dev, handle);
  return { client, device, host, dev };
}
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});

const nonceOf = (f: Frame) => (f.message as { nonce: number }).nonce;

describe('LinkClient', () => {
  it('matches replies by seq, whatever order they come in', async () => {
    const held: Frame[] = [];
    const { client } = setup(
      (f, d) => {
        held.push(f);
        if (held.length === 3) for (const h of held.reverse()) d.reply(h.seq, 'PING', { nonce: nonceOf(h) });
      },
      { detectLoss: false },
    ); // answers out of order, which PROTOCOL.md section 6 rules out
    const replies = await Promise.all([1, 2, 3].map((nonce) => client.request('PING', { nonce })));
    expect(replies.map((r) => r.nonce)).toEqual([1, 2, 3]);
    expect(client.stats).toMatchObject({ requests: 3, replies: 3, framesOut: 3, framesIn: 3, timeouts: 0 });
  });

  it('gives every in-flight request its own seq and pipelines up to the window', async () => {
    let maxOutstanding = 0;
    const outstanding = new Map<number, Frame>();
    const { client, device } = setup(
      (f, d) => {
        expect(outstanding.has(f.seq)).toBe(false);
        outstanding.set(f.seq, f);
        maxOutstanding = Math.max(maxOutstanding, outstanding.size);
        if (outstanding.size === 4) {
          for (const [s, g] of outstanding) d.reply(s, 'PING', { nonce: nonceOf(g) });
          outstanding.clear();
        }
      },
      { window: 4 },
    );
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.request('PING', { nonce: i })));
    expect(replies.map((r) => r.nonce)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(maxOutstanding).toBe(4);
    expect(device.requests).toHaveLength(20);
  });

  it('restarts the timeouts of queued-up requests while the device answers those ahead of them', async () => {
    // The device works through requests one at a time, 100 ms each: the 8th reply comes 800 ms
    // after it was sent, far past the 400 ms timeout, yet the device never falls silent for 400 ms.
    const queue: Frame[] = [];
    let busy = false;
    const serveNext = (d: FakeDevice) => {
      const f = queue.shift();
      if (!f) return void (busy = false);
      busy = true;
      setTimeout(() => {
        d.reply(f.seq, 'PING', f.message);
        serveNext(d);
      }, 100);
    };
    const { client } = setup(
      (f, d) => {
        queue.push(f);
        if (!busy) serveNext(d);
      },
      { timeouts: { PING: 400 }, window: 8 },
    );
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => client.request('PING', { nonce: i })));
    expect(replies.map((r) => r.nonce)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(client.stats).toMatchObject({ timeouts: 0, retries: 0 });
  });

  it('times out after its retries, each attempt with a fresh seq', async () => {
    const { client, device } = setup(() => {}, { retries: 2 });
    const err = await client.request('PING', { nonce: 9 }).catch((e) => e);
    expect(err).toBeInstanceOf(LinkTimeoutError);
    expect(err.attempts).toBe(3);
    expect(err.message).toMatch(/PING got no reply: 3 attempts timed out after 40 ms each/);
    const seqs = device.requests.map((f) => f.seq);
    expect(new Set(seqs).size).toBe(3);
    expect(err.seqs).toEqual(seqs);
    expect(client.stats).toMatchObject({ timeouts: 3, retries: 2, failed: 1 });
  });

  it('recovers with a retry when the first attempt is lost', async () => {
    let n = 0;
    const { client, device } = setup((f, d) => {
      if (n++ > 0) d.reply(f.seq, 'PING', f.message);
    });
    const r = await client.request('PING', { nonce: 77 });
    expect(r.nonce).toBe(77);
    expect(device.requests[0]!.seq).not.toBe(device.requests[1]!.seq);
    expect(client.stats).toMatchObject({ retries: 1, timeouts: 1, replies: 1 });
  });

  // Loss detection (PROTOCOL.md section 6: the device answers in arrival order). The timeouts are a
  // minute, so a request that completes was sent again because its loss was seen, not timed out.
  it('sends a request again at once when a request sent after it is answered first', async () => {
    let dropped = false;
    const { client, device } = setup(
      (f, d) => {
        if (nonceOf(f) === 1 && !dropped) dropped = true;
        else d.reply(f.seq, 'PING', f.message);
      },
      { timeouts: { PING: 60_000 } },
    );
    const replies = await Promise.all([1, 2].map((nonce) => client.request('PING', { nonce })));
    expect(replies.map((r) => r.nonce)).toEqual([1, 2]);
    expect(device.requests.map(nonceOf)).toEqual([1, 2, 1]);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 1, retries: 1, replies: 2 });
  });

  it('sends the oldest waiting request again at once on a NAK event', async () => {
    let n = 0;
    const { client } = setup(
      (f, d) => {
        if (n++ === 0) d.raw(encodeEvent('NAK', 0, { error: 'crc', damaged: 1 }, { version: 2 }));
        else d.reply(f.seq, 'PING', f.message);
      },
      { timeouts: { PING: 60_000 } },
    );
    expect((await client.request('PING', { nonce: 5 })).nonce).toBe(5);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 1, retries: 1, events: 1 });
  });

  it('takes a NAK for the attempt sent right after the request it names, and ignores one about an attempt already re-sent', async () => {
    let first = -1;
    let nak: Uint8Array | undefined;
    const { client, device } = setup(
      (f, d) => {
        if (nonceOf(f) === 1) {
          first = f.seq;
          return d.reply(f.seq, 'PING', f.message);
        }
        if (nak === undefined) {
          // the first attempt of PING 2 arrives damaged: the device names PING 1 as the last intact request
          nak = encodeEvent('NAK', 0, { error: 'crc', damaged: 1, after: first }, { version: 2 });
          return d.raw(nak);
        }
        d.raw(nak); // the same NAK again, late: it is about the attempt given up, not this one
        d.reply(f.seq, 'PING', f.message);
      },
      { timeouts: { PING: 60_000 } },
    );
    await client.request('PING', { nonce: 1 });
    expect((await client.request('PING', { nonce: 2 })).nonce).toBe(2);
    expect(device.requests.map(nonceOf)).toEqual([1, 2, 2]);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 1, retries: 1, events: 2 });
  });

  it('takes NAKs in a row naming the same intact request for the frames sent one after another after it', async () => {
    let first = -1;
    let damaged = 0;
    const { client, device } = setup(
      (f, d) => {
        if (nonceOf(f) === 1) {
          first = f.seq;
          return d.reply(f.seq, 'PING', f.message);
        }
        // the first two attempts of PING 2 arrive damaged; the device still names PING 1 as the last intact one
        if (damaged < 2) return d.raw(encodeEvent('NAK', damaged, { error: 'crc', damaged: ++damaged, after: first }, { version: 2 }));
        d.reply(f.seq, 'PING', f.message);
      },
      { timeouts: { PING: 60_000 } },
    );
    await client.request('PING', { nonce: 1 });
    expect((await client.request('PING', { nonce: 2 })).nonce).toBe(2);
    expect(device.requests.map(nonceOf)).toEqual([1, 2, 2, 2]);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 2, retries: 2 });
  });

  it('does not give up on a line that keeps answering: losses found before the timeout have their own budget', async () => {
    // A long frame on a noisy line is lost about as often as not; 12 losses in a row used to
    // exhaust the 3 retries and fail a request whose line was working all along.
    let damaged = 0;
    const { client, device } = setup(
      (f, d) => {
        if (damaged < 12) return d.raw(encodeEvent('NAK', damaged, { error: 'crc', damaged: ++damaged }, { version: 2 }));
        d.reply(f.seq, 'PING', f.message);
      },
      { timeouts: { PING: 60_000 }, retries: 3 },
    );
    expect((await client.request('PING', { nonce: 3 })).nonce).toBe(3);
    expect(device.requests).toHaveLength(13);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 12, retries: 12, failed: 0 });
  });

  it('gives up after lossRetries attempts found lost, saying they were lost and why', async () => {
    let damaged = 0;
    const { client, device } = setup((_f, d) => d.raw(encodeEvent('NAK', damaged, { error: 'crc', damaged: ++damaged }, { version: 2 })), {
      timeouts: { PING: 60_000 },
      lossRetries: 5,
    });
    const err = await client.request('PING', { nonce: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(LinkTimeoutError);
    expect(err.attempts).toBe(6);
    expect(device.requests).toHaveLength(6);
    expect(err.message).toMatch(/6 attempts: 0 timed out, 6 found lost \(the last: seq \d+ lost after \d+ ms: the device received a damaged frame \(NAK\)\)/);
  });

  it('sends the oldest waiting request again at once when a damaged frame arrives', async () => {
    let n = 0;
    const { client } = setup(
      (f, d) => {
        if (n++ > 0) return d.reply(f.seq, 'PING', f.message);
        const good = encodeResponse('PING', f.seq, f.message as never);
        const bad = good.slice();
        bad[6] = bad[6]! === 0x55 ? 0x56 : 0x55; // inside the frame: the CRC fails
        d.raw(bad);
      },
      { timeouts: { PING: 60_000 } },
    );
    expect((await client.request('PING', { nonce: 6 })).nonce).toBe(6);
    expect(client.stats).toMatchObject({ timeouts: 0, lost: 1, retries: 1, decodeErrors: 1 });
  });

  it('does not take a reply for loss when the device answers out of order and detectLoss is off', async () => {
    const held: Frame[] = [];
    const { client, device } = setup(
      (f, d) => {
        held.push(f);
        if (held.length === 2) for (const h of held.reverse()) d.reply(h.seq, 'PING', { nonce: nonceOf(h) });
      },
      { detectLoss: false },
    );
    await Promise.all([1, 2].map((nonce) => client.request('PING', { nonce })));
    expect(device.requests).toHaveLength(2);
    expect(client.stats).toMatchObject({ lost: 0, retries: 0 });
  });

  it('drops a late reply to an abandoned seq instead of matching it to a later request', async () => {
    const late: Frame[] = [];
    const { client, device } = setup(
      (f, d) => {
        const nonce = nonceOf(f);
        if (nonce === 1 && late.length === 0)
          late.push(f); // first attempt: answered only later
        else if (nonce === 2) {
          // while request 2 is in flight, the late answer to request 1's first seq arrives
          d.reply(late[0]!.seq, 'PING', { nonce: 1 });
          setTimeout(() => d.reply(f.seq, 'PING', f.message), 5);
        } else d.reply(f.seq, 'PING', f.message);
      },
      { firstSeq: 100 },
    );
    expect((await client.request('PING', { nonce: 1 })).nonce).toBe(1);
    expect((await client.request('PING', { nonce: 2 })).nonce).toBe(2);
    const seqs = device.requests.map((f) => f.seq);
    expect(seqs.slice(1)).not.toContain(seqs[0]);
    expect(client.stats).toMatchObject({ lateReplies: 1, unmatchedReplies: 0, replies: 2 });
  });

  it('counts replies to seqs it never sent as unmatched', async () => {
    const { client, device } = setup((f, d) => {
      d.reply((f.seq + 1000) & 0xffff, 'PING', f.message);
      d.reply(f.seq, 'PING', f.message);
    });
    await client.request('PING', { nonce: 5 });
    expect(device.requests).toHaveLength(1);
    expect(client.stats.unmatchedReplies).toBe(1);
  });

  it('turns ERROR replies into DeviceError with the code name and advice, without retrying', async () => {
    const { client, device } = setup((f, d) => d.error(f.seq, ErrorCode.OUT_OF_RANGE, 'code 5000 > 4095'));
    const err = await client.request('PING', { nonce: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect(err).toMatchObject({ code: 3, codeName: 'OUT_OF_RANGE', deviceMessage: 'code 5000 > 4095', request: 'PING' });
    expect(err.message).toMatch(/PING refused by device: OUT_OF_RANGE \(3\): code 5000 > 4095; .*spikeloop info/);
    expect(device.requests).toHaveLength(1);
    expect(client.stats.deviceErrors).toBe(1);
  });

  it('retries BUSY with a fresh seq and backoff', async () => {
    let n = 0;
    const { client, device } = setup((f, d) => (n++ < 2 ? d.error(f.seq, ErrorCode.BUSY, 'self test running') : d.reply(f.seq, 'PING', f.message)), {
      busyBackoffMs: 1,
    });
    expect((await client.request('PING', { nonce: 3 })).nonce).toBe(3);
    expect(new Set(device.requests.map((f) => f.seq)).size).toBe(3);
    expect(client.stats.retries).toBe(2);
  });

  it('does not retry a non-idempotent request', async () => {
    const { client, device } = setup(() => {}, { timeouts: { SELF_TEST: 30 } });
    await expect(client.request('SELF_TEST', {})).rejects.toBeInstanceOf(LinkTimeoutError);
    expect(device.requests).toHaveLength(1);
  });

  it('publishes device events on events$, in order, without disturbing requests', async () => {
    const { client } = setup((f, d) => {
      d.event('PROGRESS', { task: 'x', done: 1, total: 2 });
      d.event('LOG', { level: 'info', text: 'hello' });
      d.reply(f.seq, 'PING', f.message);
      d.event('ALERT', { kind: 'brown-out', value: 1.6, text: 'supply low' });
    });
    const events = firstValueFrom(client.events$.pipe(take(3), toArray()));
    expect((await client.request('PING', { nonce: 4 })).nonce).toBe(4);
    expect((await events).map((e) => [e.type, e.seq])).toEqual([
      ['PROGRESS', 0],
      ['LOG', 1],
      ['ALERT', 2],
    ]);
    expect(client.stats.events).toBe(3);
  });

  it('fails every pending request at once when the host closes (not a timeout)', async () => {
    const { client } = setup(() => {}, { timeouts: { PING: 60_000 }, window: 2 });
    const pending = [1, 2, 3].map((nonce) => client.request('PING', { nonce }).catch((e) => e));
    await tick();
    await client.close();
    const errs = await Promise.all(pending);
    for (const e of errs) {
      expect(e).toBeInstanceOf(LinkClosedError);
      expect(e.message).toMatch(/PING failed: link closed \(closed by the host\)/);
    }
    await expect(client.request('PING', { nonce: 4 })).rejects.toBeInstanceOf(LinkClosedError);
  });

  it('fails pending requests and completes events$ when the device goes away', async () => {
    const { client, dev } = setup(() => {}, { timeouts: { PING: 60_000 } });
    const done = firstValueFrom(client.events$.pipe(toArray()));
    const p = client.request('PING', { nonce: 1 }).catch((e) => e);
    await tick();
    dev.end();
    const err = await p;
    expect(err).toBeInstanceOf(LinkClosedError);
    expect(err.message).toMatch(/device closed the connection/);
    expect(await done).toEqual([]);
    expect(await client.closed).toMatch(/device closed/);
  });

  it('resynchronises after garbage and counts decode errors', async () => {
    const { client } = setup((f, d) => {
      d.raw(Uint8Array.from([0x13, 0x37, 0x42])); // glued in front of the reply
      d.reply(f.seq, 'PING', f.message);
      d.raw(Uint8Array.from([0x05, 0x01, 0x02, 0x00, 0x00, 0xff, 0xfe, 0x00])); // junk frames
    });
    expect((await client.request('PING', { nonce: 11 })).nonce).toBe(11);
    expect((await client.request('PING', { nonce: 12 })).nonce).toBe(12);
    expect(client.stats.decodeErrors).toBeGreaterThanOrEqual(2);
    expect(client.stats.replies).toBe(2);
  });

  it('fails a request at once when its reply has the wrong type or an unreadable payload', async () => {
    const { client } = setup((f, d) => {
      if (nonceOf(f) === 1)
        d.reply(f.seq, 'STATUS', {
          supplyV: 1.8,
          temperatureC: 25,
          uptimeMs: 1,
          counters: { framesOk: 0, crcErrors: 0, framingErrors: 0, oversize: 0, unknownType: 0, badPayload: 0, refused: 0 },
        });
      else d.raw(encodeRawFrame({ version: PROTOCOL_VERSION, type: MsgType.PING, flags: Flags.RESPONSE, seq: f.seq }, packPayload({ nonce: 'x' })));
    });
    const e1 = await client.request('PING', { nonce: 1 }, { timeoutMs: 60_000 }).catch((e) => e);
    expect(e1).toBeInstanceOf(ProtocolViolationError);
    expect(e1.message).toMatch(/type 0x31, expected 0x2/);
    const e2 = await client.request('PING', { nonce: 2 }, { timeoutMs: 60_000 }).catch((e) => e);
    expect(e2).toBeInstanceOf(ProtocolViolationError);
    expect(e2.message).toMatch(/unreadable reply.*nonce/);
  });

  it('refuses a reply with a float in an integer field or a duplicate key (PROTOCOL.md section 2)', async () => {
    const key = (k: string) => [0xa0 | k.length, ...new TextEncoder().encode(k)];
    const { client } = setup((f, d) => {
      // {nonce: float64 of the nonce} / {nonce, nonce}
      const n = nonceOf(f);
      const float = new Uint8Array(9);
      float[0] = 0xcb;
      new DataView(float.buffer).setFloat64(1, n);
      const payload = n === 1 ? Uint8Array.of(0x81, ...key('nonce'), ...float) : Uint8Array.of(0x82, ...key('nonce'), n, ...key('nonce'), n);
      d.raw(encodeRawFrame({ version: PROTOCOL_VERSION, type: MsgType.PING, flags: Flags.RESPONSE, seq: f.seq }, payload));
    });
    const e1 = await client.request('PING', { nonce: 1 }, { timeoutMs: 60_000 }).catch((e) => e);
    expect(e1).toBeInstanceOf(ProtocolViolationError);
    expect(e1.message).toMatch(/PING response\.nonce: expected an integer.*MessagePack float/);
    const e2 = await client.request('PING', { nonce: 2 }, { timeoutMs: 60_000 }).catch((e) => e);
    expect(e2).toBeInstanceOf(ProtocolViolationError);
    expect(e2.message).toMatch(/duplicate map key "nonce"/);
  });

  it('cancels on abort and quarantines the seq', async () => {
    const frames: Frame[] = [];
    const { client } = setup((f) => frames.push(f), { timeouts: { PING: 60_000 } });
    const ac = new AbortController();
    const p = client.request('PING', { nonce: 1 }, { signal: ac.signal }).catch((e) => e);
    await sleep(5);
    ac.abort(new Error('user gave up'));
    expect((await p).message).toBe('user gave up');
    expect(client.stats).toMatchObject({ cancelled: 1, inFlight: 0 });
  });

  it('refuses a message that breaks its schema before sending anything', async () => {
    const { client, device } = setup();
    expect(client.stats.bytesOut).toBe(1); // the opening 0x00 delimiter
    await expect(client.request('PING', { nonce: -1 })).rejects.toThrow(/PING: cannot send: PING.nonce/);
    await sleep(5);
    expect(device.requests).toHaveLength(0);
    expect(client.stats).toMatchObject({ bytesOut: 1, framesOut: 0 });
  });
});
