/**
 * Characterisation of the synapse transistors as data: runs the sweeps of device-netlists.ts on a
 * SPICE engine and assembles `data/sky130-devices.json` (schema in device-data.ts). The command is
 * scripts/characterise-devices.ts (`npm run characterise`); tests and benches re-simulate points
 * through `simulateTable`.
 */

import { createHash } from 'node:crypto';
import { DEFAULT_DAC, DEFAULT_SAFE, NOMINAL_CIRCUIT } from '../sky130-nominal.ts';
import { gridValue, type Grid } from './characterise-netlists.ts';
import { DEFAULT_DESIGN } from './design.ts';
import {
  DEVICE_DATA_FORMAT,
  DEVICE_DATA_VERSION,
  parseDeviceData,
  reversalFrom,
  tableCurrent,
  tableReversal,
  type DeviceData,
  type DeviceTable,
} from './device-data.ts';
import { deviceSweepNetlist, mismatchNetlist, mismatchSlopeLines } from './device-netlists.ts';
import { getVector, type SpiceEngine } from './engine.ts';
import { SpiceError } from './errors.ts';
import { CORNERS, type CornerOrCard } from './sky130-corners.ts';
import { eecircuitVersion, sky130ModelCard } from './sky130-models.ts';

/** Bump when the sweeps, the netlists or the derived quantities change meaning. */
export const GENERATOR_VERSION = '1.0.0';
export const GENERATOR_COMMAND = 'npm run characterise';

export const TEMPERATURES_C = [-40, 27, 85] as const;
/** Membrane knots: below the threshold to above rest, with 1.1 V (mid-swing) on a knot for E+-. */
export const MEMBRANE_GRID: Readonly<Grid> = Object.freeze({ start: 0.6, step: 0.1, count: 11 });
/** Gate knots over the whole DAC range (both devices): fine for the nominal curves, coarse elsewhere. */
export const NOMINAL_GATE_GRID: Readonly<Grid> = Object.freeze({ start: 0, step: 0.01, count: 181 });
export const SWEEP_GATE_GRID: Readonly<Grid> = Object.freeze({ start: 0, step: 0.05, count: 37 });
/** Mismatch: gates over each device's working range (weak to moderate inversion). */
export const MISMATCH_GATES: Readonly<{ nmos: Grid; pmos: Grid }> = Object.freeze({
  nmos: Object.freeze({ start: 0.2, step: 0.05, count: 13 }),
  pmos: Object.freeze({ start: 1.0, step: 0.05, count: 13 }),
});
export const REVERSAL_AT = 1.1;

const SIG = 6;
const round = (x: number) => Number(x.toPrecision(SIG));

export function cardSha256(card = sky130ModelCard()): string {
  return createHash('sha256').update(card).digest('hex');
}

/** One DC table: I(Vg, v) of both devices at a corner and temperature, currents into the membrane. */
export async function simulateTable(engine: SpiceEngine, corner: CornerOrCard, temperatureC: number, vg: Grid, vd: Grid = MEMBRANE_GRID): Promise<DeviceTable> {
  const swing = NOMINAL_CIRCUIT.vRest - NOMINAL_CIRCUIT.vThreshold;
  const out: Partial<Record<'nmos' | 'pmos', number[]>> = {};
  for (const pmos of [false, true]) {
    const netlist = deviceSweepNetlist({ pmos, corner, temperatureC, supply: NOMINAL_CIRCUIT.supply, vg, vd });
    const res = await engine.run(netlist);
    const i = getVector(res, 'i(vm)', netlist);
    if (i.length !== vg.count * vd.count) throw new SpiceError(`device sweep returned ${i.length} points, expected ${vg.count * vd.count}`, netlist);
    const sign = pmos ? 1 : -1;
    for (let k = 0; k < i.length; k++) {
      if (!(sign * i[k] > 0)) {
        throw new SpiceError(
          `${pmos ? 'PMOS' : 'NMOS'} current ${i[k]} A at Vg ${gridValue(vg, Math.floor(k / vd.count))} V has the wrong sign (corner ${corner}, ${temperatureC} C)`,
          netlist,
        );
      }
    }
    out[pmos ? 'pmos' : 'nmos'] = Array.from(i, round);
  }
  const nmos = out.nmos!;
  const pmos = out.pmos!;
  const v = NOMINAL_CIRCUIT.vRest;
  return {
    corner,
    temperatureC,
    vg: { ...vg },
    vd: { ...vd },
    nmos,
    pmos,
    ePlus: tableReversal({ vg, vd }, nmos, REVERSAL_AT, v, swing).map((e) => (e === null ? null : round(e))),
    eMinus: tableReversal({ vg, vd }, pmos, REVERSAL_AT, v, swing).map((e) => (e === null ? null : round(e))),
  };
}

function meanSd(xs: number[]): { mean: number; sd: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
  return { mean, sd };
}

async function mismatchStats(
  engine: SpiceEngine,
  pmos: boolean,
  copies: number,
  seed: number,
  card: string,
  nominal: DeviceTable,
): Promise<DeviceData['mismatch']['nmos']> {
  const vg = MISMATCH_GATES[pmos ? 'pmos' : 'nmos'];
  const vd: Grid = { start: REVERSAL_AT - MEMBRANE_GRID.step, step: MEMBRANE_GRID.step, count: 3 };
  const netlist = mismatchNetlist({ pmos, corner: 'card', temperatureC: 27, supply: NOMINAL_CIRCUIT.supply, vg, vd, count: copies, seed, card });
  const res = await engine.run(netlist);
  const swing = NOMINAL_CIRCUIT.vRest - NOMINAL_CIRCUIT.vThreshold;
  // i(va_k) flows from the membrane into the drain; into the membrane is its negative.
  const cur = Array.from({ length: copies }, (_, k) => getVector(res, `i(va${k})`, netlist).map((x) => -x));
  const stats: DeviceData['mismatch']['nmos'] = { vg: [], meanLnI: [], sdLnI: [], sdVgEquivalent: [], meanE: [], sdE: [] };
  for (let ig = 0; ig < vg.count; ig++) {
    const g = gridValue(vg, ig);
    const lnI = cur.map((c) => Math.log(Math.abs(c[ig * 3 + 1])));
    const e = cur
      .map((c) => reversalFrom(c[ig * 3], c[ig * 3 + 1], c[ig * 3 + 2], REVERSAL_AT, vd.step, NOMINAL_CIRCUIT.vRest, swing))
      .filter((x): x is number => x !== null);
    const l = meanSd(lnI);
    const h = 0.01;
    const dLn =
      (Math.log(Math.abs(tableCurrent(nominal, pmos, g + h, REVERSAL_AT))) - Math.log(Math.abs(tableCurrent(nominal, pmos, g - h, REVERSAL_AT)))) / (2 * h);
    const es = e.length >= copies / 2 ? meanSd(e) : null;
    stats.vg.push(round(g));
    stats.meanLnI.push(round(l.mean));
    stats.sdLnI.push(round(l.sd));
    stats.sdVgEquivalent.push(Math.abs(dLn) > 0 ? round(l.sd / Math.abs(dLn)) : null);
    stats.meanE.push(es ? round(es.mean) : null);
    stats.sdE.push(es ? round(es.sd) : null);
  }
  return stats;
}

export interface CharacteriseOptions {
  copies: number;
  seed: number;
  /** Progress lines (stderr in the command). */
  log?: (line: string) => void;
}

/** Runs every sweep and returns the validated data file contents. */
export async function characteriseDevices(engine: SpiceEngine, o: CharacteriseOptions): Promise<DeviceData> {
  const log = o.log ?? (() => {});
  const card = sky130ModelCard();
  log(`nominal curves (card, 27 C, ${NOMINAL_GATE_GRID.count} gate knots)`);
  const nominal = await simulateTable(engine, 'card', 27, NOMINAL_GATE_GRID);
  const sweeps: DeviceTable[] = [];
  for (const corner of ['card', ...CORNERS] as const) {
    for (const t of TEMPERATURES_C) {
      log(`sweep ${corner} ${t} C`);
      sweeps.push(await simulateTable(engine, corner, t, SWEEP_GATE_GRID));
    }
  }
  log(`mismatch: ${o.copies} copies per device, seed ${o.seed}`);
  const nmos = await mismatchStats(engine, false, o.copies, o.seed, card, nominal);
  const pmos = await mismatchStats(engine, true, o.copies, o.seed, card, nominal);
  const slopes: Record<string, number> = {};
  for (const line of mismatchSlopeLines(card)) {
    const m = /^\.param (\S+)=(\S+)$/.exec(line);
    if (m && Number(m[2]) !== 0) slopes[m[1]] = Number(m[2]) * 1e6;
  }
  const data = {
    format: DEVICE_DATA_FORMAT,
    version: DEVICE_DATA_VERSION,
    generator: { name: 'characterise-devices', version: GENERATOR_VERSION, command: GENERATOR_COMMAND },
    engine: { kind: engine.kind, version: engine.version },
    card: { source: `eecircuit-engine@${eecircuitVersion()} modelcard.skywater`, sha256: cardSha256(card) },
    device: { w: DEFAULT_DESIGN.synapse.w, l: DEFAULT_DESIGN.synapse.l, diffusionExtent: DEFAULT_DESIGN.diffusionExtent, bin: 8 },
    circuit: { supply: NOMINAL_CIRCUIT.supply, vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold, reversalAt: REVERSAL_AT },
    dac: { vMin: DEFAULT_DAC.vMin, vMax: DEFAULT_DAC.vMax, bits: DEFAULT_DAC.bits },
    safe: { nmos: [...DEFAULT_SAFE.nmos] as [number, number], pmos: [...DEFAULT_SAFE.pmos] as [number, number] },
    cornerSource:
      'card = the bundled card as is (every corner parameter neutral); tt/ff/ss/fs/sf = the PDK corner parameter files for bin 8 ' +
      '(google/skywater-pdk-libs-sky130_fd_pr f62031a, nfet_01v8__<c>.corner.spice, pfet_01v8__<c>_discrete.corner.spice) applied to it',
    nominal,
    sweeps,
    mismatch: { corner: 'card' as const, temperatureC: 27, copies: o.copies, seed: o.seed, atMembrane: REVERSAL_AT, slopes, nmos, pmos },
  };
  // Round-trip through the schema so a file that is written is a file that loads.
  return parseDeviceData(JSON.stringify(data), 'generated device data');
}

/** The file text: one table row per line keeps diffs readable and the file compact. */
export function deviceDataText(d: DeviceData): string {
  return JSON.stringify(d) + '\n';
}
