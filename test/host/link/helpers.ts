/** Test helpers for the link: an in-memory byte pipe, a scriptable fake device, fault injection. */
import { Duplex } from 'node:stream';
import { FrameDecoder, encodeResponse, encodeEvent, encodeError, type Frame, type RequestName, typeName } from '../../../firmware-protocol/index.ts';
import type { Transport } from '../../../host/link/link-client.ts';

/** A byte-oriented duplex end; what it writes arrives at its peer asynchronously, like over a wire. */
export class End extends Duplex {
  peer!: End;
  /** Transforms the bytes this end sends (fault injection). */
  mangle: (b: Uint8Array) => Uint8Array = (b) => b;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    const out = this.mangle(chunk);
    setImmediate(() => {
      if (out.length > 0 && !this.peer.destroyed) this.peer.push(Buffer.from(out));
    });
    cb();
  }
  override _final(cb: () => void): void {
    setImmediate(() => this.peer.push(null));
    cb();
  }
}

/** Two connected duplex ends. `mangle` on an end transforms the bytes it sends (fault injection). */
export function pipePair(): [End, End] {
  const a = new End();
  const b = new End();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export function transportOf(stream: Duplex, description = 'test'): Transport {
  return {
    description,
    stream,
    bytesPerSecond: Infinity,
    close: async () => {
      stream.end();
      stream.destroy();
    },
  };
}

/**
 * Corrupts (flips a random bit pattern of) and drops bytes, each at `rate` per byte.
 * Counts what it did.
 */
export function faultFilter(rand: () => number, rate: number) {
  const stats = { bytes: 0, corrupted: 0, dropped: 0 };
  const filter = (b: Uint8Array): Uint8Array => {
    const out: number[] = [];
    for (const byte of b) {
      stats.bytes++;
      const r = rand();
      if (r < rate) {
        stats.dropped++;
        continue;
      }
      if (r < 2 * rate) {
        stats.corrupted++;
        out.push(byte ^ (1 + Math.floor(rand() * 255)));
        continue;
      }
      out.push(byte);
    }
    return Uint8Array.from(out);
  };
  return { filter, stats };
}

export type Reply = { name: RequestName; message: unknown } | { error: number; text: string } | { raw: Uint8Array };

/**
 * A scriptable device on one end of a pipe: decodes the host's requests and hands each to
 * `handle`, which may answer (return replies), stay silent, or keep the frame to answer later.
 */
export class FakeDevice {
  readonly requests: Frame[] = [];
  private readonly decoder = new FrameDecoder();
  private eventSeq = 0;
  constructor(
    readonly stream: Duplex,
    public handle: (frame: Frame, dev: FakeDevice) => void = (f, d) => d.echo(f),
  ) {
    stream.on('data', (b: Buffer) => {
      for (const ev of this.decoder.push(b))
        if (ev.kind === 'frame') {
          this.requests.push(ev.frame);
          this.handle(ev.frame, this);
        }
    });
  }
  /** Answers PING with its own nonce/data, other requests with nothing useful. */
  echo(f: Frame): void {
    if (typeName(f.type) === 'PING') this.reply(f.seq, 'PING', f.message);
  }
  reply(seq: number, name: RequestName, message: unknown): void {
    this.stream.write(encodeResponse(name, seq, message as never));
  }
  error(seq: number, code: number, text: string): void {
    this.stream.write(encodeError(seq, code, text));
  }
  event(name: 'LOG' | 'ALERT' | 'PROGRESS', message: unknown): void {
    this.stream.write(encodeEvent(name, this.eventSeq++, message as never));
  }
  raw(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }
}

export const tick = () => new Promise((r) => setImmediate(r));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
