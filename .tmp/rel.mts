import { SpiceChip } from '../models/chips/spice/spice-chip.ts';
const c = await SpiceChip.create({ seed: 1, sizes: [16, 1], mode: 'table' });
const t = (c as any).tables;
console.log(Array.from(t.release.charge as Float64Array).map((q: number, k: number) => `${(1 + 0.02 * k).toFixed(2)}:${(q * 1e15).toFixed(3)}fC`).join(' '));
const m = c.tableModel(0);
console.log('vStart', m.vRest, 'C at rest', m.capacitance[130]);
for (const v of [1.3, 1.5, 1.75]) { c.setNeuronVoltages(0, v, 0.9); console.log(v, 'jump mV', (c.tableModel(0).vRest - v) * 1e3); }
await c.close();
