/**
 * Regenerates the golden vectors in ../vectors from the messages below: `npm run vectors`.
 * Every file is an array of entries a codec in any language can check itself against;
 * PROTOCOL.md ("Golden vectors") describes the format.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFrame, encodeRawFrame } from '../frame.ts';
import { packPayload } from '../msgpack.ts';
import { maxBatchFor } from '../limits.ts';
import { cobsEncode } from '../cobs.ts';
import { crc32c } from '../crc32c.ts';
import { ErrorCode, Flags, MsgType, type MsgTypeName } from '../messages.ts';
import { toHex, toJsonForm, type JsonValue } from '../json-form.ts';
import { dualRailLayer } from '../../models/chips/chip-backend.ts';
import { encodeRecords } from '../spike-records.ts';
import { encodePatch } from '../weight-patch.ts';
import { encodeEdit, encodeFills } from '../weight-edit.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, '..', 'vectors');

interface Vector {
  name: string;
  type: MsgTypeName;
  type_code: number;
  direction: 'request' | 'response' | 'event' | 'error';
  version: number;
  flags: number;
  seq: number;
  message: JsonValue;
  frame_hex: string;
}

/** The version-1 vectors stay version-1 frames: a version-2 codec still reads and writes them (PROTOCOL.md section 7). */
const V1 = 1;

function vector(name: string, type: MsgTypeName, direction: Vector['direction'], seq: number, message: unknown, version = V1): Vector {
  const flags = direction === 'request' ? 0 : direction === 'event' ? Flags.EVENT : Flags.RESPONSE;
  const wire = encodeFrame(MsgType[type], flags, seq, message, { version });
  return { name, type, type_code: MsgType[type], direction, version, flags, seq, message: toJsonForm(message), frame_hex: toHex(wire) };
}

/** Cells 100, 103, 300 sparse (the gap 103 -> 300 takes a 2-byte varint), then 310..317 as a dense run (weight-patch.ts). */
const patchPrev = new Uint16Array(400).fill(228);
const patchNext = patchPrev.slice();
for (const [cell, code] of [
  [100, 300],
  [103, 301],
  [300, 795],
] as const)
  patchNext[cell] = code;
for (let c = 310; c <= 317; c++) patchNext[c] = 390 + c;
const patchFrames = encodePatch(patchPrev, patchNext, 1000, 10);
if (patchFrames.length !== 1) throw new Error('the patch vector should be one frame');
const patchData = patchFrames[0]!.data;

/**
 * WEIGHTS_EDIT over memory holding 228 everywhere: cells 20..59 FILLed with 300, steps to 227
 * (cell 61), 229 (62), 230 (70), then cells 96..127 moved by -3..-7 (one NEAR block).
 */
const editPrev = new Uint16Array(400).fill(228);
const editNext = editPrev.slice();
editNext.fill(300, 20, 60);
editNext[61] = 227;
editNext[62] = 229;
editNext[70] = 230;
for (let c = 96; c < 128; c++) editNext[c] = 225 - (c % 5);
const editFrames = encodeEdit(editPrev, editNext, 1000);
if (editFrames.length !== 1) throw new Error('the edit vector should be one frame');
const editData = editFrames[0]!.data;
// PACKED (bit-packed): cells 0..15 alternate 100 / 400 (1 bit each), 16..31 spread over 200..263 (6 bits each)
const packedCells = Uint16Array.from({ length: 32 }, (_, i) => (i < 16 ? (i % 2 ? 400 : 100) : 200 + ((i * 37) % 64)));
const packedEditData = encodeFills(packedCells, 4096, true)[0]!.data;
// a reply record where 6 neurons of 8 fire between ticks 1000 and 1040: 6 bits each, all ones silent
const packedTicks = Uint16Array.of(1000, 1010, SILENT_TICK, 1040, 1003, SILENT_TICK, 1021, 1039);
const probe784 = new Uint16Array(784).fill(SILENT_TICK);
probe784[700] = 1999;
const l0 = dualRailLayer(2, 2);
const l1 = dualRailLayer(2, 1);

const requests: Vector[] = [
  vector('HELLO from a host speaking protocol 1', 'HELLO', 'request', 1, { hostProtocol: 1, host: 'spikeloop/0.1.0' }),
  vector('PING without data', 'PING', 'request', 2, { nonce: 3735928559 }),
  vector('PING with data (bin)', 'PING', 'request', 3, { nonce: 7, data: Uint8Array.of(0, 1, 2, 0, 255) }),
  vector('RESET', 'RESET', 'request', 4, {}),
  vector('WEIGHTS_WRITE of 4 codes into layer 0 at offset 0', 'WEIGHTS_WRITE', 'request', 5, {
    layer: 0,
    offset: 0,
    codes: Uint16Array.of(228, 300, 795, 700),
  }),
  vector('WEIGHTS_WRITE at a large offset', 'WEIGHTS_WRITE', 'request', 6, { layer: 1, offset: 401000, codes: Uint16Array.of(0x0102, 0x0a0b) }),
  vector('WEIGHTS_CRC of layer 1', 'WEIGHTS_CRC', 'request', 7, { layer: 1 }),
  vector('NEURON_CONFIG read', 'NEURON_CONFIG', 'request', 8, { layer: 0 }),
  vector('NEURON_CONFIG set both voltages', 'NEURON_CONFIG', 'request', 9, { layer: 0, vRest: 1.3, vThreshold: 0.85 }),
  vector('RUN of 2 samples with 2 inputs (0xFFFF = silent)', 'RUN', 'request', 10, { batch: 2, inputs: Uint16Array.of(0, 12, SILENT_TICK, 40) }),
  vector('SELF_TEST, all tests', 'SELF_TEST', 'request', 11, {}),
  vector('SELF_TEST, named tests', 'SELF_TEST', 'request', 12, { tests: ['dac', 'timer'] }),
  vector('STATUS', 'STATUS', 'request', 13, {}),
  vector('HELLO from a newer host (header version 2)', 'HELLO', 'request', 14, { hostProtocol: 2, host: 'spikeloop/9' }, 2),
  // ---- protocol 2
  vector('v2: STATUS in a version-2 frame', 'STATUS', 'request', 60, {}, 2),
  vector(
    'v2: WEIGHTS_PATCH: a sparse segment (cells 100, 103, 300) then a dense run (cells 310..317)',
    'WEIGHTS_PATCH',
    'request',
    61,
    { layer: 0, offset: 100, data: patchData },
    2,
  ),
  vector(
    'v2: WEIGHTS_EDIT (feature weights-edit): on a memory holding 228, FILL cells 20..59 with 300, STEP cells 61, 62, 70 to 227, 229, 230, NEAR cells 96..127 to 225 - (cell mod 5)',
    'WEIGHTS_EDIT',
    'request',
    64,
    { layer: 0, offset: 20, data: editData },
    2,
  ),
  vector(
    'v2: RUN_PACKED of 3 samples over 4 inputs: sparse (input 2 at tick 40), silent, dense varint; all layers',
    'RUN_PACKED',
    'request',
    62,
    {
      batch: 3,
      inputs: encodeRecords(
        Uint16Array.of(SILENT_TICK, SILENT_TICK, 40, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK, SILENT_TICK, 1, 2, 3, SILENT_TICK),
        3,
        4,
      ),
    },
    2,
  ),
  vector(
    'v2: RUN_PACKED of one single-synapse probe (input 700 at tick 1999 of 784), reply for layer 1 only',
    'RUN_PACKED',
    'request',
    63,
    { batch: 1, inputs: encodeRecords(probe784, 1, 784), layers: Uint8Array.of(1) },
    2,
  ),
  vector(
    'v2: WEIGHTS_EDIT PACKED segments (feature bit-packed): cells 0..15 alternate 100 / 400 in 1 bit (base 100, step 300), cells 16..31 are 200 + (37 k mod 64) in 6 bits',
    'WEIGHTS_EDIT',
    'request',
    65,
    { layer: 1, offset: 0, data: packedEditData },
    2,
  ),
  vector(
    'v2: RUN_PACKED asking for PACKED reply records (feature bit-packed), layer 0 only',
    'RUN_PACKED',
    'request',
    66,
    { batch: 1, inputs: encodeRecords(probe784, 1, 784), layers: Uint8Array.of(0), packed: true },
    2,
  ),
];

/** The toy board's HELLO fields shared by its version-1 and version-2 replies (the field order is the encoding's). */
const toyBoard = {
  firmware: 'spikeloop-mock/1.0',
  boardId: 'mock-toy',
  chipId: 'toy-chip-1',
  layers: [
    { ...l0, horizonTicks: 200 },
    { ...l1, horizonTicks: 250 },
  ],
  dac: { bits: 10, vMin: 0, vMax: 1.8 },
  safe: { nmos: [0.4, 1.2], pmos: [0.6, 1.4] },
  tickSeconds: 1e-8,
  maxPayload: 16384,
  maxBatch: maxBatchFor(16384, [l0, l1]),
};

const responses: Vector[] = [
  vector('HELLO response of a 2-2-1 dual-rail chip', 'HELLO', 'response', 1, {
    protocol: 1,
    minProtocol: 1,
    ...toyBoard,
    features: ['self-test', 'status', 'neuron-config'],
  }),
  vector('PING response without data', 'PING', 'response', 2, { nonce: 3735928559 }),
  vector('PING response with data', 'PING', 'response', 3, { nonce: 7, data: Uint8Array.of(0, 1, 2, 0, 255) }),
  vector('RESET response', 'RESET', 'response', 4, {}),
  vector('WEIGHTS_WRITE response', 'WEIGHTS_WRITE', 'response', 5, { layer: 0, offset: 0, count: 4 }),
  vector('WEIGHTS_CRC response', 'WEIGHTS_CRC', 'response', 7, { layer: 1, count: 4, crc: 0xe3069283 }),
  vector('NEURON_CONFIG response', 'NEURON_CONFIG', 'response', 9, { layer: 0, vRest: 1.3, vThreshold: 0.85 }),
  vector('RUN response: per layer, batch x outputs ticks', 'RUN', 'response', 10, {
    batch: 2,
    layers: [Uint16Array.of(57, SILENT_TICK, 61, 90), Uint16Array.of(130, SILENT_TICK)],
  }),
  vector('v2: WEIGHTS_PATCH response', 'WEIGHTS_PATCH', 'response', 61, { layer: 0, offset: 100, count: 11 }, 2),
  vector('v2: WEIGHTS_EDIT response', 'WEIGHTS_EDIT', 'response', 64, { layer: 0, offset: 20, count: 75 }, 2),
  vector(
    'v2: RUN_PACKED response, both layers of a 2-2-1 chip, only fired neurons',
    'RUN_PACKED',
    'response',
    62,
    {
      batch: 2,
      layers: Uint8Array.of(0, 1),
      spikes: [encodeRecords(Uint16Array.of(57, SILENT_TICK, 61, 90), 2, 2), encodeRecords(Uint16Array.of(130, SILENT_TICK), 2, 1)],
    },
    2,
  ),
  vector(
    'v2: RUN_PACKED response for layer 1 only',
    'RUN_PACKED',
    'response',
    63,
    { batch: 1, layers: Uint8Array.of(1), spikes: [encodeRecords(Uint16Array.of(3000, SILENT_TICK, SILENT_TICK), 1, 3)] },
    2,
  ),
  vector(
    'v2: RUN_PACKED response with a PACKED record (feature bit-packed): 8 neurons, 6 fire at ticks 1000..1040, base 1000, 6 bits each',
    'RUN_PACKED',
    'response',
    66,
    { batch: 1, layers: Uint8Array.of(0), spikes: [encodeRecords(packedTicks, 1, 8, true)] },
    2,
  ),
  vector(
    'v2: HELLO response announcing bit-packed and a receive queue of 16 frames (rxFrames)',
    'HELLO',
    'response',
    67,
    {
      protocol: 2,
      minProtocol: 1,
      ...toyBoard,
      features: ['self-test', 'status', 'weights-edit', 'bit-packed'],
      rxFrames: 16,
    },
    2,
  ),
  vector('SELF_TEST response', 'SELF_TEST', 'response', 11, {
    results: [
      { name: 'dac', ok: true, detail: '12 DAC channels read back equal to weight memory' },
      { name: 'timer', ok: false, detail: 'delay 100 ticks captured as 101' },
    ],
  }),
  vector('STATUS response', 'STATUS', 'response', 13, {
    supplyV: 1.7985,
    temperatureC: 31.5,
    uptimeMs: 123456,
    counters: { framesOk: 1000, crcErrors: 2, framingErrors: 1, oversize: 0, unknownType: 0, badPayload: 3, refused: 4, versionErrors: 0 },
  }),
];

const events: Vector[] = [
  vector('LOG event', 'LOG', 'event', 0, { level: 'info', text: 'spikeloop-mock/1.0 ready' }),
  vector('ALERT event', 'ALERT', 'event', 1, { kind: 'brown-out', value: 1.52, text: 'supply below 1.6 V' }),
  vector('PROGRESS event', 'PROGRESS', 'event', 2, { task: 'self-test', done: 1, total: 3 }),
  vector('v2: NAK event after a frame with a bad CRC', 'NAK', 'event', 3, { error: 'crc', damaged: 1, after: 41 }, 2),
];

const errors: Vector[] = Object.entries(ErrorCode).map(([name, code], i) =>
  vector(`ERROR ${name}`, 'ERROR', 'error', 20 + i, { code, message: `example ${name.toLowerCase().replace(/_/g, ' ')}` }),
);

// ---- damaged frames ---------------------------------------------------------------------

interface Damaged {
  name: string;
  frame_hex: string;
  /** Receiver limit for this case (bytes between delimiters); absent = the protocol maximum. */
  max_frame_bytes?: number;
  /** Decoder events in order: errors (code, header when the CRC was good) and frames. */
  events: (
    | { kind: 'error'; error: string; header: { version: number; type: number; flags: number; seq: number } | null }
    | { kind: 'frame'; type: MsgTypeName; seq: number }
  )[];
  /** What a device answers: an ERROR frame on that seq, or nothing. */
  device_answer: { seq: number; code: keyof typeof ErrorCode } | null;
}

const hex = (b: Uint8Array) => toHex(b);
const good = encodeFrame(MsgType.WEIGHTS_CRC, 0, 30, { layer: 1 }, { version: V1 });
const flipped = good.slice();
flipped[good.length - 4] ^= 0x01; // a CRC byte
const payloadOf = (v: unknown) => packPayload(v);
const raw = (h: { version?: number; type: number; flags?: number; seq: number }, p: Uint8Array) =>
  encodeRawFrame({ version: h.version ?? V1, type: h.type, flags: h.flags ?? 0, seq: h.seq }, p);
/** A MessagePack fixstr (keys of hand-made payloads). */
const fixstr = (k: string) => [0xa0 | k.length, ...new TextEncoder().encode(k)];
const hdr = (type: number, seq: number, version = V1, flags = 0) => ({ version, type, flags, seq });

/** A body with a good CRC whose length field says 5 while 1 payload byte follows. */
function lengthMismatch(): Uint8Array {
  const body = Uint8Array.of(V1, MsgType.STATUS, 0, 0, 34, 0, 5, 0, 0x80, 0, 0, 0, 0);
  new DataView(body.buffer).setUint32(9, crc32c(body.subarray(0, 9)), true);
  return Uint8Array.of(...cobsEncode(body), 0);
}

const damaged: Damaged[] = [
  { name: 'bad CRC (one CRC bit flipped)', frame_hex: hex(flipped), events: [{ kind: 'error', error: 'crc', header: null }], device_answer: null },
  {
    name: 'truncated (last 3 bytes before the delimiter lost)',
    frame_hex: hex(Uint8Array.of(...good.subarray(0, good.length - 4), 0)),
    events: [{ kind: 'error', error: 'framing', header: null }],
    device_answer: null,
  },
  {
    name: 'bad COBS (a block runs past the delimiter)',
    frame_hex: '0f010203040506070800',
    events: [{ kind: 'error', error: 'framing', header: null }],
    device_answer: null,
  },
  {
    name: 'too short for header and CRC',
    frame_hex: hex(Uint8Array.of(...cobsEncode(Uint8Array.of(1, 2, 3, 4, 5, 6)), 0)),
    events: [{ kind: 'error', error: 'framing', header: null }],
    device_answer: null,
  },
  {
    name: 'length field disagrees with the payload (CRC good)',
    frame_hex: hex(lengthMismatch()),
    events: [{ kind: 'error', error: 'framing', header: null }],
    device_answer: null,
  },
  {
    name: 'oversize: 300-byte PING against a 256-byte receive buffer',
    frame_hex: hex(encodeFrame(MsgType.PING, 0, 31, { nonce: 1, data: new Uint8Array(280).fill(0x55) }, { version: V1 })),
    max_frame_bytes: 256,
    events: [{ kind: 'error', error: 'oversize', header: null }],
    device_answer: null,
  },
  {
    name: 'unknown type 0x44 (CRC good)',
    frame_hex: hex(raw({ type: 0x44, seq: 32 }, payloadOf({}))),
    events: [{ kind: 'error', error: 'unknown-type', header: hdr(0x44, 32) }],
    device_answer: { seq: 32, code: 'UNKNOWN_TYPE' },
  },
  {
    name: 'EVENT flag on a request type',
    frame_hex: hex(raw({ type: MsgType.STATUS, flags: Flags.EVENT, seq: 33 }, payloadOf({}))),
    events: [{ kind: 'error', error: 'unknown-type', header: hdr(MsgType.STATUS, 33, 1, Flags.EVENT) }],
    device_answer: { seq: 33, code: 'UNKNOWN_TYPE' },
  },
  {
    name: 'bad payload: field out of range (layer 256)',
    frame_hex: hex(raw({ type: MsgType.WEIGHTS_CRC, seq: 34 }, payloadOf({ layer: 256 }))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_CRC, 34) }],
    device_answer: { seq: 34, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: MessagePack extension type (timestamp)',
    frame_hex: hex(raw({ type: MsgType.WEIGHTS_CRC, seq: 35 }, Uint8Array.of(0x81, 0xa5, 0x6c, 0x61, 0x79, 0x65, 0x72, 0xd6, 0xff, 0, 0, 0, 1))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_CRC, 35) }],
    device_answer: { seq: 35, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: u16 array of odd byte length',
    frame_hex: hex(raw({ type: MsgType.RUN, seq: 36 }, payloadOf({ batch: 1, inputs: Uint8Array.of(1, 2, 3) }))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.RUN, 36) }],
    device_answer: { seq: 36, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: trailing bytes after the value',
    frame_hex: hex(raw({ type: MsgType.STATUS, seq: 37 }, Uint8Array.of(0x80, 0xc0))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.STATUS, 37) }],
    device_answer: { seq: 37, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: integer field sent as a float (RUN.batch float64 1.0)',
    frame_hex: hex(
      raw(
        { type: MsgType.RUN, seq: 41 },
        Uint8Array.of(0x82, ...fixstr('batch'), 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, ...fixstr('inputs'), 0xc4, 4, 0, 0, 0xff, 0xff),
      ),
    ),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.RUN, 41) }],
    device_answer: { seq: 41, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: integer field sent as a float (WEIGHTS_WRITE.layer float32 1.0)',
    frame_hex: hex(
      raw(
        { type: MsgType.WEIGHTS_WRITE, seq: 42 },
        Uint8Array.of(0x83, ...fixstr('layer'), 0xca, 0x3f, 0x80, 0, 0, ...fixstr('offset'), 0, ...fixstr('codes'), 0xc4, 2, 0x2c, 1),
      ),
    ),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_WRITE, 42) }],
    device_answer: { seq: 42, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: integer field sent as a float (WEIGHTS_WRITE.layer float64 1.5)',
    frame_hex: hex(
      raw(
        { type: MsgType.WEIGHTS_WRITE, seq: 43 },
        Uint8Array.of(0x83, ...fixstr('layer'), 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, ...fixstr('offset'), 0, ...fixstr('codes'), 0xc4, 2, 0x2c, 1),
      ),
    ),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_WRITE, 43) }],
    device_answer: { seq: 43, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'bad payload: duplicate map key (WEIGHTS_CRC with layer twice)',
    frame_hex: hex(raw({ type: MsgType.WEIGHTS_CRC, seq: 44 }, Uint8Array.of(0x82, ...fixstr('layer'), 1, ...fixstr('layer'), 0))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_CRC, 44) }],
    device_answer: { seq: 44, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'wrong version: STATUS with header version 3',
    frame_hex: hex(raw({ version: 3, type: MsgType.STATUS, seq: 38 }, payloadOf({}))),
    events: [{ kind: 'error', error: 'version', header: hdr(MsgType.STATUS, 38, 3) }],
    device_answer: { seq: 38, code: 'VERSION' },
  },
  {
    name: 'v2 type in a version-1 frame: RUN_PACKED with header version 1',
    frame_hex: hex(raw({ version: 1, type: MsgType.RUN_PACKED, seq: 45 }, payloadOf({ batch: 1, inputs: Uint8Array.of(0) }))),
    events: [{ kind: 'error', error: 'unknown-type', header: hdr(MsgType.RUN_PACKED, 45, 1) }],
    device_answer: { seq: 45, code: 'UNKNOWN_TYPE' },
  },
  {
    name: 'v2 bad payload: RUN_PACKED.layers not ascending',
    frame_hex: hex(raw({ version: 2, type: MsgType.RUN_PACKED, seq: 46 }, payloadOf({ batch: 1, inputs: Uint8Array.of(0), layers: Uint8Array.of(1, 0) }))),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.RUN_PACKED, 46, 2) }],
    device_answer: { seq: 46, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'v2 bad payload: WEIGHTS_PATCH.layer sent as float64 0.0',
    frame_hex: hex(
      raw(
        { version: 2, type: MsgType.WEIGHTS_PATCH, seq: 47 },
        Uint8Array.of(0x83, ...fixstr('layer'), 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, ...fixstr('offset'), 0, ...fixstr('data'), 0xc4, 3, 2, 0x2c, 1),
      ),
    ),
    events: [{ kind: 'error', error: 'bad-payload', header: hdr(MsgType.WEIGHTS_PATCH, 47, 2) }],
    device_answer: { seq: 47, code: 'BAD_PAYLOAD' },
  },
  {
    name: 'garbage glued in front of a good frame (no 0x00 between)',
    frame_hex: '1337c0' + hex(encodeFrame(MsgType.STATUS, 0, 39, {}, { version: V1 })),
    events: [
      { kind: 'error', error: 'framing', header: null },
      { kind: 'frame', type: 'STATUS', seq: 39 },
    ],
    device_answer: null,
  },
  {
    name: 'garbage, a delimiter, then a good frame',
    frame_hex: '5a5a5a00' + hex(encodeFrame(MsgType.PING, 0, 40, { nonce: 9 }, { version: V1 })),
    events: [
      { kind: 'error', error: 'framing', header: null },
      { kind: 'frame', type: 'PING', seq: 40 },
    ],
    device_answer: null,
  },
];

/** JSON with number arrays kept on one line. */
function dump(file: string, data: unknown): void {
  const text = JSON.stringify(data, null, 2).replace(
    /\[\s+(-?\d[\d.e+-]*(?:,\s+-?\d[\d.e+-]*)*)\s+\]/g,
    (_m, body: string) => `[${body.replace(/\s+/g, ' ')}]`,
  );
  writeFileSync(join(outDir, file), `${text}\n`);
}

mkdirSync(outDir, { recursive: true });
dump('requests.json', requests);
dump('responses.json', responses);
dump('events.json', events);
dump('errors.json', errors);
dump('damaged.json', damaged);
console.log(`wrote ${requests.length + responses.length + events.length + errors.length} frames and ${damaged.length} damaged cases to ${outDir}`);
