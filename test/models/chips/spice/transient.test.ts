import { describe, expect, it } from 'vitest';
import { SpiceError } from '../../../../models/chips/spice/errors.ts';
import { firstRisingCrossing, spikeTimeOf } from '../../../../models/chips/spice/transient.ts';

describe('reading spikes from a transient', () => {
  it('interpolates the first rising crossing linearly', () => {
    // v = 2 t on [0, 1]: crosses 0.9 at t = 0.45 exactly.
    const t = Float64Array.from({ length: 11 }, (_, k) => k / 10);
    expect(
      firstRisingCrossing(
        t,
        t.map((x) => 2 * x),
        0.9,
      ),
    ).toBeCloseTo(0.45, 14);
    // Falling-then-rising: only the upward crossing counts.
    const v = Float64Array.from([1.5, 1.0, 0.2, 0.4, 1.4]);
    expect(firstRisingCrossing(Float64Array.from([0, 1, 2, 3, 4]), v, 0.9)).toBeCloseTo(3.5, 14);
    expect(firstRisingCrossing(t, new Float64Array(11), 0.9)).toBe(Infinity);
  });

  it('reports a spike in seconds, silence as Infinity, and refuses a run cut short', () => {
    const time = Float64Array.from([0, 1e-9, 2e-9]);
    const ok = { names: ['time', 'v(out)'], data: [time, Float64Array.from([0, 0, 1.8])] };
    expect(spikeTimeOf(ok, 1.8, 2e-9)).toBeCloseTo(1.5e-9, 20);
    const silent = { names: ['time', 'v(out)'], data: [time, new Float64Array(3)] };
    expect(spikeTimeOf(silent, 1.8, 2e-9)).toBe(Infinity);
    expect(() => spikeTimeOf(silent, 1.8, 3e-9, 'the netlist')).toThrow(SpiceError);
    try {
      spikeTimeOf(silent, 1.8, 3e-9, 'the netlist');
    } catch (e) {
      expect((e as SpiceError).netlist).toBe('the netlist');
    }
    const high = { names: ['time', 'v(out)'], data: [time, Float64Array.from([1.8, 1.8, 1.8])] };
    expect(() => spikeTimeOf(high, 1.8, 2e-9)).toThrow(/precharged/);
  });
});
