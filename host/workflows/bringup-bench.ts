import { allOffCodes } from '../../calibration/probe-configs.ts';
import type { DacSpec, LayerGeometry, SafeRange } from '../../models/chips/chip-backend.ts';
import type { ChipDevice, DeviceInfo } from '../device/chip-device.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import { layerGeometry } from '../../calibration/chip-mapping.ts';

/** The device plus what its weight memory holds, so a new configuration sends only what changed. */
export class Bench {
  readonly info: DeviceInfo;
  readonly geometry: LayerGeometry[];
  readonly dac: DacSpec;
  readonly safe: SafeRange;
  private readonly held: (Uint16Array | undefined)[];

  constructor(
    readonly dev: ChipDevice,
    readonly signal: AbortSignal | undefined,
  ) {
    this.info = dev.info;
    this.geometry = this.info.layers.map(layerGeometry);
    this.dac = this.info.dac;
    this.safe = { nmos: this.info.safe.nmos as [number, number], pmos: this.info.safe.pmos as [number, number] };
    this.held = this.geometry.map(() => undefined);
  }

  get layers(): number {
    return this.geometry.length;
  }

  off(layer: number): Uint16Array {
    return allOffCodes(this.geometry[layer], this.dac, this.safe);
  }

  /** Makes the device hold `codes` in a layer (only changed runs are sent once the content is known). */
  async set(layer: number, codes: Uint16Array): Promise<void> {
    this.signal?.throwIfAborted();
    const prev = this.held[layer];
    // What the device holds once this upload lands: a set() issued before this one finishes starts
    // from it (ChipDevice lands a layer's uploads in the order they were issued).
    this.held[layer] = codes;
    try {
      if (prev) await this.dev.uploadChanged(layer, prev, codes, { signal: this.signal });
      else await this.dev.uploadWeights(layer, codes, { signal: this.signal });
    } catch (err) {
      this.held[layer] = undefined;
      throw err;
    }
  }

  /** Uploads and checks the CRC; the content is known afterwards only if it matched. */
  async setVerified(layer: number, codes: Uint16Array): Promise<{ ok: boolean; detail: string }> {
    this.held[layer] = undefined;
    await this.dev.uploadWeights(layer, codes, { signal: this.signal });
    const v = await this.dev.verifyWeights(layer, codes);
    if (v.ok) this.held[layer] = codes;
    return v;
  }

  /** Runs samples; `layers` (default all) are the layers whose spike times are read: the others come back empty. */
  async run(inputs: Uint16Array, batch: number, onProgress?: (done: number) => void, layers?: readonly number[]): Promise<Uint16Array[]> {
    this.signal?.throwIfAborted();
    return this.dev.run(inputs, batch, { signal: this.signal, onProgress: onProgress && ((p) => onProgress(p.done)), layers });
  }

  /** Layers 0..l: a probe of layer l reads its relays' spikes and its own. */
  upTo(l: number): number[] {
    return Array.from({ length: l + 1 }, (_, k) => k);
  }

  /** Samples with the given external inputs active at tick 0 (each entry: the inputs of one sample). */
  samples(active: readonly (readonly number[])[]): Uint16Array {
    const n = this.geometry[0].inputs;
    const x = new Uint16Array(active.length * n).fill(SILENT_TICK);
    active.forEach((ins, s) => ins.forEach((j) => (x[s * n + j] = 0)));
    return x;
  }
}
