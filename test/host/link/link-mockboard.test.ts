/** The link against the reference device side (MockBoard served over duplexPair). */
import { afterEach, describe, expect, it } from 'vitest';
import { firstValueFrom, filter } from 'rxjs';
import { MockBoard, serveBoard, duplexPair } from '../../../firmware-protocol/mock-board/index.ts';
import { ErrorCode } from '../../../firmware-protocol/index.ts';
import { LinkClient } from '../../../host/link/link-client.ts';
import { DeviceError, LinkClosedError } from '../../../host/link/errors.ts';
import { ToyBackend } from '../device/toy-backend.ts';
import { transportOf } from './helpers.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function setup() {
  const board = new MockBoard(new ToyBackend([6, 3]), { maxPayload: 512 });
  const [host, dev] = duplexPair();
  const server = serveBoard(board, dev);
  const client = new LinkClient(transportOf(host), { timeouts: { PING: 500 } });
  closers.push(
    () => server.close(),
    () => client.close(),
  );
  return { board, client, host, dev, server };
}

describe('LinkClient with a MockBoard', () => {
  it('receives the board announcement on events$ and pipelines requests', async () => {
    const { client } = setup();
    const log = firstValueFrom(client.events$.pipe(filter((e) => e.type === 'LOG')));
    const nonces = Array.from({ length: 40 }, (_, i) => (i * 2654435761) >>> 0);
    const replies = await Promise.all(nonces.map((nonce) => client.request('PING', { nonce })));
    expect(replies.map((r) => r.nonce)).toEqual(nonces);
    const ev = await log;
    expect(ev.type === 'LOG' && ev.event.text).toMatch(/ready/);
    expect(client.stats).toMatchObject({ replies: 40, timeouts: 0, retries: 0, decodeErrors: 0 });
  });

  it('passes the board refusal through as DeviceError with the protocol advice', async () => {
    const { client } = setup();
    const err = await client.request('WEIGHTS_WRITE', { layer: 0, offset: 0, codes: new Uint16Array([65535]) }).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect(err.code).toBe(ErrorCode.OUT_OF_RANGE);
    expect(err.message).toMatch(/WEIGHTS_WRITE refused by device: OUT_OF_RANGE \(3\): WEIGHTS_WRITE\.codes\[0\]: code 65535/);
    const bad = await client.request('WEIGHTS_CRC', { layer: 9 }).catch((e) => e);
    expect(bad.codeName).toBe('BAD_LAYER');
    expect(bad.advice).toMatch(/layers are numbered from 0/);
  });

  it('fails the pending request when the board side goes away', async () => {
    const { client, dev, server } = setup();
    await server.close();
    const p = client.request('PING', { nonce: 1 }, { timeoutMs: 60_000 }).catch((e) => e);
    dev.destroy();
    const err = await p;
    expect(err).toBeInstanceOf(LinkClosedError);
  });
});
