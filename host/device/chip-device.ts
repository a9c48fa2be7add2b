/**
 * ChipDevice: one board with its chip, as an instrument. Opens the link, says HELLO (and
 * negotiates the protocol), then offers the operations a workflow needs: upload, verify,
 * run, status, self-test, neuron voltages. It splits large operations into frames the
 * device accepts, pipelines them over the link, checks every argument before anything is
 * sent (the host never sends an unsafe gate code), and checks every reply against what was
 * asked (lengths, echoes, geometry) so that a confused device fails loudly, not silently.
 *
 * One module on purpose (about 860 lines): uploads and RUNs share one private ordering state (each
 * layer's chain of uploads, the gate that holds later uploads behind a RUN, the HELLO-derived frame
 * sizes), which a split would have to expose. The pure parts are their own modules: weight-runs.ts,
 * weight-safety.ts, hello-check.ts, and the codecs in firmware-protocol/.
 */
import os from 'node:os';
import { randomInt } from 'node:crypto';
import { Observable, catchError, concat, filter, from, lastValueFrom, map, mergeMap, reduce, throwError, toArray } from 'rxjs';
import {
  PROTOCOL_VERSION,
  maxCodesPerChunk,
  maxBatchFor,
  maxPackedBatchFor,
  maxPatchDataBytes,
  maxWireBytes,
  runPackedRequestPayloadBytes,
  weightsPatchPayloadBytes,
  weightsWritePayloadBytes,
  ProtocolError,
  decodeRecords,
  writeRecord,
  encodePatch,
  encodeEdit,
  encodeFills,
  WEIGHTS_EDIT_FEATURE,
  BIT_PACKED_FEATURE,
  ByteWriter,
  type PatchFrame,
  type HelloResponse,
  type LayerInfo,
  type ProgressEvent,
  type SelfTestResult,
  type StatusResponse,
} from '../../firmware-protocol/index.ts';
import { crc32c } from '../../firmware-protocol/crc32c.ts';
import { LinkClient, type DeviceEvent, type LinkOptions, type Transport } from '../link/link-client.ts';
import { LinkTimeoutError, ProtocolViolationError } from '../link/errors.ts';
import { openTransport, type SerialOpenOptions } from '../link/transport.ts';
import { buildProgressBar } from '../ui/build-progress.ts';
import type { ChipBuildProgress } from '../../models/chips/index.ts';
import { DEFAULT_DEVICE_URI } from './device-uri.ts';
import { HOST_MIN_PROTOCOL, helloProblems, negotiateProtocol } from './hello-check.ts';
import { assertSafeCodes, safeCodeRanges, type SafeCodes } from './weight-safety.ts';
import { changedRuns, fullRuns, type CodeRun } from './weight-runs.ts';

const SILENT = 0xffff;
const HOST_NAME = 'spikeloop/0.1.0';

export interface ChipDeviceOptions extends LinkOptions {
  /** Identifies the host in HELLO. */
  hostName?: string;
  /** For serial: and pty: URIs (a mock serialport binding in tests). */
  serial?: SerialOpenOptions;
  /** Highest protocol version to offer in HELLO (default PROTOCOL_VERSION; 1 to compare with version 1). */
  maxProtocol?: number;
  /**
   * Where a line estimating the wire time of long work goes (uploads and runs expected to take
   * more than `noticeAfterS` on a line of known rate: serial:, or pty: and mock: with baud=).
   * Default: standard error.
   */
  notice?: (line: string) => void;
  /** Seconds of expected wire time from which a notice is given (default 5). */
  noticeAfterS?: number;
  /**
   * Progress of building a mock: URI's chip (the SPICE chip characterises its devices for minutes
   * on first use). Default: a bar on standard error once the build proves slow; false = none.
   */
  onChipBuild?: ((p: ChipBuildProgress) => void) | false;
}

/** What the host knows of the line after HELLO. */
export interface LinkPlan {
  /** The rate the transport announces (baud / 10), Infinity when it is not rate-limited. */
  nominalBytesPerSecond: number;
  /** Bytes of the HELLO exchange per second of its round trip (includes the device's time: a lower bound on the rate). */
  measuredBytesPerSecond: number;
  /** The rate used for estimates: the nominal one when known, else the measured one. */
  bytesPerSecond: number;
  helloMs: number;
  /** Requests kept in flight: the board's announced receive queue (HELLO `rxFrames`), else the link's default. */
  window: number;
  /** Whether `window` comes from the board's announcement. */
  windowAnnounced: boolean;
}

/** A link that retried or lost a frame within this long holds uploads behind a RUN until it is answered (ChipDevice.run). */
const LOSSY_FOR_MS = 10_000;

/** Frame overhead of a request or reply beyond its array payload (header, msgpack keys, CRC, COBS), generous. */
const FRAME_OVERHEAD = 48;
/** A write is split in two after failing all its attempts, down to this many codes. */
const MIN_SPLIT_CODES = 16;

/** HELLO plus what the host derived from it. */
export interface DeviceInfo extends HelloResponse {
  /** Protocol version both sides speak. */
  negotiatedProtocol: number;
  /** Codes per WEIGHTS_WRITE frame. */
  chunkCodes: number;
  /** Samples per RUN frame (protocol 2: per RUN_PACKED frame reporting every layer, at worst). */
  runBatch: number;
  /** Protocol 2: segment bytes per WEIGHTS_PATCH frame (0 when the device speaks only version 1). */
  patchDataBytes: number;
  /** The line as measured at HELLO. */
  link: LinkPlan;
}

export interface UploadProgress {
  layer: number;
  done: number;
  total: number;
}

export interface UploadOptions {
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface UploadResult {
  layer: number;
  /** Codes sent (for uploadChanged, including re-sent unchanged codes in merged gaps). */
  codes: number;
  frames: number;
  /** Codes that differ between prev and next (uploadChanged). */
  changed?: number;
  /** How uploadChanged sent them: WEIGHTS_EDIT or WEIGHTS_PATCH frames, or a full upload when that was no larger. */
  via?: 'edit' | 'patch' | 'full' | 'runs';
}

export interface VerifyResult {
  ok: boolean;
  layer: number;
  count: number;
  deviceCrc: number;
  hostCrc: number;
  detail: string;
}

export interface RunOptions {
  /** Per-attempt timeout of each RUN frame, ms (restarted by the device's PROGRESS events). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Samples finished so far, after each RUN frame's reply. */
  onProgress?: (p: { done: number; total: number }) => void;
  /**
   * Layers whose spike times are wanted (default all). With protocol 2 the device returns only
   * these; the others come back as empty arrays. With protocol 1 every layer is returned.
   */
  layers?: readonly number[];
}

export interface SelfTestOptions {
  tests?: string[];
  onProgress?: (p: ProgressEvent) => void;
  timeoutMs?: number;
}

/** The last upload issued for a layer: settles (never rejects) when it is done; `failed` if it failed. */
interface LayerWrite {
  settled: Promise<void>;
  /** Resolves once every frame of the upload has been handed to the link (or it settled without). */
  queued: Promise<void>;
  failed?: Error;
}

export class UnsupportedFeatureError extends Error {
  override name = 'UnsupportedFeatureError';
}

export class ChipDevice {
  private cachedInfo: DeviceInfo | undefined;
  private safeCodes: SafeCodes | undefined;
  /** Per layer: the last upload issued. */
  private readonly layerWrites = new Map<number, LayerWrite>();
  /** Uploads issued and not yet settled. */
  private pendingUploads = 0;
  /** Opens when the RUNs issued so far have queued their frames: uploads issued after a RUN wait for it. */
  private runGate: Promise<void> = Promise.resolve();

  private constructor(
    readonly link: LinkClient,
    readonly uri: string,
    private readonly hostName: string,
    private readonly maxProtocol: number,
    private readonly notice: (line: string) => void = (l) => process.stderr.write(l + '\n'),
    private readonly noticeAfterS = 5,
  ) {
    if (!Number.isInteger(maxProtocol) || maxProtocol < HOST_MIN_PROTOCOL || maxProtocol > PROTOCOL_VERSION) {
      throw new RangeError(`maxProtocol must be ${HOST_MIN_PROTOCOL}..${PROTOCOL_VERSION}, got ${maxProtocol}`);
    }
  }

  /** Opens a device URI (default: the embedded mock) and says HELLO. */
  static async open(uri: string = DEFAULT_DEVICE_URI, opts: ChipDeviceOptions = {}): Promise<ChipDevice> {
    const onChipBuild = opts.onChipBuild === false ? undefined : (opts.onChipBuild ?? buildProgressBar());
    const transport = await openTransport(uri, { ...opts.serial, onProgress: onChipBuild });
    return ChipDevice.over(transport, opts);
  }

  /** A device over an already open transport; says HELLO (and closes the transport if that fails). */
  static async over(transport: Transport, opts: ChipDeviceOptions = {}): Promise<ChipDevice> {
    const link = new LinkClient(transport, opts);
    const dev = new ChipDevice(link, transport.description, opts.hostName ?? HOST_NAME, opts.maxProtocol ?? PROTOCOL_VERSION, opts.notice, opts.noticeAfterS);
    try {
      await dev.hello();
    } catch (err) {
      await link.close('HELLO failed').catch(() => {});
      throw err;
    }
    return dev;
  }

  /** Device events (LOG, ALERT, PROGRESS). */
  get events$(): Observable<DeviceEvent> {
    return this.link.events$;
  }

  /** The cached HELLO (after open). */
  get info(): DeviceInfo {
    if (!this.cachedInfo) throw new Error('no HELLO yet: open the device with ChipDevice.open()');
    return this.cachedInfo;
  }

  async hello(): Promise<DeviceInfo> {
    const s0 = this.link.stats;
    const t0 = performance.now();
    const h = await this.link.request('HELLO', { hostProtocol: this.maxProtocol, host: this.hostName });
    const helloMs = performance.now() - t0;
    const s1 = this.link.stats;
    // Version first: a newer device may describe itself in ways an older host cannot check.
    const negotiatedProtocol = negotiateProtocol(h.protocol, h.minProtocol, `the firmware (${h.firmware ?? 'unknown'})`, this.maxProtocol);
    const problems = helloProblems(h);
    if (problems.length > 0) throw new ProtocolViolationError('HELLO', problems.join('; '));
    const chunkCodes = maxCodesPerChunk(h.maxPayload);
    const v2 = negotiatedProtocol >= 2;
    const runBatch = v2
      ? maxPackedBatchFor(
          h.maxPayload,
          h.layers.map((l) => l.outputs),
        )
      : Math.min(h.maxBatch, maxBatchFor(h.maxPayload, h.layers));
    const patchDataBytes = v2 ? maxPatchDataBytes(h.maxPayload) : 0;
    if (!(chunkCodes >= 1)) throw new ProtocolViolationError('HELLO', `maxPayload ${h.maxPayload} leaves no room for weight codes`);
    if (!(runBatch >= 1)) {
      throw new ProtocolViolationError('HELLO', `maxPayload ${h.maxPayload} cannot hold one RUN sample of this geometry`);
    }
    // HELLO carries the row tables, a few hundred bytes to a few KB: enough to see a slow line.
    const nominal = this.link.transport.bytesPerSecond;
    const measured = (s1.bytesOut - s0.bytesOut + s1.bytesIn - s0.bytesIn) / Math.max(helloMs / 1000, 1e-6);
    const link: LinkPlan = {
      nominalBytesPerSecond: nominal,
      measuredBytesPerSecond: measured,
      bytesPerSecond: Number.isFinite(nominal) ? nominal : measured,
      helloMs,
      window: this.link.fitWindow(h.rxFrames),
      windowAnnounced: h.rxFrames !== undefined,
    };
    this.cachedInfo = { ...h, negotiatedProtocol, chunkCodes, runBatch, patchDataBytes, link };
    // every later request goes out in the negotiated version (PROTOCOL.md section 7)
    this.link.protocolVersion = negotiatedProtocol;
    this.safeCodes = safeCodeRanges(h);
    return this.cachedInfo;
  }

  /** Whether the board reads and writes PACKED spike records and WEIGHTS_EDIT segments (feature `bit-packed`). */
  private get bitPacked(): boolean {
    return this.info.negotiatedProtocol >= 2 && this.info.features.includes(BIT_PACKED_FEATURE) && this.info.features.includes(WEIGHTS_EDIT_FEATURE);
  }

  /** Safe code range per polarity ([NMOS, PMOS]) from the announced DAC and safe windows. */
  get safeCodeRanges(): SafeCodes {
    if (!this.safeCodes) throw new Error('no HELLO yet');
    return this.safeCodes;
  }

  private layerInfo(layer: number): LayerInfo {
    const layers = this.info.layers;
    if (!Number.isInteger(layer) || layer < 0 || layer >= layers.length) {
      throw new RangeError(`layer ${layer} does not exist: this chip has layers 0..${layers.length - 1}`);
    }
    return layers[layer]!;
  }

  /** Number of codes in a layer's weight memory (rows x outputs). */
  weightCount(layer: number): number {
    const l = this.layerInfo(layer);
    return l.rowInput.length * l.outputs;
  }

  private checkCodes(layer: number, codes: Uint16Array, what: string): LayerInfo {
    const l = this.layerInfo(layer);
    if (!(codes instanceof Uint16Array)) throw new TypeError(`${what} must be a Uint16Array of DAC codes`);
    const want = l.rowInput.length * l.outputs;
    if (codes.length !== want) {
      throw new RangeError(`${what} has ${codes.length} codes, layer ${layer} needs ${want} (${l.rowInput.length} rows x ${l.outputs} outputs, row-major)`);
    }
    return l;
  }

  /** Writes a whole layer's codes, pipelined in chunks. Every code is checked against the safe window first. */
  async uploadWeights(layer: number, codes: Uint16Array, opts: UploadOptions = {}): Promise<UploadResult> {
    const l = this.checkCodes(layer, codes, 'codes');
    assertSafeCodes(this.info, this.safeCodeRanges, layer, l.rowPolarity, l.outputs, codes);
    const runs = fullRuns(codes.length, this.info.chunkCodes);
    // The frames are built from a copy: the caller may reuse its array before this upload's turn.
    const copy = codes.slice();
    // Rows that share a code (probe and memory-test configurations) go as WEIGHTS_EDIT FILL (and PACKED) runs when that is smaller.
    const { fills } = this.fullPlan(layer, copy);
    if (fills) {
      await this.inLayerOrder(layer, 'full', () => this.writePatches(layer, fills, undefined, copy, opts, 'WEIGHTS_EDIT'), opts.signal);
      return { layer, codes: codes.length, frames: fills.length, via: 'edit' };
    }
    await this.inLayerOrder(layer, 'full', () => this.writeRuns(layer, copy, runs, opts), opts.signal);
    return { layer, codes: codes.length, frames: runs.length };
  }

  /** How a full upload of `codes` goes: WEIGHTS_EDIT FILL / PACKED frames when smaller than WEIGHTS_WRITE, and its wire bytes. */
  private fullPlan(layer: number, codes: Uint16Array): { wire: number; fills?: PatchFrame[] } {
    const write = fullWireBytes(layer, codes.length, this.info.chunkCodes);
    if (!this.info.features.includes(WEIGHTS_EDIT_FEATURE) || this.info.negotiatedProtocol < 2) return { wire: write };
    const fills = encodeFills(codes, this.info.patchDataBytes, this.bitPacked);
    const wire = patchWireBytes(layer, fills);
    return wire < write ? { wire, fills } : { wire: write };
  }

  /**
   * Sends only what differs between `prev` (what the device holds once every upload issued before
   * this one has landed) and `next`. Protocol 2: WEIGHTS_PATCH frames (sparse or dense segments),
   * or a full upload when that would not be larger on the wire; protocol 1: WEIGHTS_WRITE runs of
   * changed codes. May be issued before the previous upload of the layer finished: it starts after it.
   */
  async uploadChanged(layer: number, prev: Uint16Array, next: Uint16Array, opts: UploadOptions = {}): Promise<UploadResult> {
    const l = this.checkCodes(layer, next, 'next');
    this.checkCodes(layer, prev, 'prev');
    let changed = 0;
    for (let i = 0; i < next.length; i++) if (prev[i] !== next[i]) changed++;
    if (this.info.patchDataBytes > 0) {
      // The smallest on the wire of: WEIGHTS_EDIT (runs and steps, when the board has it), WEIGHTS_PATCH, a full upload.
      const edits = this.info.features.includes(WEIGHTS_EDIT_FEATURE) ? encodeEdit(prev, next, this.info.patchDataBytes) : undefined;
      const editWire = edits ? patchWireBytes(layer, edits) : Infinity;
      // a WEIGHTS_PATCH takes at least a byte per changed code: no smaller than an edit of at most that
      const patches = editWire <= changed ? [] : encodePatch(prev, next, this.info.patchDataBytes, this.info.dac.bits);
      const patchWire = patches.length ? patchWireBytes(layer, patches) : Infinity;
      const best = Math.min(editWire, patchWire);
      // the full upload's plan (a whole-layer encoding) only when the change is not clearly smaller than WEIGHTS_WRITE
      const write = fullWireBytes(layer, next.length, this.info.chunkCodes);
      if (best >= write || (best >= write / 10 && best >= this.fullPlan(layer, next).wire)) {
        const r = await this.uploadWeights(layer, next, opts);
        return { ...r, changed, via: 'full' };
      }
      const kind = edits && editWire < patchWire ? 'WEIGHTS_EDIT' : 'WEIGHTS_PATCH';
      const frames = kind === 'WEIGHTS_EDIT' ? edits! : patches;
      for (const f of frames) assertSafeCodes(this.info, this.safeCodeRanges, layer, l.rowPolarity, l.outputs, next, f.offset, f.end);
      // The frames are built from copies: the caller may reuse its arrays before this upload's turn.
      const was = prev.slice();
      const now = next.slice();
      await this.inLayerOrder(layer, 'changed', () => this.writePatches(layer, frames, was, now, opts, kind), opts.signal);
      return { layer, codes: frames.reduce((s, f) => s + f.count, 0), frames: frames.length, changed, via: kind === 'WEIGHTS_EDIT' ? 'edit' : 'patch' };
    }
    const runs = changedRuns(prev, next, this.info.chunkCodes);
    for (const r of runs) assertSafeCodes(this.info, this.safeCodeRanges, layer, l.rowPolarity, l.outputs, next, r.offset, r.offset + r.count);
    const codes = next.slice();
    await this.inLayerOrder(layer, 'changed', () => this.writeRuns(layer, codes, runs, opts), opts.signal);
    return { layer, codes: runs.reduce((s, r) => s + r.count, 0), frames: runs.length, changed, via: 'runs' };
  }

  /**
   * Runs the uploads of one layer one after another, in the order they were issued. Frames of
   * one upload never overlap, so they may be in flight together (and retried in any order); two
   * uploads of a layer may write the same codes, so the later one starts only when every frame
   * of the earlier one is acknowledged. Otherwise a later batch's frames could land before an
   * earlier batch's last ones (the link's queue holds a window of each upload at a time) and leave
   * stale codes on the device. A changed-only upload after a failed one fails too: what the device
   * holds is unknown until a full upload succeeds.
   */
  private inLayerOrder(layer: number, kind: 'full' | 'changed', write: () => Promise<void>, signal?: AbortSignal): Promise<void> {
    const before = this.layerWrites.get(layer);
    const gate = this.runGate;
    let markQueued!: () => void;
    const entry: LayerWrite = { settled: Promise.resolve(), queued: new Promise<void>((r) => (markQueued = r)) };
    this.pendingUploads++;
    const result = (async () => {
      await before?.settled;
      await gate;
      if (signal?.aborted) throw signal.reason ?? new Error('upload aborted');
      if (kind === 'changed' && before?.failed) {
        throw new Error(`an earlier upload of layer ${layer} failed (${before.failed.message}); the device's codes are unknown: upload the whole layer again`);
      }
      try {
        // every write path hands all its frames to the link before it first yields (sendWrites)
        const written = write();
        markQueued();
        await written;
      } catch (err) {
        entry.failed = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    })();
    entry.settled = result
      .catch((err: unknown) => {
        entry.failed ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        markQueued();
        this.pendingUploads--;
      });
    this.layerWrites.set(layer, entry);
    return result;
  }

  /** Resolves once every upload issued so far has handed all its frames to the link. */
  private uploadsQueued(): Promise<unknown> {
    return Promise.all([...this.layerWrites.values()].map((w) => w.queued));
  }

  /** Attempts on the link that were not answered at once (retried, lost, timed out, failed): a count that only grows. */
  private linkSetbacks(): number {
    const s = this.link.stats;
    return s.retries + s.lost + s.timeouts + s.failed;
  }

  /** Resolves once every upload issued so far (of one layer, or of all) has settled. */
  private uploadsSettled(layer?: number): Promise<unknown> {
    if (layer !== undefined) return this.layerWrites.get(layer)?.settled ?? Promise.resolve();
    return Promise.all([...this.layerWrites.values()].map((w) => w.settled));
  }

  /**
   * Sends WEIGHTS_PATCH or WEIGHTS_EDIT frames from `prev` (what the device holds before them) to
   * `next`; `prev` undefined: FILL runs that write every cell (encodeFills).
   */
  private writePatches(
    layer: number,
    patches: PatchFrame[],
    prev: Uint16Array | undefined,
    next: Uint16Array,
    opts: UploadOptions,
    kind: 'WEIGHTS_PATCH' | 'WEIGHTS_EDIT' = 'WEIGHTS_PATCH',
  ): Promise<void> {
    const wire = patchWireBytes(layer, patches);
    return this.sendWrites(
      layer,
      patches.map((f) => ({ count: f.count, send$: () => this.writePatch$(layer, f, prev, next, kind) })),
      wire,
      opts,
    );
  }

  /**
   * One WEIGHTS_PATCH or WEIGHTS_EDIT, acknowledged as asked; a frame that fails every attempt is
   * encoded again in two halves of its data (the cells it covers, no others; splitOnTimeout$).
   * Emits the cells written.
   */
  private writePatch$(
    layer: number,
    f: PatchFrame,
    prev: Uint16Array | undefined,
    next: Uint16Array,
    kind: 'WEIGHTS_PATCH' | 'WEIGHTS_EDIT',
  ): Observable<number> {
    const sent$ = this.link
      .request$(kind, { layer, offset: f.offset, data: f.data }, { expect: { replyBytes: FRAME_OVERHEAD, work: f.count } })
      .pipe(map((reply) => checkAck(kind, layer, f, reply)));
    return this.splitOnTimeout$(sent$, f.count, () => {
      const [was, now, half] = [prev?.subarray(f.offset, f.end), next.subarray(f.offset, f.end), Math.max(16, Math.ceil(f.data.length / 2))];
      const halves = !was
        ? encodeFills(now, half, this.bitPacked)
        : kind === 'WEIGHTS_EDIT'
          ? encodeEdit(was, now, half)
          : encodePatch(was, now, half, this.info.dac.bits);
      return halves.map((h) => this.writePatch$(layer, { ...h, offset: h.offset + f.offset, end: h.end + f.offset }, prev, next, kind));
    });
  }

  /**
   * A write frame (`sent$` emits the cells its acknowledgement confirms) that, when every attempt of
   * it times out, is sent again as the smaller frames `parts()` builds, one after the other, down to
   * MIN_SPLIT_CODES cells: a noisy line loses long frames more often than short ones.
   */
  private splitOnTimeout$(sent$: Observable<number>, count: number, parts: () => Observable<number>[]): Observable<number> {
    return sent$.pipe(
      catchError((err: unknown) => {
        if (!(err instanceof LinkTimeoutError) || count < 2 * MIN_SPLIT_CODES || this.link.isClosed) return throwError(() => err);
        const pieces = parts();
        if (pieces.length < 2) return throwError(() => err);
        this.splitWrites++;
        return concat(...pieces).pipe(reduce((a, n) => a + n, 0));
      }),
    );
  }

  private writeRuns(layer: number, codes: Uint16Array, runs: CodeRun[], opts: UploadOptions): Promise<void> {
    const total = runs.reduce((s, r) => s + r.count, 0);
    return this.sendWrites(
      layer,
      runs.map((r) => ({ count: r.count, send$: () => this.writeRun$(layer, codes, r) })),
      total * 2 + runs.length * FRAME_OVERHEAD * 2,
      opts,
    );
  }

  /** Sends write frames of one layer; each `send$` emits the codes its acknowledgements confirm. */
  private async sendWrites(layer: number, writes: { count: number; send$: () => Observable<number> }[], wireBytes: number, opts: UploadOptions): Promise<void> {
    const total = writes.reduce((s, r) => s + r.count, 0);
    let done = 0;
    this.announce(`upload of layer ${layer}`, wireBytes, 0);
    opts.onProgress?.({ layer, done, total });
    await lastValueFrom(
      from(writes).pipe(
        // Every frame goes to the link's queue at once (its window bounds what is in flight), in
        // order, so a RUN issued after this upload queues behind all of it (run()).
        mergeMap((r) =>
          r.send$().pipe(
            map((n) => {
              done += n;
              opts.onProgress?.({ layer, done, total });
              return n;
            }),
          ),
        ),
        toArray(),
        abortable(opts.signal),
      ),
    );
  }

  /** One WEIGHTS_WRITE, acknowledged as asked; a run that fails every attempt is sent again in two halves (splitOnTimeout$). Emits the codes written. */
  private writeRun$(layer: number, codes: Uint16Array, r: CodeRun): Observable<number> {
    const sent$ = this.link
      .request$(
        'WEIGHTS_WRITE',
        { layer, offset: r.offset, codes: codes.slice(r.offset, r.offset + r.count) },
        { expect: { replyBytes: FRAME_OVERHEAD, work: r.count } },
      )
      .pipe(map((reply) => checkAck('WEIGHTS_WRITE', layer, r, reply)));
    const half = Math.ceil(r.count / 2);
    return this.splitOnTimeout$(sent$, r.count, () => [
      this.writeRun$(layer, codes, { offset: r.offset, count: half }),
      this.writeRun$(layer, codes, { offset: r.offset + half, count: r.count - half }),
    ]);
  }

  /** Writes split after failing whole (see splitOnTimeout$). */
  splitWrites = 0;

  /** RUN traffic so far (request and reply bytes on the wire, samples), for estimates of later RUNs. */
  private readonly runTraffic = { samples: 0, bytesOut: 0, bytesIn: 0 };

  /**
   * Seconds the line needs per RUN sample at the rate learnt at HELLO: the mean of the RUNs so
   * far, before any the protocol-1 size (every input and output as u16, an upper bound).
   * Undefined when the line's rate is not known (an unpaced mock or pty).
   */
  runWireSecondsPerSample(): number | undefined {
    if (!Number.isFinite(this.info.link.nominalBytesPerSecond)) return undefined;
    const t = this.runTraffic;
    if (t.samples > 0) return this.wireSeconds(t.bytesOut / t.samples, t.bytesIn / t.samples);
    const outs = this.info.layers.reduce((n, l) => n + l.outputs, 0);
    return this.wireSeconds(this.info.layers[0]!.inputs * 2, outs * 2);
  }

  /** Seconds the wire needs for this traffic at the rate learnt at HELLO. */
  wireSeconds(bytesOut: number, bytesIn: number): number {
    const rate = this.info.link.bytesPerSecond;
    return Number.isFinite(rate) && rate > 0 ? (bytesOut + bytesIn) / rate : 0;
  }

  /** Tells the user how long the wire alone will take, when that is long. */
  private announce(what: string, bytesOut: number, bytesIn: number): void {
    // Only for a line with a known rate: HELLO's measured figure includes the device's own time
    // and start-up, too pessimistic to print for an unpaced mock or pty.
    if (!Number.isFinite(this.info.link.nominalBytesPerSecond)) return;
    const s = this.wireSeconds(bytesOut, bytesIn);
    if (s < this.noticeAfterS) return;
    const rate = this.info.link.bytesPerSecond;
    this.notice(
      `${what}: ${(bytesOut / 1e6).toFixed(2)} MB out, ${(bytesIn / 1e6).toFixed(2)} MB in; about ${s.toFixed(0)} s on the wire at ${Math.round(rate)} B/s`,
    );
  }

  /** Compares the device's WEIGHTS_CRC with the CRC-32C of `expected` (u16 little-endian). */
  async verifyWeights(layer: number, expected: Uint16Array): Promise<VerifyResult> {
    this.checkCodes(layer, expected, 'expected');
    const hostCrc = crc32c(u16le(expected));
    // The CRC describes every upload of the layer issued before this call.
    await this.uploadsSettled(layer);
    const r = await this.link.request('WEIGHTS_CRC', { layer });
    if (r.layer !== layer) throw new ProtocolViolationError('WEIGHTS_CRC', `asked for layer ${layer}, got layer ${r.layer}`);
    const base = { layer, count: r.count, deviceCrc: r.crc >>> 0, hostCrc };
    if (r.count !== expected.length) {
      return { ...base, ok: false, detail: `device holds ${r.count} codes in layer ${layer}, host expects ${expected.length}` };
    }
    const ok = base.deviceCrc === hostCrc;
    return {
      ...base,
      ok,
      detail: ok
        ? `layer ${layer}: ${r.count} codes match (crc32c ${hex32(hostCrc)})`
        : `layer ${layer}: device crc32c ${hex32(base.deviceCrc)} != host ${hex32(hostCrc)}; re-upload the layer`,
    };
  }

  /**
   * One inference per sample. `inputTicks` is batch x inputs (0xFFFF = silent). Split into
   * device-sized RUN frames, pipelined; returns per layer batch x outputs spike ticks.
   */
  async run(inputTicks: Uint16Array, batch: number, opts: RunOptions = {}): Promise<Uint16Array[]> {
    const info = this.info;
    const nIn = info.layers[0]!.inputs;
    if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a whole number >= 1, got ${batch}`);
    if (!(inputTicks instanceof Uint16Array)) throw new TypeError('inputTicks must be a Uint16Array (ticks, 0xFFFF = silent)');
    if (inputTicks.length !== batch * nIn) {
      throw new RangeError(`inputTicks has ${inputTicks.length} values, batch ${batch} x ${nIn} inputs needs ${batch * nIn}`);
    }
    const wanted = opts.layers === undefined ? undefined : [...new Set(opts.layers)].sort((a, b) => a - b);
    for (const l of wanted ?? []) this.layerInfo(l);
    if (wanted?.length === 0) throw new RangeError('layers: ask for at least one layer');
    // Both paths queue every frame on the link before they first yield (the link's window
    // bounds what is in flight), so an upload issued later queues behind all of them.
    const send = () => (info.negotiatedProtocol >= 2 ? this.runPacked(inputTicks, batch, wanted, opts) : this.runV1(inputTicks, batch, opts));
    const lossy = this.lineIsLossy();
    if (this.pendingUploads === 0 && !lossy) return send();
    // A RUN measures every upload issued before it, never half of one, and none issued after it.
    // It goes on the link right behind the uploads' frames, without waiting for their
    // acknowledgements: the device takes requests in arrival order, so when every frame on the
    // link was answered at its first attempt, the uploads landed before the RUN. Otherwise (a
    // retried or lost frame may have landed after it) it is run again once the uploads have
    // settled. Later uploads are held until this is known, so they cannot overtake it: once the
    // uploads settled and the RUN's frames are queued, or, on a line that lost frames lately, once
    // the RUN is answered (a RUN frame sent again after a later upload would measure that upload).
    let openGate!: () => void;
    const gate = new Promise<void>((r) => (openGate = r));
    const earlier = this.runGate;
    this.runGate = Promise.all([earlier, gate]).then(() => {});
    let measured: Promise<Uint16Array[]>;
    try {
      const setbacks = this.linkSetbacks();
      // the uploads issued before this RUN (later ones wait for the gate)
      const settled = this.uploadsSettled();
      await this.uploadsQueued();
      measured = send();
      await settled;
      if (this.linkSetbacks() !== setbacks) {
        measured.catch(() => {});
        this.rerunRuns++;
        measured = send();
      }
      if (lossy || this.lineIsLossy()) await measured.catch(() => {});
    } finally {
      openGate();
    }
    return measured;
  }

  /** Setbacks on the link when last looked at, and when they last grew. */
  private setbacksSeen = { count: 0, at: -Infinity };

  /** Whether the link lost or retried a frame within the last LOSSY_FOR_MS (looked at as RUNs are issued). */
  private lineIsLossy(): boolean {
    const n = this.linkSetbacks();
    const now = performance.now();
    if (n !== this.setbacksSeen.count) this.setbacksSeen = { count: n, at: now };
    return now - this.setbacksSeen.at < LOSSY_FOR_MS;
  }

  /** RUNs sent behind pending uploads that had to be sent again after them (a frame on the link was not answered at once). */
  rerunRuns = 0;

  /** Protocol 1: RUN frames of dense u16 inputs; every layer comes back. */
  private async runV1(inputTicks: Uint16Array, batch: number, opts: RunOptions): Promise<Uint16Array[]> {
    const info = this.info;
    const nIn = info.layers[0]!.inputs;
    const out = info.layers.map((l) => new Uint16Array(batch * l.outputs));
    const chunks = fullRuns(batch, info.runBatch);
    const outPerSample = info.layers.reduce((t, l) => t + l.outputs, 0);
    this.announce(`RUN of ${batch} samples`, batch * nIn * 2 + chunks.length * FRAME_OVERHEAD, batch * outPerSample * 2 + chunks.length * FRAME_OVERHEAD);
    this.runTraffic.samples += batch;
    this.runTraffic.bytesOut += batch * nIn * 2 + chunks.length * FRAME_OVERHEAD;
    this.runTraffic.bytesIn += batch * outPerSample * 2 + chunks.length * FRAME_OVERHEAD;
    await this.runChunks(chunks, batch, opts, (c) =>
      this.link
        .request$(
          'RUN',
          { batch: c.count, inputs: inputTicks.slice(c.offset * nIn, (c.offset + c.count) * nIn) },
          { timeoutMs: opts.timeoutMs, expect: { replyBytes: c.count * outPerSample * 2 + FRAME_OVERHEAD, work: c.count } },
        )
        .pipe(map((reply) => this.placeRun(reply, c, out))),
    );
    return out;
  }

  /**
   * Protocol 2: each sample's inputs as its smallest spike record; as many samples per
   * RUN_PACKED frame as the request and the worst-case reply (every listed neuron firing) allow.
   */
  private async runPacked(inputTicks: Uint16Array, batch: number, wanted: number[] | undefined, opts: RunOptions): Promise<Uint16Array[]> {
    const info = this.info;
    const nIn = info.layers[0]!.inputs;
    const listed = wanted ?? info.layers.map((_, l) => l);
    const layersField = wanted && wanted.length < info.layers.length ? Uint8Array.from(wanted) : undefined;
    const maxB = Math.min(
      0xffff,
      maxPackedBatchFor(
        info.maxPayload,
        listed.map((l) => info.layers[l]!.outputs),
      ),
    );
    if (maxB < 1) throw new RangeError(`maxPayload ${info.maxPayload} cannot hold the reply of one sample for layers ${listed.join(',')}`);
    const packed = this.bitPacked;
    const w = new ByteWriter(batch * 8);
    const ends = new Uint32Array(batch);
    for (let s = 0; s < batch; s++) {
      writeRecord(w, inputTicks, s * nIn, nIn, packed);
      ends[s] = w.length;
    }
    const records = w.finish();
    this.runTraffic.samples += batch;
    this.runTraffic.bytesOut += records.length;
    const chunks: (CodeRun & { from: number; to: number })[] = [];
    for (let s = 0; s < batch; ) {
      const first = s;
      const from = s === 0 ? 0 : ends[s - 1]!;
      s++;
      while (s < batch && s - first < maxB && runPackedRequestPayloadBytes(s - first + 1, ends[s]! - from, layersField?.length ?? 0, packed) <= info.maxPayload)
        s++;
      const to = ends[s - 1]!;
      if (runPackedRequestPayloadBytes(s - first, to - from, layersField?.length ?? 0, packed) > info.maxPayload) {
        throw new RangeError(`sample ${first}'s inputs take ${to - from} bytes packed, more than maxPayload ${info.maxPayload} allows`);
      }
      chunks.push({ offset: first, count: s - first, from, to });
    }
    const out = info.layers.map((l, k) => new Uint16Array(listed.includes(k) ? batch * l.outputs : 0));
    // Replies carry only the neurons that fired; every listed neuron firing (3 bytes each) bounds them.
    const replyPerSample = listed.reduce((t, l) => t + info.layers[l]!.outputs, 0) * 3;
    this.announce(`RUN of ${batch} samples`, records.length + chunks.length * FRAME_OVERHEAD, batch * replyPerSample + chunks.length * FRAME_OVERHEAD);
    await this.runChunks(chunks, batch, opts, (c) =>
      this.link
        .request$(
          'RUN_PACKED',
          {
            batch: c.count,
            inputs: records.subarray(c.from, c.to),
            ...(layersField ? { layers: layersField } : {}),
            ...(packed ? { packed: true } : {}),
          },
          { timeoutMs: opts.timeoutMs, expect: { replyBytes: c.count * replyPerSample + FRAME_OVERHEAD, work: c.count } },
        )
        .pipe(
          map((reply) => {
            const bad = (d: string) => new ProtocolViolationError('RUN_PACKED', d);
            if (reply.batch !== c.count) throw bad(`asked for ${c.count} samples, got batch ${reply.batch}`);
            if (reply.layers.length !== listed.length || listed.some((l, k) => reply.layers[k] !== l)) {
              throw bad(`asked for layers ${listed.join(',')}, got ${[...reply.layers].join(',')}`);
            }
            listed.forEach((l, k) => {
              let t: Uint16Array;
              try {
                t = decodeRecords(reply.spikes[k]!, c.count, info.layers[l]!.outputs, `layer ${l} spikes`);
              } catch (e) {
                throw bad(e instanceof ProtocolError ? e.message : String(e));
              }
              this.placeLayer(l, t, c, out, bad);
            });
            for (const sp of reply.spikes) this.runTraffic.bytesIn += sp.length;
          }),
        ),
    );
    return out;
  }

  /** Sends the RUN frames of a batch, pipelined; each reply is placed by its request's own pipe. */
  private async runChunks<C extends CodeRun>(chunks: C[], total: number, opts: RunOptions, send$: (c: C) => Observable<void>): Promise<void> {
    let done = 0;
    await lastValueFrom(
      from(chunks).pipe(
        mergeMap((c) =>
          send$(c).pipe(
            map(() => {
              done += c.count;
              opts.onProgress?.({ done, total });
            }),
          ),
        ),
        toArray(),
        abortable(opts.signal),
      ),
    );
  }

  private placeRun(reply: { batch: number; layers: Uint16Array[] }, c: CodeRun, out: Uint16Array[]): void {
    const layers = this.info.layers;
    const bad = (d: string) => new ProtocolViolationError('RUN', d);
    if (reply.batch !== c.count) throw bad(`asked for ${c.count} samples, got batch ${reply.batch}`);
    if (!Array.isArray(reply.layers) || reply.layers.length !== layers.length) {
      throw bad(`expected spike times of ${layers.length} layers, got ${reply.layers?.length}`);
    }
    for (let l = 0; l < layers.length; l++) this.placeLayer(l, reply.layers[l]!, c, out, bad);
  }

  /** Checks one layer's spike times of a RUN chunk (count, horizon) and copies them into place. */
  private placeLayer(l: number, t: Uint16Array, c: CodeRun, out: Uint16Array[], bad: (d: string) => Error): void {
    const layer = this.info.layers[l]!;
    const n = c.count * layer.outputs;
    if (!(t instanceof Uint16Array) || t.length !== n) {
      throw bad(`layer ${l}: expected ${n} spike times (${c.count} x ${layer.outputs}), got ${t?.length}`);
    }
    const h = layer.horizonTicks;
    for (let i = 0; i < n; i++) {
      if (t[i]! > h && t[i] !== SILENT) throw bad(`layer ${l}: spike tick ${t[i]} is past the layer's horizon ${h}`);
    }
    out[l]!.set(t, c.offset * layer.outputs);
  }

  async status(): Promise<StatusResponse> {
    const s = await this.link.request('STATUS', {});
    if (!Number.isFinite(s.supplyV) || !Number.isFinite(s.temperatureC)) {
      throw new ProtocolViolationError('STATUS', `supplyV ${s.supplyV} / temperatureC ${s.temperatureC} are not numbers`);
    }
    return s;
  }

  private requireFeature(feature: string, what: string): void {
    if (!this.info.features.includes(feature)) {
      throw new UnsupportedFeatureError(
        `${what} needs the '${feature}' feature, which this device does not announce (features: ${this.info.features.join(', ') || 'none'}); update the firmware`,
      );
    }
  }

  /** Runs the board's self tests; PROGRESS events are passed to onProgress (and appear on events$). */
  async selfTest(opts: SelfTestOptions = {}): Promise<SelfTestResult[]> {
    this.requireFeature('self-test', 'self test');
    const sub = this.link.events$
      .pipe(filter((e): e is Extract<DeviceEvent, { type: 'PROGRESS' }> => e.type === 'PROGRESS'))
      .subscribe((e) => opts.onProgress?.(e.event));
    try {
      const r = await this.link.request('SELF_TEST', opts.tests ? { tests: opts.tests } : {}, { timeoutMs: opts.timeoutMs });
      if (!Array.isArray(r.results)) throw new ProtocolViolationError('SELF_TEST', 'results is not a list');
      return r.results;
    } finally {
      sub.unsubscribe();
    }
  }

  /** Sets a layer's precharge and threshold voltages; returns what the device applied (after its DAC rounding). */
  async setNeuronVoltages(layer: number, vRest: number, vThreshold: number): Promise<{ vRest: number; vThreshold: number }> {
    this.layerInfo(layer);
    this.requireFeature('neuron-config', 'setting neuron voltages');
    if (!Number.isFinite(vRest) || !Number.isFinite(vThreshold)) {
      throw new RangeError(`vRest ${vRest} and vThreshold ${vThreshold} must be finite volts`);
    }
    if (!(vThreshold < vRest)) {
      throw new RangeError(`vThreshold ${vThreshold} V must be below vRest ${vRest} V (the membrane falls from rest to threshold)`);
    }
    const r = await this.link.request('NEURON_CONFIG', { layer, vRest, vThreshold });
    if (r.layer !== layer) throw new ProtocolViolationError('NEURON_CONFIG', `set layer ${layer}, device answered for layer ${r.layer}`);
    return { vRest: r.vRest, vThreshold: r.vThreshold };
  }

  /** Reads a layer's precharge and threshold voltages. */
  async neuronVoltages(layer: number): Promise<{ vRest: number; vThreshold: number }> {
    this.layerInfo(layer);
    const r = await this.link.request('NEURON_CONFIG', { layer });
    if (r.layer !== layer) throw new ProtocolViolationError('NEURON_CONFIG', `read layer ${layer}, device answered for layer ${r.layer}`);
    return { vRest: r.vRest, vThreshold: r.vThreshold };
  }

  async reset(): Promise<void> {
    await this.link.request('RESET', {});
  }

  /** Round trip with a random nonce (and optional data) that the device must echo. */
  async ping(data?: Uint8Array): Promise<{ rttMs: number; nonce: number }> {
    const nonce = randomInt(0, 2 ** 32);
    const t0 = performance.now();
    const r = await this.link.request('PING', data ? { nonce, data } : { nonce });
    const rttMs = performance.now() - t0;
    if (r.nonce !== nonce) throw new ProtocolViolationError('PING', `sent nonce ${nonce}, got ${r.nonce} back`);
    if (data && !(r.data instanceof Uint8Array && Buffer.compare(r.data, data) === 0)) {
      throw new ProtocolViolationError('PING', `echoed data differs from the ${data.length} bytes sent`);
    }
    return { rttMs, nonce };
  }

  async close(): Promise<void> {
    if (!this.link.isClosed) {
      const st = this.link.stats;
      closedTotals.bytesOut += st.bytesOut;
      closedTotals.bytesIn += st.bytesIn;
      closedTotals.framesOut += st.framesOut;
      closedTotals.framesIn += st.framesIn;
      closedTotals.devices++;
    }
    await this.link.close();
  }
}

const closedTotals = { bytesOut: 0, bytesIn: 0, framesOut: 0, framesIn: 0, devices: 0 };

/**
 * Link traffic of every device closed in this process so far: what a workflow that opens its own
 * devices moved over the wire (bench:link-budget takes the difference around a run).
 */
export function closedLinkTotals(): Readonly<typeof closedTotals> {
  return { ...closedTotals };
}

/** Checks a write's acknowledgement against what was written; returns the codes it confirms. */
function checkAck(
  what: 'WEIGHTS_WRITE' | 'WEIGHTS_PATCH' | 'WEIGHTS_EDIT',
  layer: number,
  w: { offset: number; count: number },
  reply: { layer: number; offset: number; count: number },
): number {
  if (reply.layer !== layer || reply.offset !== w.offset || reply.count !== w.count) {
    throw new ProtocolViolationError(
      what,
      `wrote layer ${layer} offset ${w.offset} count ${w.count}, device acknowledged layer ${reply.layer} offset ${reply.offset} count ${reply.count}`,
    );
  }
  return w.count;
}

/** The u16 codes as little-endian bytes (a view on little-endian hosts). */
function u16le(a: Uint16Array): Uint8Array {
  if (os.endianness() === 'LE') return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const b = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    b[2 * i] = a[i]! & 0xff;
    b[2 * i + 1] = a[i]! >>> 8;
  }
  return b;
}

/** Frame header, CRC, COBS and delimiter around a payload, plus an acknowledgement of about this size coming back. */
const ACK_WIRE_BYTES = 40;

/** Wire bytes (worst-case COBS) of WEIGHTS_PATCH frames and their acknowledgements. */
function patchWireBytes(layer: number, patches: PatchFrame[]): number {
  return patches.reduce((s, f) => s + maxWireBytes(weightsPatchPayloadBytes(f.data.length, layer, f.offset)) + ACK_WIRE_BYTES, 0);
}

/** Wire bytes of a full upload of `total` codes in WEIGHTS_WRITE chunks of `chunk` codes, with acknowledgements. */
function fullWireBytes(layer: number, total: number, chunk: number): number {
  let s = 0;
  for (let off = 0; off < total; off += chunk) s += maxWireBytes(weightsWritePayloadBytes(Math.min(chunk, total - off), layer, off)) + ACK_WIRE_BYTES;
  return s;
}

function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** Errors the stream (and so cancels its in-flight requests) when the signal aborts. */
function abortable<T>(signal?: AbortSignal) {
  return (source: Observable<T>): Observable<T> =>
    !signal
      ? source
      : new Observable<T>((sub) => {
          const onAbort = () => sub.error(signal.reason ?? new Error('aborted'));
          if (signal.aborted) {
            onAbort();
            return;
          }
          signal.addEventListener('abort', onAbort, { once: true });
          const inner = source.subscribe(sub);
          return () => {
            signal.removeEventListener('abort', onAbort);
            inner.unsubscribe();
          };
        });
}
