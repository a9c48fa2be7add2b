/**
 * zod schemas for every payload of the catalogue (messages.ts), in both directions:
 * `decode` turns a freshly unpacked MessagePack value (byte arrays as Uint8Array) into the
 * application form (Uint16Array etc.), `encode` validates an application value and turns it
 * into the wire form. Field ranges and cross-field rules live here; checks that need the
 * device's geometry (RUN input length, code windows) live on the device.
 */
import { z } from 'zod';
import { ProtocolError, type ProtocolErrorCode } from './errors.ts';
import { Flags, MsgType, type Catalog, type EventName, type Events, type MsgTypeName, type RequestName } from './messages.ts';

type Schema<T> = z.ZodType<T, any>;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesToU16(b: Uint8Array): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(b.length >>> 1);
  if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(b.subarray(0, out.length * 2));
  else for (let i = 0; i < out.length; i++) out[i] = b[2 * i]! | (b[2 * i + 1]! << 8);
  return out;
}

function u16ToBytes(a: Uint16Array): Uint8Array<ArrayBuffer> {
  // A view, not a copy: the packer copies the bytes into the frame anyway.
  if (LITTLE_ENDIAN_HOST) return new Uint8Array(a.buffer as ArrayBuffer, a.byteOffset, a.byteLength);
  const out = new Uint8Array(a.length * 2);
  for (let i = 0; i < a.length; i++) {
    out[2 * i] = a[i]! & 0xff;
    out[2 * i + 1] = a[i]! >>> 8;
  }
  return out;
}

// ---- field types --------------------------------------------------------------------------

export function int(lo: number, hi: number) {
  const error = `expected an integer in ${lo}..${hi}`;
  return z.number({ error }).int({ error }).min(lo, { error }).max(hi, { error });
}
export const u8 = int(0, 0xff);
export const u16 = int(0, 0xffff);
export const u32 = int(0, 0xffffffff);
/**
 * A `number` field: a MessagePack int or float. msgpack.ts hands floats over boxed (Number
 * objects) so that integer fields, plain z.number(), refuse them; number fields unbox here.
 */
function numberField(out: z.ZodNumber) {
  return z.codec(z.union([z.number(), z.instanceof(Number)], { error: 'expected a finite number' }), out, {
    decode: (v) => Number(v),
    encode: (v) => v,
  });
}
/** Any finite number (MessagePack int or float; NaN and infinities are refused). */
export const finite = numberField(z.number({ error: 'expected a finite number' }));
export const text = z.string({ error: 'expected a string' });
export const nonEmptyText = text.min(1, { error: 'expected a non-empty string' });

/** u16 array: MessagePack `bin` of little-endian u16 elements <-> Uint16Array. */
export const u16Array = z.codec(
  z
    .instanceof(Uint8Array, { error: 'expected MessagePack bin of little-endian u16 elements' })
    .refine((b) => b.length % 2 === 0, { error: 'bin length must be even (little-endian u16 elements)' }),
  z.instanceof(Uint16Array, { error: 'expected a Uint16Array' }),
  { decode: bytesToU16, encode: u16ToBytes },
);

/** u8 array: MessagePack `bin` <-> Uint8Array (decoding copies, so frames never alias receive buffers). */
export const u8Array = z.codec(z.instanceof(Uint8Array, { error: 'expected MessagePack bin' }), z.instanceof(Uint8Array, { error: 'expected a Uint8Array' }), {
  decode: (b) => new Uint8Array(b),
  encode: (a) => a,
});

const voltRange = z.tuple([finite, finite], { error: 'expected [low, high] volts' }).refine(([lo, hi]) => lo <= hi, { error: 'expected low <= high' });

// ---- shared shapes ------------------------------------------------------------------------

export const LayerInfoSchema = z
  .object({
    inputs: int(1, 0xffff),
    outputs: int(1, 0xffff),
    rowInput: u16Array,
    rowPolarity: u8Array,
    horizonTicks: int(1, 0xfffe),
  })
  .superRefine((v, ctx) => {
    const rows = v.rowInput.length;
    if (rows === 0) ctx.addIssue({ code: 'custom', path: ['rowInput'], message: 'expected at least one synapse row', input: 0 });
    if (v.rowPolarity.length !== rows) {
      ctx.addIssue({
        code: 'custom',
        path: ['rowPolarity'],
        message: `expected one polarity per row = ${rows}, got ${v.rowPolarity.length}`,
        input: v.rowPolarity.length,
      });
    }
    const badPol = v.rowPolarity.findIndex((p) => p > 1);
    if (badPol >= 0) {
      ctx.addIssue({ code: 'custom', path: ['rowPolarity', badPol], message: 'expected 0 (NMOS) or 1 (PMOS)', input: v.rowPolarity[badPol] });
    }
    const badIn = v.rowInput.findIndex((j) => j >= v.inputs);
    if (badIn >= 0) {
      ctx.addIssue({ code: 'custom', path: ['rowInput', badIn], message: `expected an input index < inputs = ${v.inputs}`, input: v.rowInput[badIn] });
    }
  });

// ---- requests and responses ---------------------------------------------------------------

const Empty = z.object({});

export const HelloRequestSchema = z.object({ hostProtocol: int(1, 0xff), host: nonEmptyText });
export const HelloResponseSchema = z
  .object({
    protocol: int(1, 0xff),
    minProtocol: int(1, 0xff),
    firmware: nonEmptyText,
    boardId: nonEmptyText,
    chipId: nonEmptyText,
    layers: z.array(LayerInfoSchema, { error: 'expected an array of layers' }).min(1, { error: 'expected at least one layer' }),
    dac: z.object({ bits: int(1, 16), vMin: finite, vMax: finite }).refine((d) => d.vMin < d.vMax, { error: 'expected vMin < vMax', path: ['vMax'] }),
    safe: z.object({ nmos: voltRange, pmos: voltRange }),
    tickSeconds: numberField(z.number({ error: 'expected a finite number' }).positive({ error: 'expected seconds per tick > 0' })),
    maxPayload: int(64, 0xffff),
    maxBatch: u16,
    features: z.array(nonEmptyText, { error: 'expected an array of strings' }),
    rxFrames: int(1, 0xffff).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.minProtocol > v.protocol) {
      ctx.addIssue({ code: 'custom', path: ['minProtocol'], message: `expected minProtocol <= protocol = ${v.protocol}`, input: v.minProtocol });
    }
    for (let l = 1; l < v.layers.length; l++) {
      const want = v.layers[l - 1]!.outputs;
      if (v.layers[l]!.inputs !== want) {
        ctx.addIssue({
          code: 'custom',
          path: ['layers', l, 'inputs'],
          message: `expected layers[${l - 1}].outputs = ${want} (layers form a chain)`,
          input: v.layers[l]!.inputs,
        });
      }
    }
  });

const nonce = u32;
export const PingRequestSchema = z.object({ nonce, data: u8Array.optional() });
export const PingResponseSchema = z.object({ nonce, data: u8Array.optional() });

export const ResetRequestSchema = Empty;
export const ResetResponseSchema = Empty;

export const WeightsWriteRequestSchema = z.object({ layer: u8, offset: u32, codes: u16Array }).superRefine((v, ctx) => {
  if (v.codes.length === 0) ctx.addIssue({ code: 'custom', path: ['codes'], message: 'expected at least one code', input: 0 });
  if (v.offset + v.codes.length > 0x100000000) {
    ctx.addIssue({ code: 'custom', path: ['offset'], message: 'offset + count exceeds the u32 address space', input: v.offset });
  }
});
export const WeightsWriteResponseSchema = z.object({ layer: u8, offset: u32, count: u32 });

export const WeightsCrcRequestSchema = z.object({ layer: u8 });
export const WeightsCrcResponseSchema = z.object({ layer: u8, count: u32, crc: u32 });

export const NeuronConfigRequestSchema = z.object({ layer: u8, vRest: finite.optional(), vThreshold: finite.optional() });
export const NeuronConfigResponseSchema = z.object({ layer: u8, vRest: finite, vThreshold: finite });

export const RunRequestSchema = z.object({ batch: int(1, 0xffff), inputs: u16Array }).superRefine((v, ctx) => {
  const n = v.inputs.length;
  if (v.batch >= 1 && (n === 0 || n % v.batch !== 0)) {
    ctx.addIssue({
      code: 'custom',
      path: ['inputs'],
      message: `expected a non-zero multiple of batch = ${v.batch} ticks (batch x layer-0 inputs), got ${n}`,
      input: n,
    });
  }
});
export const RunResponseSchema = z
  .object({ batch: int(1, 0xffff), layers: z.array(u16Array, { error: 'expected an array of tick arrays' }).min(1, { error: 'expected at least one layer' }) })
  .superRefine((v, ctx) => {
    v.layers.forEach((ticks, l) => {
      if ((v.batch >= 1 && ticks.length === 0) || ticks.length % v.batch !== 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['layers', l],
          message: `expected a non-zero multiple of batch = ${v.batch} ticks (batch x outputs), got ${ticks.length}`,
          input: ticks.length,
        });
      }
    });
  });

/** A u8[] list of layer indices in strictly ascending order (each layer at most once). */
const layerList = u8Array
  .refine((a) => a.length >= 1, { error: 'expected at least one layer index' })
  .refine((a) => a.every((x, i) => i === 0 || x > a[i - 1]!), { error: 'expected layer indices in strictly ascending order' });
const nonEmptyBin = u8Array.refine((a) => a.length >= 1, { error: 'expected at least one byte' });

export const WeightsPatchRequestSchema = z.object({ layer: u8, offset: u32, data: nonEmptyBin });
export const WeightsPatchResponseSchema = z.object({ layer: u8, offset: u32, count: u32 });

export const RunPackedRequestSchema = z.object({
  batch: int(1, 0xffff),
  inputs: nonEmptyBin,
  layers: layerList.optional(),
  packed: z.boolean({ error: 'expected true or false' }).optional(),
});
export const RunPackedResponseSchema = z
  .object({ batch: int(1, 0xffff), layers: layerList, spikes: z.array(nonEmptyBin, { error: 'expected an array of spike records' }) })
  .superRefine((v, ctx) => {
    if (v.spikes.length !== v.layers.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['spikes'],
        message: `expected one record block per listed layer = ${v.layers.length}, got ${v.spikes.length}`,
        input: v.spikes.length,
      });
    }
  });

export const SelfTestRequestSchema = z.object({ tests: z.array(nonEmptyText, { error: 'expected an array of test names' }).optional() });
export const SelfTestResponseSchema = z.object({
  results: z.array(z.object({ name: nonEmptyText, ok: z.boolean({ error: 'expected a boolean' }), detail: text }), {
    error: 'expected an array of results',
  }),
});

export const StatusRequestSchema = Empty;
export const StatusResponseSchema = z.object({
  supplyV: finite,
  temperatureC: finite,
  uptimeMs: numberField(z.number({ error: 'expected a finite number' }).min(0, { error: 'expected milliseconds >= 0' })),
  counters: z.object({
    framesOk: u32,
    crcErrors: u32,
    framingErrors: u32,
    oversize: u32,
    unknownType: u32,
    badPayload: u32,
    refused: u32,
    versionErrors: u32.optional(),
  }),
});

// ---- events and errors --------------------------------------------------------------------

export const LogEventSchema = z.object({
  level: z.enum(['debug', 'info', 'warn', 'error'], { error: 'expected "debug", "info", "warn" or "error"' }),
  text,
});
export const AlertEventSchema = z.object({
  kind: z.enum(['brown-out', 'over-temperature', 'fault'], { error: 'expected "brown-out", "over-temperature" or "fault"' }),
  value: finite,
  text,
});
export const ProgressEventSchema = z
  .object({ task: nonEmptyText, done: u32, total: u32 })
  .refine((p) => p.done <= p.total, { error: 'expected done <= total', path: ['done'] });
export const NakEventSchema = z.object({
  error: z.enum(['crc', 'framing', 'oversize'], { error: 'expected "crc", "framing" or "oversize"' }),
  damaged: u32,
  after: u16.optional(),
});
export const ErrorResponseSchema = z.object({ code: int(1, 0xff), message: text });

// ---- lookup -------------------------------------------------------------------------------

export const requestSchemas: { [K in RequestName]: Schema<Catalog[K]['request']> } = {
  HELLO: HelloRequestSchema,
  PING: PingRequestSchema,
  RESET: ResetRequestSchema,
  WEIGHTS_WRITE: WeightsWriteRequestSchema,
  WEIGHTS_CRC: WeightsCrcRequestSchema,
  NEURON_CONFIG: NeuronConfigRequestSchema,
  WEIGHTS_PATCH: WeightsPatchRequestSchema,
  WEIGHTS_EDIT: WeightsPatchRequestSchema,
  RUN: RunRequestSchema,
  RUN_PACKED: RunPackedRequestSchema,
  SELF_TEST: SelfTestRequestSchema,
  STATUS: StatusRequestSchema,
};
export const responseSchemas: { [K in RequestName]: Schema<Catalog[K]['response']> } = {
  HELLO: HelloResponseSchema,
  PING: PingResponseSchema,
  RESET: ResetResponseSchema,
  WEIGHTS_WRITE: WeightsWriteResponseSchema,
  WEIGHTS_CRC: WeightsCrcResponseSchema,
  NEURON_CONFIG: NeuronConfigResponseSchema,
  WEIGHTS_PATCH: WeightsPatchResponseSchema,
  WEIGHTS_EDIT: WeightsPatchResponseSchema,
  RUN: RunResponseSchema,
  RUN_PACKED: RunPackedResponseSchema,
  SELF_TEST: SelfTestResponseSchema,
  STATUS: StatusResponseSchema,
};
export const eventSchemas: { [K in EventName]: Schema<Events[K]> } = {
  LOG: LogEventSchema,
  ALERT: AlertEventSchema,
  PROGRESS: ProgressEventSchema,
  NAK: NakEventSchema,
};

const NAME_OF = new Map<number, MsgTypeName>(Object.entries(MsgType).map(([k, v]) => [v, k as MsgTypeName]));

/** The catalogue name of a type code, or undefined. */
export function typeName(type: number): MsgTypeName | undefined {
  return NAME_OF.get(type);
}

export type MessageKind = 'request' | 'response' | 'event' | 'error';

export interface SchemaEntry {
  kind: MessageKind;
  name: MsgTypeName;
  /** How the message is named in errors: `RUN`, `RUN response`, `LOG`, `ERROR`. */
  label: string;
  schema: Schema<unknown>;
}

/**
 * The schema that governs a frame: type ERROR -> ErrorResponse; EVENT flag -> the event schema;
 * RESPONSE flag -> the type's response schema; otherwise its request schema. Undefined when the
 * catalogue has no such message (an unknown type, an event flag on a request type, ...).
 */
export function schemaFor(type: number, flags: number): SchemaEntry | undefined {
  const name = typeName(type);
  if (name === undefined) return undefined;
  if (name === 'ERROR') return { kind: 'error', name, label: 'ERROR', schema: ErrorResponseSchema };
  if (flags & Flags.EVENT) {
    const s = (eventSchemas as Record<string, Schema<unknown>>)[name];
    return s && { kind: 'event', name, label: name, schema: s };
  }
  const table = (flags & Flags.RESPONSE ? responseSchemas : requestSchemas) as Record<string, Schema<unknown>>;
  const s = table[name];
  if (!s) return undefined;
  return flags & Flags.RESPONSE ? { kind: 'response', name, label: `${name} response`, schema: s } : { kind: 'request', name, label: name, schema: s };
}

/** Validates an application value and returns its wire form; throws ProtocolError('schema'). */
export function toWire(entry: SchemaEntry, message: unknown): unknown {
  const r = z.safeEncode(entry.schema, message as never, { reportInput: true });
  if (r.success) return r.data;
  throw issuesToError('schema', entry.label, r.error.issues);
}

/** Turns an unpacked wire value into the validated application form; throws ProtocolError('bad-payload'). */
export function fromWire(entry: SchemaEntry, wire: unknown): unknown {
  const r = z.safeDecode(entry.schema, wire as never, { reportInput: true });
  if (r.success) return r.data;
  throw issuesToError('bad-payload', entry.label, r.error.issues);
}

/** Validates an application value without converting it (for values built in memory). */
export function checkMessage(entry: SchemaEntry, message: unknown): ProtocolError | undefined {
  const r = entry.schema.safeParse(message, { reportInput: true });
  return r.success ? undefined : issuesToError('schema', entry.label, r.error.issues);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

function describe(v: unknown): string | undefined {
  if (v === undefined) return 'nothing';
  if (v === null) return 'nil';
  if (v instanceof Number) return `${v.valueOf()} (a MessagePack float)`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as Uint8Array).length})`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'a map';
  return typeof v;
}

function issuesToError(code: ProtocolErrorCode, label: string, issues: readonly z.core.$ZodIssue[]): ProtocolError {
  // a field's own problem explains more than a cross-field rule that tripped over it
  const first = issues.find((i) => i.code !== 'custom') ?? issues[0]!;
  const field = formatPath(first.path);
  const input = (first as { input?: unknown }).input;
  let msg = first.message;
  if (!/\bgot\b|received/.test(msg)) {
    const d = describe(input);
    if (d !== undefined) msg += `, got ${d}`;
  }
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new ProtocolError(code, `${label}${field ? `.${field}` : ''}: ${msg}${more}`, { field, value: input });
}
