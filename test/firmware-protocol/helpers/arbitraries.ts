/** fast-check generators of valid messages for every entry of the catalogue. */
import fc from 'fast-check';
import type { Catalog, EventName, Events, LayerInfo, RequestName } from '../../../firmware-protocol/messages.ts';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });
// -0 travels as the integer 0 (integral numbers are sent as MessagePack ints)
const num = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }).map((x) => (x === 0 ? 0 : x));
const str = fc.string({ maxLength: 20 });
const nonEmpty = fc.string({ minLength: 1, maxLength: 20 });
const u16arr = (min: number, max: number) => fc.array(u16, { minLength: min, maxLength: max }).map((a) => Uint16Array.from(a));
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

const layer = (inputs: number): fc.Arbitrary<LayerInfo> =>
  fc
    .record({
      outputs: fc.integer({ min: 1, max: 8 }),
      rows: fc.integer({ min: 1, max: 12 }),
      horizonTicks: fc.integer({ min: 1, max: 0xfffe }),
      seed: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
    })
    .map(({ outputs, rows, horizonTicks, seed }) => ({
      inputs,
      outputs,
      rowInput: Uint16Array.from({ length: rows }, (_, r) => seed[r]! % inputs),
      rowPolarity: Uint8Array.from({ length: rows }, (_, r) => (seed[r]! >> 3) & 1),
      horizonTicks,
    }));

const layers: fc.Arbitrary<LayerInfo[]> = fc.integer({ min: 1, max: 6 }).chain((in0) =>
  fc.integer({ min: 1, max: 3 }).chain((n) => {
    // chain: layer l's inputs are layer l-1's outputs
    const build = (k: number, inputs: number): fc.Arbitrary<LayerInfo[]> =>
      k === 0 ? fc.constant([]) : layer(inputs).chain((L) => build(k - 1, L.outputs).map((rest) => [L, ...rest]));
    return build(n, in0);
  }),
);

/** Distinct layer indices, ascending (RUN_PACKED.layers). */
const layerList = fc.uniqueArray(u8, { minLength: 1, maxLength: 4 }).map((a) => Uint8Array.from(a.sort((x, y) => x - y)));

const range = fc.tuple(num, num).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);

export const requests: { [K in RequestName]: fc.Arbitrary<Catalog[K]['request']> } = {
  HELLO: fc.record({ hostProtocol: fc.integer({ min: 1, max: 255 }), host: nonEmpty }),
  PING: fc.record({ nonce: u32, data: bytes(64) }, { requiredKeys: ['nonce'] }),
  RESET: fc.constant({}),
  WEIGHTS_WRITE: fc.record({ layer: u8, offset: fc.nat({ max: 0xfff00000 }), codes: u16arr(1, 50) }),
  WEIGHTS_CRC: fc.record({ layer: u8 }),
  NEURON_CONFIG: fc.record({ layer: u8, vRest: num, vThreshold: num }, { requiredKeys: ['layer'] }),
  RUN: fc
    .record({ batch: fc.integer({ min: 1, max: 5 }), per: fc.integer({ min: 1, max: 10 }), seed: u16 })
    .chain(({ batch, per }) => u16arr(batch * per, batch * per).map((inputs) => ({ batch, inputs }))),
  WEIGHTS_PATCH: fc.record({ layer: u8, offset: u32, data: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  WEIGHTS_EDIT: fc.record({ layer: u8, offset: u32, data: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  RUN_PACKED: fc.record(
    { batch: fc.integer({ min: 1, max: 0xffff }), inputs: fc.uint8Array({ minLength: 1, maxLength: 40 }), layers: layerList },
    { requiredKeys: ['batch', 'inputs'] },
  ),
  SELF_TEST: fc.record({ tests: fc.array(nonEmpty, { maxLength: 4 }) }, { requiredKeys: [] }),
  STATUS: fc.constant({}),
};

export const responses: { [K in RequestName]: fc.Arbitrary<Catalog[K]['response']> } = {
  HELLO: fc
    .record({
      protocol: fc.integer({ min: 1, max: 255 }),
      firmware: nonEmpty,
      boardId: nonEmpty,
      chipId: nonEmpty,
      layers,
      dac: fc
        .record({ bits: fc.integer({ min: 1, max: 16 }), vMin: num })
        .chain((d) => fc.double({ noNaN: true, min: 1e-3, max: 10 }).map((span) => ({ ...d, vMax: d.vMin + span }))),
      safe: fc.record({ nmos: range, pmos: range }),
      tickSeconds: fc.double({ noNaN: true, min: 1e-12, max: 1 }),
      maxPayload: fc.integer({ min: 64, max: 0xffff }),
      maxBatch: u16,
      features: fc.array(nonEmpty, { maxLength: 3 }),
    })
    .chain((h) => fc.integer({ min: 1, max: h.protocol }).map((minProtocol) => ({ ...h, minProtocol }))),
  PING: fc.record({ nonce: u32, data: bytes(64) }, { requiredKeys: ['nonce'] }),
  RESET: fc.constant({}),
  WEIGHTS_WRITE: fc.record({ layer: u8, offset: u32, count: u32 }),
  WEIGHTS_CRC: fc.record({ layer: u8, count: u32, crc: u32 }),
  NEURON_CONFIG: fc.record({ layer: u8, vRest: num, vThreshold: num }),
  RUN: fc
    .record({ batch: fc.integer({ min: 1, max: 4 }), outs: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 3 }) })
    .chain(({ batch, outs }) => fc.tuple(...outs.map((o) => u16arr(batch * o, batch * o))).map((layers) => ({ batch, layers }))),
  WEIGHTS_PATCH: fc.record({ layer: u8, offset: u32, count: u32 }),
  WEIGHTS_EDIT: fc.record({ layer: u8, offset: u32, count: u32 }),
  RUN_PACKED: fc
    .record({ batch: fc.integer({ min: 1, max: 0xffff }), layers: layerList })
    .chain(({ batch, layers }) =>
      fc.tuple(...[...layers].map(() => fc.uint8Array({ minLength: 1, maxLength: 20 }))).map((spikes) => ({ batch, layers, spikes })),
    ),
  SELF_TEST: fc.record({ results: fc.array(fc.record({ name: nonEmpty, ok: fc.boolean(), detail: str }), { maxLength: 4 }) }),
  STATUS: fc.record({
    supplyV: num,
    temperatureC: num,
    uptimeMs: fc.double({ noNaN: true, min: 0, max: 1e12 }),
    counters: fc.record(
      { framesOk: u32, crcErrors: u32, framingErrors: u32, oversize: u32, unknownType: u32, badPayload: u32, refused: u32, versionErrors: u32 },
      { requiredKeys: ['framesOk', 'crcErrors', 'framingErrors', 'oversize', 'unknownType', 'badPayload', 'refused'] },
    ),
  }),
};

export const events: { [K in EventName]: fc.Arbitrary<Events[K]> } = {
  LOG: fc.record({ level: fc.constantFrom('debug', 'info', 'warn', 'error'), text: str }),
  ALERT: fc.record({ kind: fc.constantFrom('brown-out', 'over-temperature', 'fault'), value: num, text: str }),
  PROGRESS: fc.record({ task: nonEmpty, total: u32 }).chain((p) => fc.nat({ max: p.total }).map((done) => ({ ...p, done }))),
  NAK: fc.record({ error: fc.constantFrom('crc', 'framing', 'oversize'), damaged: u32, after: u16 }, { requiredKeys: ['error', 'damaged'] }),
};

export const errorMessage = fc.record({ code: fc.integer({ min: 1, max: 255 }), message: str });

export type AnyMessage =
  | { dir: 'request'; name: RequestName; msg: unknown }
  | { dir: 'response'; name: RequestName; msg: unknown }
  | { dir: 'event'; name: EventName; msg: unknown }
  | { dir: 'error'; name: 'ERROR'; msg: { code: number; message: string } };

/** Any valid message of the catalogue, tagged with its direction and name. */
export const anyMessage: fc.Arbitrary<AnyMessage> = fc.oneof(
  ...Object.entries(requests).map(([name, a]) => (a as fc.Arbitrary<unknown>).map((msg) => ({ dir: 'request', name, msg }) as AnyMessage)),
  ...Object.entries(responses).map(([name, a]) => (a as fc.Arbitrary<unknown>).map((msg) => ({ dir: 'response', name, msg }) as AnyMessage)),
  ...Object.entries(events).map(([name, a]) => (a as fc.Arbitrary<unknown>).map((msg) => ({ dir: 'event', name, msg }) as AnyMessage)),
  errorMessage.map((msg) => ({ dir: 'error', name: 'ERROR', msg }) as AnyMessage),
);
