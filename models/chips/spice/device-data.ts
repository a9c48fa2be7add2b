/**
 * The characterised sky130 synapse transistors (`data/sky130-devices.json`, written by
 * scripts/characterise-devices.ts): schema, loading, and reading currents and reversal potentials
 * off the tables.
 *
 * A table holds I(Vg, v) on a uniform grid, amperes into the membrane (NMOS < 0, PMOS > 0; the
 * sign never changes over the grid, the generator checks it). Between gate knots the current is
 * interpolated in ln|I| (exponential in weak inversion, so exact there; smooth above), between
 * membrane knots linearly (the drain characteristic is nearly linear in saturation).
 */

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { gridEnd, gridValue, type Grid } from './characterise-netlists.ts';
import { CORNERS } from './sky130-corners.ts';

export const DEVICE_DATA_FORMAT = 'spikeloop-sky130-devices';
export const DEVICE_DATA_VERSION = 1;

/** Where the committed data file lives. */
export const DEVICE_DATA_PATH = join(dirname(fileURLToPath(import.meta.url)), 'data', 'sky130-devices.json');

const grid = z.object({ start: z.number().finite(), step: z.number().finite().positive(), count: z.number().int().min(2) });
const nullableNumbers = z.array(z.number().finite().nullable());

const table = z.object({
  corner: z.enum(['card', ...CORNERS]),
  temperatureC: z.number().finite(),
  vg: grid,
  vd: grid,
  /** `vg.count x vd.count`, index `ig * vd.count + id`. */
  nmos: z.array(z.number().finite()),
  pmos: z.array(z.number().finite()),
  /** Reversal potentials against the gate grid, in units of u (null where the device is off). */
  ePlus: nullableNumbers,
  eMinus: nullableNumbers,
});

const mismatchStats = z.object({
  vg: z.array(z.number().finite()),
  /** ln|I| over the copies at `atMembrane`: mean and standard deviation. */
  meanLnI: z.array(z.number().finite()),
  sdLnI: z.array(z.number().finite()),
  /** sdLnI over the nominal d ln|I| / dVg: the gate-voltage (threshold) spread that explains it, volts. */
  sdVgEquivalent: z.array(z.number().finite().nullable()),
  /** Per-copy reversal potential (u units): mean and standard deviation. */
  meanE: z.array(z.number().finite().nullable()),
  sdE: z.array(z.number().finite().nullable()),
});

export const deviceDataSchema = z.object({
  format: z.literal(DEVICE_DATA_FORMAT),
  version: z.literal(DEVICE_DATA_VERSION),
  generator: z.object({ name: z.string(), version: z.string(), command: z.string() }),
  engine: z.object({ kind: z.enum(['wasm', 'ngspice']), version: z.string() }),
  card: z.object({ source: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  device: z.object({ w: z.number().positive(), l: z.number().positive(), diffusionExtent: z.number().min(0), bin: z.number().int() }),
  circuit: z.object({ supply: z.number().positive(), vRest: z.number(), vThreshold: z.number(), reversalAt: z.number() }),
  /** The DAC and the safe gate windows the sweeps were laid out for. */
  dac: z.object({ vMin: z.number(), vMax: z.number(), bits: z.number().int() }),
  safe: z.object({ nmos: z.tuple([z.number(), z.number()]), pmos: z.tuple([z.number(), z.number()]) }),
  cornerSource: z.string(),
  /** The bare card at 27 C on a fine gate grid: the nominal curves. */
  nominal: table,
  /** Every corner (and the bare card) at every temperature, coarser gate grid. */
  sweeps: z.array(table).min(1),
  mismatch: z.object({
    corner: z.enum(['card', ...CORNERS]),
    temperatureC: z.number(),
    copies: z.number().int().min(2),
    seed: z.number().int(),
    atMembrane: z.number(),
    slopes: z.record(z.string(), z.number()),
    nmos: mismatchStats,
    pmos: mismatchStats,
  }),
});

export type DeviceData = z.infer<typeof deviceDataSchema>;
export type DeviceTable = z.infer<typeof table>;

/** Parses and checks a data file's text; the error names the field at fault. */
export function parseDeviceData(text: string, where = 'device data'): DeviceData {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message}); regenerate it with npm run characterise`);
  }
  const r = deviceDataSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${where}: field ${i.path.join('.') || '(root)'}: ${i.message}; regenerate it with npm run characterise`);
  }
  for (const t of [r.data.nominal, ...r.data.sweeps]) {
    const n = t.vg.count * t.vd.count;
    for (const k of ['nmos', 'pmos'] as const) {
      if (t[k].length !== n) throw new Error(`${where}: table ${t.corner}/${t.temperatureC} C ${k} has ${t[k].length} values, expected ${n}`);
    }
  }
  return r.data;
}

let cached: DeviceData | undefined;

/** The committed data file, parsed once. */
export function loadDeviceData(path = DEVICE_DATA_PATH): DeviceData {
  if (path !== DEVICE_DATA_PATH) return parseDeviceData(readFileSync(path, 'utf8'), path);
  cached ??= parseDeviceData(readFileSync(path, 'utf8'), path);
  return cached;
}

function cell(g: Grid, x: number, what: string): { j: number; f: number } {
  const eps = 1e-9 * g.step;
  if (!(x >= g.start - eps && x <= gridEnd(g) + eps)) {
    throw new RangeError(`${what} ${x} V is outside the characterised range ${g.start}..${gridEnd(g)} V`);
  }
  const t = (x - g.start) / g.step;
  const j = Math.min(g.count - 2, Math.max(0, Math.floor(t)));
  return { j, f: Math.min(1, Math.max(0, t - j)) };
}

/** Current into the membrane at gate `vg` and membrane `v` (volts), read off a table. */
export function tableCurrent(t: DeviceTable, pmos: boolean, vg: number, v: number): number {
  const values = pmos ? t.pmos : t.nmos;
  const a = cell(t.vg, vg, 'gate voltage');
  const b = cell(t.vd, v, 'membrane voltage');
  const n = t.vd.count;
  const at = (ig: number, id: number) => Math.log(Math.abs(values[ig * n + id]));
  const lnAt = (id: number) => at(a.j, id) + a.f * (at(a.j + 1, id) - at(a.j, id));
  const i0 = Math.exp(lnAt(b.j));
  const i1 = Math.exp(lnAt(b.j + 1));
  return (pmos ? 1 : -1) * (i0 + b.f * (i1 - i0));
}

/** Below 1 pA the drain current is junction leakage as much as channel: no reversal potential there. */
export const MIN_REVERSAL_CURRENT = 1e-12;

/**
 * Reversal potential (u units) of a drain characteristic that is locally I = g (v - E): from the
 * current at `v` and the slope across `v +- dv`. Null when the current is too small or the slope
 * does not point the way a conductance does (device off or junction-dominated).
 */
export function reversalFrom(iMinus: number, iAt: number, iPlus: number, v: number, dv: number, vRest: number, swing: number): number | null {
  const slope = (iPlus - iMinus) / (2 * dv);
  // A conductance pulls toward E: for I into the node, I = g (E - v) with g > 0, so slope < 0.
  if (!(Math.abs(iAt) >= MIN_REVERSAL_CURRENT) || !(slope < 0)) return null;
  const eVolts = v - iAt / slope;
  if (!Number.isFinite(eVolts)) return null;
  return (vRest - eVolts) / swing;
}

/** Reversal potential against the gate grid of one table, at membrane knot `v`. */
export function tableReversal(t: Pick<DeviceTable, 'vg' | 'vd'>, values: readonly number[], v: number, vRest: number, swing: number): (number | null)[] {
  const id = Math.round((v - t.vd.start) / t.vd.step);
  if (id < 1 || id > t.vd.count - 2 || Math.abs(gridValue(t.vd, id) - v) > 1e-9) {
    throw new RangeError(`reversal potentials need membrane knot ${v} V with a knot either side on ${JSON.stringify(t.vd)}`);
  }
  const n = t.vd.count;
  const out: (number | null)[] = [];
  for (let ig = 0; ig < t.vg.count; ig++) {
    out.push(reversalFrom(values[ig * n + id - 1], values[ig * n + id], values[ig * n + id + 1], v, t.vd.step, vRest, swing));
  }
  return out;
}
