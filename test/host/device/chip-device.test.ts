import { afterEach, describe, expect, it } from 'vitest';
import { MockBoard, serveBoard, duplexPair, type MockBoardOptions } from '../../../firmware-protocol/mock-board/index.ts';
import { ByteWriter, encodeRequest, maxCodesPerChunk, MsgType, typeName, type Frame, type HelloResponse } from '../../../firmware-protocol/index.ts';
import { ChipDevice, UnsupportedFeatureError, type ChipDeviceOptions } from '../../../host/device/chip-device.ts';
import { VersionMismatchError } from '../../../host/device/hello-check.ts';
import { UnsafeWeightsError } from '../../../host/device/weight-safety.ts';
import { DeviceError, ProtocolViolationError } from '../../../host/link/errors.ts';
import { FakeDevice, pipePair, transportOf } from '../link/helpers.ts';
import { mulberry as rng } from '../../models/rng.ts';
import { ToyBackend } from './toy-backend.ts';
import { helloResponse } from '../../firmware-protocol/helpers/hello.ts';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

// HELLO must fit in maxPayload (it carries the row tables), so small-payload boards get small chips.
async function boardDevice(sizes = [30, 50], maxPayload = 600, opts: ChipDeviceOptions = {}, boardOpts: MockBoardOptions = {}) {
  const backend = new ToyBackend(sizes);
  const board = new MockBoard(backend, { maxPayload, ...boardOpts });
  const [host, dev] = duplexPair();
  const server = serveBoard(board, dev);
  open.push(server);
  const device = await ChipDevice.over(transportOf(host, 'mock:toy'), opts);
  open.push(device);
  return { backend, board, device };
}

/** Random codes inside each row's safe window (computed here from the board's own window query). */
function randomSafeCodes(board: MockBoard, device: ChipDevice, layer: number, seed: number): Uint16Array {
  const l = device.info.layers[layer]!;
  const r = rng(seed);
  const codes = new Uint16Array(l.rowInput.length * l.outputs);
  for (let i = 0; i < codes.length; i++) {
    const [lo, hi] = board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!);
    codes[i] = lo + Math.floor(r() * (hi - lo + 1));
  }
  return codes;
}

describe('ChipDevice over a mock board', () => {
  it('says HELLO and derives chunk sizes from maxPayload', async () => {
    const { device, backend } = await boardDevice();
    const info = device.info;
    expect(info).toMatchObject({ chipId: 'toy-1', negotiatedProtocol: 2, maxPayload: 600 });
    expect(info.layers.map((l) => [l.inputs, l.outputs, l.rowInput.length, l.horizonTicks])).toEqual([[30, 50, 60, 1000]]);
    expect(info.chunkCodes).toBe(maxCodesPerChunk(600));
    expect(info.runBatch).toBeGreaterThanOrEqual(1);
    expect(info.runBatch).toBeLessThanOrEqual(info.maxBatch);
    expect(device.weightCount(0)).toBe(backend.geometry[0]!.rowInput.length * 50);
  });

  it("keeps as many requests in flight as the board's announced receive queue (HELLO rxFrames), 8 when it announces none", async () => {
    const five = await boardDevice(undefined, undefined, {}, { rxFrames: 5 });
    expect(five.device.info.link).toMatchObject({ window: 5, windowAnnounced: true });
    expect(five.device.link.windowSize).toBe(5);
    const silent = await boardDevice(undefined, undefined, {}, { rxFrames: 0 });
    expect(silent.device.info.rxFrames).toBeUndefined();
    expect(silent.device.info.link).toMatchObject({ window: 8, windowAnnounced: false });
    // the host's own limit caps what the board announces
    const capped = await boardDevice(undefined, undefined, { window: 3 }, { rxFrames: 40 });
    expect(capped.device.link.windowSize).toBe(3);
    // and the window is what the link keeps in flight: a batch of many RUN frames never has more out at once
    let most = 0;
    const sub = setInterval(() => (most = Math.max(most, five.device.link.stats.inFlight)), 0);
    const batch = 40 * five.device.info.runBatch;
    await five.device.run(new Uint16Array(batch * 30).fill(0), batch, { onProgress: () => (most = Math.max(most, five.device.link.stats.inFlight)) });
    clearInterval(sub);
    expect(most).toBeLessThanOrEqual(5);
    expect(most).toBeGreaterThan(1);
  });

  it('uploads a layer in many pipelined chunks; the board holds exactly the codes; CRC verifies', async () => {
    // a board without bit-packed edits: random codes go as WEIGHTS_WRITE
    const { device, board } = await boardDevice(undefined, undefined, {}, { bitPacked: false });
    const codes = randomSafeCodes(board, device, 0, 1);
    const progress: number[] = [];
    const framesBefore = device.link.stats.framesOut;
    const r = await device.uploadWeights(0, codes, { onProgress: (p) => progress.push(p.done) });
    expect(r.frames).toBe(Math.ceil(codes.length / device.info.chunkCodes));
    expect(r.frames).toBeGreaterThan(5);
    expect(device.link.stats.framesOut - framesBefore).toBe(r.frames);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(codes));
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(codes.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const v = await device.verifyWeights(0, codes);
    expect(v).toMatchObject({ ok: true, layer: 0, count: codes.length });
    const other = codes.slice();
    other[7] ^= 1;
    const w = await device.verifyWeights(0, other);
    expect(w.ok).toBe(false);
    expect(w.detail).toMatch(/device crc32c 0x[0-9a-f]{8} != host 0x[0-9a-f]{8}; re-upload/);
  });

  it('refuses unsafe codes and wrong lengths before sending anything', async () => {
    const { device, board } = await boardDevice();
    const codes = randomSafeCodes(board, device, 0, 2);
    const before = board.readWeights(0);
    const sent = device.link.stats.bytesOut;
    const bad = codes.slice();
    bad[50] = 4095; // row 1 is PMOS: 1.8 V is inside its window
    bad[2950] = 0; // row 59 is PMOS: 0 V is not
    await expect(device.uploadWeights(0, bad)).rejects.toThrow(UnsafeWeightsError);
    await expect(device.uploadWeights(0, bad)).rejects.toThrow(/layer 0: code 0 at index 2950 \(row 59, PMOS, output 0\) drives 0\.0000 V.*nothing was sent/);
    await expect(device.uploadWeights(0, codes.subarray(1))).rejects.toThrow(/2999 codes, layer 0 needs 3000 \(60 rows x 50 outputs/);
    await expect(device.uploadWeights(1, codes)).rejects.toThrow(/layer 1 does not exist: this chip has layers 0\.\.0/);
    expect(device.link.stats.bytesOut).toBe(sent);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(before));
  });

  it('uploadChanged sends only the changed runs and leaves the board equal to next (protocol 1 board)', async () => {
    const { device, board } = await boardDevice(undefined, undefined, {}, { protocol: 1 });
    expect(device.info.negotiatedProtocol).toBe(1);
    const prev = randomSafeCodes(board, device, 0, 3);
    await device.uploadWeights(0, prev);
    const next = prev.slice();
    const nmosLo = board.codeWindow(0)[0];
    for (const i of [5, 6, 200]) next[i] = prev[i] === nmosLo ? nmosLo + 1 : nmosLo; // rows 0 and 4: NMOS
    const pmosHi = board.codeWindow(1)[1];
    next[2999] = prev[2999] === pmosHi ? pmosHi - 1 : pmosHi; // row 59: PMOS
    const frames0 = device.link.stats.framesOut;
    const r = await device.uploadChanged(0, prev, next);
    expect(r.changed).toBe(4);
    expect(r.frames).toBe(3);
    expect(r.codes).toBeLessThan(20);
    expect(device.link.stats.framesOut - frames0).toBe(3);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(next));
    expect((await device.verifyWeights(0, next)).ok).toBe(true);
  });

  it('runs a batch larger than one frame holds and reassembles it in order', async () => {
    const { device, board, backend } = await boardDevice([20, 12, 4], 600);
    for (const l of [0, 1]) await device.uploadWeights(l, randomSafeCodes(board, device, l, 10 + l));
    const batch = 5 * device.info.runBatch + 3;
    const r = rng(4);
    const inputs = new Uint16Array(batch * 20).map(() => (r() < 0.2 ? 0xffff : Math.floor(r() * 1000)));
    const runs0 = backend.runs;
    const out = await device.run(inputs, batch);
    expect(backend.runs - runs0).toBe(Math.ceil(batch / device.info.runBatch));
    // the same backend, same voltages, the whole batch at once
    const ref = await backend.run(inputs, batch);
    expect(out.map((a) => Array.from(a))).toEqual(ref.map((a) => Array.from(a)));
    await expect(device.run(inputs.subarray(1), batch)).rejects.toThrow(/inputTicks has .* values, batch .* x 20 inputs needs/);
  });

  it('self-test reports results and progress', async () => {
    const { device } = await boardDevice();
    const progress: string[] = [];
    const results = await device.selfTest({ onProgress: (p) => progress.push(`${p.task} ${p.done}/${p.total}`) });
    expect(results.map((t) => t.name)).toEqual(['dac', 'timer', 'supply']);
    expect(progress).toContain('self-test 3/3');
  });

  it('sets and reads neuron voltages, checking them first', async () => {
    const { device, backend } = await boardDevice();
    expect(await device.setNeuronVoltages(0, 1.4, 0.8)).toEqual({ vRest: 1.4, vThreshold: 0.8 });
    expect(backend.neuronVoltages(0)).toEqual({ vRest: 1.4, vThreshold: 0.8 });
    expect(await device.neuronVoltages(0)).toEqual({ vRest: 1.4, vThreshold: 0.8 });
    await expect(device.setNeuronVoltages(0, 0.8, 1.4)).rejects.toThrow(/vThreshold 1.4 V must be below vRest 0.8 V/);
    const e = await device.setNeuronVoltages(0, 2.5, 0.8).catch((x) => x);
    expect(e).toBeInstanceOf(DeviceError);
    expect(e.codeName).toBe('OUT_OF_RANGE');
  });

  it('status, ping with data and reset work end to end', async () => {
    const { device, board } = await boardDevice();
    const s = await device.status();
    expect(s.supplyV).toBe(1.8);
    const p = await device.ping(Uint8Array.from([1, 2, 3]));
    expect(p.rttMs).toBeGreaterThanOrEqual(0);
    const off = board.readWeights(0);
    await device.uploadWeights(0, randomSafeCodes(board, device, 0, 5));
    await device.reset();
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(off));
  });
});

// ---- against scripted devices: version negotiation and reply validation ------------------

function helloOf(over: Partial<HelloResponse> = {}): HelloResponse {
  return helloResponse({ firmware: 'fake/9', boardId: 'fake', chipId: 'fake', ...over });
}

async function scripted(hello: HelloResponse, answer: (f: Frame, d: FakeDevice) => void = () => {}) {
  const [host, dev] = pipePair();
  new FakeDevice(dev, (f, d) => (f.type === MsgType.HELLO ? d.reply(f.seq, 'HELLO', hello) : answer(f, d)));
  const device = await ChipDevice.over(transportOf(host, 'fake'), { timeouts: { RUN: 200, WEIGHTS_WRITE: 200 } });
  open.push(device);
  return device;
}

describe('ChipDevice against scripted devices', () => {
  it('refuses a device that needs a newer protocol, telling to update spikeloop', async () => {
    await expect(scripted(helloOf({ protocol: 4, minProtocol: 3 }))).rejects.toThrow(VersionMismatchError);
    await expect(scripted(helloOf({ protocol: 4, minProtocol: 3 }))).rejects.toThrow(/needs protocol 3 or newer.*update spikeloop/);
  });

  it('accepts a newer device that still speaks our protocol', async () => {
    const d = await scripted(helloOf({ protocol: 4, minProtocol: 1 }));
    expect(d.info.negotiatedProtocol).toBe(2);
    const old = await scripted(helloOf({ protocol: 1, minProtocol: 1 }));
    expect(old.info.negotiatedProtocol).toBe(1);
    expect(old.link.protocolVersion).toBe(1);
  });

  it('refuses RUN replies of the wrong shape or past the horizon', async () => {
    const replies: unknown[] = [
      { batch: 2, layers: [new Uint16Array(4), new Uint16Array(4)] },
      { batch: 1, layers: [new Uint16Array(2)] },
      { batch: 2, layers: [new Uint16Array([1, 2, 3, 101])] },
    ];
    const d = await scripted(helloOf(), (f, dev) => {
      if (typeName(f.type) === 'RUN') dev.reply(f.seq, 'RUN', replies.shift());
    });
    const inputs = new Uint16Array(4);
    await expect(d.run(inputs, 2)).rejects.toThrow(/RUN: .*expected spike times of 1 layers, got 2/);
    await expect(d.run(inputs, 2)).rejects.toThrow(/asked for 2 samples, got batch 1/);
    await expect(d.run(inputs, 2)).rejects.toThrow(ProtocolViolationError);
  });

  it('refuses a WEIGHTS_WRITE acknowledgement that does not match the write', async () => {
    const d = await scripted(helloOf(), (f, dev) => {
      if (typeName(f.type) === 'WEIGHTS_WRITE') dev.reply(f.seq, 'WEIGHTS_WRITE', { layer: 0, offset: 1, count: 8 });
    });
    await expect(d.uploadWeights(0, new Uint16Array(8))).rejects.toThrow(/wrote layer 0 offset 0 count 8, device acknowledged layer 0 offset 1 count 8/);
  });

  it('refuses features the device does not announce, before sending', async () => {
    const d = await scripted(helloOf({ features: [] }));
    const out = d.link.stats.framesOut;
    await expect(d.selfTest()).rejects.toThrow(UnsupportedFeatureError);
    await expect(d.setNeuronVoltages(0, 1.3, 0.9)).rejects.toThrow(/'neuron-config' feature/);
    expect(d.link.stats.framesOut).toBe(out);
  });
});

describe('ChipDevice, protocol 2 against protocol 1', () => {
  it('run() gives the same spikes through RUN_PACKED as through RUN, and only the layers asked for', async () => {
    const v2 = await boardDevice([20, 12, 4], 600);
    const v1 = await boardDevice([20, 12, 4], 600, {}, { protocol: 1 });
    expect([v2.device.info.negotiatedProtocol, v1.device.info.negotiatedProtocol]).toEqual([2, 1]);
    for (const l of [0, 1]) {
      const codes = randomSafeCodes(v2.board, v2.device, l, 20 + l);
      await v2.device.uploadWeights(l, codes);
      await v1.device.uploadWeights(l, codes);
    }
    const batch = 60;
    const r = rng(9);
    // sparse, dense and silent samples
    const inputs = new Uint16Array(batch * 20).map((_, i) => {
      const s = Math.floor(i / 20);
      const p = s % 3 === 0 ? 0.05 : s % 3 === 1 ? 0.9 : 0;
      return r() < p ? Math.floor(r() * 1000) : 0xffff;
    });
    const a = await v2.device.run(inputs, batch);
    const b = await v1.device.run(inputs, batch);
    expect(a.map((x) => Array.from(x))).toEqual(b.map((x) => Array.from(x)));
    expect(b[1]!.some((t) => t !== 0xffff)).toBe(true);
    const last = await v2.device.run(inputs, batch, { layers: [1] });
    expect(last[0]).toHaveLength(0);
    expect(Array.from(last[1]!)).toEqual(Array.from(b[1]!));
    // a version-1 board returns every layer whatever is asked
    expect((await v1.device.run(inputs, batch, { layers: [1] }))[0]).toHaveLength(batch * 12);
    await expect(v2.device.run(inputs, batch, { layers: [2] })).rejects.toThrow(/layer 2 does not exist/);
  });

  it('a single-synapse probe RUN costs at most 16 bytes per sample on the wire (784 inputs, link counters)', async () => {
    const { device } = await boardDevice([784, 16, 4], 16384);
    const batch = 256;
    const inputs = new Uint16Array(batch * 784).fill(0xffff);
    for (let s = 0; s < batch; s++) inputs[s * 784 + ((s * 131) % 784)] = 500 + s;
    const before = device.link.stats;
    await device.run(inputs, batch);
    const after = device.link.stats;
    const out = (after.bytesOut - before.bytesOut) / batch;
    expect(out).toBeLessThanOrEqual(16);
    // version 1 sent all 784 ticks as u16
    const v1 = await boardDevice([784, 16, 4], 16384, {}, { protocol: 1 });
    const b1 = v1.device.link.stats.bytesOut;
    await v1.device.run(inputs, batch);
    expect((v1.device.link.stats.bytesOut - b1) / batch).toBeGreaterThan(1568);
  });

  it('uploadChanged sends WEIGHTS_PATCH frames no larger than min(full upload, 4 bytes per changed code + frame overhead), or the full upload', async () => {
    const { device, board } = await boardDevice([100, 60], 2048);
    const prev = randomSafeCodes(board, device, 0, 5);
    await device.uploadWeights(0, prev);
    const [nm, pm] = device.safeCodeRanges;
    const r = rng(6);
    let cur = prev;
    for (const fraction of [0.0005, 0.01, 0.1, 0.4, 0.95]) {
      const next = cur.slice();
      const l = device.info.layers[0]!;
      for (let i = 0; i < next.length; i++) {
        if (r() >= fraction) continue;
        const w = l.rowPolarity[Math.floor(i / l.outputs)] ? pm : nm;
        next[i] = next[i] === w.lo ? w.lo + 1 : w.lo;
      }
      const out0 = device.link.stats.bytesOut;
      const res = await device.uploadChanged(0, cur, next);
      const sent = device.link.stats.bytesOut - out0;
      expect(Array.from(board.readWeights(0))).toEqual(Array.from(next));
      // the full upload of the same codes, measured the same way (writing them again changes nothing)
      const f0 = device.link.stats.bytesOut;
      const fullFrames = (await device.uploadWeights(0, next)).frames;
      const full = device.link.stats.bytesOut - f0;
      // frame overhead: the wire bytes of an empty WEIGHTS_PATCH frame, per frame sent
      const overhead = encodeRequest('WEIGHTS_PATCH', 1, { layer: 0, offset: 0, data: new Uint8Array(1) }, { version: 2 }).length;
      // the same codes in frames with other seqs differ by up to a COBS byte per frame
      expect(sent).toBeLessThanOrEqual(Math.min(full + fullFrames, 4 * res.changed! + res.frames * overhead));
      if (fraction <= 0.1) expect(['patch', 'edit']).toContain(res.via);
      cur = next;
    }
    expect((await device.verifyWeights(0, cur)).ok).toBe(true);
  });

  it('uploadChanged sends fine-tuning steps as WEIGHTS_EDIT, about a byte per changed code, and the board holds next', async () => {
    const { device, board } = await boardDevice([100, 60], 2048);
    expect(device.info.features).toContain('weights-edit');
    const prev = randomSafeCodes(board, device, 0, 7).map((c) => c);
    const l = device.info.layers[0]!;
    // keep every code two steps inside its window, so any step stays safe
    for (let i = 0; i < prev.length; i++) {
      const [lo, hi] = board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!);
      prev[i] = Math.min(hi - 2, Math.max(lo + 2, prev[i]!));
    }
    await device.uploadWeights(0, prev);
    const r = rng(8);
    const next = prev.map((c) => (r() < 0.2 ? c + (r() < 0.5 ? -1 : 1) : c));
    let changed = 0;
    for (let i = 0; i < next.length; i++) if (next[i] !== prev[i]) changed++;
    const out0 = device.link.stats.bytesOut;
    const res = await device.uploadChanged(0, prev, next);
    const sent = device.link.stats.bytesOut - out0;
    expect(res.via).toBe('edit');
    const overhead = encodeRequest('WEIGHTS_EDIT', 1, { layer: 0, offset: 0, data: new Uint8Array(1) }, { version: 2 }).length;
    expect(sent).toBeLessThanOrEqual(1.3 * changed + res.frames * overhead);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(next));
    expect((await device.verifyWeights(0, next)).ok).toBe(true);
  });

  it('uploadWeights sends a configuration whose rows share a code as WEIGHTS_EDIT FILL runs, smaller than WEIGHTS_WRITE, whatever the board held', async () => {
    const { device, board } = await boardDevice([100, 60], 2048);
    const l = device.info.layers[0]!;
    await device.uploadWeights(0, randomSafeCodes(board, device, 0, 9));
    const high = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!)[1]);
    const out0 = device.link.stats.bytesOut;
    const r = await device.uploadWeights(0, high);
    const sent = device.link.stats.bytesOut - out0;
    expect(r.via).toBe('edit');
    expect(sent).toBeLessThan(high.length / 4); // WEIGHTS_WRITE: 2 bytes per code
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(high));
    expect((await device.verifyWeights(0, high)).ok).toBe(true);
  });

  it('the board refuses a WEIGHTS_EDIT step out of the safe window and writes nothing of the frame', async () => {
    const { device, board } = await boardDevice([30, 50], 600);
    const l = device.info.layers[0]!;
    const codes = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!)[0]);
    await device.uploadWeights(0, codes);
    // FILL cells 0..3 with their row's low code + 1 (safe), then STEP cell 10 one below its low code
    const lo0 = codes[0]!;
    const down = (codes[10]! - 1) & 3;
    const w = new ByteWriter(16);
    for (const v of [4 << 2, 0, lo0 + 1, (1 << 2) | 1, (6 << 2) | down]) w.varint(v);
    const data = w.finish();
    const err = await device.link.request('WEIGHTS_EDIT', { layer: 0, offset: 0, data }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).codeName).toBe('OUT_OF_RANGE');
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(codes));
  });
});
