/**
 * A duplex byte stream over a MessagePort: what one end writes, the stream on the other end of
 * the channel reads (bytes are moved, not copied). Ending one side ends the other's readable side.
 * It carries the mock board's line between the host's thread and the board's (thread.ts).
 */
import { Duplex } from 'node:stream';
import type { MessagePort } from 'node:worker_threads';

type PortMessage = { bytes: Uint8Array } | { end: true };

export function portStream(port: MessagePort): Duplex {
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const bytes = Uint8Array.from(chunk);
      port.postMessage({ bytes } satisfies PortMessage, [bytes.buffer]);
      cb();
    },
    final(cb) {
      port.postMessage({ end: true } satisfies PortMessage);
      cb();
    },
    destroy(err, cb) {
      port.close();
      cb(err);
    },
  });
  port.on('message', (m: PortMessage) => {
    if ('bytes' in m) stream.push(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
    else stream.push(null);
  });
  port.on('close', () => {
    if (!stream.readableEnded) stream.push(null);
  });
  return stream;
}
