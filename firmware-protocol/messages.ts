/**
 * The message catalogue as TypeScript types: the contract between the codec, the mock
 * board and the host. PROTOCOL.md is the normative text; schemas.ts validates payloads
 * against these shapes. Binary arrays travel as MessagePack `bin` (little-endian) and
 * decode to the typed arrays named here.
 */

/** Highest protocol version this implementation speaks (PROTOCOL.md section 7). */
export const PROTOCOL_VERSION = 2;
/** Lowest protocol version this implementation still speaks. */
export const MIN_PROTOCOL_VERSION = 1;

export const MsgType = {
  HELLO: 0x01,
  PING: 0x02,
  RESET: 0x03,
  WEIGHTS_WRITE: 0x10,
  WEIGHTS_CRC: 0x11,
  NEURON_CONFIG: 0x12,
  WEIGHTS_PATCH: 0x13,
  WEIGHTS_EDIT: 0x14,
  RUN: 0x20,
  RUN_PACKED: 0x21,
  SELF_TEST: 0x30,
  STATUS: 0x31,
  LOG: 0x50,
  ALERT: 0x51,
  PROGRESS: 0x52,
  NAK: 0x53,
  ERROR: 0x7f,
} as const;
export type MsgTypeName = keyof typeof MsgType;
export type MsgTypeCode = (typeof MsgType)[MsgTypeName];

/** Message types added after version 1: the version that introduced them (older frames may not carry them). */
export const TYPE_SINCE: Readonly<Partial<Record<MsgTypeName, number>>> = {
  WEIGHTS_PATCH: 2,
  WEIGHTS_EDIT: 2,
  RUN_PACKED: 2,
  NAK: 2,
};

/** Header flag bits. A response echoes its request's seq; an event carries the device's own counter. */
export const Flags = {
  RESPONSE: 0x01,
  EVENT: 0x02,
} as const;

export const ErrorCode = {
  UNKNOWN_TYPE: 1,
  BAD_PAYLOAD: 2,
  OUT_OF_RANGE: 3,
  BAD_LAYER: 4,
  TOO_LARGE: 5,
  BUSY: 6,
  UNSUPPORTED: 7,
  VERSION: 8,
  HARDWARE_FAULT: 9,
  INTERNAL: 10,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

export interface LayerInfo {
  inputs: number;
  outputs: number;
  /** Per synapse row: the input that drives it (u16 LE). Weight memory is rows x outputs codes. */
  rowInput: Uint16Array;
  /** Per synapse row: 0 = NMOS, 1 = PMOS. */
  rowPolarity: Uint8Array;
  /** Inference window of this layer in ticks. */
  horizonTicks: number;
}

export interface HelloRequest {
  /** Highest protocol version the host speaks. */
  hostProtocol: number;
  host: string;
}
export interface HelloResponse {
  protocol: number;
  minProtocol: number;
  firmware: string;
  boardId: string;
  chipId: string;
  layers: LayerInfo[];
  dac: { bits: number; vMin: number; vMax: number };
  safe: { nmos: [number, number]; pmos: [number, number] };
  tickSeconds: number;
  maxPayload: number;
  maxBatch: number;
  /** Optional capabilities, e.g. "neuron-config", "self-test". */
  features: string[];
  /**
   * Request frames (each up to maxPayload) the device holds received and not yet answered, the one
   * it is executing included: the host keeps at most this many in flight. Absent: the host's default.
   */
  rxFrames?: number;
}

export interface PingRequest {
  nonce: number;
  data?: Uint8Array;
}
export interface PingResponse {
  nonce: number;
  data?: Uint8Array;
}

export type ResetRequest = Record<string, never>;
export type ResetResponse = Record<string, never>;

/** Writes `codes.length` codes into a layer's weight memory starting at `offset` (row-major index). */
export interface WeightsWriteRequest {
  layer: number;
  offset: number;
  codes: Uint16Array;
}
export interface WeightsWriteResponse {
  layer: number;
  offset: number;
  count: number;
}

/** CRC-32C over the layer's whole weight memory as u16 LE. */
export interface WeightsCrcRequest {
  layer: number;
}
export interface WeightsCrcResponse {
  layer: number;
  count: number;
  crc: number;
}

/** Sets (or with no voltages, reads) the precharge and threshold voltages of a layer. */
export interface NeuronConfigRequest {
  layer: number;
  vRest?: number;
  vThreshold?: number;
}
export interface NeuronConfigResponse {
  layer: number;
  vRest: number;
  vThreshold: number;
}

/** `inputs` is batch x layers[0].inputs ticks; 0xFFFF = silent. */
export interface RunRequest {
  batch: number;
  inputs: Uint16Array;
}
/** Per layer, batch x outputs spike ticks; 0xFFFF = silent in the window. */
export interface RunResponse {
  batch: number;
  layers: Uint16Array[];
}

/**
 * Protocol 2: writes scattered cells of a layer's weight memory. `data` is a sequence of
 * segments (weight-patch.ts, PROTOCOL.md 10.13) starting at cell `offset`: sparse (gap, code)
 * entries or dense runs of codes, whichever the sender found smaller.
 */
export interface WeightsPatchRequest {
  layer: number;
  offset: number;
  data: Uint8Array;
}
/** `count`: cells written. */
export interface WeightsPatchResponse {
  layer: number;
  offset: number;
  count: number;
}

/**
 * Protocol 2, feature `weights-edit`: changes cells by runs of one code (FILL) or by small steps
 * named by their low bits (STEP), weight-edit.ts, PROTOCOL.md 10.15, starting at cell `offset`.
 * The reply is as for WEIGHTS_PATCH.
 */
export type WeightsEditRequest = WeightsPatchRequest;
export type WeightsEditResponse = WeightsPatchResponse;

/**
 * Protocol 2: inferences with packed spike records (spike-records.ts, PROTOCOL.md 10.14).
 * `inputs` holds `batch` records over layers[0].inputs; `layers` lists (ascending) the layers
 * whose spikes the reply carries; absent means all.
 */
export interface RunPackedRequest {
  batch: number;
  inputs: Uint8Array;
  layers?: Uint8Array;
  /** The reply may use PACKED records (only to a board announcing `bit-packed`). */
  packed?: boolean;
}
/** `spikes[k]`: `batch` records over the outputs of layer `layers[k]`. */
export interface RunPackedResponse {
  batch: number;
  layers: Uint8Array;
  spikes: Uint8Array[];
}

export interface SelfTestRequest {
  tests?: string[];
}
export interface SelfTestResult {
  name: string;
  ok: boolean;
  detail: string;
}
export interface SelfTestResponse {
  results: SelfTestResult[];
}

export type StatusRequest = Record<string, never>;
/** What a receiver counts about the frames it gets (the decoder's and the board's counters). */
export interface ReceiveCounters {
  framesOk: number;
  crcErrors: number;
  framingErrors: number;
  oversize: number;
  unknownType: number;
  badPayload: number;
  versionErrors: number;
}

export interface StatusResponse {
  supplyV: number;
  temperatureC: number;
  uptimeMs: number;
  counters: Omit<ReceiveCounters, 'versionErrors'> & {
    refused: number;
    /** Frames with a good CRC but a header version the device does not speak (added; optional for older devices). */
    versionErrors?: number;
  };
}

export interface LogEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  text: string;
}
export interface AlertEvent {
  kind: 'brown-out' | 'over-temperature' | 'fault';
  value: number;
  text: string;
}
export interface ProgressEvent {
  task: string;
  done: number;
  total: number;
}
/**
 * Version 2: the device received a damaged frame (steps 1-6 of PROTOCOL.md section 4). Sent in
 * order with the replies, after the replies to every request received before the damaged frame.
 */
export interface NakEvent {
  /** What was wrong with the frame. */
  error: 'crc' | 'framing' | 'oversize';
  /** Damaged frames since power-up (wrapping at 2^32), so a host can tell a lost NAK. */
  damaged: number;
  /**
   * Seq of the last intact request received before the damaged frame (absent when there was
   * none): the damaged frame is the host's next one after it, so a NAK about an attempt the host
   * has already given up is not taken for one about the attempt that replaced it.
   */
  after?: number;
}
export interface ErrorResponse {
  code: number;
  message: string;
}

/** For each type: what the host sends and what the device answers (events have no request). */
export interface Catalog {
  HELLO: { request: HelloRequest; response: HelloResponse };
  PING: { request: PingRequest; response: PingResponse };
  RESET: { request: ResetRequest; response: ResetResponse };
  WEIGHTS_WRITE: { request: WeightsWriteRequest; response: WeightsWriteResponse };
  WEIGHTS_CRC: { request: WeightsCrcRequest; response: WeightsCrcResponse };
  NEURON_CONFIG: { request: NeuronConfigRequest; response: NeuronConfigResponse };
  WEIGHTS_PATCH: { request: WeightsPatchRequest; response: WeightsPatchResponse };
  WEIGHTS_EDIT: { request: WeightsEditRequest; response: WeightsEditResponse };
  RUN: { request: RunRequest; response: RunResponse };
  RUN_PACKED: { request: RunPackedRequest; response: RunPackedResponse };
  SELF_TEST: { request: SelfTestRequest; response: SelfTestResponse };
  STATUS: { request: StatusRequest; response: StatusResponse };
}
export type RequestName = keyof Catalog;
export interface Events {
  LOG: LogEvent;
  ALERT: AlertEvent;
  PROGRESS: ProgressEvent;
  NAK: NakEvent;
}
export type EventName = keyof Events;

/** A decoded frame: header fields plus the validated message. */
export interface Frame {
  version: number;
  type: number;
  flags: number;
  seq: number;
  message: unknown;
}
