/**
 * Sequence numbers for requests (u16). A seq is never handed out while a request holds it,
 * and a seq whose request was abandoned (timed out, cancelled) is quarantined for a while:
 * a late reply to it must be recognised as late and dropped, never matched to a newer
 * request that happened to reuse the number.
 */

export class SeqExhaustedError extends Error {
  override name = 'SeqExhaustedError';
}

const FREE = 0;
const IN_FLIGHT = 1;
const QUARANTINED = 2;
const SEQ_SPACE = 0x10000;

export interface SeqAllocatorOptions {
  /** First seq to try. Random by default so that replies left over from an earlier session do not match. */
  start?: number;
  /** How long an abandoned seq stays out of use, in milliseconds. */
  quarantineMs: number;
  /** Clock, for tests. */
  now?: () => number;
}

export class SeqAllocator {
  private readonly state = new Uint8Array(SEQ_SPACE);
  private readonly expiry = new Float64Array(SEQ_SPACE);
  private next: number;
  private inFlightCount = 0;
  private quarantinedCount = 0;
  private readonly quarantineMs: number;
  private readonly now: () => number;

  constructor(opts: SeqAllocatorOptions) {
    if (!(opts.quarantineMs >= 0)) throw new RangeError(`quarantineMs must be >= 0, got ${opts.quarantineMs}`);
    this.quarantineMs = opts.quarantineMs;
    this.now = opts.now ?? (() => performance.now());
    const start = opts.start ?? Math.floor(Math.random() * SEQ_SPACE);
    if (!Number.isInteger(start) || start < 0 || start >= SEQ_SPACE) throw new RangeError(`start must be a u16, got ${start}`);
    this.next = start;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get quarantined(): number {
    return this.quarantinedCount;
  }

  /** The next free seq (skips in-flight and still-quarantined ones). */
  allocate(): number {
    const t = this.now();
    for (let i = 0; i < SEQ_SPACE; i++) {
      const s = (this.next + i) & 0xffff;
      const st = this.state[s];
      if (st === QUARANTINED && this.expiry[s] <= t) {
        this.state[s] = FREE;
        this.quarantinedCount--;
      }
      if (this.state[s] === FREE) {
        this.state[s] = IN_FLIGHT;
        this.inFlightCount++;
        this.next = (s + 1) & 0xffff;
        return s;
      }
    }
    throw new SeqExhaustedError(
      `all 65536 sequence numbers are in flight or quarantined (${this.inFlightCount} in flight); ` + 'lower the request window or the quarantine time',
    );
  }

  isInFlight(seq: number): boolean {
    return this.state[seq & 0xffff] === IN_FLIGHT;
  }

  /** True while an abandoned seq is quarantined; a reply carrying it is late. */
  isQuarantined(seq: number): boolean {
    const s = seq & 0xffff;
    return this.state[s] === QUARANTINED && this.expiry[s] > this.now();
  }

  /** The request got its reply: the seq may be reused at once. */
  release(seq: number): void {
    const s = seq & 0xffff;
    if (this.state[s] !== IN_FLIGHT) return;
    this.state[s] = FREE;
    this.inFlightCount--;
  }

  /** The request gave up waiting: keep the seq out of use so a late reply cannot match anything. */
  abandon(seq: number): void {
    const s = seq & 0xffff;
    if (this.state[s] !== IN_FLIGHT) return;
    this.inFlightCount--;
    if (this.quarantineMs === 0) {
      this.state[s] = FREE;
      return;
    }
    this.state[s] = QUARANTINED;
    this.quarantinedCount++;
    this.expiry[s] = this.now() + this.quarantineMs;
  }
}
