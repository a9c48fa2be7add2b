import { describe, expect, it } from 'vitest';
import { classifyShape, PDK_SIGMA_MAX, WEAK_FACTOR_MAX } from '../../../host/workflows/bringup-shape.ts';
import { Rng } from '../../../models/datasets/rng.ts';
import { sky130NominalCurves } from '../../../models/chips/sky130-curves.ts';

// An independent reference: the sky130 pfet's own drain current (SPICE table of the bundled card), a
// threshold shift as a gate offset, a weak synapse as a current factor, and 2 % measurement noise.
const curves = sky130NominalCurves();
const MEMBRANE = 1.1;
const P2 = 1.084; // volts, where the layer's p2 sits on the default chip
const P3 = 0.96; // the stronger re-check code
const SIGMA_V = 0.0163; // PDK sigma of the synapse pfet's threshold
const lnI = (vg: number, dV: number, factor = 1) => Math.log(factor * curves.current('pmos', vg + dV, MEMBRANE));
const slopePerVolt = (lnI(P2 - 0.01, 0) - lnI(P2 + 0.01, 0)) / 0.02;

function layer(seed: number, n = 1000, noise = 0.02) {
  const r = new Rng(seed);
  const refX: number[] = [];
  const refY: number[] = [];
  for (let k = 0; k < n; k++) {
    const dV = r.normal(0, SIGMA_V);
    refX.push(lnI(P2, dV) + r.normal(0, noise));
    refY.push(lnI(P3, dV) + r.normal(0, noise));
  }
  return { refX, refY, slopePerVolt, pdkSigmaV: SIGMA_V };
}

const candidate = (dVSigmas: number, factor = 1) => ({ x: lnI(P2, dVSigmas * SIGMA_V, factor), y: lnI(P3, dVSigmas * SIGMA_V, factor) });

describe('classifyShape', () => {
  it('a natural device 5-6 sigmas weak in threshold is a mismatch tail, with its shift in PDK sigmas', () => {
    for (const s of [5, 5.5, 6]) {
      const r = classifyShape({ ...layer(1), ...candidate(s) });
      expect(r.verdict).toBe('tail');
      // Near 1; a little above, as the line continued from the bulk misses the curve's bend this far out.
      expect(r.unexplainedFactor).toBeGreaterThan(0.9);
      expect(r.unexplainedFactor).toBeLessThan(1.5);
      // The median slope at p2 under-reads the steeper weak side: the shift comes out a little high.
      expect(r.pdkSigmas).toBeGreaterThan(s * 0.95);
      expect(r.pdkSigmas).toBeLessThan(s * 1.2);
    }
  });

  it('a weak synapse (a current factor) is weak whatever its own threshold shift', () => {
    for (const [dV, f] of [
      [0, 0.1],
      [-2, 0.1],
      [2, 0.1],
      [0, 0.05],
      [-1, 0.3],
    ]) {
      const r = classifyShape({ ...layer(2), ...candidate(dV, f) });
      expect(r.verdict, `shift ${dV} sigma, factor ${f}`).toBe('weak');
      expect(Math.log(r.unexplainedFactor)).toBeCloseTo(Math.log(f), 0);
      expect(r.unexplainedFactor).toBeLessThan(WEAK_FACTOR_MAX);
    }
  });

  it('a shift beyond any natural device is weak even with the shape of a shift', () => {
    const r = classifyShape({ ...layer(3), ...candidate(PDK_SIGMA_MAX + 1.5) });
    expect(r.verdict).toBe('weak');
    expect(r.reason).toMatch(/PDK sigmas/);
  });

  it('no conductance left at the stronger code is weak', () => {
    expect(classifyShape({ ...layer(4), x: candidate(0, 0.1).x, y: -Infinity }).verdict).toBe('weak');
  });

  it('cannot tell when the two codes scale alike, with too few references, too much scatter, or no measurement', () => {
    const same = layer(5);
    const flat = classifyShape({ ...same, refY: same.refX.map((x) => x + 2), x: candidate(0, 0.1).x, y: candidate(0, 0.1).x + 2 });
    expect(flat.verdict).toBe('inconclusive');
    expect(flat.reason).toMatch(/alike/);
    expect(classifyShape({ ...layer(6, 10), ...candidate(5) }).verdict).toBe('inconclusive');
    expect(classifyShape({ ...layer(7, 1000, 0.3), ...candidate(0, 0.1) }).reason).toMatch(/too wide/);
    expect(classifyShape({ ...layer(8), x: candidate(5).x, y: NaN }).verdict).toBe('inconclusive');
    expect(classifyShape({ ...layer(9), x: candidate(5).x, y: Infinity }).reason).toMatch(/held silent/);
    // A factor at the boundary itself is no verdict either way.
    const edge = classifyShape({ ...layer(10), ...candidate(0, WEAK_FACTOR_MAX) });
    expect(edge.verdict).toBe('inconclusive');
    expect(edge.reason).toMatch(/within 2 of its sigmas/);
  });
});
