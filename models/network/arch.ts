/**
 * Network descriptions beyond a list of widths: an input image shape and a stack of
 * conv / pool / dense entries (issue #31), validated with zod, compiled to the network's neuron
 * layers, and named presets.
 *
 * A pool entry has no neurons: it attaches to the conv entry before it (earliest-spike pooling
 * inside that layer, conv-layer.ts), so every conv or dense entry is one layer of the network's
 * layer-wise windows (docs/MODEL.md §6) and `sizes` are the flat widths between them (NHWC).
 */

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { convShape, pooledShape, type ConvGeometry } from '../conv/geometry.ts';

export const archLayerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('conv'),
    channels: z.number().int().min(1).max(4096),
    kernel: z.number().int().min(1).max(15),
    stride: z.number().int().min(1).max(8).default(1),
    padding: z.enum(['same', 'valid']).default('same'),
  }),
  z.strictObject({ type: z.literal('pool'), size: z.number().int().min(2).max(8) }),
  z.strictObject({
    type: z.literal('dense'),
    units: z
      .number()
      .int()
      .min(1)
      .max(1 << 16),
  }),
]);

export const architectureSchema = z.strictObject({
  /** Input image: height, width, channels (NHWC; data rows are flattened in that order). */
  input: z.strictObject({ height: z.number().int().min(1).max(4096), width: z.number().int().min(1).max(4096), channels: z.number().int().min(1).max(64) }),
  layers: z.array(archLayerSchema).min(1),
});

export type ArchLayer = z.output<typeof archLayerSchema>;
export type Architecture = z.output<typeof architectureSchema>;
export type ArchitectureInput = z.input<typeof architectureSchema>;

/** One neuron layer of a compiled architecture. */
export type CompiledLayer = { kind: 'dense'; nIn: number; nOut: number } | { kind: 'conv'; nIn: number; nOut: number; geometry: ConvGeometry; pool: number };

export interface CompiledArchitecture {
  /** Flat widths, inputs first (a network config's `sizes`). */
  sizes: number[];
  layers: CompiledLayer[];
}

/**
 * Validates an architecture and compiles it to neuron layers. Throws RangeError naming the entry,
 * the problem and the fix (a pool with no conv before it, a conv after a dense layer, a map that
 * shrinks to nothing).
 */
export function compileArchitecture(a: ArchitectureInput): CompiledArchitecture {
  const r = architectureSchema.safeParse(a);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new RangeError(`architecture ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const arch = r.data;
  let h = arch.input.height;
  let w = arch.input.width;
  let c = arch.input.channels;
  let flat: number | undefined;
  const sizes = [h * w * c];
  const layers: CompiledLayer[] = [];
  arch.layers.forEach((e, k) => {
    const where = `architecture layers.${k} (${e.type})`;
    if (e.type === 'conv') {
      if (flat !== undefined) throw new RangeError(`${where}: a conv layer cannot follow a dense layer; put conv and pool entries first`);
      const geometry: ConvGeometry = {
        inH: h,
        inW: w,
        inC: c,
        channels: e.channels,
        kernelH: e.kernel,
        kernelW: e.kernel,
        stride: e.stride,
        padding: e.padding,
      };
      let s;
      try {
        s = convShape(geometry);
      } catch (err) {
        throw new RangeError(`${where}: ${(err as Error).message}`);
      }
      layers.push({ kind: 'conv', nIn: h * w * c, nOut: s.nOut, geometry, pool: 1 });
      [h, w, c] = [s.outH, s.outW, e.channels];
      sizes.push(s.nOut);
    } else if (e.type === 'pool') {
      const prev = layers[layers.length - 1];
      if (prev?.kind !== 'conv' || prev.pool !== 1 || arch.layers[k - 1]?.type !== 'conv') {
        throw new RangeError(`${where}: a pool entry must come right after a conv entry (it pools that layer's spikes)`);
      }
      let p;
      try {
        p = pooledShape(h, w, e.size);
      } catch (err) {
        throw new RangeError(`${where}: ${(err as Error).message}`);
      }
      prev.pool = e.size;
      [h, w] = [p.h, p.w];
      prev.nOut = h * w * c;
      sizes[sizes.length - 1] = prev.nOut;
    } else {
      const nIn = flat ?? h * w * c;
      layers.push({ kind: 'dense', nIn, nOut: e.units });
      flat = e.units;
      sizes.push(e.units);
    }
  });
  return { sizes, layers };
}

/** A one-line description, e.g. "28x28x1 conv16@5x5-pool2-conv32@3x3-pool2-dense128-dense10". */
export function describeArch(a: Architecture): string {
  const parts = a.layers.map((e) =>
    e.type === 'conv'
      ? `conv${e.channels}@${e.kernel}x${e.kernel}${e.stride > 1 ? `/${e.stride}` : ''}${e.padding === 'valid' ? 'v' : ''}`
      : e.type === 'pool'
        ? `pool${e.size}`
        : `dense${e.units}`,
  );
  return `${a.input.height}x${a.input.width}x${a.input.channels} ${parts.join('-')}`;
}

/** A conv layer of `channels` kernel x kernel followed by 2x2 earliest-spike pooling. */
const convPool = (channels: number, kernel: number) => [{ type: 'conv', channels, kernel } as const, { type: 'pool', size: 2 } as const];

/** Named architectures (`--arch` presets). */
export const ARCH_PRESETS = {
  /**
   * Small conv net for MNIST / Fashion-MNIST (28x28x1): conv 16@5x5 - pool 2 - conv 32@3x3 -
   * pool 2 - dense 128 - dense 10 (widths 784-3136-1568-128-10).
   */
  'mnist-conv': {
    input: { height: 28, width: 28, channels: 1 },
    layers: [...convPool(16, 5), ...convPool(32, 3), { type: 'dense', units: 128 }, { type: 'dense', units: 10 }],
  },
  /**
   * Smaller conv net for MNIST / Fashion-MNIST with strided convolutions instead of pooling, so
   * every layer has a crossbar form (its unrolled Toeplitz layer) and deploys: conv 8@5x5 stride 2 -
   * conv 16@3x3 stride 2 - dense 64 - dense 10 (widths 784-1568-784-64-10).
   */
  'mnist-conv-s2': {
    input: { height: 28, width: 28, channels: 1 },
    layers: [
      { type: 'conv', channels: 8, kernel: 5, stride: 2 },
      { type: 'conv', channels: 16, kernel: 3, stride: 2 },
      { type: 'dense', units: 64 },
      { type: 'dense', units: 10 },
    ],
  },
  /**
   * mnist-conv-s2 with 'valid' convolutions (4x4 kernels in the first layer so the map keeps its
   * last row): every neuron sees a whole receptive field, the condition under which a ReLU conv
   * net maps exactly onto the spiking one (`--from-ann`, models/ann/mapping.ts): conv 8@4x4 stride 2
   * - conv 16@3x3 stride 2 - dense 64 - dense 10 (widths 784-1352-576-64-10).
   */
  'mnist-conv-valid': {
    input: { height: 28, width: 28, channels: 1 },
    layers: [
      { type: 'conv', channels: 8, kernel: 4, stride: 2, padding: 'valid' },
      { type: 'conv', channels: 16, kernel: 3, stride: 2, padding: 'valid' },
      { type: 'dense', units: 64 },
      { type: 'dense', units: 10 },
    ],
  },
  /**
   * VGG-5-like net for CIFAR-10 (32x32x3), three 3x3 conv layers and two dense layers:
   * conv 64 - pool 2 - conv 128 - pool 2 - conv 256 - pool 2 - dense 256 - dense 10
   * (widths 3072-16384-8192-4096-256-10).
   */
  'cifar-vgg5': {
    input: { height: 32, width: 32, channels: 3 },
    layers: [...convPool(64, 3), ...convPool(128, 3), ...convPool(256, 3), { type: 'dense', units: 256 }, { type: 'dense', units: 10 }],
  },
} as const satisfies Record<string, ArchitectureInput>;

export type ArchPresetName = keyof typeof ARCH_PRESETS;

/** A preset by name, parsed (defaults filled in); RangeError listing the names otherwise. */
export function archPreset(name: string): Architecture {
  if (!Object.hasOwn(ARCH_PRESETS, name)) throw new RangeError(`unknown architecture preset '${name}'; use one of ${Object.keys(ARCH_PRESETS).join(', ')}`);
  return architectureSchema.parse(ARCH_PRESETS[name as ArchPresetName]);
}

/**
 * `--arch`: a preset name, or a JSON file holding an architecture. Throws RangeError naming the
 * preset names, the file, or the entry that is wrong.
 */
export function readArchitecture(spec: string): Architecture {
  if (Object.hasOwn(ARCH_PRESETS, spec)) return archPreset(spec);
  if (!spec.endsWith('.json')) throw new RangeError(`'${spec}' is neither a preset (${Object.keys(ARCH_PRESETS).join(', ')}) nor a .json file`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (err) {
    throw new RangeError(`cannot read the architecture file ${spec}: ${(err as Error).message}`);
  }
  compileArchitecture(raw as ArchitectureInput);
  return architectureSchema.parse(raw);
}
