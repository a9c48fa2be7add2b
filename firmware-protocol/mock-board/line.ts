/**
 * A serial line in front of a mock board: wraps the board's end of a byte stream so that bytes
 * take the time a UART takes (10 bits per byte at `baud`, 8N1) plus a fixed latency, in both
 * directions, and so that a seeded fraction of them arrive with flipped bits. With it the
 * in-process mock and the pty server run at a real line rate, and tests and benches inject
 * noise without an outside proxy.
 *
 * Each direction is a FIFO with one timer: a chunk is delivered when the line has finished
 * sending it (after every chunk before it) plus the latency, never earlier, never out of order.
 * A write is acknowledged when its last byte has left the sender, so the writer's backlog
 * (`writableLength`) is what a UART's transmit buffer would hold.
 */
import { Duplex } from 'node:stream';
import { Rng, deriveSeed } from '../../models/datasets/rng.ts';

export interface LineOptions {
  /** Line rate in baud (10 bits per byte); absent: not rate-limited. */
  baud?: number;
  /** One-way latency in ms added to every chunk (USB frame, cable, bridge), default 0. */
  latencyMs?: number;
  /** Probability that a byte arrives changed (its bits XOR a random non-zero byte), both directions. */
  byteErrorRate?: number;
  /** Seed of the error pattern (default 1); each direction draws from its own stream. */
  errorSeed?: number;
}

export interface LineStats {
  /** Bytes the board sent / received through the line, and how many of them were changed. */
  bytesToHost: number;
  bytesToBoard: number;
  flippedToHost: number;
  flippedToBoard: number;
}

/** Seconds the line needs for `bytes` at `baud` (8N1: 10 bits per byte). */
export function wireSeconds(bytes: number, baud: number): number {
  return (bytes * 10) / baud;
}

/** True when the options change anything (otherwise the stream is used as it is). */
export function lineIsEmulated(o: LineOptions): boolean {
  return o.baud !== undefined || (o.latencyMs ?? 0) > 0 || o.byteErrorRate !== undefined;
}

/** One direction: paces chunks, flips bytes, delivers in order. */
class Lane {
  private readonly queue: { at: number; bytes: Uint8Array; sent?: () => void; sentAt: number }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lineFree = 0;
  private readonly rng: Rng;
  bytes = 0;
  flipped = 0;

  constructor(
    private readonly msPerByte: number,
    private readonly latencyMs: number,
    public errorRate: number,
    seed: number,
    private readonly deliver: (b: Uint8Array) => void,
  ) {
    this.rng = new Rng(seed);
  }

  get paced(): boolean {
    return this.msPerByte > 0 || this.latencyMs > 0;
  }

  /** Queues a chunk; `sent` runs when its last byte has left the sender. */
  push(chunk: Uint8Array, sent?: () => void): void {
    const bytes = this.mangle(chunk);
    this.bytes += bytes.length;
    if (!this.paced) {
      this.deliver(bytes);
      sent?.();
      return;
    }
    const now = performance.now();
    this.lineFree = Math.max(this.lineFree, now) + bytes.length * this.msPerByte;
    this.queue.push({ at: this.lineFree + this.latencyMs, bytes, sent, sentAt: this.lineFree });
    this.schedule();
  }

  private mangle(chunk: Uint8Array): Uint8Array {
    if (!(this.errorRate > 0)) return chunk;
    let out: Uint8Array | undefined;
    for (let i = 0; i < chunk.length; i++) {
      if (this.rng.next() < this.errorRate) {
        out ??= Uint8Array.from(chunk);
        out[i] = chunk[i]! ^ (1 + this.rng.int(255));
        this.flipped++;
      }
    }
    return out ?? chunk;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    const head = this.queue[0]!;
    // The write callback fires at sentAt, the bytes arrive at `at`: wake for the earlier.
    const next = head.sent ? Math.min(head.sentAt, head.at) : head.at;
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - performance.now()));
  }

  private tick(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const q of this.queue) {
      if (q.sent && q.sentAt <= now + 0.5) {
        const s = q.sent;
        q.sent = undefined;
        s();
      }
    }
    while (this.queue.length > 0 && this.queue[0]!.at <= now + 0.5) {
      const q = this.queue.shift()!;
      if (q.sent) q.sent();
      this.deliver(q.bytes);
    }
    this.schedule();
  }

  /** Delivers what is queued at once (the line is being torn down). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const q of this.queue.splice(0)) {
      q.sent?.();
      this.deliver(q.bytes);
    }
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  /** Resolves when everything queued has been delivered. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => (this.idle ? resolve() : setTimeout(check, 1));
      check();
    });
  }
}

/**
 * The board's side of a line: what the board writes reaches `inner` (towards the host) paced and
 * noisy, and what arrives from `inner` reaches the board the same way.
 */
export class EmulatedLine extends Duplex {
  private readonly toHost: Lane;
  private readonly toBoard: Lane;

  constructor(
    private readonly inner: Duplex,
    opts: LineOptions,
  ) {
    super();
    const msPerByte = opts.baud ? 1000 * wireSeconds(1, opts.baud) : 0;
    const latency = opts.latencyMs ?? 0;
    const rate = opts.byteErrorRate ?? 0;
    const seed = opts.errorSeed ?? 1;
    this.toHost = new Lane(msPerByte, latency, rate, deriveSeed(seed, 1), (b) => {
      if (!inner.destroyed && !inner.writableEnded) inner.write(b);
    });
    this.toBoard = new Lane(msPerByte, latency, rate, deriveSeed(seed, 2), (b) => {
      if (!this.destroyed) this.push(b);
    });
    inner.on('data', (b: Buffer) => this.toBoard.push(b));
    inner.on('end', () => void this.toBoard.drained().then(() => this.push(null)));
    inner.on('error', (e: Error) => this.destroy(e));
    inner.on('close', () => {
      this.toBoard.flush();
      if (!this.destroyed) this.destroy();
    });
  }

  /** Changes the byte error rate of both directions from now on (a bench sets up on a clean line, then adds noise). */
  setByteErrorRate(rate: number): void {
    if (!(rate >= 0 && rate <= 0.5)) throw new RangeError(`byte error rate must be in 0..0.5, got ${rate}`);
    this.toHost.errorRate = rate;
    this.toBoard.errorRate = rate;
  }

  get stats(): LineStats {
    return { bytesToHost: this.toHost.bytes, bytesToBoard: this.toBoard.bytes, flippedToHost: this.toHost.flipped, flippedToBoard: this.toBoard.flipped };
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.toHost.push(chunk, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    void this.toHost.drained().then(() => {
      this.inner.end();
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.toHost.flush();
    this.toBoard.flush();
    cb(err);
  }
}

/** `stream` as the board sees it through the line, or `stream` itself when nothing is emulated. */
export function emulateLine(stream: Duplex, opts: LineOptions): Duplex {
  return lineIsEmulated(opts) ? new EmulatedLine(stream, opts) : stream;
}
