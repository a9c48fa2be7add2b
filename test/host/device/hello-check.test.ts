import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type HelloResponse } from '../../../firmware-protocol/messages.ts';
import { helloProblems, negotiateProtocol, VersionMismatchError } from '../../../host/device/hello-check.ts';
import { helloResponse } from '../../firmware-protocol/helpers/hello.ts';

function hello(): HelloResponse {
  return helloResponse({
    layers: [
      { inputs: 2, outputs: 3, rowInput: new Uint16Array([0, 0, 1, 1]), rowPolarity: new Uint8Array([0, 1, 0, 1]), horizonTicks: 100 },
      { inputs: 3, outputs: 1, rowInput: new Uint16Array([0, 1, 2]), rowPolarity: new Uint8Array([0, 0, 1]), horizonTicks: 200 },
    ],
    dac: { bits: 12, vMin: 0, vMax: 1.8 },
    safe: { nmos: [0.2, 1.2], pmos: [0.6, 1.8] },
    maxBatch: 16,
  });
}

describe('negotiateProtocol', () => {
  it('uses our version with a device of the same or a newer protocol that still speaks ours', () => {
    expect(negotiateProtocol(PROTOCOL_VERSION, 1)).toBe(PROTOCOL_VERSION);
    expect(negotiateProtocol(PROTOCOL_VERSION + 3, PROTOCOL_VERSION)).toBe(PROTOCOL_VERSION);
  });
  it('refuses a device that no longer speaks ours, telling to update spikeloop', () => {
    expect(() => negotiateProtocol(PROTOCOL_VERSION + 2, PROTOCOL_VERSION + 1, 'fw 9')).toThrow(VersionMismatchError);
    expect(() => negotiateProtocol(PROTOCOL_VERSION + 2, PROTOCOL_VERSION + 1, 'fw 9')).toThrow(
      new RegExp(`fw 9 needs protocol ${PROTOCOL_VERSION + 1} or newer.*update spikeloop`),
    );
  });
  it('refuses a device older than anything we speak, telling to update the firmware', () => {
    expect(() => negotiateProtocol(0, 0)).toThrow(/update the board firmware/);
  });
});

describe('helloProblems', () => {
  it('accepts a consistent HELLO', () => {
    expect(helloProblems(hello())).toEqual([]);
  });
  const cases: [string, (h: HelloResponse) => void, RegExp][] = [
    ['broken chain', (h) => (h.layers[1]!.inputs = 4), /layer 1 has 4 inputs but layer 0 has 3 outputs/],
    ['row input out of range', (h) => (h.layers[0]!.rowInput[2] = 2), /row 2 is driven by input 2, but the layer has 2 inputs/],
    ['row tables differ', (h) => (h.layers[0]!.rowPolarity = new Uint8Array(3)), /4 rowInput entries but 3 rowPolarity/],
    ['bad polarity', (h) => (h.layers[1]!.rowPolarity[0] = 2), /row 0 has polarity 2/],
    ['inverted safe window', (h) => (h.safe.pmos = [1.8, 0.6]), /safe.pmos \[1.8,0.6\]/],
    ['inverted DAC', (h) => (h.dac.vMax = -1), /vMin < vMax/],
    ['tiny maxPayload', (h) => (h.maxPayload = 8), /maxPayload 8/],
    ['zero maxBatch', (h) => (h.maxBatch = 0), /maxBatch 0/],
    ['no layers', (h) => (h.layers = []), /no layers/],
    ['silent horizon', (h) => (h.layers[0]!.horizonTicks = 0xffff), /horizonTicks 65535/],
  ];
  it.each(cases)('reports %s', (_n, mutate, re) => {
    const h = hello();
    mutate(h);
    expect(helloProblems(h).join('; ')).toMatch(re);
  });
});
