/**
 * A 2-D convolution (NHWC input, HWIO kernel) with a gradient every backend here can run.
 *
 * Why not tf.conv2d's own gradient: its kernel gradient is the Conv2DBackpropFilter kernel, which
 * the wasm backend does not have (models/tf/README.md). Here the forward pass is tf.conv2d
 * (XNNPACK on wasm), the input gradient tf.conv2dTranspose (Conv2DBackpropInput, present), and the
 * kernel gradient one matrix product per kernel offset (kernelGradient), with explicit transposes
 * (the wasm backend runs transposed products slowly, models/tf/matmul.ts).
 */

import * as tf from '@tensorflow/tfjs-core';
import { convShape, type Padding } from './geometry.ts';

/**
 * The kernel gradient of conv2d: dW[ky, kx] = xs(ky, kx)^T dy over all N Ho Wo positions, where
 * xs(ky, kx) [N Ho Wo, Ci] is the padded input seen through kernel offset (ky, kx) (a strided slice
 * in the spatial axes: contiguous channels). One product per offset, dy transposed once, instead
 * of an im2col matrix: the patches are never materialised (kh kw times the input), and nothing is
 * sliced or concatenated along the channel axis (slow on the cpu and wasm backends).
 */
export function kernelGradient(x: tf.Tensor4D, dy: tf.Tensor4D, kernelH: number, kernelW: number, stride: number, padding: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const co = dy.shape[3];
    const s = convShape({ inH: h, inW: w, inC: c, channels: co, kernelH, kernelW, stride, padding });
    const xp =
      s.padTop + s.padBottom + s.padLeft + s.padRight > 0
        ? tf.pad(x, [
            [0, 0],
            [s.padTop, s.padBottom],
            [s.padLeft, s.padRight],
            [0, 0],
          ])
        : x;
    const P = n * s.outH * s.outW;
    const dyT = tf.transpose(tf.reshape(dy, [P, co]));
    const parts: tf.Tensor[] = [];
    for (let ky = 0; ky < kernelH; ky++) {
      for (let kx = 0; kx < kernelW; kx++) {
        const end = [n, ky + (s.outH - 1) * stride + 1, kx + (s.outW - 1) * stride + 1, c];
        const xs = tf.reshape(tf.stridedSlice(xp, [0, ky, kx, 0], end, [1, stride, stride, 1]), [P, c]);
        parts.push(tf.matMul(dyT as tf.Tensor2D, xs as tf.Tensor2D));
      }
    }
    // [kh kw, Co, Ci] -> [kh kw, Ci, Co]: a transpose of kh kw small matrices.
    return tf.reshape(tf.transpose(tf.stack(parts), [0, 2, 1]), [kernelH, kernelW, c, co]) as tf.Tensor4D;
  });
}

/**
 * conv2d of x [N, H, W, Ci] with each of the kernels ws[k] [kh, kw, Ci, Co] (same shape), stacked
 * along a new leading axis: [K, N, Ho, Wo, Co], differentiable in x and every kernel on any backend.
 * Why stacked: a layer needs G and A from two kernels, and splitting one convolution's channels
 * apart (a slice along the last axis) cost 10-30x the convolution itself on the cpu and wasm
 * backends; slices along the leading axis are contiguous copies. The backward pass builds the
 * im2col patches once for all kernels. inputGrad = false skips the input gradient (zeros): a
 * network's first layer, whose inputs are data, would otherwise pay transposed convolutions per
 * step for nothing.
 */
export function conv2dStack(x: tf.Tensor4D, ws: tf.Tensor4D[], stride: number, padding: Padding, inputGrad = true): tf.Tensor5D {
  const w0 = ws[0];
  if (x.rank !== 4 || !w0 || ws.some((w) => w.rank !== 4 || w.shape.join() !== w0.shape.join()) || x.shape[3] !== w0.shape[2]) {
    throw new RangeError(`conv2dStack needs x [N, H, W, C] and kernels [kh, kw, C, Co] of one shape, got ${JSON.stringify(x.shape)} and ${JSON.stringify(ws.map((w) => w.shape))}`);
  }
  const K = ws.length;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xa = args[0] as tf.Tensor4D;
    const wa = args.slice(1, 1 + K) as tf.Tensor4D[];
    (args[1 + K] as tf.GradSaveFunc)([xa, ...wa]);
    const ys = wa.map((w) => tf.conv2d(xa, w, stride, padding));
    return {
      value: (K === 1 ? tf.expandDims(ys[0]!, 0) : tf.stack(ys)) as tf.Tensor5D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, ...sw] = saved as tf.Tensor4D[];
        return tf.tidy(() => {
          const [kh, kw] = sw[0]!.shape;
          const dys = tf.unstack(dy) as tf.Tensor4D[];
          let dx: tf.Tensor = tf.zeros(sx!.shape);
          if (inputGrad) for (let k = 0; k < K; k++) dx = tf.add(dx, tf.conv2dTranspose(dys[k]!, sw[k]!, sx!.shape, stride, padding));
          const dws = dys.map((d) => kernelGradient(sx!, d, kh, kw, stride, padding));
          return [dx, ...dws];
        });
      },
    };
  });
  return op(x, ...ws) as tf.Tensor5D;
}

/** conv2d(x [N, H, W, Ci], w [kh, kw, Ci, Co]) -> [N, Ho, Wo, Co], differentiable in x and w on any backend. */
export function conv2dShared(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, padding: Padding, inputGrad = true): tf.Tensor4D {
  const y = conv2dStack(x, [w], stride, padding, inputGrad);
  const [, n, h, w2, c] = y.shape;
  return tf.reshape(y, [n, h, w2, c]);
}
