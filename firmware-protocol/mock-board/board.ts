/**
 * The reference device side: board state and the dispatcher of every request.
 *
 * Holds what a real board's firmware holds (weight memory as DAC codes, DAC registers as last
 * driven, neuron settings, link counters, uptime) and delegates physics to a ChipBackend.
 * `handle()` takes one decoded frame (or decode error) and returns the frames to send back;
 * it never throws. Events (LOG, ALERT, PROGRESS) go to subscribers as encoded frames.
 *
 * One module on purpose (about 730 lines, most of them the per-message handlers): every handler
 * reads and writes the one board state above, as a firmware's dispatcher does; the codecs it
 * calls (weight-patch.ts, weight-edit.ts, spike-records.ts) and the line (line.ts, serve.ts) are
 * their own modules.
 */
import type { ChipBackend, LayerGeometry } from '../../models/chips/chip-backend.ts';
import { NMOS } from '../../models/chips/chip-backend.ts';
import { crc32c } from '../crc32c.ts';
import { codeToVolts, dacMaxCode, safeCodeRange } from '../../wire/dac.ts';
import type { DecodeEvent } from '../decoder.ts';
import { ProtocolError } from '../errors.ts';
import { CRC_BYTES, encodeError, encodeEvent, encodeResponse, HEADER_BYTES, MAX_PAYLOAD } from '../frame.ts';
import { maxBatchFor, runPackedResponseMaxBytes } from '../limits.ts';
import { BIT_PACKED_FEATURE, decodeRecords, encodeRecords } from '../spike-records.ts';
import { decodePatch } from '../weight-patch.ts';
import { decodeEdit, WEIGHTS_EDIT_FEATURE } from '../weight-edit.ts';
import {
  ErrorCode,
  Flags,
  PROTOCOL_VERSION,
  TYPE_SINCE,
  type Catalog,
  type EventName,
  type Events,
  type Frame,
  type HelloResponse,
  type LayerInfo,
  type RequestName,
  type SelfTestResult,
  type ReceiveCounters,
  type StatusResponse,
} from '../messages.ts';
import { typeName } from '../schemas.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

/** Least time between two PROGRESS events of one request (PROTOCOL.md: at least one a second). */
export const PROGRESS_INTERVAL_MS = 250;
export const DEFAULT_MAX_PAYLOAD = 16384;
export const MIN_PROTOCOL = 1;
export const SELF_TESTS = ['dac', 'timer', 'supply'] as const;

export interface MockBoardOptions {
  /** Largest payload the board accepts and sends (announced in HELLO). Default 16384. */
  maxPayload?: number;
  firmware?: string;
  boardId?: string;
  /** Milliseconds clock for uptime; default performance.now. */
  clock?: () => number;
  /** Nominal supply for the `supply` self-test (volts, +-5 % accepted). Default 1.8. */
  nominalSupplyV?: number;
  /**
   * Extra milliseconds every RUN takes before its reply (default 0): a slower board or chip, so
   * that host-side pipelining can be measured against the in-process mock.
   */
  runDelayMs?: number;
  /**
   * Highest protocol version the board speaks (default PROTOCOL_VERSION): 1 emulates a board
   * from before protocol 2 (no WEIGHTS_PATCH, no RUN_PACKED), to test a host's fallback.
   */
  protocol?: number;
  /**
   * Whether the board announces `bit-packed` (PACKED spike records and WEIGHTS_EDIT segments;
   * default true from protocol 2): false emulates a protocol-2 board from before it.
   */
  bitPacked?: boolean;
  /**
   * Request frames the board announces it holds queued (HELLO `rxFrames`, default 16); 0 announces
   * nothing, as a board from before the field.
   */
  rxFrames?: number;
}

export interface BoardCounters extends ReceiveCounters {
  /** Requests answered with ERROR. */
  refused: number;
}

/** A request the board declines: becomes an ERROR frame with the request's seq. */
class Refusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

type Handler<K extends RequestName> = (msg: Catalog[K]['request']) => Catalog[K]['response'] | Promise<Catalog[K]['response']>;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function u16leBytes(a: Uint16Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const b = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    b[2 * i] = a[i]! & 0xff;
    b[2 * i + 1] = a[i]! >>> 8;
  }
  return b;
}

function fmtV(v: number): string {
  return `${Number(v.toFixed(4))} V`;
}

export class MockBoard {
  readonly backend: ChipBackend;
  readonly firmware: string;
  readonly boardId: string;
  readonly maxPayload: number;
  readonly maxBatch: number;
  /** Announces and takes PACKED records and edit segments (`bit-packed`). */
  readonly bitPacked: boolean;
  /** HELLO `rxFrames` (0: not announced). */
  readonly rxFrames: number;
  /** Highest and lowest protocol versions spoken (announced in HELLO). */
  readonly protocol: number;
  readonly minProtocol = MIN_PROTOCOL;
  readonly counters: BoardCounters = {
    framesOk: 0,
    crcErrors: 0,
    framingErrors: 0,
    oversize: 0,
    unknownType: 0,
    badPayload: 0,
    versionErrors: 0,
    refused: 0,
  };

  private readonly geometry: readonly LayerGeometry[];
  private readonly layerInfo: LayerInfo[];
  /** Allowed code window per polarity (index NMOS / PMOS). */
  private readonly window: [[number, number], [number, number]];
  private readonly weights: Uint16Array[];
  /** DAC registers as last driven onto the chip (what a read-back returns). */
  private readonly dacRegs: Uint16Array[];
  private readonly dirty: boolean[];
  private readonly neuronDefaults: { vRest: number; vThreshold: number }[];
  private readonly clock: () => number;
  private readonly startMs: number;
  private readonly nominalSupplyV: number;
  private readonly runDelayMs: number;
  private eventSeq = 0;
  /** Damaged frames received (the NAK event's counter). */
  private damaged = 0;
  /** Seq of the last intact frame received (-1: none yet), for NAK's `after`. */
  private lastIntactSeq = -1;
  /** Version of the events the board sends: the one negotiated at the last HELLO (the lowest before any). */
  private sessionVersion = MIN_PROTOCOL;
  private readonly listeners = new Set<(frame: Uint8Array) => void>();

  constructor(backend: ChipBackend, opts: MockBoardOptions = {}) {
    this.backend = backend;
    this.firmware = opts.firmware ?? 'spikeloop-mock/1.0';
    this.boardId = opts.boardId ?? `mock-${backend.chipId}`;
    const maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    if (!Number.isInteger(maxPayload) || maxPayload < 64 || maxPayload > 0xffff) {
      throw new RangeError(`MockBoard maxPayload: expected an integer in 64..65535, got ${maxPayload}`);
    }
    this.maxPayload = maxPayload;
    this.clock = opts.clock ?? (() => performance.now());
    this.startMs = this.clock();
    this.nominalSupplyV = opts.nominalSupplyV ?? 1.8;
    const runDelayMs = opts.runDelayMs ?? 0;
    if (!(Number.isFinite(runDelayMs) && runDelayMs >= 0 && runDelayMs <= 600_000)) {
      throw new RangeError(`MockBoard runDelayMs: expected 0..600000 milliseconds, got ${runDelayMs}`);
    }
    this.runDelayMs = runDelayMs;
    const protocol = opts.protocol ?? PROTOCOL_VERSION;
    if (!Number.isInteger(protocol) || protocol < MIN_PROTOCOL || protocol > PROTOCOL_VERSION) {
      throw new RangeError(`MockBoard protocol: expected an integer in ${MIN_PROTOCOL}..${PROTOCOL_VERSION}, got ${protocol}`);
    }
    this.protocol = protocol;
    this.bitPacked = protocol >= 2 && (opts.bitPacked ?? true);
    const rxFrames = opts.rxFrames ?? 16;
    if (!Number.isInteger(rxFrames) || rxFrames < 0 || rxFrames > 0xffff)
      throw new RangeError(`MockBoard rxFrames: expected an integer in 0..65535, got ${rxFrames}`);
    this.rxFrames = rxFrames;

    this.geometry = backend.geometry;
    if (this.geometry.length === 0) throw new RangeError('MockBoard: the backend has no layers');
    if (backend.timing.horizonTicks.length !== this.geometry.length) {
      throw new RangeError(`MockBoard: backend timing has ${backend.timing.horizonTicks.length} horizons for ${this.geometry.length} layers`);
    }
    const nm = safeCodeRange(backend.dac, backend.safe.nmos);
    const pm = safeCodeRange(backend.dac, backend.safe.pmos);
    if (!nm || !pm) throw new RangeError('MockBoard: a safe gate-voltage range contains no DAC code');
    this.window = [nm, pm];
    this.layerInfo = this.geometry.map((g, l) => ({
      inputs: g.inputs,
      outputs: g.outputs,
      rowInput: g.rowInput.slice(),
      rowPolarity: g.rowPolarity.slice(),
      horizonTicks: backend.timing.horizonTicks[l]!,
    }));
    this.maxBatch = maxBatchFor(maxPayload, this.geometry);
    this.weights = this.geometry.map((g) => this.offCodes(g));
    this.dacRegs = this.geometry.map((g) => new Uint16Array(g.rowInput.length * g.outputs));
    this.dirty = this.geometry.map(() => true);
    this.neuronDefaults = this.geometry.map((_, l) => ({ ...backend.neuronVoltages(l) }));
  }

  /** "Off" weight memory: NMOS gates at the low end, PMOS gates at the high end of their safe windows. */
  private offCodes(g: LayerGeometry): Uint16Array {
    const rows = g.rowInput.length;
    const w = new Uint16Array(rows * g.outputs);
    for (let r = 0; r < rows; r++) {
      const off = g.rowPolarity[r] === NMOS ? this.window[0][0] : this.window[1][1];
      w.fill(off, r * g.outputs, (r + 1) * g.outputs);
    }
    return w;
  }

  /** A copy of a layer's weight memory (rows x outputs codes). */
  readWeights(layer: number): Uint16Array {
    return this.weights[layer]!.slice();
  }

  /** The code window [lo, hi] the board accepts for a polarity (0 = NMOS, 1 = PMOS). */
  codeWindow(polarity: number): [number, number] {
    return [...this.window[polarity === NMOS ? 0 : 1]] as [number, number];
  }

  hello(): HelloResponse {
    const b = this.backend;
    const features = ['self-test', 'status'];
    if (this.protocol >= 2) features.push(WEIGHTS_EDIT_FEATURE);
    if (this.bitPacked) features.push(BIT_PACKED_FEATURE);
    if (typeof b.setNeuronVoltages === 'function') features.push('neuron-config');
    return {
      protocol: this.protocol,
      minProtocol: this.minProtocol,
      firmware: this.firmware,
      boardId: this.boardId,
      chipId: b.chipId,
      layers: this.layerInfo.map((l) => ({ ...l, rowInput: l.rowInput.slice(), rowPolarity: l.rowPolarity.slice() })),
      dac: { bits: b.dac.bits, vMin: b.dac.vMin, vMax: b.dac.vMax },
      safe: { nmos: [b.safe.nmos[0], b.safe.nmos[1]], pmos: [b.safe.pmos[0], b.safe.pmos[1]] },
      tickSeconds: b.timing.tickSeconds,
      maxPayload: this.maxPayload,
      maxBatch: this.maxBatch,
      features,
      ...(this.rxFrames > 0 ? { rxFrames: this.rxFrames } : {}),
    };
  }

  /** Registers a sink for event frames (LOG, ALERT, PROGRESS); returns the unsubscribe function. */
  subscribe(listener: (frame: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * A progress sink for one RUN: forwards the backend's progress as PROGRESS events ("run"),
   * at most every PROGRESS_INTERVAL_MS, so a host keeps a long request alive without a flood.
   */
  private runProgress(): (p: { done: number; total: number }) => void {
    let last = -Infinity;
    return ({ done, total }) => {
      const now = this.clock();
      if (now - last < PROGRESS_INTERVAL_MS && done < total) return;
      last = now;
      const d = Math.max(0, Math.min(0xffffffff, Math.floor(done)));
      this.emitEvent('PROGRESS', { task: 'run', done: d, total: Math.max(d, Math.floor(total)) });
    };
  }

  /** An event frame with the board's own event counter, not yet sent (a NAK goes out in order with the replies). */
  private eventFrame<K extends EventName>(name: K, msg: Events[K]): Uint8Array {
    const frame = encodeEvent(name, this.eventSeq, msg, { version: this.sessionVersion });
    this.eventSeq = (this.eventSeq + 1) & 0xffff;
    return frame;
  }

  /** Sends an unsolicited event with the board's own event counter; returns its frame. */
  emitEvent<K extends EventName>(name: K, msg: Events[K]): Uint8Array {
    const frame = this.eventFrame(name, msg);
    for (const l of this.listeners) {
      try {
        l(frame);
      } catch {
        // a failing sink must not break the board
      }
    }
    return frame;
  }

  /** Answers one decoded frame or decode error. Never throws; a damaged frame gets no answer. */
  async handle(ev: DecodeEvent): Promise<Uint8Array[]> {
    if (ev.kind === 'error') {
      if (ev.header) this.lastIntactSeq = ev.header.seq;
      return this.handleDecodeError(ev);
    }
    this.lastIntactSeq = ev.frame.seq;
    this.counters.framesOk++;
    const f = ev.frame;
    const version = this.replyVersion(f.version);
    try {
      return [await this.dispatch(f, version)];
    } catch (e) {
      return [this.refuse(f.seq, e, version)];
    }
  }

  /** Answers go out in the request's version when the board speaks it, else in the session's (HELLO, ERROR VERSION). */
  private replyVersion(v: number): number {
    return v >= this.minProtocol && v <= this.protocol ? v : this.sessionVersion;
  }

  private handleDecodeError(ev: Extract<DecodeEvent, { kind: 'error' }>): Uint8Array[] {
    const c = this.counters;
    switch (ev.error.code) {
      case 'crc':
        c.crcErrors++;
        break;
      case 'framing':
        c.framingErrors++;
        break;
      case 'oversize':
        c.oversize++;
        break;
      case 'unknown-type':
        c.unknownType++;
        break;
      case 'version':
        c.versionErrors++;
        break;
      default:
        c.badPayload++;
        break;
    }
    if (!ev.header) {
      // Damaged: never acted on. Protocol 2 says so (NAK, in order with the replies), so the host
      // re-sends the lost request at once instead of waiting for its timeout.
      const kind = ev.error.code;
      // Fewer bytes than a header and CRC are line garbage, not a request.
      if (this.sessionVersion < 2 || (ev.bytes ?? 0) < HEADER_BYTES + CRC_BYTES || (kind !== 'crc' && kind !== 'framing' && kind !== 'oversize')) return [];
      this.damaged = (this.damaged + 1) >>> 0;
      return [this.eventFrame('NAK', { error: kind, damaged: this.damaged, ...(this.lastIntactSeq >= 0 ? { after: this.lastIntactSeq } : {}) })];
    }
    const code = ev.error.code === 'unknown-type' ? ErrorCode.UNKNOWN_TYPE : ev.error.code === 'version' ? ErrorCode.VERSION : ErrorCode.BAD_PAYLOAD;
    return [this.refuse(ev.header.seq, new Refusal(code, ev.error.message), this.replyVersion(ev.header.version))];
  }

  private refuse(seq: number, e: unknown, version: number): Uint8Array {
    this.counters.refused++;
    if (e instanceof Refusal) return encodeError(seq, e.code, e.message, { version });
    return encodeError(seq, ErrorCode.INTERNAL, `internal error: ${(e as Error)?.message ?? String(e)}`, { version });
  }

  private async dispatch(f: Frame, version: number): Promise<Uint8Array> {
    const name = typeName(f.type);
    if (f.flags & (Flags.RESPONSE | Flags.EVENT) || name === undefined || name === 'ERROR' || !(name in this.handlers)) {
      throw new Refusal(ErrorCode.UNKNOWN_TYPE, `the device accepts requests only; got type 0x${f.type.toString(16)} with flags 0x${f.flags.toString(16)}`);
    }
    const req = name as RequestName;
    const since = TYPE_SINCE[req];
    if (since !== undefined && (since > this.protocol || since > f.version)) {
      throw new Refusal(
        ErrorCode.UNKNOWN_TYPE,
        `${req} needs protocol ${since}; this board speaks ${this.minProtocol}..${this.protocol} and the frame is version ${f.version}`,
      );
    }
    const handler = this.handlers[req] as Handler<RequestName>;
    const response = await handler(f.message as never);
    if (req === 'HELLO') {
      const v = Math.min((f.message as { hostProtocol: number }).hostProtocol, this.protocol);
      if (v >= this.minProtocol) this.sessionVersion = v;
      version = this.sessionVersion;
    }
    try {
      // HELLO is exempt: the host learns maxPayload from it, so it must take HELLO up to the protocol ceiling
      return encodeResponse(req, f.seq, response as never, { maxPayload: req === 'HELLO' ? MAX_PAYLOAD : this.maxPayload, version });
    } catch (e) {
      if (e instanceof ProtocolError && e.code === 'oversize') throw new Refusal(ErrorCode.TOO_LARGE, e.message);
      throw e;
    }
  }

  /** Runs a backend call; its failure is a hardware fault, not a crash. */
  private hw<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new Refusal(ErrorCode.HARDWARE_FAULT, `${what} failed: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private checkLayer(label: string, layer: number): void {
    if (layer >= this.geometry.length) {
      throw new Refusal(ErrorCode.BAD_LAYER, `${label}.layer: ${layer}, but the chip has ${this.geometry.length} layer(s) (0..${this.geometry.length - 1})`);
    }
  }

  /** Refuses (OUT_OF_RANGE, nothing written) a code outside the DAC or its row's safe window; `cellOf(k)` is code k's cell. */
  private checkSafe(label: string, layer: number, cellOf: (k: number) => number, codes: Uint16Array): void {
    const g = this.geometry[layer]!;
    const max = dacMaxCode(this.backend.dac);
    for (let k = 0; k < codes.length; k++) {
      const idx = cellOf(k);
      const row = Math.floor(idx / g.outputs);
      const pol = g.rowPolarity[row] === NMOS ? 0 : 1;
      const c = codes[k]!;
      const [lo, hi] = this.window[pol];
      if (c > max || c < lo || c > hi) {
        const what = c > max ? `exceeds the ${this.backend.dac.bits}-bit DAC (max ${max})` : `drives ${fmtV(codeToVolts(this.backend.dac, c))}`;
        const rng = pol === 0 ? this.backend.safe.nmos : this.backend.safe.pmos;
        const at = label === 'WEIGHTS_WRITE' ? `WEIGHTS_WRITE.codes[${k}]` : `${label} cell ${idx}`;
        throw new Refusal(
          ErrorCode.OUT_OF_RANGE,
          `${at}: code ${c} (layer ${layer}, row ${row} ${pol === 0 ? 'NMOS' : 'PMOS'}, output ${idx % g.outputs}) ${what}, outside the safe window ${fmtV(rng[0])}..${fmtV(rng[1])} = codes ${lo}..${hi}; nothing of this chunk was written`,
        );
      }
    }
  }

  /**
   * Writes scattered cells of a layer (WEIGHTS_PATCH, WEIGHTS_EDIT) after checking every code of the
   * frame against its row's safe window: nothing of a refused frame is written. Returns the ack.
   */
  private writeCells(
    label: string,
    m: { layer: number; offset: number },
    p: { cells: Float64Array; codes: Uint16Array },
  ): { layer: number; offset: number; count: number } {
    this.checkSafe(label, m.layer, (k) => p.cells[k]!, p.codes);
    const w = this.weights[m.layer]!;
    const n = p.cells.length;
    for (let k = 0; k < n; k++) w[p.cells[k]!] = p.codes[k]!;
    this.dirty[m.layer] = true;
    return { layer: m.layer, offset: m.offset, count: n };
  }

  /** Drives pending weights, runs the chip and checks what it returned (one array per layer, batch x outputs). */
  private async runChip(inputs: Uint16Array, batch: number, label: string): Promise<Uint16Array[]> {
    this.applyWeights();
    let out: Uint16Array[];
    try {
      out = await this.backend.run(inputs, batch, { onProgress: this.runProgress() });
    } catch (e) {
      throw new Refusal(ErrorCode.HARDWARE_FAULT, `${label}: the chip run failed: ${(e as Error)?.message ?? String(e)}`);
    }
    if (this.runDelayMs > 0) await new Promise((r) => setTimeout(r, this.runDelayMs));
    if (!Array.isArray(out) || out.length !== this.geometry.length) {
      throw new Refusal(
        ErrorCode.INTERNAL,
        `${label}: backend returned ${Array.isArray(out) ? out.length : typeof out} layer(s), expected ${this.geometry.length}`,
      );
    }
    out.forEach((t, l) => {
      const want = batch * this.geometry[l]!.outputs;
      if (!(t instanceof Uint16Array) || t.length !== want) {
        throw new Refusal(
          ErrorCode.INTERNAL,
          `${label}: backend returned ${(t as Uint16Array)?.length} ticks for layer ${l}, expected batch*outputs = ${want}`,
        );
      }
    });
    return out;
  }

  /** Volts of each DAC code (built at the first drive). */
  private codeVolts: Float64Array | undefined;

  /** Drives changed layers' gate voltages onto the chip. */
  private applyWeights(): void {
    for (let l = 0; l < this.geometry.length; l++) {
      if (!this.dirty[l]) continue;
      const w = this.weights[l]!;
      const volts = new Float64Array(w.length);
      // the same volts as codeToVolts per cell, from a table of every code
      this.codeVolts ??= Float64Array.from({ length: dacMaxCode(this.backend.dac) + 1 }, (_, c) => codeToVolts(this.backend.dac, c));
      const lut = this.codeVolts;
      for (let i = 0; i < w.length; i++) volts[i] = lut[w[i]!]!;
      this.hw(`setGateVoltages(layer ${l})`, () => this.backend.setGateVoltages(l, volts));
      this.dacRegs[l]!.set(w);
      this.dirty[l] = false;
    }
  }

  private progress(task: string, done: number, total: number): void {
    this.emitEvent('PROGRESS', { task, done, total });
  }

  private readonly handlers: { [K in RequestName]: Handler<K> } = {
    HELLO: () => this.hello(),

    PING: (m) => (m.data === undefined ? { nonce: m.nonce } : { nonce: m.nonce, data: m.data }),

    RESET: () => {
      for (let l = 0; l < this.geometry.length; l++) {
        this.weights[l]!.set(this.offCodes(this.geometry[l]!));
        this.dirty[l] = true;
        const set = this.backend.setNeuronVoltages;
        if (typeof set === 'function') {
          const d = this.neuronDefaults[l]!;
          this.hw(`setNeuronVoltages(layer ${l})`, () => set.call(this.backend, l, d.vRest, d.vThreshold));
        }
      }
      return {};
    },

    WEIGHTS_WRITE: (m) => {
      this.checkLayer('WEIGHTS_WRITE', m.layer);
      const g = this.geometry[m.layer]!;
      const size = g.rowInput.length * g.outputs;
      const n = m.codes.length;
      if (m.offset + n > size) {
        throw new Refusal(
          ErrorCode.OUT_OF_RANGE,
          `WEIGHTS_WRITE: codes ${m.offset}..${m.offset + n - 1} run past the end of layer ${m.layer}'s weight memory (${g.rowInput.length} rows x ${g.outputs} outputs = ${size} codes); nothing written`,
        );
      }
      this.checkSafe('WEIGHTS_WRITE', m.layer, (k) => m.offset + k, m.codes);
      this.weights[m.layer]!.set(m.codes, m.offset);
      this.dirty[m.layer] = true;
      return { layer: m.layer, offset: m.offset, count: n };
    },

    WEIGHTS_PATCH: (m) => {
      this.checkLayer('WEIGHTS_PATCH', m.layer);
      const g = this.geometry[m.layer]!;
      const size = g.rowInput.length * g.outputs;
      let p: { cells: Float64Array; codes: Uint16Array };
      try {
        p = decodePatch(m.data, m.offset, this.backend.dac.bits, 'WEIGHTS_PATCH.data');
      } catch (e) {
        throw new Refusal(ErrorCode.BAD_PAYLOAD, (e as Error).message);
      }
      const n = p.cells.length;
      if (n > 0 && p.cells[n - 1]! >= size) {
        throw new Refusal(
          ErrorCode.OUT_OF_RANGE,
          `WEIGHTS_PATCH: cell ${p.cells[n - 1]} is past the end of layer ${m.layer}'s weight memory (${g.rowInput.length} rows x ${g.outputs} outputs = ${size} codes); nothing written`,
        );
      }
      return this.writeCells('WEIGHTS_PATCH', m, p);
    },

    WEIGHTS_EDIT: (m) => {
      this.checkLayer('WEIGHTS_EDIT', m.layer);
      const g = this.geometry[m.layer]!;
      const w = this.weights[m.layer]!;
      let p: ReturnType<typeof decodeEdit>;
      try {
        p = decodeEdit(m.data, m.offset, w, 'WEIGHTS_EDIT.data', this.bitPacked);
      } catch (e) {
        throw new Refusal(ErrorCode.BAD_PAYLOAD, (e as Error).message);
      }
      if (p.pastEnd !== undefined) {
        throw new Refusal(
          ErrorCode.OUT_OF_RANGE,
          `WEIGHTS_EDIT: cell ${p.pastEnd} is past the end of layer ${m.layer}'s weight memory (${g.rowInput.length} rows x ${g.outputs} outputs = ${w.length} codes); nothing written`,
        );
      }
      return this.writeCells('WEIGHTS_EDIT', m, p);
    },

    WEIGHTS_CRC: (m) => {
      this.checkLayer('WEIGHTS_CRC', m.layer);
      const w = this.weights[m.layer]!;
      return { layer: m.layer, count: w.length, crc: crc32c(u16leBytes(w)) };
    },

    NEURON_CONFIG: (m) => {
      this.checkLayer('NEURON_CONFIG', m.layer);
      if (m.vRest !== undefined || m.vThreshold !== undefined) {
        const set = this.backend.setNeuronVoltages;
        if (typeof set !== 'function') {
          throw new Refusal(
            ErrorCode.UNSUPPORTED,
            'NEURON_CONFIG: this chip has fixed precharge and threshold voltages (no "neuron-config" feature); send NEURON_CONFIG without voltages to read them',
          );
        }
        const cur = this.hw('neuronVoltages', () => this.backend.neuronVoltages(m.layer));
        const vRest = m.vRest ?? cur.vRest;
        const vThreshold = m.vThreshold ?? cur.vThreshold;
        try {
          set.call(this.backend, m.layer, vRest, vThreshold);
        } catch (e) {
          const code = e instanceof RangeError ? ErrorCode.OUT_OF_RANGE : ErrorCode.HARDWARE_FAULT;
          throw new Refusal(code, `NEURON_CONFIG: vRest ${fmtV(vRest)}, vThreshold ${fmtV(vThreshold)} refused: ${(e as Error)?.message ?? String(e)}`);
        }
      }
      const v = this.hw('neuronVoltages', () => this.backend.neuronVoltages(m.layer));
      return { layer: m.layer, vRest: v.vRest, vThreshold: v.vThreshold };
    },

    RUN: async (m) => {
      if (m.batch > this.maxBatch) {
        throw new Refusal(ErrorCode.TOO_LARGE, `RUN.batch: ${m.batch} exceeds maxBatch = ${this.maxBatch} (announced in HELLO); split the batch`);
      }
      const in0 = this.geometry[0]!.inputs;
      if (m.inputs.length !== m.batch * in0) {
        throw new Refusal(ErrorCode.BAD_PAYLOAD, `RUN.inputs: expected batch*${in0} = ${m.batch * in0} ticks, got ${m.inputs.length}`);
      }
      const out = await this.runChip(m.inputs, m.batch, 'RUN');
      return { batch: m.batch, layers: out };
    },

    RUN_PACKED: async (m) => {
      const nL = this.geometry.length;
      const listed = m.layers ?? Uint8Array.from(this.geometry, (_, l) => l);
      const bad = listed.find((l) => l >= nL);
      if (bad !== undefined) {
        throw new Refusal(ErrorCode.BAD_LAYER, `RUN_PACKED.layers: layer ${bad}, but the chip has ${nL} layer(s) (0..${nL - 1})`);
      }
      const worst = runPackedResponseMaxBytes(
        m.batch,
        [...listed].map((l) => this.geometry[l]!.outputs),
      );
      if (worst > this.maxPayload) {
        throw new Refusal(
          ErrorCode.TOO_LARGE,
          `RUN_PACKED.batch: ${m.batch} samples could need a ${worst}-byte reply for layers ${[...listed].join(',')}, over maxPayload = ${this.maxPayload}; split the batch`,
        );
      }
      let inputs: Uint16Array;
      try {
        inputs = decodeRecords(m.inputs, m.batch, this.geometry[0]!.inputs, 'RUN_PACKED.inputs', this.bitPacked);
      } catch (e) {
        throw new Refusal(ErrorCode.BAD_PAYLOAD, (e as Error).message);
      }
      const out = await this.runChip(inputs, m.batch, 'RUN_PACKED');
      const packed = this.bitPacked && m.packed === true;
      return {
        batch: m.batch,
        layers: Uint8Array.from(listed),
        spikes: [...listed].map((l) => encodeRecords(out[l]!, m.batch, this.geometry[l]!.outputs, packed)),
      };
    },

    SELF_TEST: (m) => {
      const tests = m.tests ?? [...SELF_TESTS];
      const unknown = tests.filter((t) => !(SELF_TESTS as readonly string[]).includes(t));
      if (unknown.length > 0) {
        throw new Refusal(
          ErrorCode.UNSUPPORTED,
          `SELF_TEST.tests: unknown test(s) ${unknown.map((t) => JSON.stringify(t)).join(', ')}; this board runs ${SELF_TESTS.join(', ')}`,
        );
      }
      const results: SelfTestResult[] = [];
      this.progress('self-test', 0, tests.length);
      tests.forEach((t, i) => {
        results.push(t === 'dac' ? this.testDac() : t === 'timer' ? this.testTimer() : this.testSupply());
        this.progress('self-test', i + 1, tests.length);
      });
      return { results };
    },

    STATUS: (): StatusResponse => {
      const s = this.hw('supply()', () => this.backend.supply());
      const c = this.counters;
      return {
        supplyV: s.supplyV,
        temperatureC: s.temperatureC,
        uptimeMs: Math.max(0, Math.round(this.clock() - this.startMs)),
        counters: {
          framesOk: c.framesOk >>> 0,
          crcErrors: c.crcErrors >>> 0,
          framingErrors: c.framingErrors >>> 0,
          oversize: c.oversize >>> 0,
          unknownType: c.unknownType >>> 0,
          badPayload: c.badPayload >>> 0,
          refused: c.refused >>> 0,
          versionErrors: c.versionErrors >>> 0,
        },
      };
    },
  };

  /**
   * DAC read-back: drives every layer's weight memory onto the DACs, reads each channel's
   * register back and compares it with memory and with its polarity's safe window.
   */
  private testDac(): SelfTestResult {
    try {
      for (let l = 0; l < this.geometry.length; l++) this.dirty[l] = true;
      this.applyWeights();
    } catch (e) {
      return { name: 'dac', ok: false, detail: (e as Error).message };
    }
    let channels = 0;
    let mismatches = 0;
    let unsafe = 0;
    let first = '';
    for (let l = 0; l < this.geometry.length; l++) {
      const g = this.geometry[l]!;
      const regs = this.dacRegs[l]!;
      const mem = this.weights[l]!;
      for (let i = 0; i < regs.length; i++) {
        const [lo, hi] = this.window[g.rowPolarity[Math.floor(i / g.outputs)] === NMOS ? 0 : 1];
        const r = regs[i]!;
        if (r !== mem[i]) {
          mismatches++;
          first ||= `layer ${l} channel ${i}: register ${r}, memory ${mem[i]}`;
        }
        if (r < lo || r > hi) {
          unsafe++;
          first ||= `layer ${l} channel ${i}: code ${r} outside ${lo}..${hi}`;
        }
      }
      channels += regs.length;
      this.progress('self-test:dac', l + 1, this.geometry.length);
    }
    const ok = mismatches === 0 && unsafe === 0;
    return {
      name: 'dac',
      ok,
      detail: ok
        ? `${channels} DAC channels read back equal to weight memory, all inside their polarity's safe window`
        : `${mismatches} read-back mismatches, ${unsafe} codes outside the safe window of ${channels} channels; first: ${first}`,
    };
  }

  /**
   * Timer loopback: the board's timer captures a test edge fired at known delays (no chip in
   * the path); every capture must equal its delay in ticks and stay below the silent marker.
   */
  private testTimer(): SelfTestResult {
    const tick = this.backend.timing.tickSeconds;
    const horizon = Math.max(...this.backend.timing.horizonTicks);
    const delays = [...new Set([0, 1, 2, Math.floor(horizon / 2), horizon - 1, horizon])].filter((d) => d >= 0 && d < SILENT_TICK);
    const bad: string[] = [];
    for (const d of delays) {
      const captured = this.captureTicks(d * tick, tick);
      if (captured !== d) bad.push(`delay ${d} ticks captured as ${captured}`);
    }
    return {
      name: 'timer',
      ok: bad.length === 0 && horizon < SILENT_TICK,
      detail:
        bad.length === 0
          ? `${delays.length} loopback edges at 0..${horizon} ticks captured exactly (tick ${tick} s; board timer only, no chip in the path)`
          : bad.join('; '),
    };
  }

  /** The board's capture timer: the tick in which an edge `seconds` after the start lands. */
  private captureTicks(seconds: number, tick: number): number {
    return Math.round(seconds / tick);
  }

  private testSupply(): SelfTestResult {
    let s: { supplyV: number; temperatureC: number };
    try {
      s = this.backend.supply();
    } catch (e) {
      return { name: 'supply', ok: false, detail: `supply sensor read failed: ${(e as Error)?.message ?? String(e)}` };
    }
    const lo = this.nominalSupplyV * 0.95;
    const hi = this.nominalSupplyV * 1.05;
    const vOk = s.supplyV >= lo && s.supplyV <= hi;
    const tOk = s.temperatureC >= -40 && s.temperatureC <= 125;
    return {
      name: 'supply',
      ok: vOk && tOk,
      detail: `supply ${s.supplyV.toFixed(3)} V (accepted ${lo.toFixed(3)}..${hi.toFixed(3)} V), temperature ${s.temperatureC.toFixed(1)} C (accepted -40..125 C)`,
    };
  }
}
