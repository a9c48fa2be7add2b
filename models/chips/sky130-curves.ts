/**
 * Transfer curves of the sky130 synapse transistors as SPICE gives them (data/sky130-devices.json,
 * `npm run characterise`), as opposed to the EKV fiction of NOMINAL_NMOS / NOMINAL_PMOS: the drain
 * current against gate and membrane voltage, and the reversal potentials E+ / E- against gate
 * voltage, at the bundled card (nominal) or at a PDK corner and temperature.
 */

import type { Polarity } from '../neuron/units.ts';
import { gridValue } from './spice/characterise-netlists.ts';
import { loadDeviceData, tableCurrent, type DeviceTable } from './spice/device-data.ts';
import type { CornerOrCard } from './spice/sky130-corners.ts';

export interface TransferCurves {
  readonly corner: CornerOrCard;
  readonly temperatureC: number;
  /** Gate range the curves cover, volts (the whole DAC range). */
  readonly gateRange: readonly [number, number];
  /** Membrane range the curves cover, volts. */
  readonly membraneRange: readonly [number, number];
  /** Drain current INTO the membrane, amperes (NMOS < 0, PMOS > 0), at gate `vg` and membrane `v`. */
  current(polarity: Polarity, vg: number, v: number): number;
  /**
   * Reversal potential in units of u (E+ for NMOS, E- for PMOS) at gate `vg`, from the slope of the
   * drain characteristic at mid-swing; null where the device is off (below 1 pA).
   */
  reversal(polarity: Polarity, vg: number): number | null;
}

class TableCurves implements TransferCurves {
  readonly corner: CornerOrCard;
  readonly temperatureC: number;
  readonly gateRange: readonly [number, number];
  readonly membraneRange: readonly [number, number];

  constructor(private readonly t: DeviceTable) {
    this.corner = t.corner;
    this.temperatureC = t.temperatureC;
    this.gateRange = [t.vg.start, gridValue(t.vg, t.vg.count - 1)];
    this.membraneRange = [t.vd.start, gridValue(t.vd, t.vd.count - 1)];
  }

  current(polarity: Polarity, vg: number, v: number): number {
    return tableCurrent(this.t, polarity === 'pmos', vg, v);
  }

  reversal(polarity: Polarity, vg: number): number | null {
    const e = polarity === 'pmos' ? this.t.eMinus : this.t.ePlus;
    const x = (vg - this.t.vg.start) / this.t.vg.step;
    if (!(x >= -1e-9 && x <= this.t.vg.count - 1 + 1e-9)) throw new RangeError(`gate voltage ${vg} V is outside ${this.gateRange[0]}..${this.gateRange[1]} V`);
    const j = Math.min(this.t.vg.count - 2, Math.max(0, Math.floor(x)));
    const f = Math.min(1, Math.max(0, x - j));
    const a = e[j];
    const b = e[j + 1];
    if (f === 0) return a;
    if (a === null || b === null) return null;
    return a + f * (b - a);
  }
}

let nominal: TransferCurves | undefined;

/** The bundled card at 27 C: the nominal curves. */
export function sky130NominalCurves(): TransferCurves {
  nominal ??= new TableCurves(loadDeviceData().nominal);
  return nominal;
}

/** The curves at a PDK corner (or the bare card) and one of the characterised temperatures. */
export function sky130Curves(corner: CornerOrCard, temperatureC: number): TransferCurves {
  const d = loadDeviceData();
  const t = d.sweeps.find((s) => s.corner === corner && s.temperatureC === temperatureC);
  if (!t) {
    const have = d.sweeps.map((s) => `${s.corner}@${s.temperatureC}`).join(', ');
    throw new RangeError(`no characterised curves for corner ${corner} at ${temperatureC} C; have ${have}`);
  }
  return new TableCurves(t);
}
