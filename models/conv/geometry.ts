/**
 * Geometry of a convolutional PNN layer and its unrolling to dense (Toeplitz) weights.
 *
 * Layout is NHWC throughout: an image of height H, width W and C channels is flattened as
 * index (y W + x) C + c, for inputs and outputs alike, and kernels are HWIO
 * ([kernelH, kernelW, inChannels, outChannels], as tf.conv2d takes them). Padding follows
 * TensorFlow: 'valid' uses no padding; 'same' gives ceil(H / stride) outputs and pads
 * max((out - 1) stride + k - H, 0) in total, the smaller half before.
 *
 * Why the unroll is first-class: a chip is a dense crossbar, so a convolutional layer is deployed
 * as its Toeplitz weights with the synapses outside every receptive field switched off, and the
 * exact solver (docs/MODEL.md §5.1) runs on that dense layer; the output neuron (oy, ox, o) sees
 * input (oy stride + ky - padTop, ox stride + kx - padLeft, c) through kernel entry (ky, kx, c, o).
 */

import { z } from 'zod';

export type Padding = 'same' | 'valid';

export interface ConvGeometry {
  inH: number;
  inW: number;
  inC: number;
  /** Output channels (feature maps). */
  channels: number;
  kernelH: number;
  kernelW: number;
  stride: number;
  padding: Padding;
}

export const convGeometrySchema = z.strictObject({
  inH: z.number().int().min(1).max(4096),
  inW: z.number().int().min(1).max(4096),
  inC: z.number().int().min(1).max(65536),
  channels: z.number().int().min(1).max(65536),
  kernelH: z.number().int().min(1).max(64),
  kernelW: z.number().int().min(1).max(64),
  stride: z.number().int().min(1).max(64),
  padding: z.enum(['same', 'valid']),
});

export interface ConvShape {
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
  padBottom: number;
  padRight: number;
  /** Flat widths: inH inW inC and outH outW channels. */
  nIn: number;
  nOut: number;
  /** Entries of one kernel: kernelH kernelW inC channels. */
  kernelSize: number;
}

/** Validates a geometry (RangeError naming the field) and derives the output size and padding. */
export function convShape(g: ConvGeometry): ConvShape {
  // Only the geometry's own fields: callers pass layer states that hold more.
  const { inH, inW, inC, channels, kernelH, kernelW, stride, padding } = g;
  const r = convGeometrySchema.safeParse({ inH, inW, inC, channels, kernelH, kernelW, stride, padding });
  if (!r.success) {
    const i = r.error.issues[0]!;
    const f = i.path.join('.');
    throw new RangeError(`conv geometry ${f} = ${JSON.stringify((g as unknown as Record<string, unknown>)[f])}: ${i.message}`);
  }
  const axis = (n: number, k: number, name: string): [number, number, number] => {
    if (g.padding === 'valid') {
      if (k > n)
        throw new RangeError(`conv geometry: kernel ${name} ${k} is larger than the input's ${n} with padding 'valid'; use 'same' or a smaller kernel`);
      return [Math.floor((n - k) / g.stride) + 1, 0, 0];
    }
    const out = Math.ceil(n / g.stride);
    const total = Math.max((out - 1) * g.stride + k - n, 0);
    const before = Math.floor(total / 2);
    return [out, before, total - before];
  };
  const [outH, padTop, padBottom] = axis(g.inH, g.kernelH, 'height');
  const [outW, padLeft, padRight] = axis(g.inW, g.kernelW, 'width');
  return {
    outH,
    outW,
    padTop,
    padLeft,
    padBottom,
    padRight,
    nIn: g.inH * g.inW * g.inC,
    nOut: outH * outW * g.channels,
    kernelSize: g.kernelH * g.kernelW * g.inC * g.channels,
  };
}

/**
 * For every dense weight (input j, output i), row-major [nIn, nOut], the index of the HWIO kernel
 * entry it shares, or kernelSize where input j lies outside output i's receptive field (a synapse
 * switched off). The dense weights are then gather([...kernel, 0], index).
 */
export function toeplitzIndex(g: ConvGeometry): Int32Array {
  const s = convShape(g);
  const { inW, inC, channels: co, kernelW, stride } = g;
  const idx = new Int32Array(s.nIn * s.nOut).fill(s.kernelSize);
  for (let oy = 0; oy < s.outH; oy++) {
    for (let ox = 0; ox < s.outW; ox++) {
      const i0 = (oy * s.outW + ox) * co;
      for (let ky = 0; ky < g.kernelH; ky++) {
        const y = oy * stride + ky - s.padTop;
        if (y < 0 || y >= g.inH) continue;
        for (let kx = 0; kx < kernelW; kx++) {
          const x = ox * stride + kx - s.padLeft;
          if (x < 0 || x >= inW) continue;
          for (let c = 0; c < inC; c++) {
            const j = (y * inW + x) * inC + c;
            const k0 = ((ky * kernelW + kx) * inC + c) * co;
            const row = j * s.nOut + i0;
            for (let o = 0; o < co; o++) idx[row + o] = k0 + o;
          }
        }
      }
    }
  }
  return idx;
}

/**
 * The dense [nIn, nOut] row-major weights of a convolution with HWIO `kernel` (any per-synapse
 * quantity: gE, gI, a drive at rest), zero outside the receptive fields. What deployment writes to
 * a crossbar and what the exact solver runs.
 */
export function convToDense(kernel: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const s = convShape(g);
  if (kernel.length !== s.kernelSize) {
    throw new RangeError(`kernel has ${kernel.length} entries, geometry needs ${g.kernelH}x${g.kernelW}x${g.inC}x${g.channels} = ${s.kernelSize}`);
  }
  const idx = toeplitzIndex(g);
  const out = new Float64Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const e = idx[k]!;
    if (e < s.kernelSize) out[k] = kernel[e]!;
  }
  return out;
}

/**
 * The adjoint of convToDense: a gradient with respect to the dense weights [nIn, nOut] summed into
 * the shared kernel entries (the gradient of a shared weight sums over its positions).
 */
export function denseToConvGrad(dense: ArrayLike<number>, g: ConvGeometry): Float64Array {
  const s = convShape(g);
  if (dense.length !== s.nIn * s.nOut) throw new RangeError(`dense gradient has ${dense.length} entries, expected nIn x nOut = ${s.nIn * s.nOut}`);
  const idx = toeplitzIndex(g);
  const out = new Float64Array(s.kernelSize);
  for (let k = 0; k < idx.length; k++) {
    const e = idx[k]!;
    if (e < s.kernelSize) out[e] += dense[k]!;
  }
  return out;
}

/** Pooling over non-overlapping size x size windows ('valid': a partial window at the edge is dropped). */
export function pooledShape(h: number, w: number, size: number): { h: number; w: number } {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, got ${size}`);
  if (size > h || size > w) throw new RangeError(`pool size ${size} is larger than the ${h}x${w} feature map; use a smaller pool or drop it`);
  return { h: Math.floor(h / size), w: Math.floor(w / size) };
}
