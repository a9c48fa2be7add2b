/**
 * The request/response client of the serial link.
 *
 * Requests carry a u16 seq and are matched to replies by it. Several requests may be in
 * flight at once (up to `window`), which is what keeps a board busy during uploads and
 * in-situ training. Each attempt has its own timeout, started when the frame is handed
 * to the stream; an idempotent request that times out is sent again with a FRESH seq, and
 * the abandoned seq is quarantined so that its late reply is recognised, counted and
 * dropped instead of being matched to some other request. Garbage on the line is skipped
 * by the frame decoder (COBS frames resynchronise at the next 0x00).
 *
 * A lost frame is usually noticed long before its timeout: the device answers in arrival order
 * (PROTOCOL.md section 6), so a reply to a later request means every earlier one still waiting
 * was lost; a NAK event (protocol 2, sent in order with the replies) or a damaged frame from the
 * device means the oldest request still waiting was. Such a request is sent again at once.
 *
 *   bytes in --FrameDecoder--> frames --seq--> pending request --> Observable reply
 *                                    \--EVENT flag--> events$
 *
 * One module on purpose (about 740 lines): the pending requests, the window, the timers and the
 * loss detection are one state machine over the same maps; the seqs (seq-allocator.ts), the
 * errors (errors.ts) and the transports (transport.ts) are their own modules.
 */
import type { Duplex } from 'node:stream';
import { Observable, Subject, defer, throwError, timer, retry, catchError, firstValueFrom } from 'rxjs';
import {
  encodeRequest,
  CRC_BYTES,
  HEADER_BYTES,
  ErrorCode,
  FrameDecoder,
  Flags,
  MIN_PROTOCOL_VERSION,
  MsgType,
  PROTOCOL_VERSION,
  type Catalog,
  type Frame,
  type RequestName,
  type Events,
  type EventName,
  type ErrorResponse,
  type NakEvent,
} from '../../firmware-protocol/index.ts';
import { SeqAllocator } from './seq-allocator.ts';
import { AttemptLost, AttemptTimeout, DeviceError, LinkClosedError, LinkTimeoutError, ProtocolViolationError, isRetryable } from './errors.ts';

/** A byte stream to a device, plus how to let go of it. */
export interface Transport {
  /** Human-readable address, for messages. */
  readonly description: string;
  readonly stream: Duplex;
  /** Wire rate in bytes per second (baud / 10 for 8N1), Infinity when the medium is not rate-limited. */
  readonly bytesPerSecond: number;
  /** Releases the port (and, for an embedded mock, the board and its chip backend). */
  close(): Promise<void>;
}

/** An asynchronous message from the device (EVENT flag), with the device's own counter. */
export type DeviceEvent = { [K in EventName]: { type: K; seq: number; event: Events[K] } }[EventName];

export type RequestMessage<N extends RequestName> = Catalog[N]['request'];
export type ResponseMessage<N extends RequestName> = Catalog[N]['response'];

/** Per-attempt timeouts by request, in milliseconds (wire time for the request frame is added). */
export const DEFAULT_TIMEOUTS: Readonly<Record<RequestName, number>> = {
  HELLO: 1000,
  PING: 1000,
  RESET: 2000,
  WEIGHTS_WRITE: 1000,
  WEIGHTS_CRC: 2000,
  NEURON_CONFIG: 1000,
  WEIGHTS_PATCH: 1000,
  WEIGHTS_EDIT: 1000,
  RUN: 10_000,
  RUN_PACKED: 10_000,
  SELF_TEST: 60_000,
  STATUS: 1000,
};

/**
 * Requests that may be repeated without changing the outcome. WEIGHTS_WRITE writes absolute
 * codes at an absolute offset, NEURON_CONFIG sets absolute voltages, RUN only measures.
 * SELF_TEST is long and restarts from scratch, so a retry would hide a hang: not retried.
 */
export const IDEMPOTENT: Readonly<Record<RequestName, boolean>> = {
  HELLO: true,
  PING: true,
  RESET: true,
  WEIGHTS_WRITE: true,
  WEIGHTS_CRC: true,
  NEURON_CONFIG: true,
  WEIGHTS_PATCH: true,
  WEIGHTS_EDIT: true,
  RUN: true,
  RUN_PACKED: true,
  SELF_TEST: false,
  STATUS: true,
};

const EVENT_TYPES = new Map<number, EventName>([
  [MsgType.LOG, 'LOG'],
  [MsgType.ALERT, 'ALERT'],
  [MsgType.PROGRESS, 'PROGRESS'],
  [MsgType.NAK, 'NAK'],
]);

export interface LinkOptions {
  /** Override the per-attempt timeout of some requests. */
  timeouts?: Partial<Record<RequestName, number>>;
  /** Extra attempts for an idempotent request after a timeout or BUSY (default 3). */
  retries?: number;
  /**
   * Extra attempts for an idempotent request found lost before its timeout (a NAK, a later reply,
   * a damaged reply), on top of `retries` (default 64). Such an attempt costs its wire time only,
   * and on a noisy line a long frame is lost about as often as not (a 800-byte RUN at a byte error
   * rate of 1e-3 gets through both ways with probability 0.45): counting these against `retries`
   * gave up on a line that was working.
   */
  lossRetries?: number;
  /**
   * Requests in flight at once; more wait in a queue, their timeout not yet running. Default 8
   * until the device announces its receive queue (HELLO `rxFrames`, see `fitWindow`), then that,
   * up to MAX_WINDOW; when given, also the most the announcement may raise it to.
   */
  window?: number;
  /** How long an abandoned seq stays out of use (default 30 s, at least 4x the longest timeout is wise). */
  quarantineMs?: number;
  /** Delay before retrying after BUSY (default 50 ms, doubled per retry). */
  busyBackoffMs?: number;
  /** First seq (random by default). */
  firstSeq?: number;
  /** Send a 0x00 when the link opens, ending any partial frame the device holds (default true). */
  leadingDelimiter?: boolean;
  /**
   * Scale each attempt's timeout to the expected work once the device's service time for the
   * request is known (default true): see `plannedTimeoutMs`. Off: the fixed timeouts.
   */
  adaptiveTimeouts?: boolean;
  /**
   * Send a request again as soon as it is known lost (a reply to a later request, a NAK, a
   * damaged frame from the device) instead of at its timeout (default true). Relies on the
   * device answering in arrival order (PROTOCOL.md section 6); off for one that does not.
   */
  detectLoss?: boolean;
}

/** Requests in flight without a device announcement (HELLO `rxFrames`): what BUSY-free boards have taken so far. */
export const DEFAULT_WINDOW = 8;
/** The most requests in flight a device's announcement raises the window to (each holds a seq and a timer). */
export const MAX_WINDOW = 64;

/** The shortest damaged frame that may have been a reply (header and CRC); shorter is line garbage. */
const MIN_FRAME_BYTES = HEADER_BYTES + CRC_BYTES;

/** What a request will cost, for its timeout: the reply's size and the device's work in units. */
export interface RequestExpectation {
  /** Bytes of the reply (its wire time is part of the wait). */
  replyBytes?: number;
  /** Units of device work (samples of a RUN, codes of a write); the service time is learnt per unit. */
  work?: number;
}

/**
 * The least device allowance of an adaptive timeout. Below the board's PROGRESS interval (at most
 * a second, PROTOCOL.md), so a request that is usually quick and once runs long may be sent again
 * (all adaptive requests are idempotent; the late reply is quarantined): a retry costs one more
 * request, while on a noisy line every lost frame costs this long.
 */
export const ADAPTIVE_FLOOR_MS = 500;
/** An adaptive timeout allows this many times the learnt service time. */
export const ADAPTIVE_MARGIN = 4;
/** Replies seen of a request type before its timeout adapts. */
const ADAPTIVE_AFTER = 2;

export interface RequestOptions {
  /** Per-attempt timeout in ms (default from DEFAULT_TIMEOUTS / LinkOptions.timeouts). */
  timeoutMs?: number;
  /** Extra attempts (only for idempotent requests). */
  retries?: number;
  /** Override the idempotency table (e.g. a RUN on a chip with state). */
  idempotent?: boolean;
  /** Cancels the request (the seq is quarantined). */
  signal?: AbortSignal;
  /** Size of the reply and amount of work, so the timeout scales to them. */
  expect?: RequestExpectation;
}

export interface LinkStats {
  bytesOut: number;
  bytesIn: number;
  framesOut: number;
  framesIn: number;
  requests: number;
  replies: number;
  retries: number;
  /** Attempts that timed out (each may have been retried). */
  timeouts: number;
  /** Attempts found lost before their timeout (a later reply, a NAK, a damaged reply) and sent again at once. */
  lost: number;
  /** Requests that failed for good (timeout after retries, device error, closed, ...). */
  failed: number;
  cancelled: number;
  /** Replies to abandoned (quarantined) seqs: dropped. */
  lateReplies: number;
  /** Replies to seqs never issued or long released: dropped. */
  unmatchedReplies: number;
  /** Frames the decoder rejected (CRC, framing, oversize, bad payload). */
  decodeErrors: number;
  /** ERROR replies. */
  deviceErrors: number;
  events: number;
  /** Frames neither a response nor an event. */
  unexpectedFrames: number;
  inFlight: number;
  queued: number;
  /** Request frames and their wire bytes by request type (every attempt), to see where the bytes go. */
  sent: Partial<Record<RequestName, { frames: number; bytes: number }>>;
}

interface Pending {
  name: RequestName;
  type: number;
  /** Send order, to tell which pending requests were sent after another. */
  order: number;
  /** Restarts the attempt's timeout (a request ahead of it was answered). */
  restartTimer(): void;
  /** The attempt is known lost: fail it now (as a timeout would) so that it is retried. */
  lose(why: string): void;
  resolve(frame: Frame): void;
  reject(err: Error): void;
}

interface Ticket {
  start(): void;
  /** The link closed before the request could be sent. */
  closed(reason: string): void;
}

export class LinkClient {
  readonly events$: Observable<DeviceEvent>;
  /** Resolves with the reason once the link is closed (by the host or by the device going away). */
  readonly closed: Promise<string>;

  private readonly decoder = new FrameDecoder();
  /**
   * Header version of the requests sent (HELLO always carries the highest): the lowest this side
   * speaks until HELLO has negotiated one; ChipDevice sets it (PROTOCOL.md section 7).
   */
  protocolVersion: number = MIN_PROTOCOL_VERSION;
  private readonly seqs: SeqAllocator;
  private readonly pending = new Map<number, Pending>();
  /** Send order of the last frame sent with each seq (a NAK names the intact request before the damaged frame). */
  private readonly sentOrder = new Map<number, number>();
  private readonly waiting: Ticket[] = [];
  private readonly eventsSubject = new Subject<DeviceEvent>();
  private readonly timeouts: Record<RequestName, number>;
  private readonly retries: number;
  private readonly lossRetries: number;
  private window: number;
  private readonly windowCap: number | undefined;
  private readonly busyBackoffMs: number;
  private readonly adaptive: boolean;
  private readonly detectLoss: boolean;
  /** Learnt device service time per unit of work, by request type (exponential average). */
  private readonly service = new Map<RequestName, { msPerUnit: number; n: number }>();
  /** When the last reply arrived: a pipelined reply's service began no earlier. */
  private lastReplyAt = 0;
  private active = 0;
  private sendOrder = 0;
  private closeReason: string | undefined;
  private resolveClosed!: (reason: string) => void;
  private readonly counters = {
    bytesOut: 0,
    bytesIn: 0,
    framesOut: 0,
    framesIn: 0,
    requests: 0,
    replies: 0,
    retries: 0,
    timeouts: 0,
    lost: 0,
    failed: 0,
    cancelled: 0,
    lateReplies: 0,
    unmatchedReplies: 0,
    decodeErrors: 0,
    deviceErrors: 0,
    events: 0,
    unexpectedFrames: 0,
  };

  constructor(
    readonly transport: Transport,
    opts: LinkOptions = {},
  ) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
    this.retries = opts.retries ?? 3;
    this.lossRetries = opts.lossRetries ?? 64;
    this.window = opts.window ?? DEFAULT_WINDOW;
    this.windowCap = opts.window;
    this.busyBackoffMs = opts.busyBackoffMs ?? 50;
    this.adaptive = opts.adaptiveTimeouts ?? true;
    this.detectLoss = opts.detectLoss ?? true;
    for (const [k, v] of Object.entries({ retries: this.retries, lossRetries: this.lossRetries, window: this.window })) {
      if (!Number.isInteger(v) || v < (k === 'window' ? 1 : 0))
        throw new RangeError(`link option ${k} must be a whole number >= ${k === 'window' ? 1 : 0}, got ${v}`);
    }
    const longest = Math.max(...Object.values(this.timeouts).filter((t) => t !== DEFAULT_TIMEOUTS.SELF_TEST));
    this.seqs = new SeqAllocator({ quarantineMs: opts.quarantineMs ?? Math.max(30_000, 4 * longest), start: opts.firstSeq });
    this.events$ = this.eventsSubject.asObservable();
    this.closed = new Promise((r) => (this.resolveClosed = r));

    const s = transport.stream;
    s.on('data', (chunk: Buffer) => this.onBytes(chunk));
    // PROTOCOL.md 4: a delimiter first ends whatever partial frame the device may hold from before.
    if (opts.leadingDelimiter ?? true) this.write(new Uint8Array([0]), false);
    s.on('end', () => this.shutdown('the device closed the connection'));
    s.on('close', (err?: Error | null) =>
      this.shutdown(err ? `port disconnected: ${err.message} (board unplugged or reset?)` : 'the port closed (board unplugged or reset?)'),
    );
    s.on('error', (err: Error) => this.shutdown(`port error: ${err.message}`));
  }

  /** Requests in flight at once now. */
  get windowSize(): number {
    return this.window;
  }

  /**
   * Sizes the window to the request frames the device holds queued (HELLO `rxFrames`): that many
   * in flight keep it busy without a BUSY; at most the `window` option (when given) and MAX_WINDOW.
   * Undefined (a device that does not announce it) keeps the window as it is.
   */
  fitWindow(deviceFrames: number | undefined): number {
    if (deviceFrames !== undefined) {
      if (!Number.isInteger(deviceFrames) || deviceFrames < 1)
        throw new RangeError(`fitWindow: the device's rxFrames must be a whole number >= 1, got ${deviceFrames}`);
      this.window = Math.min(deviceFrames, this.windowCap ?? MAX_WINDOW);
      this.pump();
    }
    return this.window;
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  get stats(): LinkStats {
    const sent: LinkStats['sent'] = {};
    for (const [k, v] of this.sentByType) sent[k] = { ...v };
    return { ...this.counters, inFlight: this.active, queued: this.waiting.length, sent };
  }

  private readonly sentByType = new Map<RequestName, { frames: number; bytes: number }>();

  /**
   * One request as an Observable that emits the reply message once and completes, or errors
   * with DeviceError, LinkTimeoutError, LinkClosedError or ProtocolViolationError. Nothing is
   * sent until it is subscribed; unsubscribing cancels it.
   */
  request$<N extends RequestName>(name: N, message: RequestMessage<N>, opts: RequestOptions = {}): Observable<ResponseMessage<N>> {
    return defer(() => {
      const timeoutMs = opts.timeoutMs ?? this.timeouts[name];
      const idempotent = opts.idempotent ?? IDEMPOTENT[name];
      const retries = idempotent ? (opts.retries ?? this.retries) : 0;
      const lossRetries = idempotent ? this.lossRetries : 0;
      const seqsUsed: number[] = [];
      let attempt = 0;
      // Attempts of this request that timed out: each doubles the next one's device allowance (up
      // to the fixed timeout). A device that is slower than learnt (a loaded host running the mock,
      // a long RUN) is still working on the abandoned attempt when the next arrives behind it.
      let timedOut = 0;
      // Attempts found lost before their timeout: retried at once, against their own budget.
      let lost = 0;
      let lastLoss = '';
      // Timeouts and BUSY replies: against `retries`.
      let failures = 0;
      this.counters.requests++;
      const attempt$ = new Observable<ResponseMessage<N>>((sub) =>
        this.attempt(name, message, timeoutMs, opts.expect, opts.timeoutMs !== undefined, ++attempt > 1, seqsUsed, 2 ** timedOut, {
          next: (m) => {
            sub.next(m as ResponseMessage<N>);
            sub.complete();
          },
          error: (e) => sub.error(e),
        }),
      );
      return attempt$.pipe(
        retry({
          delay: (err: unknown) => {
            if (this.isClosed || !isRetryable(err)) return throwError(() => err);
            if (err instanceof AttemptLost) {
              lastLoss = err.message;
              if (++lost > lossRetries) return throwError(() => err);
            } else {
              if (err instanceof AttemptTimeout) timedOut++;
              if (++failures > retries) return throwError(() => err);
            }
            this.counters.retries++;
            return err instanceof DeviceError ? timer(this.busyBackoffMs * 2 ** (failures - 1)) : timer(0);
          },
        }),
        catchError((err: unknown) => {
          this.counters.failed++;
          // The last attempt's own limit: with adaptive timeouts it is what the host really waited.
          if (err instanceof AttemptTimeout) {
            return throwError(() => new LinkTimeoutError(name, seqsUsed.length, err.timeoutMs, seqsUsed, { timedOut, lost, lastLoss }));
          }
          return throwError(() => err);
        }),
      );
    });
  }

  /** request$ as a Promise. */
  request<N extends RequestName>(name: N, message: RequestMessage<N>, opts: RequestOptions = {}): Promise<ResponseMessage<N>> {
    const { signal } = opts;
    if (!signal) return firstValueFrom(this.request$(name, message, opts));
    if (signal.aborted) return Promise.reject(signal.reason ?? new Error(`${name} aborted`));
    return new Promise((resolve, reject) => {
      const sub = this.request$(name, message, opts).subscribe({ next: resolve, error: reject });
      signal.addEventListener(
        'abort',
        () => {
          sub.unsubscribe();
          reject(signal.reason ?? new Error(`${name} aborted`));
        },
        { once: true },
      );
    });
  }

  /** Fails every pending request with LinkClosedError, completes events$, releases the transport. */
  async close(reason = 'closed by the host'): Promise<void> {
    this.shutdown(reason);
    await this.transport.close();
  }

  // ---- internals ----

  /** One attempt: wait for a window slot, send with a fresh seq, await the reply or the timeout. Returns teardown. */
  private attempt(
    name: RequestName,
    message: unknown,
    timeoutMs: number,
    expect: RequestExpectation | undefined,
    fixedTimeout: boolean,
    isRetry: boolean,
    seqsUsed: number[],
    backoff: number,
    out: { next(m: unknown): void; error(e: unknown): void },
  ): () => void {
    if (this.closeReason !== undefined) {
      out.error(new LinkClosedError(this.closeReason, name));
      return () => {};
    }
    let state: 'queued' | 'sent' | 'done' = 'queued';
    let seq = -1;
    let timerId: ReturnType<typeof setTimeout> | undefined;

    const finish = () => {
      state = 'done';
      if (timerId !== undefined) clearTimeout(timerId);
      this.pending.delete(seq);
      this.active--;
    };

    const ticket: Ticket = {
      closed: (reason) => {
        if (state !== 'queued') return;
        state = 'done';
        out.error(new LinkClosedError(reason, name));
      },
      start: () => {
        this.active++;
        state = 'sent';
        let bytes: Uint8Array;
        try {
          seq = this.seqs.allocate();
          bytes = encodeRequest(name, seq, message as never, { version: name === 'HELLO' ? PROTOCOL_VERSION : this.protocolVersion });
        } catch (err) {
          if (seq >= 0) this.seqs.release(seq);
          state = 'done';
          this.active--;
          out.error(err instanceof Error ? new Error(`${name}: cannot send: ${err.message}`) : err);
          this.pump();
          return;
        }
        seqsUsed.push(seq);
        const type = MsgType[name];
        // The clock starts when the frame is handed over; bytes already queued ahead of it delay it on a slow wire.
        const backlog = this.transport.stream.writableLength + bytes.length;
        const wireMs = this.wireMs(backlog) + this.wireMs(expect?.replyBytes ?? 0);
        const limit = Math.ceil(Math.min(timeoutMs, backoff * this.deviceAllowanceMs(name, timeoutMs, expect, fixedTimeout)) + wireMs);
        const sentAt = performance.now();
        let armedAt = sentAt;
        const onTimeout = () => {
          if (state !== 'sent') return;
          // The host's own event loop may have been blocked (a long computation) while the reply
          // waited unread: only the device's silence counts, so re-arm once the late tick shows it.
          const late = performance.now() - armedAt - limit;
          if (late > 50) {
            armedAt = performance.now();
            timerId = setTimeout(onTimeout, limit);
            return;
          }
          // Let pending input be read first: a reply already on the port is not a timeout.
          setImmediate(expire);
        };
        const expire = () => {
          if (state !== 'sent') return;
          finish();
          this.seqs.abandon(seq);
          this.counters.timeouts++;
          out.error(new AttemptTimeout(seq, limit));
          this.pump();
        };
        const byType = this.sentByType.get(name) ?? { frames: 0, bytes: 0 };
        byType.frames++;
        byType.bytes += bytes.length;
        this.sentByType.set(name, byType);
        this.sentOrder.set(seq, this.sendOrder);
        this.pending.set(seq, {
          name,
          type,
          order: this.sendOrder++,
          restartTimer: () => {
            if (state !== 'sent') return;
            clearTimeout(timerId);
            armedAt = performance.now();
            timerId = setTimeout(onTimeout, limit);
          },
          lose: (why) => {
            if (state !== 'sent') return;
            finish();
            this.seqs.abandon(seq);
            this.counters.lost++;
            out.error(new AttemptLost(seq, performance.now() - sentAt, why));
            this.pump();
          },
          resolve: (frame) => {
            this.learnService(name, sentAt, bytes.length, expect);
            finish();
            this.seqs.release(seq);
            this.counters.replies++;
            out.next(frame.message);
            this.pump();
          },
          reject: (err) => {
            finish();
            this.seqs.release(seq);
            out.error(err);
            this.pump();
          },
        });
        timerId = setTimeout(onTimeout, limit);
        this.write(bytes);
      },
    };

    if (isRetry) this.waiting.unshift(ticket);
    else this.waiting.push(ticket);
    this.pump();

    return () => {
      if (state === 'queued') {
        const i = this.waiting.indexOf(ticket);
        if (i >= 0) this.waiting.splice(i, 1);
        state = 'done';
        this.counters.cancelled++;
      } else if (state === 'sent') {
        finish();
        this.seqs.abandon(seq);
        this.counters.cancelled++;
        this.pump();
      }
    };
  }

  /** Milliseconds the wire needs for `bytes` (0 on a medium that is not rate-limited). */
  wireMs(bytes: number): number {
    return Number.isFinite(this.transport.bytesPerSecond) && this.transport.bytesPerSecond > 0 ? (1000 * bytes) / this.transport.bytesPerSecond : 0;
  }

  /**
   * The device's share of an attempt's timeout. Fixed (the configured timeout) until a request
   * type has been answered a few times; then ADAPTIVE_MARGIN times the learnt service time of the
   * expected work, at least ADAPTIVE_FLOOR_MS, at most the configured timeout: a lost RUN costs
   * about half a second instead of ten, and a long one still lives on the board's PROGRESS events.
   */
  plannedTimeoutMs(name: RequestName, expect?: RequestExpectation): number {
    return this.deviceAllowanceMs(name, this.timeouts[name], expect, false);
  }

  private deviceAllowanceMs(name: RequestName, configured: number, expect: RequestExpectation | undefined, fixed: boolean): number {
    const s = this.service.get(name);
    if (fixed || !this.adaptive || !IDEMPOTENT[name] || !s || s.n < ADAPTIVE_AFTER) return configured;
    const expected = s.msPerUnit * Math.max(1, expect?.work ?? 1);
    return Math.min(configured, Math.max(Math.min(configured, ADAPTIVE_FLOOR_MS), ADAPTIVE_MARGIN * expected));
  }

  /** Learns the device's time for a request from a reply: arrival minus wire and queueing. */
  private learnService(name: RequestName, sentAt: number, requestBytes: number, expect: RequestExpectation | undefined): void {
    const now = performance.now();
    const start = Math.max(sentAt + this.wireMs(requestBytes), this.lastReplyAt);
    this.lastReplyAt = now;
    const ms = Math.max(0, now - start - this.wireMs(expect?.replyBytes ?? 0));
    const perUnit = ms / Math.max(1, expect?.work ?? 1);
    const s = this.service.get(name);
    if (!s) this.service.set(name, { msPerUnit: perUnit, n: 1 });
    else {
      // Slow to forget a slow reply, quick to take a slower one: a timeout that is too short costs a retry.
      const a = perUnit > s.msPerUnit ? 0.5 : 0.1;
      s.msPerUnit += a * (perUnit - s.msPerUnit);
      s.n++;
    }
  }

  private pump(): void {
    while (this.active < this.window && this.waiting.length > 0 && this.closeReason === undefined) {
      this.waiting.shift()!.start();
    }
  }

  private write(bytes: Uint8Array, isFrame = true): void {
    this.counters.bytesOut += bytes.length;
    if (isFrame) this.counters.framesOut++;
    try {
      this.transport.stream.write(bytes);
    } catch (err) {
      this.shutdown(`write failed: ${(err as Error).message}`);
    }
  }

  private onBytes(chunk: Uint8Array): void {
    this.counters.bytesIn += chunk.length;
    let decoded;
    try {
      decoded = this.decoder.push(chunk);
    } catch {
      // The decoder should never throw on input; if it does, drop the chunk rather than the process.
      this.counters.decodeErrors++;
      return;
    }
    for (const ev of decoded) {
      if (ev.kind === 'error') {
        this.counters.decodeErrors++;
        // With a header the CRC was good: the device really sent a reply the host cannot read
        // (bad payload, unknown type, foreign version). Fail that request now rather than time out.
        const h = ev.header;
        if (h && h.flags & Flags.RESPONSE) {
          const p = this.pending.get(h.seq);
          if (p) {
            this.progressPast(p.order);
            p.reject(new ProtocolViolationError(p.name, `unreadable reply (seq ${h.seq}): ${ev.error.message}`));
          }
        } else if (!h && this.detectLoss && (ev.bytes ?? 0) >= MIN_FRAME_BYTES) {
          // A damaged frame: most of what the device sends are replies, in order, so it is most
          // likely the reply to the oldest request waiting. Sending that again costs one request
          // if it was an event instead; waiting for the timeout costs the timeout.
          this.oldestPending()?.lose(`a damaged frame arrived (${ev.error.code})`);
        }
        continue;
      }
      this.counters.framesIn++;
      this.route(ev.frame);
    }
  }

  private route(frame: Frame): void {
    if (frame.flags & Flags.EVENT) {
      const type = EVENT_TYPES.get(frame.type);
      if (type === undefined) {
        this.counters.unexpectedFrames++;
        return;
      }
      this.counters.events++;
      if (type === 'PROGRESS') this.keepAlive();
      // The device found a damaged frame; it answered everything that arrived before it, so the
      // oldest request still waiting (or its reply) is lost.
      if (type === 'NAK' && this.detectLoss) this.nakLost(frame.message as NakEvent)?.lose('the device received a damaged frame (NAK)');
      this.eventsSubject.next({ type, seq: frame.seq, event: frame.message } as DeviceEvent);
      return;
    }
    if (!(frame.flags & Flags.RESPONSE)) {
      this.counters.unexpectedFrames++;
      return;
    }
    const p = this.pending.get(frame.seq);
    if (p === undefined) {
      if (this.seqs.isQuarantined(frame.seq)) this.counters.lateReplies++;
      else this.counters.unmatchedReplies++;
      return;
    }
    const e = frame.type === MsgType.ERROR ? (frame.message as ErrorResponse) : undefined;
    // BUSY is answered at once, out of order; every other reply comes in arrival order, so the
    // requests sent before this one that are still waiting were lost (or their replies were).
    if (this.detectLoss && e?.code !== ErrorCode.BUSY) this.losePast(p.order);
    this.progressPast(p.order);
    if (e) {
      this.counters.deviceErrors++;
      p.reject(new DeviceError(p.name, e.code, e.message));
    } else if (frame.type !== p.type) {
      p.reject(new ProtocolViolationError(p.name, `reply to seq ${frame.seq} has type 0x${frame.type.toString(16)}, expected 0x${p.type.toString(16)}`));
    } else {
      p.resolve(frame);
    }
  }

  /**
   * A request was answered: the device is working through its queue, so every request sent
   * after it gets its full timeout again. A deep pipeline then does not eat into the timeouts
   * of the requests at its end, while a lost request still times out once everything sent
   * before it has been answered.
   */
  private progressPast(order: number): void {
    for (const q of this.pending.values()) if (q.order > order) q.restartTimer();
  }

  /** Fails (for a retry) every request sent before `order` that is still waiting. */
  private losePast(order: number): void {
    const earlier = [...this.pending.values()].filter((q) => q.order < order);
    for (const q of earlier) q.lose('a request sent after it was answered first');
  }

  /**
   * The attempt a NAK is about: the one sent right after the intact request `after` (the device
   * names it), if still waiting; none when that one was already answered or given up (a NAK
   * arriving after the host re-sent on another sign must not fail the new attempt too). Without
   * `after` (nothing intact before it), the oldest waiting.
   */
  private nakLost(nak: NakEvent): Pending | undefined {
    const { after, damaged } = nak;
    if (after === undefined) return this.oldestPending();
    const o = this.sentOrder.get(after);
    if (o === undefined) return undefined;
    // Damaged frames in a row share `after`: the k-th of them (by the device's counter) is the
    // k-th frame sent after it. The same NAK twice names the same frame.
    if (this.nakRun?.after !== after || this.nakRun.order !== o) this.nakRun = { after, order: o, firstDamaged: damaged };
    const k = ((damaged - this.nakRun.firstDamaged) >>> 0) + 1;
    for (const q of this.pending.values()) if (q.order === o + k) return q;
    return undefined;
  }

  /** The NAKs naming the same intact request: its seq and send order, and the first one's damaged count. */
  private nakRun: { after: number; order: number; firstDamaged: number } | undefined;

  private oldestPending(): Pending | undefined {
    let oldest: Pending | undefined;
    for (const q of this.pending.values()) if (oldest === undefined || q.order < oldest.order) oldest = q;
    return oldest;
  }

  /**
   * A PROGRESS event: the device is still serving the oldest request it holds (it serves in
   * order), so that request gets its full timeout again. A long RUN on a slow chip then lives as
   * long as the device keeps reporting, and still times out soon after the reports stop.
   */
  private keepAlive(): void {
    this.oldestPending()?.restartTimer();
  }

  private shutdown(reason: string): void {
    if (this.closeReason !== undefined) return;
    this.closeReason = reason;
    const queued = this.waiting.splice(0);
    for (const t of queued) t.closed(reason);
    for (const [, p] of [...this.pending]) p.reject(new LinkClosedError(reason, p.name));
    this.eventsSubject.complete();
    this.resolveClosed(reason);
  }
}
