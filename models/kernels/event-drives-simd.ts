/**
 * The event-driven drive kernels (models/network/event-drives.ts) on WebAssembly SIMD: the same
 * loops, four float32 columns per instruction, in a module of their own (event-drives.wat).
 *
 * Why: these two loops are most of a DSTD training step (784-256-128-10 on Fashion-MNIST: about
 * 90 % of it on the JavaScript kernels), and V8 neither vectorises them nor keeps float32
 * arithmetic in float32. Results agree with the JavaScript kernels to float32 rounding (the order
 * of the sums differs), and are deterministic.
 *
 * Each call copies its operands into the module's memory (rows padded to a multiple of 4 columns),
 * runs, and copies the result out; the memory grows as needed and is reused.
 */

import { EVENT_DRIVES_WASM } from './event-drives.wasm.ts';

/** What is used of the WebAssembly API (the project's TypeScript libs leave it untyped). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

interface Exports {
  memory: WasmMemory;
  forward(bin: number, frac: number, w: number, out: number, batch: number, nIn: number, C: number, bins: number): void;
  backward(
    bin: number,
    frac: number,
    w: number,
    dy: number,
    dW: number,
    dT: number,
    rc: number,
    batch: number,
    nIn: number,
    C: number,
    bins: number,
    dt: number,
    inputGrad: number,
  ): void;
}

let loaded: Exports | null | undefined;

function decode(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The instantiated module, or null where this engine has no WebAssembly SIMD. */
function kernels(): Exports | null {
  if (loaded === undefined) {
    try {
      const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
      loaded = new wasm.Instance(new wasm.Module(decode(EVENT_DRIVES_WASM))).exports as Exports;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** Whether the SIMD kernels can run here. */
export function simdKernelsAvailable(): boolean {
  return kernels() !== null;
}

const pad4 = (n: number) => (n + 3) & ~3;
const align = (bytes: number) => (bytes + 15) & ~15;

/** Byte offsets of consecutive regions of the given byte sizes; grows the memory to hold them. */
function layout(k: Exports, sizes: number[]): number[] {
  const offsets: number[] = [];
  let end = 0;
  for (const s of sizes) {
    offsets.push(end);
    end += align(s);
  }
  const have = k.memory.buffer.byteLength;
  if (end > have) k.memory.grow(Math.ceil((end - have) / 65536));
  return offsets;
}

/** Writes rows of C floats to rows of Cp floats at `at` (float index); padding columns zeroed. */
function putRows(heap: Float32Array, at: number, src: Float32Array, rows: number, C: number, Cp: number): void {
  if (C === Cp) {
    heap.set(src.subarray(0, rows * C), at);
    return;
  }
  heap.fill(0, at, at + rows * Cp);
  for (let r = 0; r < rows; r++) heap.set(src.subarray(r * C, (r + 1) * C), at + r * Cp);
}

/** Reads rows of Cp floats at `at` back into rows of C floats (`view`: a view of the memory where no repacking is needed). */
function getRows(heap: Float32Array, at: number, rows: number, C: number, Cp: number, view = false): Float32Array {
  if (C === Cp) return view ? heap.subarray(at, at + rows * C) : heap.slice(at, at + rows * C);
  const out = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++) out.set(heap.subarray(at + r * Cp, at + r * Cp + C), r * C);
  return out;
}

function need(): Exports {
  const k = kernels();
  if (!k) throw new Error('WebAssembly SIMD is not available in this engine; use the JavaScript event kernels');
  return k;
}

/**
 * The signature both implementations of the forward kernel share (network/event-drives.ts).
 * `view`: the result may be a view of the kernel's own memory, valid until its next call (for a
 * caller that copies it at once); the JavaScript kernels always return new arrays.
 */
export type EventForwardKernel = (
  bin: Int32Array,
  frac: Float32Array,
  w: Float32Array,
  batch: number,
  nIn: number,
  C: number,
  bins: number,
  view?: boolean,
) => Float32Array;

/** ... and of the backward kernel. */
export type EventBackwardKernel = (
  bin: Int32Array,
  frac: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  batch: number,
  nIn: number,
  C: number,
  bins: number,
  dt: number,
  inputGrad: boolean,
  view?: boolean,
) => { dW: Float32Array; dTimes: Float32Array };

/** eventDrivesForward on SIMD: drives [batch, bins, C]. */
export const eventDrivesForwardSimd: EventForwardKernel = (bin, frac, w, batch, nIn, C, bins, view = false) => {
  const k = need();
  const Cp = pad4(C);
  const [pBin, pFrac, pW, pOut] = layout(k, [batch * nIn * 4, batch * nIn * 4, nIn * Cp * 4, batch * bins * Cp * 4]) as [number, number, number, number];
  const heap = new Float32Array(k.memory.buffer);
  new Int32Array(k.memory.buffer).set(bin.subarray(0, batch * nIn), pBin / 4);
  heap.set(frac.subarray(0, batch * nIn), pFrac / 4);
  putRows(heap, pW / 4, w, nIn, C, Cp);
  heap.fill(0, pOut / 4, pOut / 4 + batch * bins * Cp);
  k.forward(pBin, pFrac, pW, pOut, batch, nIn, Cp, bins);
  return getRows(heap, pOut / 4, batch * bins, C, Cp, view);
};

/** eventDrivesBackward on SIMD: dL/dW [nIn, C] and dL/d(times) [batch, nIn] (zeros unless inputGrad). */
export const eventDrivesBackwardSimd: EventBackwardKernel = (bin, frac, w, dy, batch, nIn, C, bins, dt, inputGrad, view = false) => {
  const k = need();
  const Cp = pad4(C);
  const n = batch * nIn;
  const [pBin, pFrac, pW, pDy, pDW, pDT, pRc] = layout(k, [n * 4, n * 4, nIn * Cp * 4, batch * bins * Cp * 4, nIn * Cp * 4, n * 4, bins * Cp * 4]) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const heap = new Float32Array(k.memory.buffer);
  new Int32Array(k.memory.buffer).set(bin.subarray(0, n), pBin / 4);
  heap.set(frac.subarray(0, n), pFrac / 4);
  putRows(heap, pW / 4, w, nIn, C, Cp);
  putRows(heap, pDy / 4, dy, batch * bins, C, Cp);
  heap.fill(0, pDW / 4, pDW / 4 + nIn * Cp);
  heap.fill(0, pDT / 4, pDT / 4 + n);
  k.backward(pBin, pFrac, pW, pDy, pDW, pDT, pRc, batch, nIn, Cp, bins, dt, inputGrad ? 1 : 0);
  return { dW: getRows(heap, pDW / 4, nIn, C, Cp, view), dTimes: view ? heap.subarray(pDT / 4, pDT / 4 + n) : heap.slice(pDT / 4, pDT / 4 + n) };
};
