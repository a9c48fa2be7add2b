import { describe, expect, it } from 'vitest';
import { assemble, KERNELS } from '../../../models/kernels/build-kernels.ts';
import { EVENT_DRIVES_WASM } from '../../../models/kernels/event-drives.wasm.ts';
import { eventDrivesBackwardSimd, eventDrivesForwardSimd, simdKernelsAvailable } from '../../../models/kernels/event-drives-simd.ts';
import { eventDrivesBackward, eventDrivesForward, locateSpikes } from '../../../models/network/event-drives.ts';
import { mulberry } from '../rng.ts';

/** Inputs of every kind: silent, after the horizon, before the grid, inside (last bin included). */
function randomCase(seed: number, batch: number, nIn: number, C: number, bins: number) {
  const rnd = mulberry(seed);
  const times = new Float32Array(batch * nIn).map(() => {
    const r = rnd();
    if (r < 0.3) return Infinity;
    if (r < 0.35) return 1 + rnd();
    if (r < 0.4) return -0.2 * rnd();
    if (r < 0.45) return 1 - (0.5 * rnd()) / bins;
    return rnd();
  });
  const w = new Float32Array(nIn * C).map(() => rnd() * 2 - 1);
  const dy = new Float32Array(batch * bins * C).map(() => rnd() * 2 - 1);
  return { ...locateSpikes(times, bins, 1), w, dy };
}

/** Largest |a - b| relative to the largest |a|. */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(b.length).toBe(a.length);
  let e = 0;
  let m = 0;
  for (let k = 0; k < a.length; k++) {
    e = Math.max(e, Math.abs(a[k]! - b[k]!));
    m = Math.max(m, Math.abs(a[k]!));
  }
  return m === 0 ? e : e / m;
}

describe('event-drive SIMD kernels', () => {
  it('are what event-drives.wat assembles to (run npm run kernels after editing it)', async () => {
    const k = KERNELS.find((x) => x.name === 'EVENT_DRIVES_WASM')!;
    const bytes = await assemble(k.source);
    expect(Buffer.from(bytes).toString('base64')).toBe(EVENT_DRIVES_WASM);
  });

  it('run in this engine', () => {
    expect(simdKernelsAvailable()).toBe(true);
  });

  // Widths that are and are not multiples of 4 (padding), one bin, a big case that grows the memory
  // followed by small ones that reuse it.
  const shapes: [number, number, number, number][] = [
    [5, 13, 6, 5],
    [3, 7, 1, 1],
    [64, 784, 512, 16],
    [2, 9, 12, 3],
    [17, 31, 10, 32],
  ];
  it.each(shapes)('match the JavaScript kernels to float32 rounding (batch %i, %i inputs, %i columns, %i bins)', (batch, nIn, C, bins) => {
    const c = randomCase(batch * 1000 + nIn * 10 + C, batch, nIn, C, bins);
    const want = eventDrivesForward(c.bin, c.frac, c.w, batch, nIn, C, bins);
    const got = eventDrivesForwardSimd(c.bin, c.frac, c.w, batch, nIn, C, bins);
    expect(relErr(want, got)).toBeLessThan(1e-5);
    for (const inputGrad of [true, false]) {
      const gw = eventDrivesBackward(c.bin, c.frac, c.w, c.dy, batch, nIn, C, bins, 1 / bins, inputGrad);
      const gs = eventDrivesBackwardSimd(c.bin, c.frac, c.w, c.dy, batch, nIn, C, bins, 1 / bins, inputGrad);
      expect(relErr(gw.dW, gs.dW)).toBeLessThan(1e-5);
      expect(relErr(gw.dTimes, gs.dTimes)).toBeLessThan(1e-5);
      if (!inputGrad) expect(gs.dTimes.every((v) => v === 0)).toBe(true);
      // Exact zeros where the JavaScript kernel leaves them (silent inputs, inputs before the grid).
      for (let k = 0; k < gw.dTimes.length; k++) if (gw.dTimes[k] === 0) expect(gs.dTimes[k]).toBe(0);
    }
  });

  it('give the same bits on every call', () => {
    const c = randomCase(3, 8, 40, 18, 7);
    const a = eventDrivesForwardSimd(c.bin, c.frac, c.w, 8, 40, 18, 7);
    const other = randomCase(4, 64, 20, 36, 7);
    eventDrivesForwardSimd(other.bin, other.frac, other.w, 64, 20, 36, 7); // a bigger call in between
    expect(eventDrivesForwardSimd(c.bin, c.frac, c.w, 8, 40, 18, 7)).toEqual(a);
    const g1 = eventDrivesBackwardSimd(c.bin, c.frac, c.w, c.dy, 8, 40, 18, 7, 0.1, true);
    const g2 = eventDrivesBackwardSimd(c.bin, c.frac, c.w, c.dy, 8, 40, 18, 7, 0.1, true);
    expect(g2.dW).toEqual(g1.dW);
    expect(g2.dTimes).toEqual(g1.dTimes);
  });
});
