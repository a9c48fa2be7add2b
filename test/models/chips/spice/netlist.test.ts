import { describe, expect, it } from 'vitest';
import { DEFAULT_DESIGN } from '../../../../models/chips/spice/design.ts';
import { inputEdge, neuronNetlist, num, type NeuronNetlistSpec } from '../../../../models/chips/spice/netlist.ts';
import { dualRailNeuronSpec } from './helpers/neuron-spec.ts';

function spec(over: Partial<NeuronNetlistSpec> = {}): NeuronNetlistSpec {
  const rows = {
    rowGate: Float64Array.from([0.4, 1.4, 0.5, 1.3, 0.6, 1.2]),
    rowDvth: Float64Array.from([0.01, 0.02, -0.01, -0.02, 0, 0.005]),
    inputTimes: Float64Array.from([0, 300e-9, Infinity]),
    inverterDvth: [0.003, -0.004] as const,
  };
  return { ...dualRailNeuronSpec(3, rows), ...over };
}

/** Tokens of the netlist line starting with `name ` (case-sensitive). */
function line(text: string, name: string): string[] {
  const l = text.split('\n').find((s) => s.startsWith(`${name} `));
  if (!l) throw new Error(`no line ${name}`);
  return l.split(/\s+/);
}

/** Time at which a PWL source first reaches `level` (linear segments): an independent reading of the edge. */
function pwlCrossing(tokens: string[], level: number): number {
  const pts = tokens
    .join(' ')
    .replace(/^.*PWL\(|\)$/g, '')
    .trim()
    .split(/\s+/)
    .map(Number);
  for (let k = 2; k < pts.length; k += 2) {
    const [t0, v0, t1, v1] = [pts[k - 2], pts[k - 1], pts[k], pts[k + 1]];
    if (v0 < level && v1 >= level) return t0 + ((level - v0) / (v1 - v0)) * (t1 - t0);
  }
  if (pts[1] >= level) return pts[0];
  return Infinity;
}

describe('neuron netlist', () => {
  const text = neuronNetlist(spec());

  it('loads the bundled sky130 models with Monte Carlo off before any device', () => {
    const lines = text.split('\n');
    expect(lines[1]).toBe('.param mc_switch=0');
    expect(lines[2]).toBe('.include modelcard.skywater');
    expect(text).toContain('.option method=gear');
    expect(line(text, '.tran')).toEqual(['.tran', '1e-9', '0.000002', '0', '1e-9']);
    expect(text.trimEnd().endsWith('.end')).toBe(true);
  });

  it('wires NMOS rows to ground and PMOS rows to VDD through their input switches', () => {
    expect(line(text, 'Xr0').slice(0, 6)).toEqual(['Xr0', 'mem', 'g0', 's0', '0', 'sky130_fd_pr__nfet_01v8']);
    expect(line(text, 'Xr1').slice(0, 6)).toEqual(['Xr1', 'mem', 'g1', 's1', 'vdd', 'sky130_fd_pr__pfet_01v8']);
    // Default: transistor switches, an NMOS gated by the input, a PMOS by its complement.
    expect(line(text, 'Xswr0').slice(0, 6)).toEqual(['Xswr0', 's0', 'in0', '0', '0', 'sky130_fd_pr__nfet_01v8']);
    expect(line(text, 'Xswr1').slice(0, 6)).toEqual(['Xswr1', 's1', 'inb0', 'vdd', 'vdd', 'sky130_fd_pr__pfet_01v8']);
    expect(line(text, 'Xswr0')).toContain('w=4.2e-7');
    expect(pwlCrossing(line(text, 'Vin1'), 0.9)).toBeCloseTo(300e-9, 18);
    expect(
      1.8 -
        pwlCrossing(
          line(text, 'Vinb1').map((x, k) => (k < 3 ? x : x)),
          0.9,
        ),
    ).toBeGreaterThan(0);
    expect(line(text, 'Vinb2')).toEqual(['Vinb2', 'inb2', '0', '1.8']);
    // The precharge switch: a PMOS from vrest whose gate rises at t = 0.
    expect(line(text, 'Xpre_m').slice(0, 6)).toEqual(['Xpre_m', 'mem', 'pre_m', 'vrest', 'vdd', 'sky130_fd_pr__pfet_01v8']);
    expect(line(text, 'Vpre_m').join(' ')).toBe('Vpre_m pre_m 0 PWL(0 0 1e-11 1.8)');
    // Ideal switches on request.
    const ideal = neuronNetlist(spec({ design: { ...DEFAULT_DESIGN, switches: 'ideal' } }));
    expect(line(ideal, 'Sr0')).toEqual(['Sr0', 's0', '0', 'in0', '0', 'swsyn']);
    expect(line(ideal, 'Sr1')).toEqual(['Sr1', 'vdd', 's1', 'in0', '0', 'swsyn']);
    expect(line(ideal, 'Spre_m')).toEqual(['Spre_m', 'mem', 'vrest', 'pre_m', '0', 'swsyn']);
    expect(ideal).not.toContain('Vinb');
    expect(line(text, 'Xr0')).toContain('w=0.000001');
    expect(line(text, 'Xr0')).toContain('l=2.5e-7');
  });

  it('applies threshold mismatch as a gate shift: Vg - dVth (NMOS), Vg + dVth (PMOS)', () => {
    const s = spec();
    for (let r = 0; r < 6; r++) {
      const expected = s.rowPolarity[r] === 0 ? s.rowGate[r] - s.rowDvth[r] : s.rowGate[r] + s.rowDvth[r];
      expect(Number(line(text, `Vg${r}`)[3])).toBeCloseTo(expected, 12);
    }
    // Inverter: gate = mem + shift; an NMOS threshold rise lowers its gate, a PMOS one raises its gate.
    expect(line(text, 'Vsin')).toEqual(['Vsin', 'gin', 'mem', '-0.003']);
    expect(line(text, 'Vsip')).toEqual(['Vsip', 'gip', 'mem', '-0.004']);
  });

  it('centres each input edge on its spike time; silent inputs stay open', () => {
    expect(pwlCrossing(line(text, 'Vin0'), 0.9)).toBeCloseTo(0, 18);
    expect(pwlCrossing(line(text, 'Vin1'), 0.9)).toBeCloseTo(300e-9, 18);
    expect(line(text, 'Vin2')).toEqual(['Vin2', 'in2', '0', '0']);
    for (const t of [0, 2e-12, 5e-12, 7e-12, 1e-9]) {
      expect(pwlCrossing(inputEdge(t, DEFAULT_DESIGN.inputEdge, 1.8).split(/\s+/), 0.9)).toBeCloseTo(t, 18);
    }
  });

  it('saves the membrane only when asked', () => {
    expect(text).toContain('.save v(out)\n');
    expect(neuronNetlist(spec({ saveMembrane: true }))).toContain('.save v(out) v(mem)');
  });

  it('fails clearly on inconsistent or non-finite inputs', () => {
    expect(() => neuronNetlist(spec({ rowGate: new Float64Array(5) }))).toThrow(/rowGate has 5 entries/);
    expect(() => neuronNetlist(spec({ inputTimes: Float64Array.from([0, -1e-9, 0]) }))).toThrow(/input time 1/);
    expect(() => neuronNetlist(spec({ horizon: 0 }))).toThrow(/horizon/);
    expect(() => neuronNetlist(spec({ rowGate: Float64Array.from([NaN, 1, 1, 1, 1, 1]) }))).toThrow(/finite/);
    expect(() => num(Infinity)).toThrow(RangeError);
    expect(num(1.033e-13)).toBe('1.033e-13');
  });
});
