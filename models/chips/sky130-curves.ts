/**
 * Transfer curves of the sky130 synapse transistors as SPICE gives them (data/sky130-devices.json,
 * `npm run characterise`), as opposed to the EKV fiction of NOMINAL_NMOS / NOMINAL_PMOS: the drain
 * current against gate and membrane voltage, and the reversal potentials E+ / E- against gate
 * voltage, at the bundled card (nominal) or at a PDK corner and temperature.
 */

import type { Polarity } from '../neuron/units.ts';
import { gridValue } from './spice/characterise-netlists.ts';
import { loadDeviceData, reversalFrom, tableCurrent, type DeviceTable } from './spice/device-data.ts';
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

/** Where a die sits: its temperature and its process point per device type (in PDK corner sigmas). */
export interface DieProcess {
  temperatureC: number;
  /** NMOS / PMOS process position: +3 = the PDK's ff corner for that device, -3 = its ss corner. */
  zN: number;
  zP: number;
}

/** The PDK corners are read as +-3 sigma of the global process spread. */
const CORNER_SIGMAS = 3;

/**
 * A die's curves: the nominal (bare card, 27 C) in ln|I|, moved by
 * - temperature: the fraction of the way to the next characterised temperature (-40 or 85 C) of the
 *   bare card's change in ln|I| between the two (on the coarse tables, so the nominal holds at 27 C);
 * - process: |z|/3 of the PDK corner's change in ln|I| against tt at 27 C (ff for z > 0, ss for
 *   z < 0), per device type, so fs and sf are the mixed signs.
 * Reversal potentials follow from the moved currents (slope at 1.1 V over +-0.1 V).
 */
class DieCurves implements TransferCurves {
  readonly corner = 'card' as const;
  readonly temperatureC: number;
  readonly gateRange: readonly [number, number];
  readonly membraneRange: readonly [number, number];
  readonly #nominal: TransferCurves;
  readonly #t: { w: number; at: DeviceTable; base: DeviceTable } | null;
  readonly #c: Record<Polarity, { w: number; at: DeviceTable; base: DeviceTable } | null>;
  readonly #vRest: number;
  readonly #swing: number;

  constructor(die: DieProcess) {
    const d = loadDeviceData();
    const find = (corner: string, t: number) => {
      const x = d.sweeps.find((s) => s.corner === corner && s.temperatureC === t);
      if (!x) throw new RangeError(`device data lacks corner ${corner} at ${t} C; regenerate it with npm run characterise`);
      return x;
    };
    if (!Number.isFinite(die.temperatureC) || !Number.isFinite(die.zN) || !Number.isFinite(die.zP))
      throw new RangeError(`die process must be finite, got ${JSON.stringify(die)}`);
    this.#nominal = sky130NominalCurves();
    this.temperatureC = die.temperatureC;
    this.gateRange = this.#nominal.gateRange;
    this.membraneRange = this.#nominal.membraneRange;
    const dt = die.temperatureC - 27;
    const other = dt >= 0 ? 85 : -40;
    this.#t = dt === 0 ? null : { w: dt / (other - 27), at: find('card', other), base: find('card', 27) };
    const corner = (z: number) => (z === 0 ? null : { w: Math.abs(z) / CORNER_SIGMAS, at: find(z > 0 ? 'ff' : 'ss', 27), base: find('tt', 27) });
    this.#c = { nmos: corner(die.zN), pmos: corner(die.zP) };
    this.#vRest = d.circuit.vRest;
    this.#swing = d.circuit.vRest - d.circuit.vThreshold;
  }

  current(polarity: Polarity, vg: number, v: number): number {
    const pmos = polarity === 'pmos';
    const i = this.#nominal.current(polarity, vg, v);
    let ln = Math.log(Math.abs(i));
    const shift = (x: { w: number; at: DeviceTable; base: DeviceTable } | null) => {
      if (x) ln += x.w * (Math.log(Math.abs(tableCurrent(x.at, pmos, vg, v))) - Math.log(Math.abs(tableCurrent(x.base, pmos, vg, v))));
    };
    shift(this.#t);
    shift(this.#c[polarity]);
    return Math.sign(i) * Math.exp(ln);
  }

  reversal(polarity: Polarity, vg: number): number | null {
    const v = 1.1;
    return reversalFrom(
      this.current(polarity, vg, v - 0.1),
      this.current(polarity, vg, v),
      this.current(polarity, vg, v + 0.1),
      v,
      0.1,
      this.#vRest,
      this.#swing,
    );
  }
}

/** The curves of a die at its temperature and process point (see DieCurves); the nominal curves at 27 C and z = 0. */
export function sky130DieCurves(die: DieProcess): TransferCurves {
  if (die.temperatureC === 27 && die.zN === 0 && die.zP === 0) return sky130NominalCurves();
  return new DieCurves(die);
}
