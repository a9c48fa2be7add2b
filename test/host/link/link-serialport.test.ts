/** The link over serialport's stream with the MockBinding: the same stream class a real port uses. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { FrameDecoder, encodeResponse, encodeEvent, typeName } from '../../../firmware-protocol/index.ts';
import { LinkClient } from '../../../host/link/link-client.ts';
import { LinkClosedError, LinkTimeoutError } from '../../../host/link/errors.ts';
import { openSerialTransport } from '../../../host/link/transport.ts';
import { parseDeviceUri, type SerialAddress } from '../../../host/device/device-uri.ts';
import { firstValueFrom } from 'rxjs';

const PATH = '/dev/ttyMOCK0';
// serialport's own MockBinding (@serialport/binding-mock), reached through SerialPortMock for its types.
const MockBinding = SerialPortMock.binding;
/** The parts of @serialport/binding-mock's MockPortBinding the tests drive. */
interface MockPortBinding {
  isOpen: boolean;
  recording: Buffer;
  write(buf: Buffer): Promise<void>;
  read(buf: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>;
  emitData(data: Buffer): void;
}

/** Scripts the far end of a MockBinding port: decodes what the host writes and answers via emitData. */
function script(binding: MockPortBinding, answer: (name: string, seq: number, message: unknown) => Uint8Array[] | undefined) {
  const dec = new FrameDecoder();
  const seen: { name: string; seq: number }[] = [];
  const write = binding.write.bind(binding);
  binding.write = async (buf: Buffer) => {
    await write(buf);
    for (const ev of dec.push(buf)) {
      if (ev.kind !== 'frame') continue;
      const name = typeName(ev.frame.type)!;
      seen.push({ name, seq: ev.frame.seq });
      const out = answer(name, ev.frame.seq, ev.frame.message);
      if (out) setImmediate(() => binding.isOpen && binding.emitData(Buffer.concat(out)));
    }
  };
  return seen;
}

async function open(opts = {}) {
  const transport = await openSerialTransport(parseDeviceUri(`serial:${PATH}?baud=921600`) as SerialAddress, { binding: MockBinding });
  const client = new LinkClient(transport, { timeouts: { PING: 40 }, ...opts });
  const binding = (transport.stream as unknown as { port: MockPortBinding }).port;
  return { client, binding, transport };
}

describe('LinkClient over serialport MockBinding', () => {
  let client: LinkClient | undefined;
  beforeEach(() => MockBinding.createPort(PATH, { echo: false, record: true }));
  afterEach(async () => {
    await client?.close();
    client = undefined;
    MockBinding.reset();
  });

  it('reports a clear error for a port that does not exist', async () => {
    await expect(openSerialTransport(parseDeviceUri('serial:/dev/nope') as SerialAddress, { binding: MockBinding })).rejects.toThrow(/cannot open \/dev\/nope/);
  });

  it('matches pipelined replies by seq and passes events', async () => {
    const o = await open();
    client = o.client;
    const seen = script(o.binding, (name, seq, m) =>
      name === 'PING' ? [encodeEvent('LOG', seq, { level: 'debug', text: `ping ${seq}` }), encodeResponse('PING', seq, m as never)] : undefined,
    );
    const ev = firstValueFrom(client.events$);
    const r = await Promise.all([10, 20, 30, 40].map((nonce) => client!.request('PING', { nonce })));
    expect(r.map((x) => x.nonce)).toEqual([10, 20, 30, 40]);
    expect(new Set(seen.map((s) => s.seq)).size).toBe(4);
    expect((await ev).type).toBe('LOG');
    // what went over the port is exactly what the client says it sent
    expect(o.binding.recording.length).toBe(client.stats.bytesOut);
  });

  it('retries with a fresh seq after a lost reply, then times out cleanly', async () => {
    const o = await open({ retries: 1 });
    client = o.client;
    let n = 0;
    const seen = script(o.binding, (name, seq, m) => (n++ === 1 ? [encodeResponse('PING', seq, m as never)] : undefined));
    expect((await client.request('PING', { nonce: 1 })).nonce).toBe(1);
    await expect(client.request('PING', { nonce: 2 })).rejects.toBeInstanceOf(LinkTimeoutError);
    const seqs = seen.map((s) => s.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(client.stats).toMatchObject({ replies: 1, timeouts: 3, retries: 2 });
  });

  it('fails pending requests at once with LinkClosedError when the port disconnects', async () => {
    const o = await open({ timeouts: { PING: 60_000 } });
    client = o.client;
    script(o.binding, () => undefined);
    const p = client.request('PING', { nonce: 1 }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 5));
    // an unplug: the binding's pending read fails with a non-cancel error
    const read = o.binding.read.bind(o.binding);
    o.binding.read = async () => {
      throw Object.assign(new Error('device reports readiness to read but returned no data (unplugged?)'), { disconnected: true });
    };
    o.binding.emitData(Buffer.from([1])); // wake the pending read so the stream reads again
    void read;
    const err = await p;
    expect(err).toBeInstanceOf(LinkClosedError);
    expect(err.message).toMatch(/PING failed: link closed \(port disconnected: .*unplugged/);
  });
});
