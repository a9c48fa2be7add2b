/**
 * SPICE netlist of one RC-Spike neuron on sky130, for a transient over one inference window.
 *
 *   mem --+-- Cmem (MIM, ideal C) -- 0
 *         +-- precharge switch -- vRest        (closed for the operating point, opens at t = 0)
 *         +-- discharger NMOS, gate low        (off during the window: leakage and junctions only)
 *         +-- per row r: synapse MOSFET, drain on mem, gate at its programmed voltage
 *         |     NMOS: source -- switch -- 0    (sinks: excitatory)
 *         |     PMOS: source -- switch -- VDD  (sources: inhibitory)
 *         |     the switch closes when the row's input spikes and stays closed (a step)
 *         +-- sensing inverter -> out          (fires when mem falls through its trip point)
 *               behind a level shift: the programmed threshold (NEURON_CONFIG) moves the trip point
 *
 * Switches sit on the source side so that closing one does not dump a floating node's charge on
 * the membrane. Each input's spike is a PWL edge on the control of its rows' switches, centred on
 * the spike time. Threshold mismatch enters as a shift of each device's gate voltage (the sky130
 * devices are subcircuits, so an instance `delvto` cannot reach the transistor inside): the gate
 * source of a synapse carries `Vg - dVth` (NMOS) or `Vg + dVth` (PMOS), and the inverter's gates
 * hang off the membrane through small series sources.
 */

import { NMOS } from '../chip-backend.ts';
import { DEFAULT_DESIGN, NFET, PFET, preamble, type MosSize, type RcSpikeDesign } from './design.ts';

/** Everything one neuron's transient depends on, in SI units. */
export interface NeuronNetlistSpec {
  /** Free text for the title line (no newlines). */
  title?: string;
  /** Membrane (MIM) capacitance, farads. */
  capacitance: number;
  vRest: number;
  supply: number;
  /** End of the transient (the layer's window), seconds. */
  horizon: number;
  /** Largest internal time step, seconds (also the output interval). */
  maxStep: number;
  /** Per row: polarity (NMOS = 0, PMOS = 1), input index, programmed gate voltage and threshold shift. */
  rowPolarity: Uint8Array;
  rowInput: Uint16Array;
  rowGate: Float64Array;
  rowDvth: Float64Array;
  /** Per input, its spike time in seconds; Infinity (or >= horizon) = silent. */
  inputTimes: Float64Array;
  /** Threshold shifts of the inverter's NMOS and PMOS, volts. */
  inverterDvth: readonly [number, number];
  /**
   * Programmed threshold minus the design's nominal one (NEURON_CONFIG), volts: the sense input is
   * level-shifted by its negative, so the inverter trips that much higher on the membrane. 0 = nominal.
   */
  thresholdShift?: number;
  design?: RcSpikeDesign;
  /** Also save the membrane voltage (tests, diagnostics). */
  saveMembrane?: boolean;
}

/** A finite number in a form every SPICE parser reads (no engineering suffixes). */
export function num(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`netlist value must be finite, got ${x}`);
  return String(Number(x.toPrecision(12)));
}

/** Layout-estimate diffusion geometry for a device of width `w`. */
export function diffusion(size: MosSize, ext: number): string {
  if (!(ext > 0)) return '';
  const a = num(size.w * ext);
  const p = num(2 * (size.w + ext));
  return ` ad=${a} as=${a} pd=${p} ps=${p}`;
}

/** One sky130 MOSFET instance line: `X<name> d g s b <subckt> w= l= [diffusion]`. */
export function mosLine(name: string, d: string, g: string, s: string, b: string, pmos: boolean, size: MosSize, ext: number): string {
  return `X${name} ${d} ${g} ${s} ${b} ${pmos ? PFET : NFET} w=${num(size.w)} l=${num(size.l)}${diffusion(size, ext)}`;
}

/** The ideal switch model shared by synapse and precharge switches: closed above VDD/2 on its control. */
export function switchModel(design: RcSpikeDesign, supply: number): string {
  return `.model swsyn sw vt=${num(supply / 2)} vh=0 ron=${num(design.switchOn)} roff=${num(design.switchOff)}`;
}

/**
 * The precharge switch between `mem` and `vrest`. `state`: 'release' (closed for the operating
 * point, opened at t = 0), 'open' (held open), 'closed'. Ideal: control `pre` high = closed. MOS: a
 * PMOS whose gate `preb` is low while precharging and rises over `prechargeEdge` at release; the
 * channel charge and gate overlap it dumps on the membrane are the charge injection.
 */
export function prechargeLines(d: RcSpikeDesign, vdd: number, mem: string, tag: string, state: 'release' | 'open' | 'closed', shareControl = false): string[] {
  const ctrl = shareControl ? 'pre' : `pre_${tag}`;
  const L: string[] = shareControl ? [] : [`Vpre_${tag} ${ctrl} 0 ${prechargeControl(d, vdd, state)}`];
  L.push(
    d.switches === 'ideal'
      ? `Spre_${tag} ${mem} vrest ${ctrl} 0 swsyn`
      : mosLine(`pre_${tag}`, mem, ctrl, 'vrest', 'vdd', true, d.prechargeSwitch, d.diffusionExtent),
  );
  return L;
}

/** The value of the precharge switch's control source for a state (see prechargeLines). */
export function prechargeControl(d: RcSpikeDesign, vdd: number, state: 'release' | 'open' | 'closed'): string {
  if (d.switches === 'ideal') return state === 'release' ? `PWL(0 ${num(vdd)} 1e-12 0)` : state === 'open' ? '0' : num(vdd);
  return state === 'release' ? `PWL(0 0 ${num(d.prechargeEdge)} ${num(vdd)})` : state === 'open' ? num(vdd) : '0';
}

/**
 * The input switch of a row: `s` to ground (NMOS row) or VDD to `s` (PMOS row), closed while
 * `ctrl` is high. MOS: an NMOS gated by `ctrl` or a PMOS gated by its complement `ctrlB`.
 */
export function inputSwitchLine(d: RcSpikeDesign, name: string, pmos: boolean, s: string, ctrl: string, ctrlB: string): string {
  if (d.switches === 'ideal') return pmos ? `S${name} vdd ${s} ${ctrl} 0 swsyn` : `S${name} ${s} 0 ${ctrl} 0 swsyn`;
  return pmos
    ? mosLine(`sw${name}`, s, ctrlB, 'vdd', 'vdd', true, d.inputSwitchP, d.diffusionExtent)
    : mosLine(`sw${name}`, s, ctrl, '0', '0', false, d.inputSwitchN, d.diffusionExtent);
}

/** PWL of the complement of an input's control (VDD until the spike, 0 after). */
export function inputEdgeB(t: number, edge: number, supply: number): string {
  const half = edge / 2;
  if (t - half > 0) return `PWL(0 ${num(supply)} ${num(t - half)} ${num(supply)} ${num(t + half)} 0)`;
  const v0 = supply - (supply * (half - t)) / edge;
  return `PWL(0 ${num(v0)} ${num(t + half)} 0)`;
}

/** PWL control of an input's switches: 0 until the spike, VDD after, the edge centred on `t`. */
export function inputEdge(t: number, edge: number, supply: number): string {
  const half = edge / 2;
  if (t - half > 0) return `PWL(0 0 ${num(t - half)} 0 ${num(t + half)} ${num(supply)})`;
  // Spike within half an edge of t = 0: start part-way up the edge so the switch still closes at t.
  const v0 = (supply * (half - t)) / edge;
  return `PWL(0 ${num(v0)} ${num(t + half)} ${num(supply)})`;
}

function checkSpec(s: NeuronNetlistSpec): void {
  const rows = s.rowPolarity.length;
  for (const [name, a] of [
    ['rowInput', s.rowInput],
    ['rowGate', s.rowGate],
    ['rowDvth', s.rowDvth],
  ] as const) {
    if (a.length !== rows) throw new RangeError(`${name} has ${a.length} entries, expected one per row (${rows})`);
  }
  for (let r = 0; r < rows; r++) {
    if (s.rowInput[r] >= s.inputTimes.length) {
      throw new RangeError(`row ${r} reads input ${s.rowInput[r]}, but only ${s.inputTimes.length} inputs are given`);
    }
  }
  for (const [name, x] of [
    ['capacitance', s.capacitance],
    ['supply', s.supply],
    ['horizon', s.horizon],
    ['maxStep', s.maxStep],
  ] as const) {
    if (!(Number.isFinite(x) && x > 0)) throw new RangeError(`${name} must be positive and finite, got ${x}`);
  }
  if (!(s.vRest > 0 && s.vRest < s.supply)) throw new RangeError(`vRest must lie in (0, supply), got ${s.vRest}`);
  for (let j = 0; j < s.inputTimes.length; j++) {
    const t = s.inputTimes[j];
    if (!(t >= 0)) throw new RangeError(`input time ${j} = ${t} s must be >= 0 (Infinity = silent)`);
  }
}

/** The netlist text of one neuron's transient; `v(out)` (and `v(mem)` if asked) are saved. */
export function neuronNetlist(spec: NeuronNetlistSpec): string {
  checkSpec(spec);
  const d = spec.design ?? DEFAULT_DESIGN;
  const ext = d.diffusionExtent;
  const vdd = spec.supply;
  const title = (spec.title ?? 'neuron').replace(/[\r\n]+/g, ' ');
  const L: string[] = [`* spikeloop RC-Spike neuron, sky130: ${title}`, ...preamble(d), switchModel(d, vdd)];
  L.push(`Vdd vdd 0 ${num(vdd)}`, `Vrest vrest 0 ${num(spec.vRest)}`);
  L.push('* precharge: closed for the operating point, released at t = 0');
  L.push(...prechargeLines(d, vdd, 'mem', 'm', 'release'));
  L.push(`Cmem mem 0 ${num(spec.capacitance)}`);
  L.push('* discharger, held off during the window');
  L.push(mosLine('dis', 'mem', '0', '0', '0', false, d.discharger, ext));

  L.push('* inputs: switch controls, edge centred on the spike time');
  const used = new Uint8Array(spec.inputTimes.length);
  for (let r = 0; r < spec.rowInput.length; r++) used[spec.rowInput[r]] = 1;
  for (let j = 0; j < used.length; j++) {
    if (!used[j]) continue;
    const t = spec.inputTimes[j];
    L.push(t < spec.horizon ? `Vin${j} in${j} 0 ${inputEdge(t, d.inputEdge, vdd)}` : `Vin${j} in${j} 0 0`);
    if (d.switches === 'mos') L.push(t < spec.horizon ? `Vinb${j} inb${j} 0 ${inputEdgeB(t, d.inputEdge, vdd)}` : `Vinb${j} inb${j} 0 ${num(vdd)}`);
  }

  L.push('* synapses: gate source = programmed voltage shifted by the device threshold mismatch');
  for (let r = 0; r < spec.rowPolarity.length; r++) {
    const pmos = spec.rowPolarity[r] !== NMOS;
    const j = spec.rowInput[r];
    const gate = pmos ? spec.rowGate[r] + spec.rowDvth[r] : spec.rowGate[r] - spec.rowDvth[r];
    L.push(mosLine(`r${r}`, 'mem', `g${r}`, `s${r}`, pmos ? 'vdd' : '0', pmos, d.synapse, ext));
    L.push(`Vg${r} g${r} 0 ${num(gate)}`);
    L.push(inputSwitchLine(d, `r${r}`, pmos, `s${r}`, `in${j}`, `inb${j}`));
  }

  L.push('* sensing inverter; series sources carry its threshold mismatch');
  const [dn, dp] = spec.inverterDvth;
  const shift = -(spec.thresholdShift ?? 0);
  L.push(mosLine('ip', 'out', 'gip', 'vdd', 'vdd', true, d.inverterP, ext), `Vsip gip mem ${num(dp + shift)}`);
  L.push(mosLine('in', 'out', 'gin', '0', '0', false, d.inverterN, ext), `Vsin gin mem ${num(-dn + shift)}`);
  L.push(`Cout out 0 ${num(d.outputLoad)}`);

  // Gear integration: trapezoidal rings after each switch closure and made the spike time depend on
  // the step by up to 0.7 ns; Gear is step-independent to 1 ps here.
  L.push('.option method=gear');
  L.push(spec.saveMembrane ? '.save v(out) v(mem)' : '.save v(out)');
  L.push(`.tran ${num(spec.maxStep)} ${num(spec.horizon)} 0 ${num(spec.maxStep)}`);
  L.push('.end', '');
  return L.join('\n');
}
