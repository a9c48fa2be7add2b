/**
 * Two connected in-memory duplex byte streams (Node 20 has no stream.duplexPair): what one
 * side writes, the other reads. Backpressure holds a write until the reader asks for more;
 * ending one side ends the other's readable side; destroying one side ends the other.
 */
import { Duplex } from 'node:stream';

class PairSide extends Duplex {
  other!: PairSide;
  /** The callback of our last write, released when the other side reads. */
  private pendingWrite: ((err?: Error | null) => void) | null = null;

  releaseWrite(): void {
    const cb = this.pendingWrite;
    this.pendingWrite = null;
    cb?.();
  }

  override _read(): void {
    this.other.releaseWrite();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.other.destroyed || this.other.readableEnded) {
      cb(); // the far side is gone: like a serial line with no listener, bytes vanish
      return;
    }
    if (this.other.push(chunk)) cb();
    else this.pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.other.destroyed) this.other.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.releaseWrite();
    const o = this.other;
    if (!o.destroyed && !o.readableEnded) o.push(null);
    cb(err);
  }
}

export function duplexPair(): [Duplex, Duplex] {
  const a = new PairSide();
  const b = new PairSide();
  a.other = b;
  b.other = a;
  return [a, b];
}
