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

/** Measures blocks in order; layers in front of each block's layer are set as identity relays. */
export async function measureBlocks(target: ProbeTarget, blocks: readonly ProbeBlock[], opts: RunBlocksOptions = {}): Promise<LayerSamples[]> {
  const perUnit = target.layers[0].horizonTicks;
  const n0 = target.layers[0].inputs;
  const relayState: boolean[] = target.layers.map(() => false);
  const out: LayerSamples[] = [];
  let lastCodes: Uint16Array | undefined;
  let lastLayer = -1;
  for (const [k, b] of blocks.entries()) {
    opts.signal?.throwIfAborted();
    const l = b.layer;
    for (let m = 0; m < l; m++) {
      if (!relayState[m]) {
        const g = target.layers[m];
        await target.upload(m, relayCodes(g, target.dac, target.safe, fullOnCode(target.dac, target.safe, NMOS)));
        relayState[m] = true;
      }
    }
    if (lastLayer !== l || lastCodes !== b.codes) {
      await target.upload(l, b.codes);
      relayState[l] = false;
      lastCodes = b.codes;
      lastLayer = l;
    }
    const nl = target.layers[l].inputs;
    const ticks = new Uint16Array(b.batch * n0).fill(SILENT_TICK);
    for (let s = 0; s < b.batch; s++) {
      for (let j = 0; j < nl; j++) {
        const t = b.inputTicks[s * nl + j];
        if (t !== SILENT_TICK && j < n0) ticks[s * n0 + j] = t;
      }
    }
    let res: Uint16Array[];
    let shift = 0;
    // the block reads its layer's inputs (the layer before, for l > 0) and outputs
    const read = l === 0 ? [0] : [l - 1, l];
    if (b.restShiftVolts) {
      if (!target.setNeuronVoltages || !target.neuronVoltages) throw new Error('this device cannot program its neuron voltages (no neuron-config feature)');
      const v = await target.neuronVoltages(l);
      const applied = await target.setNeuronVoltages(l, v.vRest + b.restShiftVolts, v.vThreshold);
      // What the board applied (after its DAC rounding) is what the membrane starts from.
      shift = applied.vRest - v.vRest;
      try {
        res = await target.run(ticks, b.batch, read);
      } finally {
        await target.setNeuronVoltages(l, v.vRest, v.vThreshold);
      }
    } else res = await target.run(ticks, b.batch, read);
    const inputs = l === 0 ? ticksToTimes(ticks, perUnit) : capturedTimes(res[l - 1], perUnit);
    out.push({
      layer: l,
      kind: b.kind,
      codes: b.codes,
      batch: b.batch,
      inputs,
      out: capturedTimes(res[l], perUnit),
      repeat: b.repeat,
      restShiftVolts: shift || undefined,
    });
    opts.onProgress?.(k + 1, blocks.length);
  }
  return out;
}
