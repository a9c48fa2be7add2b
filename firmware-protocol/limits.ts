/**
 * Exact payload sizes of the bulk messages, so a host can split uploads and batches into the
 * largest frames a device accepts. The sizes follow the encoder's rules (PROTOCOL.md section
 * "MessagePack profile"): maps as fixmap, keys as fixstr, unsigned integers in their shortest
 * form, byte arrays as the shortest bin.
 */
import { cobsMaxEncodedLength } from './cobs.ts';
import { CRC_BYTES, HEADER_BYTES, MAX_PAYLOAD } from './frame.ts';

export { MAX_PAYLOAD };

/** Bytes of a non-negative integer in the shortest MessagePack form. */
export function uintBytes(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9;
}
/** Bytes of the MessagePack bin header for `n` data bytes. */
export function binHeaderBytes(n: number): number {
  return n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}
/** Bytes of a MessagePack array header for `n` elements. */
export function arrayHeaderBytes(n: number): number {
  return n < 0x10 ? 1 : n < 0x10000 ? 3 : 5;
}
/** Bytes of a short ASCII key (fixstr). */
function key(k: string): number {
  return 1 + k.length;
}

/** Payload bytes of WEIGHTS_WRITE { layer, offset, codes } with `count` codes. */
export function weightsWritePayloadBytes(count: number, layer = 0xff, offset = 0xffffffff): number {
  return 1 + key('layer') + uintBytes(layer) + key('offset') + uintBytes(offset) + key('codes') + binHeaderBytes(2 * count) + 2 * count;
}

/**
 * The largest number of codes a WEIGHTS_WRITE payload can carry within `maxPayload` bytes,
 * whatever its layer (u8) and offset (u32): the host chunks uploads with it.
 */
export function maxCodesPerChunk(maxPayload: number): number {
  let n = Math.max(0, Math.floor((Math.min(maxPayload, MAX_PAYLOAD) - weightsWritePayloadBytes(0)) / 2));
  while (n > 0 && weightsWritePayloadBytes(n) > maxPayload) n--;
  return n;
}

/** Payload bytes of RUN { batch, inputs } for `batch` samples of `inputs0` input ticks. */
export function runRequestPayloadBytes(batch: number, inputs0: number): number {
  const b = 2 * batch * inputs0;
  return 1 + key('batch') + uintBytes(batch) + key('inputs') + binHeaderBytes(b) + b;
}

/** Payload bytes of the RUN reply { batch, layers } for `batch` samples. */
export function runResponsePayloadBytes(batch: number, outputs: readonly number[]): number {
  let s = 1 + key('batch') + uintBytes(batch) + key('layers') + arrayHeaderBytes(outputs.length);
  for (const o of outputs) s += binHeaderBytes(2 * batch * o) + 2 * batch * o;
  return s;
}

/**
 * The largest batch (0..65535) for which both a RUN request and its reply fit in `maxPayload`
 * bytes. 0 means not even one sample fits.
 */
export function maxBatchFor(maxPayload: number, layers: readonly { inputs: number; outputs: number }[]): number {
  if (layers.length === 0) return 0;
  const in0 = layers[0]!.inputs;
  const outs = layers.map((l) => l.outputs);
  const fits = (b: number) => runRequestPayloadBytes(b, in0) <= maxPayload && runResponsePayloadBytes(b, outs) <= maxPayload;
  // sizes grow monotonically with the batch: binary search
  let lo = 0;
  let hi = 0xffff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Worst-case wire bytes of one frame with a `payload`-byte payload, including the 0x00 delimiter. */
export function maxWireBytes(payload: number): number {
  return cobsMaxEncodedLength(HEADER_BYTES + payload + CRC_BYTES) + 1;
}

// ---- protocol 2 -----------------------------------------------------------------------------

/** Payload bytes of WEIGHTS_PATCH { layer, offset, data } with `dataBytes` bytes of segments. */
export function weightsPatchPayloadBytes(dataBytes: number, layer = 0xff, offset = 0xffffffff): number {
  return 1 + key('layer') + uintBytes(layer) + key('offset') + uintBytes(offset) + key('data') + binHeaderBytes(dataBytes) + dataBytes;
}

/** The most segment bytes a WEIGHTS_PATCH payload can carry within `maxPayload`, whatever its layer and offset. */
export function maxPatchDataBytes(maxPayload: number): number {
  let n = Math.max(0, Math.min(maxPayload, MAX_PAYLOAD) - weightsPatchPayloadBytes(0));
  while (n > 0 && weightsPatchPayloadBytes(n) > maxPayload) n--;
  return n;
}

/**
 * Payload bytes of RUN_PACKED { batch, inputs, layers?, packed? } with `inputBytes` bytes of records,
 * `listed` layer indices (0: field absent) and `packed: true` when `packed`.
 */
export function runPackedRequestPayloadBytes(batch: number, inputBytes: number, listed = 0, packed = false): number {
  return (
    1 +
    key('batch') +
    uintBytes(batch) +
    key('inputs') +
    binHeaderBytes(inputBytes) +
    inputBytes +
    (listed > 0 ? key('layers') + binHeaderBytes(listed) + listed : 0) +
    (packed ? key('packed') + 1 : 0)
  );
}

/**
 * The largest RUN_PACKED reply { batch, layers, spikes } for `batch` samples reporting layers
 * with these output counts: every record in its largest form (1 + 2 x outputs bytes). A device
 * refuses a RUN_PACKED whose worst-case reply exceeds its maxPayload (TOO_LARGE) before running it.
 */
export function runPackedResponseMaxBytes(batch: number, outputs: readonly number[]): number {
  const L = outputs.length;
  let s = 1 + key('batch') + uintBytes(batch) + key('layers') + binHeaderBytes(L) + L + key('spikes') + arrayHeaderBytes(L);
  for (const o of outputs) {
    const b = batch * (1 + 2 * o);
    s += binHeaderBytes(b) + b;
  }
  return s;
}

/** The largest batch (0..65535) whose worst-case RUN_PACKED reply for these layers' outputs fits `maxPayload`. */
export function maxPackedBatchFor(maxPayload: number, outputs: readonly number[]): number {
  let lo = 0;
  let hi = 0xffff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (runPackedResponseMaxBytes(mid, outputs) <= maxPayload) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
