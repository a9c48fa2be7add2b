/**
 * A 2-D convolution (NHWC input, HWIO kernel) with a gradient every backend here can run.
 *
 * Why not tf.conv2d's own gradient: its kernel gradient is the Conv2DBackpropFilter kernel, which
 * the wasm backend does not have (models/tf/README.md). Here the forward pass is tf.conv2d
 * (XNNPACK on wasm), the input gradient tf.conv2dTranspose (Conv2DBackpropInput, present), and the
 * kernel gradient a forward convolution with batch and channels swapped (kernelGradient).
 */

import * as tf from '@tensorflow/tfjs-core';
import { convShape, type Padding } from './geometry.ts';

/**
 * The kernel gradient of conv2d as a convolution itself: with batch and channels swapped, the
 * padded input [Ci, Hp, Wp, N] convolved (dilation = stride) with dy used as a filter
 * [Ho, Wo, N, Co] gives dW[c, ky, kx, o] = sum over n, oy, ox of
 * x[n, oy stride + ky, ox stride + kx, c] dy[n, oy, ox, o] on its first kh x kw outputs. It runs
 * on the backend's fast convolution (XNNPACK on wasm); strided slices per kernel offset or an
 * im2col matrix were several times slower there.
 */
export function kernelGradient(x: tf.Tensor4D, dy: tf.Tensor4D, kernelH: number, kernelW: number, stride: number, padding: Padding): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w, c] = x.shape;
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
    const xT = tf.transpose(xp, [3, 1, 2, 0]) as tf.Tensor4D;
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const y = tf.conv2d(xT, f, 1, 'valid', 'NHWC', stride);
    const cut = y.shape[1] === kernelH && y.shape[2] === kernelW ? y : tf.slice(y, [0, 0, 0, 0], [c, kernelH, kernelW, co]);
    return tf.transpose(cut, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * conv2d(x [N, H, W, Ci], w [kh, kw, Ci, Co]) -> [N, Ho, Wo, Co], differentiable in x and w on any
 * backend. inputGrad = false skips the input gradient (zeros): a network's first layer, whose
 * inputs are data, would otherwise pay a transposed convolution per step for nothing. A layer that
 * needs two kernels (G and A) calls this twice: stacking both results into one op's output and
 * splitting them again cost more than the second transpose of x in the backward pass.
 */
export function conv2dShared(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, padding: Padding, inputGrad = true): tf.Tensor4D {
  if (x.rank !== 4 || w.rank !== 4 || x.shape[3] !== w.shape[2]) {
    throw new RangeError(`conv2dShared needs x [N, H, W, C] and w [kh, kw, C, Co], got ${JSON.stringify(x.shape)} and ${JSON.stringify(w.shape)}`);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xa, wa] = args as tf.Tensor4D[];
    (args[2] as tf.GradSaveFunc)([xa, wa]);
    return {
      value: tf.conv2d(xa, wa, stride, padding),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as tf.Tensor4D[];
        return tf.tidy(() => {
          const [kh, kw] = sw.shape;
          const dx = inputGrad ? tf.conv2dTranspose(dy as tf.Tensor4D, sw, sx.shape, stride, padding) : tf.zeros(sx.shape);
          return [dx, kernelGradient(sx, dy as tf.Tensor4D, kh, kw, stride, padding)];
        });
      },
    };
  });
  return op(x, w) as tf.Tensor4D;
}
