/**
 * Uploads of one layer land in the order they were issued, even when the caller does not await
 * one before issuing the next (pipelined fine-tuning does exactly that), when frames are lost
 * and retried, and a RUN or CRC read issued after them sees all of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MockBoard, serveBoard, duplexPair } from '../../../firmware-protocol/mock-board/index.ts';
import { ChipDevice, type ChipDeviceOptions } from '../../../host/device/chip-device.ts';
import { faultFilter, pipePair, transportOf } from '../link/helpers.ts';
import { mulberry as rng } from '../../models/rng.ts';
import { ToyBackend } from './toy-backend.ts';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** 120 rows x 300 outputs = 36,000 codes: about 72 frames at maxPayload 1024, more than one window of frames. */
async function boardDevice(opts: ChipDeviceOptions = {}, noisy = false) {
  const backend = new ToyBackend([60, 300]);
  const board = new MockBoard(backend, { maxPayload: 1024 });
  let host, dev;
  if (noisy) {
    [host, dev] = pipePair();
    host.mangle = faultFilter(rng(11), 2e-4).filter;
    dev.mangle = faultFilter(rng(12), 2e-4).filter;
  } else {
    [host, dev] = duplexPair();
  }
  const server = serveBoard(board, dev, { announce: false });
  open.push(server);
  const device = await ChipDevice.over(transportOf(host, 'mock:toy'), opts);
  open.push(device);
  return { board, device };
}

function safeCodes(board: MockBoard, device: ChipDevice, seed: number): Uint16Array {
  const l = device.info.layers[0]!;
  const r = rng(seed);
  return new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => {
    const [lo, hi] = board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!);
    return lo + Math.floor(r() * (hi - lo + 1));
  });
}

/** `base` with every k-th code moved to another safe value: a sparse update spread over the layer. */
/** Uploads `first`, then issues `steps` unawaited uploads of changed runs, step s changing `size(s)` codes; the last codes and the uploads. */
async function chainUploads(board: MockBoard, device: ChipDevice, first: Uint16Array, steps: number, size: (s: number) => number) {
  await device.uploadWeights(0, first);
  const pending: Promise<unknown>[] = [];
  let cur = first;
  for (let s = 0; s < steps; s++) {
    const next = sparseUpdate(board, device, cur, size(s), s);
    pending.push(device.uploadChanged(0, cur, next));
    cur = next;
  }
  return { pending, last: cur };
}

function sparseUpdate(board: MockBoard, device: ChipDevice, base: Uint16Array, k: number, phase: number): Uint16Array {
  const l = device.info.layers[0]!;
  const next = base.slice();
  for (let i = phase; i < next.length; i += k) {
    const [lo, hi] = board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!);
    next[i] = next[i] === lo ? hi : lo;
  }
  return next;
}

describe('upload ordering', () => {
  it('a changed-only upload issued before the full upload finished lands after it', async () => {
    const { board, device } = await boardDevice();
    const a = safeCodes(board, device, 1);
    // Only the layer's tail changes: its few frames would overtake the full upload's last ones.
    const b = a.slice();
    const l = device.info.layers[0]!;
    for (let i = a.length - 500; i < a.length; i += 7) {
      const [lo, hi] = board.codeWindow(l.rowPolarity[Math.floor(i / l.outputs)]!);
      b[i] = a[i] === lo ? hi : lo;
    }
    const full = device.uploadWeights(0, a);
    const changed = device.uploadChanged(0, a, b);
    const [rf, rc] = await Promise.all([full, changed]);
    expect(rf.frames).toBeGreaterThan(40);
    expect(rc.changed).toBeGreaterThan(50);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(b));
    expect((await device.verifyWeights(0, b)).ok).toBe(true);
  });

  it('a chain of unawaited sparse uploads ends with the last one; a RUN issued after them sees it', async () => {
    const { board, device } = await boardDevice();
    // Sparse and dense updates alternate, so a later upload has fewer frames than the one before.
    const { pending, last: cur } = await chainUploads(board, device, safeCodes(board, device, 2), 6, (s) => (s % 2 ? 97 : 3));
    const seen: Uint16Array[] = [];
    const ran = device.run(new Uint16Array(60).fill(0), 1).then(() => seen.push(board.readWeights(0)));
    await Promise.all([...pending, ran]);
    expect(Array.from(seen[0]!)).toEqual(Array.from(cur));
    expect((await device.verifyWeights(0, cur)).ok).toBe(true);
  });

  it('a RUN issued between two uploads measures the first and not the second', async () => {
    const { board, device } = await boardDevice();
    const ref = await boardDevice();
    const a = safeCodes(board, device, 5);
    const b = sparseUpdate(board, device, a, 3, 0);
    const c = sparseUpdate(board, device, b, 2, 1);
    await device.uploadWeights(0, a);
    const inputs = new Uint16Array(4 * 60).map((_, i) => (i * 13) % 700);
    const first = device.uploadChanged(0, a, b);
    const measured = device.run(inputs, 4);
    const second = device.uploadChanged(0, b, c);
    const [, got] = await Promise.all([first, measured, second]);
    await ref.device.uploadWeights(0, b);
    const want = await ref.device.run(inputs, 4);
    expect(Array.from(got[0]!)).toEqual(Array.from(want[0]!));
    await ref.device.uploadWeights(0, c);
    const other = await ref.device.run(inputs, 4);
    expect(Array.from(other[0]!)).not.toEqual(Array.from(want[0]!)); // b and c really differ on the chip
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(c));
  });

  it('sends a RUN right behind the uploads before them, without waiting for their acknowledgements', async () => {
    const { board, device } = await boardDevice();
    const a = safeCodes(board, device, 6);
    await device.uploadWeights(0, a);
    const b = sparseUpdate(board, device, a, 50, 0);
    const stream = device.link.transport.stream;
    const write = stream.write.bind(stream);
    let repliesAtRun: number | undefined;
    stream.write = ((chunk: Uint8Array, ...rest: never[]) => {
      if (repliesAtRun === undefined && (device.link.stats.sent.RUN_PACKED?.frames ?? 0) > 0) repliesAtRun = device.link.stats.replies;
      return write(chunk, ...rest);
    }) as typeof stream.write;
    const replies = device.link.stats.replies;
    const up = device.uploadChanged(0, a, b);
    const got = device.run(new Uint16Array(60).fill(0), 1);
    await Promise.all([up, got]);
    expect(repliesAtRun).toBe(replies); // no acknowledgement had come back when the RUN left
    expect(device.rerunRuns).toBe(0);
  });

  it('measures what was uploaded before a RUN when frames are lost and retried (the RUN is sent again after them)', async () => {
    const { board, device } = await boardDevice({ retries: 8, timeouts: { WEIGHTS_WRITE: 150, WEIGHTS_CRC: 150, HELLO: 150, RUN_PACKED: 300 } }, true);
    const ref = await boardDevice();
    let cur = safeCodes(board, device, 7);
    await device.uploadWeights(0, cur);
    await ref.device.uploadWeights(0, cur);
    const inputs = new Uint16Array(4 * 60).map((_, i) => (i * 13) % 700);
    const issued: { run: Promise<Uint16Array[]>; codes: Uint16Array }[] = [];
    const uploads: Promise<unknown>[] = [];
    for (let s = 0; s < 6; s++) {
      const next = sparseUpdate(board, device, cur, s % 2 ? 7 : 61, s);
      uploads.push(device.uploadChanged(0, cur, next));
      issued.push({ run: device.run(inputs, 4), codes: next });
      cur = next;
    }
    await Promise.all(uploads);
    for (const { run, codes } of issued) {
      await ref.device.uploadWeights(0, codes);
      expect(Array.from((await run)[0]!)).toEqual(Array.from((await ref.device.run(inputs, 4))[0]!));
    }
    expect(device.link.stats.retries).toBeGreaterThan(0); // the noise really cost frames
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(cur));
  }, 60_000);

  it('keeps the order when frames are lost and retried on a noisy line', async () => {
    const { board, device } = await boardDevice({ retries: 8, timeouts: { WEIGHTS_WRITE: 150, WEIGHTS_CRC: 150, HELLO: 150 } }, true);
    const { pending, last: cur } = await chainUploads(board, device, safeCodes(board, device, 3), 4, (s) => (s % 2 ? 89 : 5));
    await Promise.all(pending);
    expect(device.link.stats.retries).toBeGreaterThan(0); // the noise really cost frames
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(cur));
  }, 30_000);

  it('refuses a changed-only upload after a failed one of the same layer, until a full upload', async () => {
    const { board, device } = await boardDevice();
    const a = safeCodes(board, device, 4);
    await device.uploadWeights(0, a);
    const b = sparseUpdate(board, device, a, 50, 0);
    const stop = new AbortController();
    stop.abort(new Error('stopped by the test'));
    await expect(device.uploadChanged(0, a, b, { signal: stop.signal })).rejects.toThrow(/stopped by the test/);
    // The host no longer knows what layer 0 holds: a changed-only upload would rest on a guess.
    await expect(device.uploadChanged(0, b, a)).rejects.toThrow(/earlier upload of layer 0 failed .*upload the whole layer again/);
    await device.uploadWeights(0, b);
    const c = sparseUpdate(board, device, b, 40, 1);
    await device.uploadChanged(0, b, c);
    expect(Array.from(board.readWeights(0))).toEqual(Array.from(c));
  });
});
