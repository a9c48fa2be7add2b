/**
 * Netlists that characterise the RC-Spike devices for table mode, each the same circuit pieces
 * as the neuron transient (netlist.ts) so that the tables describe what the transient simulates:
 *
 * - `synapseSweepNetlist`: one synapse branch (MOSFET + closed switch) with its drain held at `v`
 *   by a source, DC-swept over drain voltage (inner) and gate voltage (outer): I(Vg, v).
 * - `parasiticsNetlist`: the membrane's own load (inverter, discharger, open precharge switch)
 *   and that plus K idle NMOS or PMOS rows, all hung on one driven node through ammeters; a DC
 *   sweep gives their leakage, a falling ramp their capacitance C(v) = (i - i_dc) / (dv/dt).
 * - `inverterSweepNetlist`: every neuron's sensing inverter, with its mismatch, DC-swept to find
 *   its trip point (output at VDD/2).
 */

import { DEFAULT_DESIGN, SKY130_PREAMBLE, type RcSpikeDesign } from './design.ts';
import { mosLine, num, switchModel } from './netlist.ts';

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

/** `.save` of many vectors, split over continuation lines. */
function saveLines(names: string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < names.length; k += 16) out.push(`${k === 0 ? '.save' : '+'} ${names.slice(k, k + 16).join(' ')}`);
  return out;
}

export function synapseSweepNetlist(pmos: boolean, supply: number, vd: Grid, vg: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const L = [`* spikeloop table: ${pmos ? 'PMOS' : 'NMOS'} synapse branch I(Vg, Vd)`, ...SKY130_PREAMBLE, switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, `Von on 0 ${num(supply)}`, 'Vm mem 0 0', 'Vg g 0 0');
  L.push(mosLine('syn', 'mem', 'g', 's', pmos ? 'vdd' : '0', pmos, design.synapse, design.diffusionExtent));
  L.push(pmos ? 'Ssyn vdd s on 0 swsyn' : 'Ssyn s 0 on 0 swsyn');
  L.push('.save i(vm) v(g)');
  L.push(`.dc vm ${num(vd.start)} ${num(gridEnd(vd))} ${num(vd.step)} vg ${num(vg.start)} ${num(gridEnd(vg))} ${num(vg.step)}`);
  L.push('.end', '');
  return L.join('\n');
}

export const PARASITIC_GROUPS = ['base', 'nrows', 'prows'] as const;

export interface ParasiticsProbe {
  /** Idle rows per row group. */
  rows: number;
  /** Precharge level behind the open precharge switch. */
  vRest: number;
  /** Gate voltages of the idle rows (a typical operating point). */
  gateN: number;
  gateP: number;
  /** 'dc': leakage sweep over `sweep`; 'ramp': fall from VDD to 0 over `rampTime` seconds, sampled every `step`. */
  analysis: { kind: 'dc'; sweep: Grid } | { kind: 'ramp'; rampTime: number; step: number };
}

export function parasiticsNetlist(supply: number, probe: ParasiticsProbe, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const ext = design.diffusionExtent;
  const L = [`* spikeloop table: membrane parasitics (${probe.analysis.kind})`, ...SKY130_PREAMBLE, switchModel(design, supply)];
  L.push(`Vdd vdd 0 ${num(supply)}`, 'Voff off 0 0', 'Vpre pre 0 0', `Vrest vrest 0 ${num(probe.vRest)}`);
  L.push(`Vgn gn 0 ${num(probe.gateN)}`, `Vgp gp 0 ${num(probe.gateP)}`);
  if (probe.analysis.kind === 'dc') L.push('Vr drive 0 0');
  else L.push(`Vr drive 0 PWL(0 ${num(supply)} ${num(probe.analysis.rampTime)} 0)`);
  for (const g of PARASITIC_GROUPS) {
    const m = `m_${g}`;
    L.push(`* group ${g}`, `Va_${g} drive ${m} 0`);
    L.push(`Spre_${g} ${m} vrest pre 0 swsyn`);
    L.push(mosLine(`dis_${g}`, m, '0', '0', '0', false, design.discharger, ext));
    L.push(mosLine(`ip_${g}`, `o_${g}`, m, 'vdd', 'vdd', true, design.inverterP, ext));
    L.push(mosLine(`in_${g}`, `o_${g}`, m, '0', '0', false, design.inverterN, ext));
    L.push(`Cout_${g} o_${g} 0 ${num(design.outputLoad)}`);
    if (g === 'nrows') {
      for (let k = 0; k < probe.rows; k++) {
        L.push(mosLine(`n${k}`, m, 'gn', `sn${k}`, '0', false, design.synapse, ext), `Sn${k} sn${k} 0 off 0 swsyn`);
      }
    }
    if (g === 'prows') {
      for (let k = 0; k < probe.rows; k++) {
        L.push(mosLine(`p${k}`, m, 'gp', `sp${k}`, 'vdd', true, design.synapse, ext), `Sp${k} vdd sp${k} off 0 swsyn`);
      }
    }
  }
  L.push(...saveLines(['v(drive)', ...PARASITIC_GROUPS.map((g) => `i(va_${g})`)]));
  const a = probe.analysis;
  if (a.kind === 'dc') L.push(`.dc vr ${num(a.sweep.start)} ${num(gridEnd(a.sweep))} ${num(a.sweep.step)}`);
  else L.push(`.tran ${num(a.step)} ${num(a.rampTime)} 0 ${num(a.step)}`);
  L.push('.end', '');
  return L.join('\n');
}

/** `dvth` is outputs x 2 ([NMOS, PMOS] per inverter), as in mismatch.ts. */
export function inverterSweepNetlist(supply: number, dvth: Float64Array, sweep: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): string {
  const n = dvth.length / 2;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`inverter shifts must hold 2 values per inverter, got ${dvth.length}`);
  const ext = design.diffusionExtent;
  const L = [`* spikeloop table: trip points of ${n} sensing inverters`, ...SKY130_PREAMBLE];
  L.push(`Vdd vdd 0 ${num(supply)}`, 'Vx x 0 0');
  for (let i = 0; i < n; i++) {
    L.push(mosLine(`ip${i}`, `o${i}`, `gp${i}`, 'vdd', 'vdd', true, design.inverterP, ext), `Vsp${i} gp${i} x ${num(dvth[2 * i + 1])}`);
    L.push(mosLine(`in${i}`, `o${i}`, `gn${i}`, '0', '0', false, design.inverterN, ext), `Vsn${i} gn${i} x ${num(-dvth[2 * i])}`);
  }
  L.push(...saveLines(Array.from({ length: n }, (_, i) => `v(o${i})`)));
  L.push(`.dc vx ${num(sweep.start)} ${num(gridEnd(sweep))} ${num(sweep.step)}`);
  L.push('.end', '');
  return L.join('\n');
}
