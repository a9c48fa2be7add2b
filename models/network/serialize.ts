/**
 * Saving and loading trained networks: one tensor file (models/io/tensor-file.ts) with a JSON
 * header (the network config, each layer's description, free-form `info` such as the training
 * run that produced it) and binary float32 arrays.
 *
 * Per layer l the file holds the trained parameters `l<l>.pE`, `l<l>.pI` (reloaded bit for bit,
 * so a reloaded network predicts exactly as the saved one) and, for tools that want physical
 * values without this code, the conductances `l<l>.gE`, `l<l>.gI` in normalised units
 * (g * t0 / C, see models/neuron/units.ts). A conv layer (conv-layer.ts) stores its shared
 * kernels the same way, shaped [kernelH, kernelW, inC, channels] (HWIO), and its geometry in the
 * header; the config's `arch` says which layers are conv. Files with conv layers are version 2;
 * a network of dense layers is still written as version 1, and both versions load.
 */

import { z } from 'zod';
import { loadArrays, saveArrays, TensorFileError, type NumericArray } from '../io/tensor-file.ts';
import { convGeometrySchema } from '../conv/geometry.ts';
import type { DriveMode, LayerState } from './layer.ts';
import { checkConfig, networkConfigSchema, SpikingNetwork } from './network.ts';
import { conductancesOf } from './conductance-units.ts';

export const NETWORK_FILE_NAME = 'spikeloop-network';
/** Written for networks with conv layers; dense-only networks keep version 1 (older readers load them). */
export const NETWORK_FILE_VERSION = 2;

/** What every synapse layer records (models/network/synapse-layer.ts). */
const synapseFields = {
  nIn: z.number().int().positive(),
  nOut: z.number().int().positive(),
  model: z.enum(['pnn', 'ideal']),
  ePlus: z.number().positive(),
  eMinus: z.number().negative(),
  horizon: z.number().positive(),
  timeOffset: z.number().nonnegative(),
  scale: z.number().positive(),
};

const denseLayerSchema = z.strictObject({ kind: z.literal('dense'), ...synapseFields });

const convLayerSchema = convGeometrySchema.extend({ kind: z.literal('conv'), pool: z.number().int().positive(), ...synapseFields });

const layerSchema = z.discriminatedUnion('kind', [denseLayerSchema, convLayerSchema]);

const metaSchema = z.looseObject({
  name: z.literal(NETWORK_FILE_NAME),
  version: z.union([z.literal(1), z.literal(2)]),
  config: networkConfigSchema,
  layers: z.array(layerSchema),
  info: z.record(z.string(), z.unknown()).optional(),
});

export async function saveNetwork(path: string, net: SpikingNetwork, info: Record<string, unknown> = {}): Promise<void> {
  const arrays: Record<string, { data: NumericArray; shape: number[] }> = {};
  const states = net.layerStates();
  const layers = states.map((s, l) => {
    const shape = s.kind === 'conv' ? [s.kernelH, s.kernelW, s.inC, s.channels] : [s.nIn, s.nOut];
    const g = conductancesOf(s, s.pE, s.pI);
    const gE = Float32Array.from(g.gE);
    const gI = Float32Array.from(g.gI);
    arrays[`l${l}.pE`] = { data: s.pE, shape };
    arrays[`l${l}.pI`] = { data: s.pI, shape };
    arrays[`l${l}.gE`] = { data: gE, shape };
    arrays[`l${l}.gI`] = { data: gI, shape };
    if (s.kind === 'conv') {
      const { pE: _pE, pI: _pI, ...desc } = s;
      return desc;
    }
    if (s.thresholdScale) arrays[`l${l}.thresholdScale`] = { data: s.thresholdScale, shape: [s.nOut] };
    if (s.delay) arrays[`l${l}.delay`] = { data: s.delay, shape: [s.nOut] };
    const { pE: _pE, pI: _pI, thresholdScale: _t, delay: _d, ...desc } = s;
    return desc;
  });
  const version = states.some((s) => s.kind !== 'dense') || net.config.arch !== undefined ? NETWORK_FILE_VERSION : 1;
  await saveArrays(path, { name: NETWORK_FILE_NAME, version, config: net.config, layers, info }, arrays);
}

export interface LoadedNetwork {
  net: SpikingNetwork;
  info: Record<string, unknown>;
}

export async function loadNetwork(path: string, drives: DriveMode = 'events'): Promise<LoadedNetwork> {
  const file = await loadArrays(path);
  const parsed = metaSchema.safeParse(file.meta);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new TensorFileError(
      path,
      `not a spikeloop network file of version 1 or ${NETWORK_FILE_VERSION}: header field "${i.path.join('.')}" ${i.message}; save it again with spikeloop train`,
    );
  }
  const meta = parsed.data;
  const config = checkConfig(meta.config);
  if (meta.layers.length !== config.sizes.length - 1) {
    throw new TensorFileError(path, `${meta.layers.length} layers described for sizes ${config.sizes.join('-')}; the file is inconsistent, save it again`);
  }
  const states: LayerState[] = meta.layers.map((d, l) => {
    const shape = d.kind === 'conv' ? [d.kernelH, d.kernelW, d.inC, d.channels] : [d.nIn, d.nOut];
    const count = shape.reduce((a, b) => a * b, 1);
    const get = (k: string): Float32Array => {
      const a = file.arrays[`l${l}.${k}`];
      if (!(a instanceof Float32Array) || a.length !== count) {
        throw new TensorFileError(path, `array l${l}.${k} is missing or not float32 [${shape.join(', ')}]; save the network again`);
      }
      return Float32Array.from(a);
    };
    if (d.kind === 'conv') return { ...d, pE: get('pE'), pI: get('pI') };
    /** Optional per-neuron array [nOut]. */
    const opt = (k: 'thresholdScale' | 'delay'): { [key: string]: Float32Array } => {
      const a = file.arrays[`l${l}.${k}`];
      if (a === undefined) return {};
      if (!(a instanceof Float32Array) || a.length !== d.nOut)
        throw new TensorFileError(path, `array l${l}.${k} is not float32 [${d.nOut}]; save the network again`);
      return { [k]: Float32Array.from(a) };
    };
    return { ...d, pE: get('pE'), pI: get('pI'), ...opt('thresholdScale'), ...opt('delay') };
  });
  let net: SpikingNetwork;
  try {
    net = SpikingNetwork.fromStates(config, states, drives);
  } catch (err) {
    throw new TensorFileError(path, `the layers do not match the network config: ${(err as Error).message}; save the network again`);
  }
  return { net, info: meta.info ?? {} };
}
