/**
 * A 2-D convolution (NHWC input, HWIO kernel) with a gradient every backend here can run.
 *
 * Why not tf.conv2d's own gradient: its kernel gradient is the Conv2DBackpropFilter kernel, which
 * the wasm backend does not have (models/tf/README.md). Here the forward pass is tf.conv2d
 * (XNNPACK on wasm), the input gradient tf.conv2dTranspose (Conv2DBackpropInput, present), and the
 * kernel gradient an im2col product: the padded input's kh x kw strided slices concatenated to
 * patches [N Ho Wo, kh kw Ci], then dW = patches^T dy, computed as (dy^T patches)^T so that only
 * the small operand is transposed (the wasm backend runs transposed products slowly, matmul.ts).
 */

import * as tf from '@tensorflow/tfjs-core';
import { convShape, type Padding } from './geometry.ts';

/** Patches [N Ho Wo, kh kw Ci] of x [N, H, W, Ci], ordered (ky, kx, c) as the HWIO kernel's rows. */
export function im2col(x: tf.Tensor4D, kernelH: number, kernelW: number, stride: number, padding: Padding): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const s = convShape({ inH: h, inW: w, inC: c, channels: 1, kernelH, kernelW, stride, padding });
    const xp =
      s.padTop + s.padBottom + s.padLeft + s.padRight > 0
        ? tf.pad(x, [
            [0, 0],
            [s.padTop, s.padBottom],
            [s.padLeft, s.padRight],
            [0, 0],
          ])
        : x;
    const cols: tf.Tensor[] = [];
    for (let ky = 0; ky < kernelH; ky++) {
      for (let kx = 0; kx < kernelW; kx++) {
        const end = [n, ky + (s.outH - 1) * stride + 1, kx + (s.outW - 1) * stride + 1, c];
        cols.push(tf.stridedSlice(xp, [0, ky, kx, 0], end, [1, stride, stride, 1]));
      }
    }
    const patches = cols.length === 1 ? cols[0]! : tf.concat(cols, 3);
    return tf.reshape(patches, [n * s.outH * s.outW, kernelH * kernelW * c]) as tf.Tensor2D;
  });
}

/**
 * conv2d(x [N, H, W, Ci], w [kh, kw, Ci, Co]) -> [N, Ho, Wo, Co], differentiable in x and w on any
 * backend. inputGrad = false skips the input gradient (zeros): a network's first layer, whose
 * inputs are data, would otherwise pay a transposed convolution per step for nothing.
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
          const [kh, kw, ci, co] = sw.shape;
          const dx = inputGrad ? tf.conv2dTranspose(dy as tf.Tensor4D, sw, sx.shape, stride, padding) : tf.zeros(sx.shape);
          const patches = im2col(sx, kh, kw, stride, padding);
          const dy2 = tf.reshape(dy, [-1, co]) as tf.Tensor2D;
          const dwT = tf.matMul(tf.transpose(dy2), patches);
          const dw = tf.reshape(tf.transpose(dwT), [kh, kw, ci, co]);
          return [dx, dw];
        });
      },
    };
  });
  return op(x, w) as tf.Tensor4D;
}
