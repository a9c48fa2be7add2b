import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeRequest, encodeResponse, HEADER_BYTES, CRC_BYTES, MAX_PAYLOAD } from '../../firmware-protocol/frame.ts';
import { cobsDecode } from '../../firmware-protocol/cobs.ts';
import { maxBatchFor, maxCodesPerChunk, maxWireBytes } from '../../firmware-protocol/limits.ts';
import { dualRailLayer } from '../../models/chips/chip-backend.ts';

/** Payload length as read from an encoded frame's header. */
function payloadLength(wire: Uint8Array): number {
  const body = cobsDecode(wire.subarray(0, -1));
  return body.length - HEADER_BYTES - CRC_BYTES;
}

const worstWrite = (n: number) => encodeRequest('WEIGHTS_WRITE', 0xffff, { layer: 255, offset: 0xffffffff - n, codes: new Uint16Array(n).fill(0xffff) });

/** Payload length of a frame built by `make`, or Infinity when the encoder refuses it as too large. */
function sizeOf(make: () => Uint8Array): number {
  try {
    return payloadLength(make());
  } catch (e) {
    if ((e as { code?: string }).code === 'oversize') return Infinity;
    throw e;
  }
}

describe('maxCodesPerChunk', () => {
  it.each([64, 100, 263, 300, 1024, 16384, 65535])('is the exact largest chunk for maxPayload %i', (maxPayload) => {
    const n = maxCodesPerChunk(maxPayload);
    expect(n).toBeGreaterThan(0);
    // the worst case of layer and offset fits, one more code does not fit even in the best case
    expect(sizeOf(() => worstWrite(n))).toBeLessThanOrEqual(maxPayload);
    expect(sizeOf(() => worstWrite(n + 1))).toBeGreaterThan(maxPayload);
  });

  it('never lets a worst-case chunk exceed the limit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 40, max: MAX_PAYLOAD }), (p) => {
        const n = maxCodesPerChunk(p);
        return n === 0 ? p < 40 : sizeOf(() => worstWrite(n)) <= p && sizeOf(() => worstWrite(n + 1)) > p;
      }),
      { numRuns: 60 },
    );
  });

  it.each([16384, 65535])('uploads a 784x256 dual-rail layer at >= 0.97 code bytes per wire byte (maxPayload %i)', (maxPayload) => {
    const g = dualRailLayer(784, 256);
    const total = g.rowInput.length * g.outputs;
    const chunk = maxCodesPerChunk(maxPayload);
    // realistic codes: a 12-bit DAC spread over its range, zeros included
    const codes = Uint16Array.from({ length: total }, (_, i) => (i * 2654435761) % 4096);
    let wire = 0;
    for (let off = 0; off < total; off += chunk) {
      const f = encodeRequest(
        'WEIGHTS_WRITE',
        off & 0xffff,
        { layer: 0, offset: off, codes: codes.subarray(off, Math.min(total, off + chunk)) },
        { maxPayload },
      );
      expect(f.length).toBeLessThanOrEqual(maxWireBytes(maxPayload));
      wire += f.length;
    }
    const efficiency = (2 * total) / wire;
    expect(efficiency).toBeGreaterThanOrEqual(0.97);
  });
});

describe('maxBatchFor', () => {
  const layers = [
    { inputs: 784, outputs: 256 },
    { inputs: 256, outputs: 10 },
  ];

  it.each([4096, 16384, 65535])('lets a RUN request and its reply fit, and no larger batch (maxPayload %i)', (maxPayload) => {
    const b = maxBatchFor(maxPayload, layers);
    expect(b).toBeGreaterThan(0);
    const fits = (batch: number) =>
      sizeOf(() => encodeRequest('RUN', 1, { batch, inputs: new Uint16Array(batch * 784) })) <= maxPayload &&
      sizeOf(() => encodeResponse('RUN', 1, { batch, layers: [new Uint16Array(batch * 256), new Uint16Array(batch * 10)] })) <= maxPayload;
    expect(fits(b)).toBe(true);
    expect(fits(b + 1)).toBe(false);
  });

  it('is limited by the reply when outputs outnumber inputs', () => {
    const wide = [{ inputs: 2, outputs: 500 }];
    const b = maxBatchFor(2000, wide);
    expect(payloadLength(encodeResponse('RUN', 1, { batch: b, layers: [new Uint16Array(b * 500)] }))).toBeLessThanOrEqual(2000);
    expect(sizeOf(() => encodeResponse('RUN', 1, { batch: b + 1, layers: [new Uint16Array((b + 1) * 500)] }))).toBeGreaterThan(2000);
  });

  it('is 0 when not even one sample fits', () => {
    expect(maxBatchFor(100, [{ inputs: 784, outputs: 10 }])).toBe(0);
  });
});
