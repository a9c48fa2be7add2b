import { expect } from 'vitest';
import type { ChipBackend, LayerGeometry } from '../../../models/chips/chip-backend.ts';
import { NMOS } from '../../../models/chips/chip-backend.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

/** Gates with every synapse off, except the listed (row, output) set to `volts`. */
export function gatesWith(chip: ChipBackend, l: number, set: [row: number, out: number, volts: number][]): Float64Array {
  const g = chip.geometry[l];
  const v = new Float64Array(g.rowInput.length * g.outputs);
  for (let r = 0; r < g.rowInput.length; r++) if (g.rowPolarity[r] !== NMOS) v.fill(1.8, r * g.outputs, (r + 1) * g.outputs);
  for (const [r, i, x] of set) v[r * g.outputs + i] = x;
  return v;
}

/**
 * After one synapse of output `col` was strengthened (NMOS) or weakened (PMOS), over `batch`
 * samples: no other output moves, and `col` fires no later (NMOS) or no earlier (PMOS). Returns
 * how many spikes moved.
 */
export function expectOneOutputMoved(g: LayerGeometry, before: Uint16Array, after: Uint16Array, batch: number, col: number, nmos: boolean): number {
  let changed = 0;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < g.outputs; i++) {
      const t0 = before[b * g.outputs + i];
      const t1 = after[b * g.outputs + i];
      if (t1 !== t0) changed++;
      if (i !== col) expect(t1).toBe(t0);
      else if (nmos) expect(t1).toBeLessThanOrEqual(t0);
      else expect(t1).toBeGreaterThanOrEqual(t0);
    }
  }
  return changed;
}

/** Random gates in the weak-inversion range where spikes land inside the windows (sky130: about 4-100 nA per device). */
export function randomGates(chip: ChipBackend, rnd: () => number): Float64Array[] {
  return chip.geometry.map((g) => {
    const v = new Float64Array(g.rowInput.length * g.outputs);
    for (let r = 0; r < g.rowInput.length; r++) {
      for (let i = 0; i < g.outputs; i++) {
        v[r * g.outputs + i] = g.rowPolarity[r] === NMOS ? 0.45 + 0.13 * rnd() : 1.8 - (0.46 + 0.2 * rnd());
      }
    }
    return v;
  });
}

/** n input ticks, a fifth silent, the rest in 0..1499. */
export function randomInputs(n: number, rnd: () => number): Uint16Array {
  return Uint16Array.from({ length: n }, () => (rnd() < 0.2 ? SILENT_TICK : Math.floor(rnd() * 1500)));
}
