/**
 * Transient-level physics of the RC-Spike neuron on sky130 (full SPICE transients, wasm engine):
 * drive strength orders spike times, the membrane slows as it nears threshold (channel-length
 * modulation seen as a reversal potential), and PMOS inputs delay firing.
 *
 * Long-ish: six one-input transients, about 1 s each, run on two worker threads.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { dualRailLayer } from '../../../../models/chips/chip-backend.ts';
import { getVector } from '../../../../models/chips/spice/engine.ts';
import { neuronNetlist } from '../../../../models/chips/spice/netlist.ts';
import { SpicePool } from '../../../../models/chips/spice/pool.ts';
import { spikeTimeOf } from '../../../../models/chips/spice/transient.ts';

/** Long tests (a cold table cache means SPICE characterisation first): generous limit, still run in CI. */
const LONG = 240_000;

const pool = new SpicePool({ engine: 'wasm', workers: 2 });
afterAll(() => pool.close());

const VREST = 1.3;
const VTH = 0.9;
const HORIZON = 2e-6;

/** One input driving an NMOS synapse at `vn` and a PMOS synapse at `vp` (1.8 V = off), at t = 0. */
function oneInput(vn: number, vp = 1.8, saveMembrane = false): string {
  const g = dualRailLayer(1, 1);
  return neuronNetlist({
    capacitance: 103.3e-15,
    vRest: VREST,
    supply: 1.8,
    horizon: HORIZON,
    maxStep: 1e-9,
    rowPolarity: g.rowPolarity,
    rowInput: g.rowInput,
    rowGate: Float64Array.from([vn, vp]),
    rowDvth: new Float64Array(2),
    inputTimes: Float64Array.of(0),
    inverterDvth: [0, 0],
    saveMembrane,
  });
}

const gates = [0.52, 0.56, 0.6, 0.7];
const runs = Promise.all([...gates.map((v) => oneInput(v, 1.8, v === 0.56)), oneInput(0.6, 1.35)].map((n) => pool.run(n).then((r) => ({ n, r }))));

describe('RC-Spike neuron transients (sky130)', () => {
  it(
    'spike times fall monotonically as the synapse drive grows',
    async () => {
      const res = await runs;
      const t = gates.map((_, k) => spikeTimeOf(res[k].r, 1.8, HORIZON, res[k].n));
      for (const x of t) expect(Number.isFinite(x)).toBe(true);
      for (let k = 1; k < t.length; k++) expect(t[k]).toBeLessThan(t[k - 1]);
    },
    LONG,
  );

  it(
    'the membrane slows as it nears threshold: a finite reversal potential, ePlus > 1',
    async () => {
      const { r } = (await runs)[1];
      const time = getVector(r, 'time');
      const v = getVector(r, 'v(mem)');
      // Least-squares line dv/dt = a + b v over the sweep from rest to threshold (centred differences).
      let n = 0;
      let sx = 0;
      let sy = 0;
      let sxx = 0;
      let sxy = 0;
      for (let k = 2; k + 2 < time.length; k++) {
        if (!(v[k] < VREST - 0.03 && v[k] > VTH + 0.03)) continue;
        const y = (v[k + 2] - v[k - 2]) / (time[k + 2] - time[k - 2]);
        n++;
        sx += v[k];
        sy += y;
        sxx += v[k] * v[k];
        sxy += v[k] * y;
      }
      expect(n).toBeGreaterThan(50);
      const b = (n * sxy - sx * sy) / (n * sxx - sx * sx);
      const a = (sy - b * sx) / n;
      // docs/MODEL.md §2: C dv/dt = g (E_n - v), so dv/dt = a + b v with b = -g/C < 0 (the fall
      // slows as v drops toward threshold) and E_n = -a/b below the whole swing.
      expect(b).toBeLessThan(0);
      const eN = -a / b;
      const ePlus = (VREST - eN) / (VREST - VTH);
      expect(Number.isFinite(ePlus)).toBe(true);
      expect(ePlus).toBeGreaterThan(1);
      expect(eN).toBeLessThan(VTH);
      console.info(`sky130 NMOS synapse at Vg = 0.56 V: E_n = ${eN.toFixed(3)} V, ePlus = ${ePlus.toFixed(2)} (nominal model: 9.5)`);
    },
    LONG,
  );

  it(
    'a PMOS synapse on the same input delays firing',
    async () => {
      const res = await runs;
      const alone = spikeTimeOf(res[2].r, 1.8, HORIZON, res[2].n);
      const withP = spikeTimeOf(res[4].r, 1.8, HORIZON, res[4].n);
      expect(withP).toBeGreaterThan(alone);
    },
    LONG,
  );
});
