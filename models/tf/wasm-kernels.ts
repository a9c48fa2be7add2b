/**
 * Replacements for wasm-backend kernels that copy their whole input into a new JavaScript array
 * (`readSync`) before doing a JavaScript loop: Slice and SplitV (which slices). The twin slices
 * its per-bin drives [B, M, 2N] into G and A every layer and step, and the concat's gradient
 * splits them back, several MB of garbage a step that V8 then collects for "external memory
 * pressure". These read the input through a view of the module's heap instead, taken after the
 * output is allocated (an allocation may grow the heap and detach older views). Same values:
 * a slice is a copy.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { WasmBackendInternals, WasmTensorInfo } from './tensor-io.ts';

type TensorInfo = WasmTensorInfo;
type WasmBackend = Pick<WasmBackendInternals, 'makeOutput' | 'typedArrayFromHeap'>;
interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  attrs: Record<string, unknown>;
  backend: WasmBackend;
}

function sliceFromHeap(x: TensorInfo, begin: number[], size: number[], backend: WasmBackend): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const xVals = backend.typedArrayFromHeap(x);
  const outVals = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  const inner = rank === 0 ? 1 : size[rank - 1]!;
  const rows = inner === 0 ? 0 : tf.util.sizeFromShape(size) / inner;
  // Walk the output's rows (every axis but the last), copying one contiguous run per row.
  const idx = new Array<number>(Math.max(0, rank - 1)).fill(0);
  for (let r = 0; r < rows; r++) {
    let from = rank === 0 ? 0 : begin[rank - 1]!;
    for (let a = 0; a < rank - 1; a++) from += (begin[a]! + idx[a]!) * strides[a]!;
    outVals.set(xVals.subarray(from, from + inner), r * inner);
    for (let a = rank - 2; a >= 0; a--) {
      if (++idx[a]! < size[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

function slice(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.TensorInfo, args.attrs.begin as number[], args.attrs.size as number[]);
  return sliceFromHeap(x, begin, size, args.backend);
}

function splitV(args: KernelArgs): TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const axis = tf.util.parseAxisParam(args.attrs.axis as number, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs.numOrSizeSplits as number[] | number, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const out = sliceFromHeap(x, [...begin], size, args.backend);
    begin[axis]! += s;
    return out;
  });
}

let installed = false;

/** Registers the replacements on the wasm backend (once per thread; call after it is set up). */
export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  for (const [name, fn] of [
    ['Slice', slice],
    ['SplitV', splitV],
  ] as const) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      // Strings (no heap view) go to the original kernel.
      kernelFunc: (args) =>
        (args.inputs.x as TensorInfo).dtype === 'string'
          ? original.kernelFunc(args)
          : ((fn as (a: KernelArgs) => TensorInfo | TensorInfo[])(args as unknown as KernelArgs) as unknown as tf.TensorInfo),
    });
  }
}
