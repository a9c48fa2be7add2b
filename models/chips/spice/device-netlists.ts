/**
 * Netlists that characterise the synapse transistors on their own (the data behind
 * `data/sky130-devices.json`, see scripts/characterise-devices.ts):
 *
 * - `deviceSweepNetlist`: one bare synapse transistor (source and bulk on its rail, drain held by a
 *   source on `mem`), DC-swept over membrane voltage (inner) and gate voltage (outer), at a process
 *   corner and a temperature: I(Vg, v).
 * - `mismatchNetlist`: `count` copies of that transistor with the card's own Monte Carlo mismatch
 *   switched on (`mc_switch=1`), each behind its own ammeter, swept the same way.
 *
 * Currents are read as flowing INTO the membrane node (NMOS < 0, PMOS > 0), as in characterise.ts.
 */

import type { Grid } from './characterise-netlists.ts';
import { dcRange } from './characterise-netlists.ts';
import { DEFAULT_DESIGN, type RcSpikeDesign } from './design.ts';
import { mosLine, num } from './netlist.ts';
import { cornerParamLines, type CornerOrCard } from './sky130-corners.ts';

export interface DeviceSweepSpec {
  pmos: boolean;
  corner: CornerOrCard;
  temperatureC: number;
  supply: number;
  vg: Grid;
  vd: Grid;
  design?: RcSpikeDesign;
}

function header(title: string, mc: boolean, corner: CornerOrCard, temperatureC: number, extra: string[] = []): string[] {
  return [
    `* spikeloop devices: ${title}`,
    `.param mc_switch=${mc ? 1 : 0}`,
    '.include modelcard.skywater',
    ...cornerParamLines(corner),
    ...extra,
    `.temp ${num(temperatureC)}`,
  ];
}

export function deviceSweepNetlist(s: DeviceSweepSpec): string {
  const design = s.design ?? DEFAULT_DESIGN;
  const rail = s.pmos ? 'vdd' : '0';
  const L = header(`${s.pmos ? 'PMOS' : 'NMOS'} I(Vg, v), corner ${s.corner}, ${s.temperatureC} C`, false, s.corner, s.temperatureC);
  L.push(`Vdd vdd 0 ${num(s.supply)}`, 'Vm mem 0 0', 'Vg g 0 0');
  L.push(mosLine('syn', 'mem', 'g', rail, rail, s.pmos, design.synapse, design.diffusionExtent));
  L.push('.save i(vm) v(g)', `.dc vm ${dcRange(s.vd)} vg ${dcRange(s.vg)}`, '.end', '');
  return L.join('\n');
}

/**
 * The card's mismatch terms read `MC_SWITCH * AGAUSS(0, 1, 1) * slope / sqrt(l * w * mult)` with
 * `l` and `w` in micrometres (the PDK runs with `.option scale=1u`); this project's netlists give
 * sizes in metres, so each `*_slope*` parameter is restated times 1e-6 to keep sigma in volts (or
 * relative, for toxe) what the PDK meant. Values are read from the card, not restated by hand.
 */
export function mismatchSlopeLines(card: string): string[] {
  const out: string[] = [];
  const re = /^\.param\s+(sky130_fd_pr__[np]fet_01v8__\w*_slope\d*)\s*=\s*([-+0-9.eE]+)\s*$/gm;
  for (let m = re.exec(card); m; m = re.exec(card)) out.push(`.param ${m[1]}=${num(Number(m[2]) * 1e-6)}`);
  if (out.length === 0) throw new Error('the sky130 card defines no *_slope mismatch parameters for nfet_01v8/pfet_01v8');
  return out;
}

export interface MismatchSpec extends DeviceSweepSpec {
  /** Number of transistor copies (each draws its own mismatch). */
  count: number;
  /** ngspice random seed (`.option seed`), so a run is repeatable. */
  seed: number;
  /** The model card text (for its mismatch slopes). */
  card: string;
}

export function mismatchNetlist(s: MismatchSpec): string {
  const design = s.design ?? DEFAULT_DESIGN;
  const rail = s.pmos ? 'vdd' : '0';
  if (!(Number.isInteger(s.count) && s.count >= 2)) throw new RangeError(`mismatch needs at least 2 copies, got ${s.count}`);
  const L = header(`${s.count} x ${s.pmos ? 'PMOS' : 'NMOS'} Monte Carlo mismatch, corner ${s.corner}, ${s.temperatureC} C`, true, s.corner, s.temperatureC, [
    ...mismatchSlopeLines(s.card),
    `.option seed=${Math.trunc(s.seed)}`,
  ]);
  L.push(`Vdd vdd 0 ${num(s.supply)}`, 'Vm mem 0 0', 'Vg g 0 0');
  const saved: string[] = [];
  for (let k = 0; k < s.count; k++) {
    L.push(`Va${k} mem d${k} 0`, mosLine(`m${k}`, `d${k}`, 'g', rail, rail, s.pmos, design.synapse, design.diffusionExtent));
    saved.push(`i(va${k})`);
  }
  for (let k = 0; k < saved.length; k += 16) L.push(`${k === 0 ? '.save' : '+'} ${saved.slice(k, k + 16).join(' ')}`);
  L.push(`.dc vm ${dcRange(s.vd)} vg ${dcRange(s.vg)}`, '.end', '');
  return L.join('\n');
}

export interface DevicePoint {
  vg: number;
  v: number;
}

/**
 * One transistor per point, each with its own gate and drain source, solved at one operating point
 * (a one-step DC sweep of an unconnected source, which both engines return as vectors): the
 * current into the membrane of device k is `i(vm<k>)`.
 */
export function devicePointsNetlist(
  pmos: boolean,
  corner: CornerOrCard,
  temperatureC: number,
  supply: number,
  points: readonly DevicePoint[],
  design: RcSpikeDesign = DEFAULT_DESIGN,
): string {
  if (points.length === 0) throw new RangeError('no device points to simulate');
  const rail = pmos ? 'vdd' : '0';
  const L = header(`${points.length} ${pmos ? 'PMOS' : 'NMOS'} operating points, corner ${corner}, ${temperatureC} C`, false, corner, temperatureC);
  L.push(`Vdd vdd 0 ${num(supply)}`, 'Vdum dum 0 0', 'Rdum dum 0 1');
  const saved: string[] = [];
  points.forEach((p, k) => {
    L.push(`Vg${k} g${k} 0 ${num(p.vg)}`, `Vm${k} m${k} 0 ${num(p.v)}`);
    L.push(mosLine(`p${k}`, `m${k}`, `g${k}`, rail, rail, pmos, design.synapse, design.diffusionExtent));
    saved.push(`i(vm${k})`);
  });
  for (let k = 0; k < saved.length; k += 16) L.push(`${k === 0 ? '.save' : '+'} ${saved.slice(k, k + 16).join(' ')}`);
  L.push('.dc vdum 0 0 1', '.end', '');
  return L.join('\n');
}
