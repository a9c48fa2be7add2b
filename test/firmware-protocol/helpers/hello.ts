import type { HelloResponse } from '../../../firmware-protocol/messages.ts';

/** A valid protocol-1 HELLO reply of a one-layer 2x2 board; `over` replaces fields (tests that need another board or a broken one). */
export function helloResponse(over: Partial<HelloResponse> = {}): HelloResponse {
  return {
    protocol: 1,
    minProtocol: 1,
    firmware: 'fw',
    boardId: 'b',
    chipId: 'c',
    layers: [{ inputs: 2, outputs: 2, rowInput: new Uint16Array([0, 0, 1, 1]), rowPolarity: new Uint8Array([0, 1, 0, 1]), horizonTicks: 100 }],
    dac: { bits: 8, vMin: 0, vMax: 1.8 },
    safe: { nmos: [0, 1.8], pmos: [0, 1.8] },
    tickSeconds: 1e-8,
    maxPayload: 1024,
    maxBatch: 8,
    features: [],
    ...over,
  };
}
