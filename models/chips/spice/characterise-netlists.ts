/**
 * Netlists that characterise the RC-Spike devices for table mode, each the same circuit pieces
 * as the neuron transient (netlist.ts) so that the tables describe what the transient simulates:
 *
 * - `synapseSweepNetlist`: one synapse branch (MOSFET + closed switch) with its drain held at `v`
 *   by a source, DC-swept over drain voltage (inner) and gate voltage (outer): I(Vg, v).
 * - `leakageNetlist` / `driveNetlist`: the membrane's own load (inverter, discharger, open
 *   precharge switch), and that plus K idle NMOS or PMOS rows; a DC sweep gives their leakage,
 *   a constant-current transient from rest their capacitance C(v).
 * - `inverterSweepNetlist`: every neuron's sensing inverter, with its mismatch, DC-swept to find
 *   its trip point (output at VDD/2).
 */

import { DEFAULT_DESIGN, preamble, type RcSpikeDesign } from './design.ts';
import { inputEdge, inputEdgeB, inputSwitchLine, mosLine, num, prechargeControl, prechargeLines, switchModel } from './netlist.ts';

/** A uniform grid `start + k * step`, k = 0..count-1. */
export interface Grid {
  start: number;
  step: number;
  count: number;
}

export function gridValue(g: Grid, k: number): number {
  return g.start + k * g.step;
}

export function gridEnd(g: Grid): number {
  return g.start + (g.count - 1) * g.step;
}

/**
 * `start stop step` of a `.dc` sweep that yields exactly the grid: ngspice accumulates the step,
 * so a stop placed exactly on the last point can lose it to rounding; half a step beyond is safe.
 */
export function dcRange(g: Grid): string {
  return `${num(g.start)} ${num(gridEnd(g) + g.step / 2)} ${num(g.step)}`;
}

/** `.save` of many vectors, split over continuation lines. */
function saveLines(names: string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < names.length; k += 16) out.push(`${k === 0 ? '.save' : '+'} ${names.slice(k, k + 16).join(' ')}`);
  return out;
}

export function synapseSweepNetlist(pmos: boolean, supply: number, vd: Grid, vg: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const L = [`* spikeloop table: ${pmos ? 'PMOS' : 'NMOS'} synapse branch I(Vg, Vd)`, ...preamble(design), switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, `Von on 0 ${num(supply)}`, 'Vonb onb 0 0', 'Vm mem 0 0', 'Vg g 0 0');
  L.push(mosLine('syn', 'mem', 'g', 's', pmos ? 'vdd' : '0', pmos, design.synapse, design.diffusionExtent));
  L.push(inputSwitchLine(design, 'syn', pmos, 's', 'on', 'onb'));
  L.push('.save i(vm) v(g)');
  L.push(`.dc vm ${dcRange(vd)} vg ${dcRange(vg)}`);
  L.push('.end', '');
  return L.join('\n');
}

export const PARASITIC_GROUPS = ['base', 'nrows', 'prows'] as const;
export type ParasiticGroup = (typeof PARASITIC_GROUPS)[number];

export interface ParasiticsProbe {
  /** Idle rows per row group. */
  rows: number;
  /** Precharge level. */
  vRest: number;
  /** Gate voltages of the idle rows (a typical operating point). */
  gateN: number;
  gateP: number;
}

/** The membrane's own load (and K idle rows) on node `m`, as in netlist.ts. */
function groupDevices(g: ParasiticGroup, m: string, tag: string, probe: ParasiticsProbe, design: RcSpikeDesign): string[] {
  const ext = design.diffusionExtent;
  const L = prechargeLines(design, 0, m, tag, 'open', true);
  L.push(mosLine(`dis_${tag}`, m, '0', '0', '0', false, design.discharger, ext));
  L.push(mosLine(`ip_${tag}`, `o_${tag}`, m, 'vdd', 'vdd', true, design.inverterP, ext));
  L.push(mosLine(`in_${tag}`, `o_${tag}`, m, '0', '0', false, design.inverterN, ext));
  L.push(`Cout_${tag} o_${tag} 0 ${num(design.outputLoad)}`);
  for (let k = 0; g === 'nrows' && k < probe.rows; k++) {
    L.push(
      mosLine(`n${k}_${tag}`, m, 'gn', `sn${k}_${tag}`, '0', false, design.synapse, ext),
      inputSwitchLine(design, `n${k}_${tag}`, false, `sn${k}_${tag}`, 'off', 'offb'),
    );
  }
  for (let k = 0; g === 'prows' && k < probe.rows; k++) {
    L.push(
      mosLine(`p${k}_${tag}`, m, 'gp', `sp${k}_${tag}`, 'vdd', true, design.synapse, ext),
      inputSwitchLine(design, `p${k}_${tag}`, true, `sp${k}_${tag}`, 'off', 'offb'),
    );
  }
  return L;
}

function parasiticsHeader(what: string, supply: number, probe: ParasiticsProbe, design: RcSpikeDesign, pre: string): string[] {
  const L = [`* spikeloop table: membrane parasitics (${what})`, ...preamble(design), switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, 'Voff off 0 0', `Voffb offb 0 ${num(supply)}`, `Vpre pre 0 ${pre}`, `Vrest vrest 0 ${num(probe.vRest)}`);
  L.push(`Vgn gn 0 ${num(probe.gateN)}`, `Vgp gp 0 ${num(probe.gateP)}`);
  return L;
}

/** DC leakage: every group hangs on one swept node through an ammeter `Va_<group>`. */
export function leakageNetlist(supply: number, probe: ParasiticsProbe, sweep: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const L = parasiticsHeader('dc leakage', supply, probe, design, prechargeControl(design, supply, 'open'));
  L.push('Vr drive 0 0');
  for (const g of PARASITIC_GROUPS) L.push(`* group ${g}`, `Va_${g} drive m_${g} 0`, ...groupDevices(g, `m_${g}`, g, probe, design));
  L.push(...saveLines(PARASITIC_GROUPS.map((g) => `i(va_${g})`)));
  L.push(`.dc vr ${dcRange(sweep)}`, '.end', '');
  return L.join('\n');
}

export interface DriveSettings {
  /** Constant drive current, amperes (sunk on the `dn` copies, sourced on the `up` copies). */
  current: number;
  /** Reference capacitor on every driven node, farads (sets the slew rate). */
  reference: number;
  time: number;
  step: number;
}

/**
 * Capacitance under the same conditions as a neuron: each group, in a falling (`dn`) and a rising
 * (`up`) copy, is precharged to vRest through the precharge switch, released at t = 0 and driven
 * by a constant current into a reference capacitor; C(v) follows from the slew (characterise.ts).
 * Current drive from rest matters: idle rows' floating source nodes have slow dynamics, and a
 * voltage ramp from another starting point measured their coupling a few percent off.
 */
export function driveNetlist(supply: number, probe: ParasiticsProbe, drive: DriveSettings, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const L = parasiticsHeader('current drive', supply, probe, design, prechargeControl(design, supply, 'release'));
  const saved: string[] = [];
  for (const g of PARASITIC_GROUPS) {
    for (const dir of ['dn', 'up'] as const) {
      const tag = `${g}_${dir}`;
      const m = `m_${tag}`;
      L.push(`* group ${g}, ${dir === 'dn' ? 'falling' : 'rising'}`, `Cref_${tag} ${m} 0 ${num(drive.reference)}`);
      L.push(dir === 'dn' ? `Idrv_${tag} ${m} 0 PWL(0 0 1e-12 ${num(drive.current)})` : `Idrv_${tag} 0 ${m} PWL(0 0 1e-12 ${num(drive.current)})`);
      L.push(...groupDevices(g, m, tag, probe, design));
      saved.push(`v(${m})`);
    }
  }
  L.push(...saveLines(saved), '.option method=gear');
  L.push(`.tran ${num(drive.step)} ${num(drive.time)} 0 ${num(drive.step)}`, '.end', '');
  return L.join('\n');
}

/**
 * Switch-on charge of a synapse branch: one branch per (gate, drain) grid point, each drain held
 * by its own source; all switches close together at `at` (edge as in netlist.ts). The charge the
 * branch pushes into the held node beyond its steady currents before and after is the kick.
 */
export function kickNetlist(
  pmos: boolean,
  supply: number,
  vg: Grid,
  vd: Grid,
  at: number,
  end: number,
  step: number,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): string {
  const ext = design.diffusionExtent;
  const L = [`* spikeloop table: ${pmos ? 'PMOS' : 'NMOS'} synapse switch-on charge`, ...preamble(design), switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, `Vc c 0 ${inputEdge(at, design.inputEdge, supply)}`, `Vcb cb 0 ${inputEdgeB(at, design.inputEdge, supply)}`);
  const saved: string[] = [];
  for (let a = 0; a < vg.count; a++) {
    for (let b = 0; b < vd.count; b++) {
      const k = `${a}_${b}`;
      L.push(`Vd${k} d${k} 0 ${num(gridValue(vd, b))}`, `Vg${k} g${k} 0 ${num(gridValue(vg, a))}`);
      L.push(mosLine(`m${k}`, `d${k}`, `g${k}`, `s${k}`, pmos ? 'vdd' : '0', pmos, design.synapse, ext));
      L.push(inputSwitchLine(design, k, pmos, `s${k}`, 'c', 'cb'));
      saved.push(`i(vd${k})`);
    }
  }
  L.push(...saveLines(saved), '.option method=gear');
  L.push(`.tran ${num(step)} ${num(end)} 0 ${num(step)}`, '.end', '');
  return L.join('\n');
}

/** `dvth` is outputs x 2 ([NMOS, PMOS] per inverter), as in mismatch.ts. */
export function inverterSweepNetlist(supply: number, dvth: Float64Array, sweep: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const n = dvth.length / 2;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`inverter shifts must hold 2 values per inverter, got ${dvth.length}`);
  const ext = design.diffusionExtent;
  const L = [`* spikeloop table: trip points of ${n} sensing inverters`, ...preamble(design)];
  L.push(`Vdd vdd 0 ${num(supply)}`, 'Vx x 0 0');
  for (let i = 0; i < n; i++) {
    L.push(mosLine(`ip${i}`, `o${i}`, `gp${i}`, 'vdd', 'vdd', true, design.inverterP, ext), `Vsp${i} gp${i} x ${num(dvth[2 * i + 1])}`);
    L.push(mosLine(`in${i}`, `o${i}`, `gn${i}`, '0', '0', false, design.inverterN, ext), `Vsn${i} gn${i} x ${num(-dvth[2 * i])}`);
  }
  L.push(...saveLines(Array.from({ length: n }, (_, i) => `v(o${i})`)));
  L.push(`.dc vx ${dcRange(sweep)}`);
  L.push('.end', '');
  return L.join('\n');
}

/**
 * Precharge release: per precharge level on `vr`, the membrane's own load (base group) on a
 * reference capacitor, precharged through its switch and released at t = 0 with nothing else
 * driving it. The jump the node makes by `end` is the switch's charge injection.
 */
export function releaseNetlist(
  supply: number,
  probe: ParasiticsProbe,
  vr: Grid,
  reference: number,
  end: number,
  step: number,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): string {
  const L = [`* spikeloop table: precharge release (charge injection)`, ...preamble(design), switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, `Vpre pre 0 ${prechargeControl(design, supply, 'release')}`);
  const saved: string[] = [];
  for (let k = 0; k < vr.count; k++) {
    const m = `m${k}`;
    // Each level has its own precharge source; groupDevices wires the switch to `vrest`, so rename.
    const dev = groupDevices('base', m, `r${k}`, probe, design).map((line) => line.replace(/ vrest /g, ` vrest${k} `));
    L.push(`Vrest${k} vrest${k} 0 ${num(gridValue(vr, k))}`, `Cref_${k} ${m} 0 ${num(reference)}`, ...dev);
    saved.push(`v(${m})`);
  }
  L.push(...saveLines(saved), '.option method=gear');
  L.push(`.tran ${num(step)} ${num(end)} 0 ${num(step)}`, '.end', '');
  return L.join('\n');
}
