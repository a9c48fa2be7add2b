/**
 * A 2-D convolution (NHWC input, HWIO kernel) with a gradient every backend here can run fast.
 *
 * Why not tf.conv2d's own gradient: its kernel gradient is the Conv2DBackpropFilter kernel, which
 * the wasm backend does not have (models/tf/README.md), and its input gradient the wasm backend's
 * Conv2DBackpropInput, a plain loop about 10x the forward convolution. Here all three are forward
 * convolutions (XNNPACK on wasm): the forward pass tf.conv2d, the input gradient one convolution
 * of dy per output phase (inputGradient), the kernel gradient a convolution with batch and
 * channels swapped (kernelGradient).
 */

import * as tf from '@tensorflow/tfjs-core';
import { viewSync } from '../tf/tensor-io.ts';
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
    const xT = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
    const f = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    // The padding as the convolution's own (explicit): the wasm backend's PadV2 cost more than the convolution.
    const pad: Parameters<typeof tf.conv2d>[3] = [
      [0, 0],
      [s.padTop, s.padBottom],
      [s.padLeft, s.padRight],
      [0, 0],
    ];
    const y = tf.conv2d(xT, f, 1, pad, 'NHWC', stride);
    const cut = y.shape[1] === kernelH && y.shape[2] === kernelW ? y : tf.slice(y, [0, 0, 0, 0], [c, kernelH, kernelW, co]);
    return tf.transpose(cut, [1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/**
 * The input gradient of conv2d, dx [N, H, W, Ci], as stride x stride ordinary convolutions of dy
 * (one per output phase (y mod stride, x mod stride): the kernel taps that reach that phase,
 * reversed, with in and out channels swapped), run on the backend's fast convolution and
 * interleaved. The wasm backend's Conv2DBackpropInput (tf.conv2dTranspose) is a plain loop, 10x
 * the forward convolution.
 */
export function inputGradient(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: readonly [number, number, number, number],
  stride: number,
  padding: Padding,
): tf.Tensor4D {
  const [n, h, wd, c] = xShape;
  const [kh, kw, , co] = w.shape;
  const s = convShape({ inH: h, inW: wd, inC: c, channels: co, kernelH: kh, kernelW: kw, stride, padding });
  const wv = w.dataSync();
  // Rows (or columns) of every phase: the largest phase's count, the rest cut off when interleaving.
  const qh = Math.ceil(h / stride);
  const qw = Math.ceil(wd / stride);
  const axis = (r: number, pad: number, k: number, outLen: number, q: number) => {
    const k0 = (r + pad) % stride;
    const taps = k0 < k ? Math.ceil((k - k0) / stride) : 0;
    const d = (r + pad - k0) / stride;
    const before = taps - 1 - d;
    return { k0, taps, before, after: q + taps - 1 - outLen - before };
  };
  const phases: (tf.Tensor4D | undefined)[] = [];
  for (let ry = 0; ry < stride; ry++) {
    for (let rx = 0; rx < stride; rx++) {
      const ay = axis(ry, s.padTop, kh, s.outH, qh);
      const ax = axis(rx, s.padLeft, kw, s.outW, qw);
      if (ay.taps === 0 || ax.taps === 0) {
        phases.push(undefined);
        continue;
      }
      // f[jy, jx, o, ci] = w[k0y + stride (tapsY - 1 - jy), k0x + stride (tapsX - 1 - jx), ci, o]
      const f = new Float32Array(ay.taps * ax.taps * co * c);
      let q = 0;
      for (let jy = 0; jy < ay.taps; jy++)
        for (let jx = 0; jx < ax.taps; jx++) {
          const base = ((ay.k0 + stride * (ay.taps - 1 - jy)) * kw + (ax.k0 + stride * (ax.taps - 1 - jx))) * c * co;
          for (let o = 0; o < co; o++) for (let ci = 0; ci < c; ci++) f[q++] = wv[base + ci * co + o]!;
        }
      phases.push(
        tf.tidy(() => {
          // Negative padding is a crop of dy.
          const top = Math.max(0, -ay.before);
          const left = Math.max(0, -ax.before);
          const rows = s.outH - top - Math.max(0, -ay.after);
          const cols = s.outW - left - Math.max(0, -ax.after);
          const src = top || left || rows < s.outH || cols < s.outW ? tf.slice(dy, [0, top, left, 0], [n, rows, cols, co]) : dy;
          const pad: Parameters<typeof tf.conv2d>[3] = [
            [0, 0],
            [Math.max(0, ay.before), Math.max(0, ay.after)],
            [Math.max(0, ax.before), Math.max(0, ax.after)],
            [0, 0],
          ];
          return tf.conv2d(src, tf.tensor4d(f, [ay.taps, ax.taps, co, c]), 1, pad);
        }),
      );
    }
  }
  // Interleave: dx[b, qy stride + ry, qx stride + rx, :] = phase (ry, rx) at [b, qy, qx, :].
  const dx = new Float32Array(n * h * wd * c);
  for (let ry = 0; ry < stride; ry++) {
    for (let rx = 0; rx < stride; rx++) {
      const p = phases[ry * stride + rx];
      if (!p) continue;
      const v = viewSync(p);
      for (let b = 0; b < n; b++)
        for (let qy = 0, y = ry; y < h; qy++, y += stride)
          for (let qx = 0, x = rx; x < wd; qx++, x += stride) {
            const from = ((b * qh + qy) * qw + qx) * c;
            const to = ((b * h + y) * wd + x) * c;
            for (let ci = 0; ci < c; ci++) dx[to + ci] = v[from + ci]!;
          }
    }
  }
  tf.dispose(phases.filter((p) => p !== undefined));
  return tf.tensor4d(dx, [n, h, wd, c]);
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
          const dx = inputGrad ? inputGradient(dy as tf.Tensor4D, sw, sx.shape, stride, padding) : tf.zeros(sx.shape);
          return [dx, kernelGradient(sx, dy as tf.Tensor4D, kh, kw, stride, padding)];
        });
      },
    };
  });
  return op(x, w) as tf.Tensor4D;
}
