/**
 * Moving float32 data in and out of tensors without a garbage array per call.
 *
 * Why: `dataSync()` on the wasm backend copies the tensor out of the module's heap into a new
 * ArrayBuffer, and the twin's custom kernels (event drives, DSTD) read and write several MB per
 * training step that way. V8 counts those buffers as external memory and answers with scavenges
 * and mark-compacts "for external memory pressure": about one full collection per step, whose
 * marking runs on V8's helper threads; with two training workers that helper work competes with
 * the workers for the cores. Reading through a view of the heap, and writing from a reusable
 * buffer (the wasm backend copies on write), allocates nothing.
 *
 * On any other backend these fall back to `dataSync()` and to tensors that own a copy, since the
 * cpu backend keeps the array it is given.
 */

import * as tf from '@tensorflow/tfjs-core';

/** A tensor as the wasm backend's kernels see it. */
export interface WasmTensorInfo {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

/** What is used of the wasm backend's internals (@tensorflow/tfjs-backend-wasm 4.22, BackendWasm), here and in wasm-kernels.ts. */
export interface WasmBackendInternals {
  typedArrayFromHeap(t: WasmTensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType): WasmTensorInfo;
  dataIdMap: { get(id: object): { memoryOffset: number | null; dtype: string; refCount?: number } | undefined };
}

function wasmBackend(): WasmBackendInternals | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const b = tf.backend() as unknown as Partial<WasmBackendInternals>;
  return typeof b.typedArrayFromHeap === 'function' && b.dataIdMap ? (b as WasmBackendInternals) : undefined;
}

/**
 * A float32 tensor's values: on the wasm backend a view of its heap (no copy), valid only until
 * the next tensor is created or disposed (the heap may grow or be reused) -- read it at once;
 * elsewhere `dataSync()`. Never write to it.
 */
export function viewSync(t: tf.Tensor): Float32Array {
  if (t.dtype === 'float32') {
    const b = wasmBackend();
    const d = b?.dataIdMap.get(t.dataId);
    if (b && d && d.memoryOffset !== null && d.dtype === 'float32') return b.typedArrayFromHeap(t) as Float32Array;
  }
  return t.dataSync() as Float32Array;
}

/** Copies a float32 tensor's values into `out` at `offset` (no intermediate array on the wasm backend). */
export function readInto(t: tf.Tensor, out: Float32Array, offset = 0): void {
  out.set(viewSync(t), offset);
}

/**
 * A float32 tensor holding a copy of `values` (which the caller may overwrite afterwards): the
 * wasm backend copies into its heap anyway, other backends get a copy of their own.
 */
export function tensorCopy<R extends tf.Rank = tf.Rank>(values: Float32Array, shape: readonly number[]): tf.Tensor<R> {
  const own = wasmBackend() ? values : values.slice();
  return tf.tensor(own, [...shape], 'float32') as unknown as tf.Tensor<R>;
}

/** Overwrites a float32 variable's values with `values` (copied), in place where the backend allows. */
export function assignFrom(v: tf.Variable, values: Float32Array): void {
  if (values.length !== v.size) throw new RangeError(`variable ${v.name} holds ${v.size} values, got ${values.length}`);
  const b = wasmBackend();
  const d = b?.dataIdMap.get(v.dataId);
  // In place only when no other tensor shares the variable's memory.
  if (b && d && d.memoryOffset !== null && d.dtype === 'float32' && d.refCount === 1) {
    (b.typedArrayFromHeap(v) as Float32Array).set(values);
    return;
  }
  tf.tidy(() => v.assign(tensorCopy(values, v.shape)));
}
