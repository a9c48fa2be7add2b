/**
 * Table mode against full transients on the same chip (same seed, so the same mismatch): a
 * 16-input dual-rail neuron, random gates and random input patterns. Long-ish: eight transients
 * (about 1 s each on the wasm engine, two workers) plus, on a cold cache, the characterisation.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NMOS } from '../../../../models/chips/chip-backend.ts';
import { SpiceChip } from '../../../../models/chips/spice/spice-chip.ts';
import { mulberry } from '../../rng.ts';

/** Long tests (a cold table cache means SPICE characterisation first): generous limit, still run in CI. */
const LONG = 240_000;

const chips: SpiceChip[] = [];
afterAll(async () => {
  for (const c of chips) await c.close();
});

describe('table mode vs full transients', () => {
  it(
    'agrees on a 16-input neuron for random input patterns (RMSE well under 0.1 % of the window)',
    async () => {
      const [table, transient] = await Promise.all([
        SpiceChip.create({ seed: 21, sizes: [16, 1], mode: 'table' }),
        SpiceChip.create({ seed: 21, sizes: [16, 1], mode: 'transient', workers: 2 }),
      ]);
      chips.push(table, transient);
      const rnd = mulberry(2024);
      const g = table.geometry[0];
      const gates = new Float64Array(g.rowInput.length);
      for (let r = 0; r < gates.length; r++) gates[r] = g.rowPolarity[r] === NMOS ? 0.42 + 0.13 * rnd() : 1.1 + 0.5 * rnd();
      table.setGateVoltages(0, gates);
      transient.setGateVoltages(0, gates);
      const batch = 8;
      const inputs = Float64Array.from({ length: batch * 16 }, () => (rnd() < 0.25 ? Infinity : Math.floor(rnd() * 1000) * 1e-9));
      const [a, b] = await Promise.all([table.layerSpikeTimes(0, inputs, batch), transient.layerSpikeTimes(0, inputs, batch)]);
      const horizon = 2e-6;
      let sq = 0;
      let n = 0;
      let worst = 0;
      for (let k = 0; k < batch; k++) {
        expect(Number.isFinite(a[k])).toBe(Number.isFinite(b[k]));
        if (!Number.isFinite(a[k])) continue;
        const e = (a[k] - b[k]) / horizon;
        sq += e * e;
        n++;
        worst = Math.max(worst, Math.abs(e));
      }
      expect(n).toBeGreaterThanOrEqual(4);
      const rmse = Math.sqrt(sq / n);
      console.info(
        `table vs transient, 16-input neuron, ${n} spikes: RMSE ${rmse.toExponential(2)}, worst ${worst.toExponential(2)} of the ${horizon * 1e9} ns window`,
      );
      expect(rmse).toBeLessThan(1e-3);
      expect(worst).toBeLessThan(2e-3);
    },
    LONG,
  );
});
