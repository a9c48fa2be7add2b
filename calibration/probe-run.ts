/**
 * Measuring probe blocks on a device: relays in front of the probed layer, the block's codes in it,
 * the block's inputs through the relays, and every layer's spikes back. The probed layer's inputs
 * are what the device measured on the previous layer (or the ticks sent, for layer 0), so each layer
 * is fitted on its own real inputs.
 *
 * Times come back normalised (t0 = layer 0's window) by wire/ticks.ts: inputs of layer 0 are edge
 * times (the board drives edges on ticks), measured spikes capture times (the tick's centre, the
 * unbiased estimate of a time the timer floors). Silent = +Infinity.
 */

import { NMOS, type DacSpec, type LayerGeometry, type SafeRange } from '../models/chips/chip-backend.ts';
import { fullOnCode, relayCodes } from './probe-configs.ts';
import type { BlockKind, ProbeBlock } from './probe-plan.ts';
import { capturedTimes, SILENT_TICK, ticksToTimes } from '../wire/ticks.ts';

export interface ProbeLayer extends LayerGeometry {
  horizonTicks: number;
}

/** What calibration needs of a device; host/ adapts a ChipDevice to it. */
export interface ProbeTarget {
  layers: readonly ProbeLayer[];
  dac: DacSpec;
  safe: SafeRange;
  tickSeconds: number;
  /** Writes a whole layer's weight memory (implementations may send only what changed). */
  upload(layer: number, codes: Uint16Array): Promise<void>;
  /**
   * One inference per sample; every layer's spike ticks (batch x outputs, SILENT_TICK = silent).
   * `layers` names the layers the caller reads: a target may return only those (the others empty).
   */
  run(inputTicks: Uint16Array, batch: number, layers?: readonly number[]): Promise<Uint16Array[]>;
  /**
   * True when uploads and runs may be issued without awaiting the ones before: the target measures
   * each run against every upload issued before it and none after (a ChipDevice does: the board
   * works in arrival order). Then blocks overlap: the next block's upload and RUN are on the wire
   * while the board runs the current one and the host reads the one before.
   */
  pipelined?: boolean;
  /** Programmable precharge / threshold (the board's "neuron-config" feature); absent when fixed. */
  neuronVoltages?(layer: number): Promise<{ vRest: number; vThreshold: number }>;
  setNeuronVoltages?(layer: number, vRest: number, vThreshold: number): Promise<{ vRest: number; vThreshold: number }>;
}

export interface LayerSamples {
  layer: number;
  kind: BlockKind;
  codes: Uint16Array;
  batch: number;
  /** batch x inputs switch-on times of the layer's inputs (normalised; +Infinity = silent). */
  inputs: Float64Array;
  /** batch x outputs measured spike times (tick centres, normalised; +Infinity = silent). */
  out: Float64Array;
  repeat?: number;
  /** The precharge was raised by this many volts for the block (the membrane starts below rest in u). */
  restShiftVolts?: number;
}

/** How many inputs of layer l the identity relays can drive: the narrowest layer in front of it. */
export function drivenInputs(layers: readonly ProbeLayer[], l: number): number {
  let d = layers[0].inputs;
  for (let k = 0; k < l; k++) d = Math.min(d, layers[k].outputs);
  return Math.min(d, layers[l].inputs);
}

export interface RunBlocksOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Blocks issued ahead of the one being read on a pipelined target: enough to keep the line full, few enough to bound the memory of queued requests. */
export const BLOCKS_AHEAD = 4;

/**
 * Measures blocks in order; layers in front of each block's layer are set as identity relays. On
 * a pipelined target up to BLOCKS_AHEAD blocks are issued before the oldest is read (a block that
 * changes the precharge waits for the ones before it and is measured alone); the device sees the
 * same uploads and runs in the same order either way.
 */
export async function measureBlocks(target: ProbeTarget, blocks: readonly ProbeBlock[], opts: RunBlocksOptions = {}): Promise<LayerSamples[]> {
  const perUnit = target.layers[0].horizonTicks;
  const relayState: boolean[] = target.layers.map(() => false);
  const out: LayerSamples[] = [];
  let lastCodes: Uint16Array | undefined;
  let lastLayer = -1;
  const ahead = target.pipelined ? BLOCKS_AHEAD : 0;
  const issued: { b: ProbeBlock; ticks: Uint16Array; uploads: Promise<void>[]; measured: Promise<{ res: Uint16Array[]; shift: number }> }[] = [];
  /** Reads the oldest issued block (its uploads' failures first, in order). */
  const readOldest = async () => {
    const { b, ticks, uploads, measured } = issued.shift()!;
    for (const u of uploads) await u;
    const { res, shift } = await measured;
    const l = b.layer;
    out.push({
      layer: l,
      kind: b.kind,
      codes: b.codes,
      batch: b.batch,
      inputs: l === 0 ? ticksToTimes(ticks, perUnit) : capturedTimes(res[l - 1], perUnit),
      out: capturedTimes(res[l], perUnit),
      repeat: b.repeat,
      restShiftVolts: shift || undefined,
    });
    opts.onProgress?.(out.length, blocks.length);
  };
  try {
    for (const b of blocks) {
      opts.signal?.throwIfAborted();
      // a precharge change is not ordered against RUNs in flight: it waits for them
      if (b.restShiftVolts) while (issued.length) await readOldest();
      const uploads: Promise<void>[] = [];
      const l = b.layer;
      for (let m = 0; m < l; m++) {
        if (!relayState[m]) {
          const g = target.layers[m];
          uploads.push(target.upload(m, relayCodes(g, target.dac, target.safe, fullOnCode(target.dac, target.safe, NMOS))));
          relayState[m] = true;
        }
      }
      if (lastLayer !== l || lastCodes !== b.codes) {
        uploads.push(target.upload(l, b.codes));
        relayState[l] = false;
        lastCodes = b.codes;
        lastLayer = l;
      }
      // read in order below; a failure there stops the rest
      for (const u of uploads) u.catch(() => {});
      if (!target.pipelined) for (const u of uploads) await u;
      const ticks = blockTicks(target, b);
      const measured = runBlock(target, b, ticks, uploads);
      measured.catch(() => {});
      issued.push({ b, ticks, uploads, measured });
      if (b.restShiftVolts || issued.length > ahead) await readOldest();
    }
    while (issued.length) await readOldest();
  } finally {
    // nothing left unobserved when one failed
    for (const { uploads, measured } of issued) for (const p of [...uploads, measured]) p.catch(() => {});
  }
  return out;
}

/** The block's inputs as layer-0 ticks (batch x inputs of layer 0; inputs past layer 0's width never fire). */
function blockTicks(target: ProbeTarget, b: ProbeBlock): Uint16Array {
  const n0 = target.layers[0].inputs;
  const nl = target.layers[b.layer].inputs;
  const ticks = new Uint16Array(b.batch * n0).fill(SILENT_TICK);
  for (let s = 0; s < b.batch; s++) {
    for (let j = 0; j < nl; j++) {
      const t = b.inputTicks[s * nl + j];
      if (t !== SILENT_TICK && j < n0) ticks[s * n0 + j] = t;
    }
  }
  return ticks;
}

/** Runs one block (with its precharge raised when it asks; `uploads` are awaited first then). */
async function runBlock(target: ProbeTarget, b: ProbeBlock, ticks: Uint16Array, uploads: Promise<void>[]): Promise<{ res: Uint16Array[]; shift: number }> {
  const l = b.layer;
  // the block reads its layer's inputs (the layer before, for l > 0) and outputs
  const read = l === 0 ? [0] : [l - 1, l];
  if (!b.restShiftVolts) return { res: await target.run(ticks, b.batch, read), shift: 0 };
  for (const u of uploads) await u;
  if (!target.setNeuronVoltages || !target.neuronVoltages) throw new Error('this device cannot program its neuron voltages (no neuron-config feature)');
  const v = await target.neuronVoltages(l);
  const applied = await target.setNeuronVoltages(l, v.vRest + b.restShiftVolts, v.vThreshold);
  // What the board applied (after its DAC rounding) is what the membrane starts from.
  const shift = applied.vRest - v.vRest;
  try {
    return { res: await target.run(ticks, b.batch, read), shift };
  } finally {
    await target.setNeuronVoltages(l, v.vRest, v.vThreshold);
  }
}
