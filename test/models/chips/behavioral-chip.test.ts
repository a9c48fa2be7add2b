import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BehavioralChip } from '../../../models/chips/behavioral-chip.ts';
import { NMOS, type ChipBackend } from '../../../models/chips/chip-backend.ts';
import { parseFaults } from '../../../models/chips/faults.ts';
import { ChipOptionsError, CHIP_KINDS, createChip, IdealChip } from '../../../models/chips/index.ts';
import { SKY130_MAGNITUDES, type MismatchMagnitudes } from '../../../models/chips/mismatch.ts';
import { mulberry } from '../rng.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';
import { expectOneOutputMoved, gatesWith, randomGates, randomInputs } from './gates.ts';

const ZERO: MismatchMagnitudes = {
  ...(Object.fromEntries(Object.keys(SKY130_MAGNITUDES).map((k) => [k, 0])) as unknown as MismatchMagnitudes),
  capDensity: SKY130_MAGNITUDES.capDensity,
};

describe('behavioural chip: a die drawn from a seed', () => {
  it('defaults: 784-256-128-10 dual-rail, same board-visible fields as the ideal chip', async () => {
    const chip = await createChip('behavioral', { seed: '7' });
    const ideal = await createChip('ideal', {});
    expect(CHIP_KINDS).toContain('behavioral');
    expect(chip.chipId).toBe('behavioral-7');
    expect(chip.geometry.map((g) => [g.inputs, g.outputs, g.rowInput.length])).toEqual([
      [784, 256, 1568],
      [256, 128, 512],
      [128, 10, 256],
    ]);
    expect(chip.timing).toEqual(ideal.timing);
    expect(chip.dac).toEqual(ideal.dac);
    expect(chip.safe).toEqual(ideal.safe);
    for (let l = 0; l < 3; l++) expect(chip.neuronVoltages(l)).toEqual(ideal.neuronVoltages(l));
  });

  it('with every magnitude zero the model-form (ekv) die is the ideal chip, tick for tick', async () => {
    const rnd = mulberry(3);
    const chip = new BehavioralChip({ seed: 5, sizes: [16, 8, 4], magnitudes: ZERO, physics: 'ekv' });
    const ideal = new IdealChip({ sizes: [16, 8, 4] });
    randomGates(chip, rnd).forEach((v, l) => {
      chip.setGateVoltages(l, v);
      ideal.setGateVoltages(l, v);
    });
    const x = randomInputs(6 * 16, rnd);
    const a = await chip.run(x, 6);
    expect(a).toEqual(await ideal.run(x, 6));
    expect(a.some((o) => o.some((t) => t !== SILENT_TICK))).toBe(true);
  });

  it("one synapse of a model-form (ekv) die matches the SI closed form with the die's true parameters (kick, leak, trip, delay, offset)", async () => {
    // 0.1 ns ticks resolve the sub-nanosecond terms; window still 2 us.
    const chip = new BehavioralChip({
      physics: 'ekv',
      seed: 21,
      sizes: [1, 1],
      tickSeconds: 1e-10,
      horizonTicks: [20000],
      magnitudes: { jitterSeconds: 0 },
    });
    const vg = 0.57;
    chip.setGateVoltages(0, Float64Array.of(vg, 1.8));
    const tr = chip.hiddenTruth();
    const p = tr.process;
    const l0 = tr.layers[0];
    // EKV written out: I0 = kp_eff * 2 n (W/L) UT^2 * ln(1 + exp(vov / (2 n UT)))^2.
    const ut = (1.380649e-23 * (p.temperatureC + 273.15)) / 1.602176634e-19;
    const ekv = (kp: number, n: number, vov: number) => 2 * n * kp * 4 * ut * ut * Math.log1p(Math.exp(vov / (2 * n * ut))) ** 2;
    const iN = ekv(53.3e-6 * p.kpN * l0.local.beta[0], 1.221, vg - (0.609 + p.dVthN + l0.local.dVth[0]));
    const iP = ekv(4.48e-6 * p.kpP * l0.local.beta[1], 1.373, p.supplyV - 1.8 - (0.675 + p.dVthP + l0.local.dVth[1]));
    const c = l0.capacitance[0];
    const gLeak = l0.leakAmps[0] / 0.2; // linearised at mid-swing (0.2 V)
    // C dv/dt = -iN (1 + lamN v) + iP (1 + lamP (VDD - v)) + gLeak (vRest - v) = a - b v
    const a = (-iN + iP * (1 + p.lambdaP * p.supplyV) + gLeak * 1.3) / c;
    const b = (iN * p.lambdaN + iP * p.lambdaP + gLeak) / c;
    const vInf = a / b;
    // Switching on: NMOS gate 0 -> vg couples up, PMOS gate VDD -> 1.8 V couples down.
    const v0 = 1.3 + (0.15e-15 * vg - 0.15e-15 * (p.supplyV - 1.8)) / c;
    const tCross = Math.log((vInf - v0) / (vInf - l0.vTrip[0])) / b;
    for (const tin of [0, 137, 5000]) {
      const [out] = await chip.run(Uint16Array.of(tin), 1);
      const expected = tin + (tCross + l0.delaySeconds[0] + tr.tdcOffsetSeconds) / 1e-10;
      expect(Math.abs(out[0] - Math.floor(expected)), `input at ${tin}`).toBeLessThanOrEqual(1);
      expect(expected - tin).toBeGreaterThan(300); // a real latency, well inside the window
    }
  });

  it('the same seed replays exactly, including the jitter of every run; sensor reads do not disturb it', async () => {
    const rnd = mulberry(4);
    const a = new BehavioralChip({ seed: 9, sizes: [16, 8, 4] });
    const b = new BehavioralChip({ seed: 9, sizes: [16, 8, 4] });
    const gates = randomGates(a, rnd);
    gates.forEach((v, l) => {
      a.setGateVoltages(l, v);
      b.setGateVoltages(l, v);
    });
    expect(b.hiddenTruth().layers).toEqual(a.hiddenTruth().layers);
    const x = randomInputs(40 * 16, rnd);
    const runsA = [await a.run(x, 40), await a.run(x, 40), await a.run(x, 40)];
    const runsB = [await b.run(x, 40)];
    for (let k = 0; k < 5; k++) b.supply();
    runsB.push(await b.run(x, 40), await b.run(x, 40));
    expect(runsB).toEqual(runsA);
    // Jitter is fresh per run: repeats of one input differ somewhere, by a tick or two at most.
    let differ = 0;
    for (let l = 0; l < runsA[0].length; l++) {
      for (let k = 0; k < runsA[0][l].length; k++) {
        const t0 = runsA[0][l][k];
        const t1 = runsA[1][l][k];
        if (t0 === SILENT_TICK || t1 === SILENT_TICK) continue;
        if (t0 !== t1) differ++;
        if (l === 0) expect(Math.abs(t0 - t1)).toBeLessThanOrEqual(2);
      }
    }
    expect(differ).toBeGreaterThan(0);
    expect(a.hiddenTruth().runs).toBe(3);
  });

  it('different seeds are different dies', async () => {
    const rnd = mulberry(6);
    const chips = [1, 2, 3].map((seed) => new BehavioralChip({ seed, sizes: [16, 8] }));
    const [v] = randomGates(chips[0], rnd);
    for (const c of chips) c.setGateVoltages(0, v);
    const x = randomInputs(10 * 16, rnd);
    const outs = await Promise.all(chips.map((c) => c.run(x, 10)));
    expect(outs[0][0]).not.toEqual(outs[1][0]);
    expect(outs[1][0]).not.toEqual(outs[2][0]);
    const t = chips.map((c) => c.hiddenTruth());
    expect(t[0].lambdaN).not.toBe(t[1].lambdaN);
    expect(t[0].layers[0].dVth).not.toEqual(t[1].layers[0].dVth);
    expect(new Set(chips.map((c) => c.chipId)).size).toBe(3);
  });

  it('jitter: Gaussian edges of the documented rms, floored by the timer', async () => {
    // A 3 ns override makes the spread measurable against the 1 ns floor: var = sigma^2 + 1/12 tick^2.
    const chip = new BehavioralChip({ seed: 2, sizes: [1, 1], magnitudes: { jitterSeconds: 3e-9 } });
    chip.setGateVoltages(0, Float64Array.of(0.57, 1.8));
    const n = 2000;
    const [out] = await chip.run(new Uint16Array(n).fill(100), n);
    let s = 0;
    let s2 = 0;
    for (const t of out) {
      s += t;
      s2 += t * t;
    }
    const mean = s / n;
    const std = Math.sqrt((s2 - n * mean * mean) / (n - 1));
    expect(Math.abs(std / Math.sqrt(9 + 1 / 12) - 1)).toBeLessThan(0.06);
    expect(new BehavioralChip({ seed: 2 }).hiddenTruth().jitterSeconds).toBe(0.25e-9);
  });

  it('more gate drive never delays a spike: NMOS up -> earlier, PMOS down -> later (property)', async () => {
    let changed = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.integer({ min: 0, max: 11 }),
        fc.integer({ min: 0, max: 2 }),
        fc.double({ min: 0.005, max: 0.1, noNaN: true }),
        async (seed, row, col, step) => {
          // Two dies with the same seed see the same jitter on their first run.
          const before = new BehavioralChip({ seed, sizes: [6, 3] });
          const after = new BehavioralChip({ seed, sizes: [6, 3] });
          const g = before.geometry[0];
          const rnd = mulberry(seed);
          const [v] = randomGates(before, rnd);
          const x = randomInputs(4 * 6, rnd);
          before.setGateVoltages(0, v);
          const k = row * g.outputs + col;
          const nmos = g.rowPolarity[row] === NMOS;
          v[k] = nmos ? v[k] + step : v[k] - step;
          after.setGateVoltages(0, v);
          const [t0] = await before.run(x, 4);
          const [t1] = await after.run(x, 4);
          changed += expectOneOutputMoved(g, t0, t1, 4, col, nmos);
        },
      ),
      { numRuns: 60 },
    );
    expect(changed).toBeGreaterThan(10);
  });

  it('differs from the ideal chip by the amounts subthreshold mismatch implies', async () => {
    // sigma(ln I) per device ~ 15 mV / 34 mV ~ 0.45, the chip-level 12 mV shift ~ 0.35: latencies move
    // by tens of percent, not by factors of ten, and nearly every spike moves.
    const rnd = mulberry(5);
    const ideal = new IdealChip({ sizes: [32, 16] });
    const [v] = randomGates(ideal, rnd);
    ideal.setGateVoltages(0, v);
    const batch = 16;
    const x = randomInputs(batch * 32, rnd);
    const [ti] = await ideal.run(x, batch);
    const rel: number[] = [];
    for (let seed = 1; seed <= 6; seed++) {
      const chip = new BehavioralChip({ seed, sizes: [32, 16] });
      chip.setGateVoltages(0, v);
      const [tb] = await chip.run(x, batch);
      let both = 0;
      let moved = 0;
      for (let k = 0; k < tb.length; k++) {
        if (ti[k] === SILENT_TICK || tb[k] === SILENT_TICK) continue;
        both++;
        if (tb[k] !== ti[k]) moved++;
        const b = Math.floor(k / 16);
        let first = Infinity;
        for (let j = 0; j < 32; j++) if (x[b * 32 + j] !== SILENT_TICK) first = Math.min(first, x[b * 32 + j]);
        rel.push(Math.abs(tb[k] - ti[k]) / (ti[k] - first));
      }
      expect(both).toBeGreaterThan(0.8 * tb.length);
      expect(moved).toBeGreaterThan(0.9 * both);
    }
    rel.sort((p, q) => p - q);
    const median = rel[rel.length >> 1];
    expect(median).toBeGreaterThan(0.05);
    expect(median).toBeLessThan(0.5);
  });

  it('a lower threshold reference delays spikes; each neuron keeps its own trip offset', async () => {
    const chip = new BehavioralChip({ seed: 3, sizes: [4, 2], magnitudes: { jitterSeconds: 0 } });
    chip.setGateVoltages(
      0,
      gatesWith(
        chip,
        0,
        [0, 2, 4, 6].flatMap(
          (r) =>
            [
              [r, 0, 0.55],
              [r, 1, 0.55],
            ] as [number, number, number][],
        ),
      ),
    );
    const x = Uint16Array.of(0, 10, 20, 30);
    const [t1] = await chip.run(x, 1);
    const s1 = chip.hiddenTruth().layers[0].vTrip;
    chip.setNeuronVoltages(0, 1.3, 0.8);
    const [t2] = await chip.run(x, 1);
    const s2 = chip.hiddenTruth().layers[0].vTrip;
    expect(t2[0]).toBeGreaterThan(t1[0]);
    expect(t2[1]).toBeGreaterThan(t1[1]);
    for (let i = 0; i < 2; i++) expect(s2[i] - 0.8).toBeCloseTo(s1[i] - 0.9, 12);
    expect(chip.neuronVoltages(0)).toEqual({ vRest: 1.3, vThreshold: 0.8 });
    expect(() => chip.setNeuronVoltages(0, 1.3, 1.4)).toThrow(RangeError);
    expect(chip.neuronVoltages(0)).toEqual({ vRest: 1.3, vThreshold: 0.8 });
  });

  it("sensors read the die's supply and temperature with small noise", () => {
    const chip = new BehavioralChip({ seed: 8, sizes: [2, 1] });
    const t = chip.hiddenTruth();
    const reads = Array.from({ length: 400 }, () => chip.supply());
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
    const v = reads.map((r) => r.supplyV);
    const temp = reads.map((r) => r.temperatureC);
    expect(Math.abs(mean(v) - t.supplyV)).toBeLessThan(0.0005);
    expect(std(v)).toBeGreaterThan(0.0015);
    expect(std(v)).toBeLessThan(0.0025);
    expect(Math.abs(mean(temp) - t.temperatureC)).toBeLessThan(0.06);
    expect(std(temp)).toBeGreaterThan(0.24);
    expect(std(temp)).toBeLessThan(0.36);
    expect(Math.abs(t.supplyV - 1.8)).toBeLessThan(0.054); // within the board self-test's 5 % by a margin
  });

  it('the kick of a switching synapse is C_ov dVg / (C swing), NMOS down in u, PMOS up', () => {
    const chip = new BehavioralChip({ seed: 4, sizes: [2, 2] });
    chip.setGateVoltages(
      0,
      gatesWith(chip, 0, [
        [0, 0, 0.3],
        [3, 1, 1.5],
      ]),
    );
    const t = chip.hiddenTruth();
    const l0 = t.layers[0];
    const k = l0.model.kick!;
    // input 0 -> neuron 0: NMOS 0 -> 0.3 V; its PMOS twin swings VDD -> 1.8 V.
    const pmosOff = (0.15e-15 * (t.supplyV - 1.8)) / (l0.capacitance[0] * 0.4);
    expect(k[0]).toBeCloseTo((-0.15e-15 * 0.3) / (l0.capacitance[0] * 0.4) + pmosOff, 12);
    // input 1 -> neuron 1: PMOS VDD -> 1.5 V, NMOS stays at 0.
    expect(k[1 * 2 + 1]).toBeCloseTo((0.15e-15 * (t.supplyV - 1.5)) / (l0.capacitance[1] * 0.4), 12);
    expect(k[0]).toBeLessThan(-0.001);
    expect(k[3]).toBeGreaterThan(0.001);
  });
});

describe('behavioural chip: the truth stays hidden', () => {
  it('nothing but the ChipBackend fields is enumerable; truth copies cannot change the die', async () => {
    const chip = (await createChip('behavioral', { seed: '3', geometry: '8-4' })) as BehavioralChip;
    expect(Object.keys(chip).sort()).toEqual(['chipId', 'dac', 'geometry', 'safe', 'timing']);
    const t = chip.hiddenTruth();
    const json = JSON.stringify(chip);
    expect(json).not.toContain(String(t.lambdaN));
    expect(json).not.toContain(String(t.layers[0].dVth[0]));
    expect(json.length).toBeLessThan(2000);
    // Two dies look the same to a board until it measures them.
    const other = new BehavioralChip({ seed: 4, sizes: [8, 4] });
    expect({ ...other, chipId: '' }).toEqual({ ...chip, chipId: '' });
    expect(other.neuronVoltages(0)).toEqual(chip.neuronVoltages(0));

    const x = Uint16Array.from({ length: 8 }, (_, j) => 50 * j);
    chip.setGateVoltages(
      0,
      gatesWith(chip, 0, [
        [0, 0, 0.55],
        [2, 1, 0.55],
        [4, 2, 0.55],
        [6, 3, 0.55],
      ]),
    );
    const twin = new BehavioralChip({ seed: 3, sizes: [8, 4] });
    twin.setGateVoltages(
      0,
      gatesWith(twin, 0, [
        [0, 0, 0.55],
        [2, 1, 0.55],
        [4, 2, 0.55],
        [6, 3, 0.55],
      ]),
    );
    const tt = chip.hiddenTruth();
    tt.layers[0].model.gE.fill(0);
    tt.layers[0].dVth.fill(1);
    tt.process.lambdaN = 99;
    expect(await chip.run(x, 1)).toEqual(await twin.run(x, 1));
  });
});

describe('behavioural chip: planted faults', () => {
  const strong = (chip: ChipBackend) =>
    gatesWith(
      chip,
      0,
      chip.geometry[0].rowPolarity.reduce<[number, number, number][]>((acc, pol, r) => {
        if (pol === NMOS) for (let i = 0; i < chip.geometry[0].outputs; i++) acc.push([r, i, 0.58]);
        return acc;
      }, []),
    );
  const pair = (faults: string) => {
    const ok = new BehavioralChip({ seed: 12, sizes: [4, 3, 2] });
    const bad = new BehavioralChip({ seed: 12, sizes: [4, 3, 2], faults: parseFaults(faults) });
    for (const c of [ok, bad]) {
      c.setGateVoltages(0, strong(c));
      c.setGateVoltages(1, strong({ geometry: [c.geometry[1]] } as unknown as ChipBackend));
    }
    return { ok, bad };
  };
  const inputs = Uint16Array.from([0, 5, 10, 15, 100, 120, 140, 160, ...new Array(4).fill(SILENT_TICK)]);

  it('dead neuron never fires; its layer-mates are untouched', async () => {
    const { ok, bad } = pair('dead-neuron:0.1');
    const a = await ok.run(inputs, 3);
    const b = await bad.run(inputs, 3);
    for (let s = 0; s < 2; s++) {
      expect(a[0][s * 3 + 1]).not.toBe(SILENT_TICK);
      expect(b[0][s * 3 + 1]).toBe(SILENT_TICK);
      expect(b[0][s * 3]).toBe(a[0][s * 3]);
      expect(b[0][s * 3 + 2]).toBe(a[0][s * 3 + 2]);
    }
    expect(b[0][6 + 1]).toBe(SILENT_TICK);
    expect(bad.hiddenTruth().layers[0].neuronFaults).toEqual(['', 'dead', '']);
  });

  it('stuck neuron reads tick 0 always, even with no input, and drives the next layer from t = 0', async () => {
    const { ok, bad } = pair('stuck-neuron:0.2');
    const a = await ok.run(inputs, 3);
    const b = await bad.run(inputs, 3);
    for (let s = 0; s < 3; s++) expect(b[0][s * 3 + 2]).toBe(0);
    // Sample 2 has no input at all: the healthy die stays silent, the faulty one fires downstream.
    expect(Array.from(a[1].subarray(4, 6))).toEqual([SILENT_TICK, SILENT_TICK]);
    expect(Array.from(b[1].subarray(4, 6)).every((t) => t !== SILENT_TICK)).toBe(true);
    expect(b[0][0]).toBe(a[0][0]);
  });

  it('dead synapse conducts nothing; shorted NMOS fires its neuron right after its input, whatever its gate', async () => {
    // Only input 1 spikes (tick 100), through its NMOS synapse onto neuron 2.
    const only1 = Uint16Array.of(SILENT_TICK, 100, SILENT_TICK, SILENT_TICK);
    const mk = (faults?: string) => new BehavioralChip({ seed: 12, sizes: [4, 3], faults: faults ? parseFaults(faults) : undefined });
    const ok = mk();
    const dead = mk('dead-synapse:0.1.2.nmos');
    for (const c of [ok, dead])
      c.setGateVoltages(
        0,
        gatesWith(c, 0, [
          [2, 2, 0.58],
          [2, 0, 0.58],
        ]),
      );
    const [a] = await ok.run(only1, 1);
    const [b] = await dead.run(only1, 1);
    expect(a[2]).not.toBe(SILENT_TICK);
    expect(b[2]).toBe(SILENT_TICK);
    expect(b[0]).toBe(a[0]);
    expect(dead.hiddenTruth().layers[0].gain[2 * 3 + 2]).toBe(0);

    const shorted = mk('shorted-synapse:0.1.2.nmos');
    const [c] = await shorted.run(only1, 1); // every gate off
    expect(c[2]).toBeGreaterThanOrEqual(100);
    expect(c[2]).toBeLessThanOrEqual(100 + 5); // picoseconds of charging + delay + offset
    expect(c[0]).toBe(SILENT_TICK);
    const [d] = await shorted.run(new Uint16Array(4).fill(SILENT_TICK), 1);
    expect(d[2]).toBe(SILENT_TICK); // still switched by its input: not a stuck neuron
    expect(shorted.hiddenTruth().layers[0].gateVolts[2 * 3 + 2]).toBe(shorted.hiddenTruth().supplyV);
  });

  it('shorted PMOS holds its neuron down once its input spikes', async () => {
    const x = Uint16Array.of(50, 10, 50, 50);
    const mk = (faults?: string) => new BehavioralChip({ seed: 12, sizes: [4, 3], faults: faults ? parseFaults(faults) : undefined });
    const ok = mk();
    const bad = mk('shorted-synapse:0.1.2.pmos');
    const excite: [number, number, number][] = [0, 4, 6].flatMap(
      (r) =>
        [
          [r, 0, 0.58],
          [r, 2, 0.58],
        ] as [number, number, number][],
    );
    for (const c of [ok, bad]) c.setGateVoltages(0, gatesWith(c, 0, excite));
    const [a] = await ok.run(x, 1);
    const [b] = await bad.run(x, 1);
    expect(a[2]).not.toBe(SILENT_TICK);
    expect(b[2]).toBe(SILENT_TICK);
    expect(b[0]).toBe(a[0]);
  });

  it('weak synapse carries its fraction of the current: a lone input takes 1/F times as long', async () => {
    const mk = (faults?: string) => new BehavioralChip({ seed: 12, sizes: [2, 2], faults: faults ? parseFaults(faults) : undefined });
    const x = Uint16Array.of(100, SILENT_TICK);
    for (const [spec, f] of [
      ['weak-synapse:0.0.1.nmos@0.1', 0.1],
      ['weak-synapse:0.0.1.nmos', 0.1],
      ['weak-synapse:0.0.1.nmos@0.25', 0.25],
    ] as const) {
      const ok = mk();
      const bad = mk(spec);
      for (const c of [ok, bad])
        c.setGateVoltages(
          0,
          gatesWith(c, 0, [
            [0, 1, 0.62],
            [0, 0, 0.62],
          ]),
        );
      const [a] = await ok.run(x, 1);
      const [b] = await bad.run(x, 1);
      // t = ln((E+ - u0) / (E+ - theta)) / g is 1/g: delay, offset and jitter (~3 ticks) blur it a little.
      const ratio = (b[1] - 100) / (a[1] - 100);
      expect(ratio, spec).toBeGreaterThan(0.93 / f);
      expect(ratio, spec).toBeLessThan(1.03 / f);
      expect(b[0]).toBe(a[0]);
    }
  });

  it('faults name the die: a faulty chip is not its healthy twin', () => {
    const a = new BehavioralChip({ seed: 12, sizes: [4, 3] });
    const b = new BehavioralChip({ seed: 12, sizes: [4, 3], faults: parseFaults('dead-neuron:0.0') });
    expect(b.chipId).not.toBe(a.chipId);
    expect(b.chipId.startsWith('behavioral-12-4x3-f')).toBe(true);
  });
});

describe('createChip behavioral: options', () => {
  it('builds from URI-style strings', async () => {
    const chip = await createChip('behavioral', { seed: '7', geometry: '16-8-4', faults: 'dead-neuron:1.3;weak-synapse:0.2.1.pmos@0.5' });
    expect(chip.geometry.map((g) => g.outputs)).toEqual([8, 4]);
    expect((chip as BehavioralChip).hiddenTruth().faults.map((f) => f.kind)).toEqual(['dead-neuron', 'weak-synapse']);
  });

  it('fails clearly on malformed options', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ fault: 'dead-neuron:0.1' }, /unknown option 'fault' for chip kind 'behavioral'; accepted options: seed, geometry, faults/],
      [{ geometry: '16-x' }, /invalid option geometry='16-x'.*784-256-128-10/],
      [{ seed: '-1' }, /invalid option seed='-1'.*non-negative integer/],
      [{ faults: 'dead-neuron:0' }, /invalid option faults='dead-neuron:0' for chip kind 'behavioral': fault 'dead-neuron:0': .*accepted forms/],
      [{ faults: 'broken:0.1' }, /unknown fault kind 'broken'/],
      [{ faults: 'dead-neuron:5.0', geometry: '4-2' }, /invalid option faults='dead-neuron:5.0'.*layer 5 does not exist; this chip has layers 0..0/],
      [{ faults: 'dead-synapse:0.4.0.nmos', geometry: '4-2' }, /input 4 does not exist; layer 0 has inputs 0..3/],
    ];
    for (const [opts, re] of cases) {
      await expect(createChip('behavioral', opts), JSON.stringify(opts)).rejects.toThrow(ChipOptionsError);
      await expect(createChip('behavioral', opts), JSON.stringify(opts)).rejects.toThrow(re);
    }
  });

  it('rejects bad calls with messages that name the value', async () => {
    const chip = new BehavioralChip({ sizes: [2, 1] });
    expect(() => chip.setGateVoltages(1, new Float64Array(4))).toThrow(/layer 1 does not exist/);
    expect(() => chip.setGateVoltages(0, new Float64Array(3))).toThrow(/4 values/);
    expect(() => chip.setGateVoltages(0, Float64Array.of(0, 2.5, 0, 0))).toThrow(/\[1\] = 2.5 V/);
    await expect(chip.run(new Uint16Array(3), 1)).rejects.toThrow(/batch\*inputs/);
    await expect(chip.run(new Uint16Array(2), -1)).rejects.toThrow(/batch/);
    expect(() => new BehavioralChip({ magnitudes: { jitterSeconds: -1 } })).toThrow(/jitterSeconds = -1/);
  });
});
