/**
 * The SPICE engines themselves: the embedded wasm ngspice against an analytic RC response, error
 * reporting, the series-gate mismatch convention on real sky130 devices, and (when a system
 * ngspice is installed) agreement of the two engines on the same neuron netlist.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { dualRailLayer } from '../../../../models/chips/chip-backend.ts';
import { tripPointJob } from '../../../../models/chips/spice/characterise.ts';
import { DEFAULT_DESIGN, SKY130_PREAMBLE } from '../../../../models/chips/spice/design.ts';
import { createEngine, findNgspice, getVector, type SpiceEngine } from '../../../../models/chips/spice/engine.ts';
import { SpiceError } from '../../../../models/chips/spice/errors.ts';
import { mosLine, neuronNetlist, switchModel } from '../../../../models/chips/spice/netlist.ts';
import { spikeTimeOf } from '../../../../models/chips/spice/transient.ts';
import { dualRailNeuronSpec } from './helpers/neuron-spec.ts';

const NGSPICE = findNgspice();
const engines: SpiceEngine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

let wasmEngine: Promise<SpiceEngine> | undefined;
function wasm(): Promise<SpiceEngine> {
  wasmEngine ??= createEngine('wasm').then((e) => {
    engines.push(e);
    return e;
  });
  return wasmEngine;
}

/** A 16-input neuron with a fixed pattern (both engines run this exact text). */
function neuron(): string {
  const g = dualRailLayer(16, 1);
  const rows = g.rowInput.length;
  const rowGate = new Float64Array(rows);
  const rowDvth = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    rowGate[r] = g.rowPolarity[r] === 0 ? 0.44 + 0.007 * r : 1.25 + 0.01 * r;
    rowDvth[r] = 0.004 * Math.sin(r);
  }
  const inputTimes = Float64Array.from({ length: 16 }, (_, j) => (j % 5 === 4 ? Infinity : j * 37e-9));
  return neuronNetlist(dualRailNeuronSpec(16, { rowGate, rowDvth, inputTimes, inverterDvth: [0.002, -0.003] }));
}

describe('wasm engine (eecircuit-engine)', () => {
  it('matches the analytic RC charging curve', async () => {
    const e = await wasm();
    // 1 kOhm, 1 pF, 1 V step at t = 0 (1 ps edge): v = 1 - exp(-t / 1 ns).
    const r = await e.run('rc\nV1 in 0 PWL(0 0 1e-12 1)\nR1 in out 1k\nC1 out 0 1p\n.option method=gear\n.tran 1e-11 5e-9 0 1e-11\n.end\n');
    const t = getVector(r, 'time');
    const v = getVector(r, 'v(out)');
    for (let k = 0; k < t.length; k += 37) {
      if (t[k] < 0.05e-9) continue;
      expect(v[k]).toBeCloseTo(1 - Math.exp(-(t[k] - 0.5e-12) / 1e-9), 3);
    }
  });

  it('reports a failed run as a SpiceError carrying the netlist and ngspice messages', async () => {
    const e = await wasm();
    const bad = 'bad\nV1 a 0 1\nQ1 a b c nomodel\n.tran 1n 10n\n.end\n';
    const err = await e.run(bad).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SpiceError);
    expect((err as SpiceError).netlist).toBe(bad);
    expect((err as SpiceError).messages.join('\n')).toMatch(/nomodel|model/i);
    // The engine stays usable after a failure.
    const ok = await e.run('ok\nV1 a 0 1\nR1 a 0 1k\n.op\n.end\n');
    expect(ok.names.length).toBeGreaterThan(0);
  });

  it('a series gate source shifts threshold as mismatch should (sky130 devices)', async () => {
    const e = await wasm();
    // Synapse: a +20 mV threshold shift is the gate at Vg - 20 mV; in weak inversion the current
    // falls by exp(-20 mV / (n UT)) with a slope factor n between 1.1 and 1.8.
    const d = DEFAULT_DESIGN;
    const net = [
      '* mismatch as gate shift',
      ...SKY130_PREAMBLE,
      switchModel(d, 1.8),
      'Vm mem 0 1.2',
      'Vm2 mem2 0 1.2',
      'Vga ga 0 0.4',
      'Vgb gb 0 0.38',
      mosLine('a', 'mem', 'ga', '0', '0', false, d.synapse, d.diffusionExtent),
      mosLine('b', 'mem2', 'gb', '0', '0', false, d.synapse, d.diffusionExtent),
      '.op',
      '.end',
    ].join('\n');
    const r = await e.run(net);
    const ratio = getVector(r, 'i(vm2)')[0] / getVector(r, 'i(vm)')[0];
    const ut = 0.025865;
    expect(ratio).toBeLessThan(Math.exp(-0.02 / (1.8 * ut)));
    expect(ratio).toBeGreaterThan(Math.exp(-0.02 / (1.1 * ut)));
    // Inverter: a weaker NMOS (dVth > 0) raises the trip point, a weaker PMOS lowers it.
    const job = tripPointJob(1.8, Float64Array.from([0, 0, 0.02, 0, 0, 0.02]));
    const [nominal, weakN, weakP] = job.parse(await e.run(job.netlist));
    expect(nominal).toBeGreaterThan(0.85);
    expect(nominal).toBeLessThan(0.95);
    expect(weakN).toBeGreaterThan(nominal + 0.005);
    expect(weakP).toBeLessThan(nominal - 0.005);
  });
});

describe.runIf(NGSPICE)(`system ngspice (${NGSPICE ?? 'not on the PATH'})`, () => {
  it('gives the same spike time as the wasm engine on the same netlist (within 0.1 % of the window)', async () => {
    const ng = await createEngine('ngspice');
    engines.push(ng);
    const net = neuron();
    const [a, b] = await Promise.all([(await wasm()).run(net), ng.run(net)]);
    const ta = spikeTimeOf(a, 1.8, 2e-6, net);
    const tb = spikeTimeOf(b, 1.8, 2e-6, net);
    expect(Number.isFinite(ta)).toBe(true);
    expect(Math.abs(ta - tb) / 2e-6).toBeLessThan(1e-3);
  });

  it('reads ASCII raw output the same as binary', async () => {
    const { NgspiceEngine } = await import('../../../../models/chips/spice/ngspice-engine.ts');
    const ascii = await NgspiceEngine.start(NGSPICE!, { ascii: true });
    const bin = await NgspiceEngine.start(NGSPICE!);
    engines.push(ascii, bin);
    const net = 'rc\nV1 in 0 PWL(0 0 1e-12 1)\nR1 in out 1k\nC1 out 0 1p\n.tran 1e-10 3e-9\n.end\n';
    const [x, y] = await Promise.all([ascii.run(net), bin.run(net)]);
    expect(x.names).toEqual(y.names);
    for (let k = 0; k < x.data.length; k++) {
      expect(x.data[k].length).toBe(y.data[k].length);
      for (let p = 0; p < x.data[k].length; p++) expect(x.data[k][p]).toBeCloseTo(y.data[k][p], 12);
    }
    const err = await bin.run('bad\nQ1 a b c nomodel\n.tran 1n 10n\n.end\n').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpiceError);
  });
});

describe.skipIf(NGSPICE)('system ngspice', () => {
  it('skipped: no ngspice on the PATH (apt-get install ngspice to compare engines)', () => {
    expect(findNgspice()).toBeUndefined();
  });
});
