import { describe, expect, it } from 'vitest';
import {
  conductanceToSiemens,
  reversalPotentials,
  siemensToConductance,
  swingVolts,
  synapseConductance,
  synapseDriveAtRest,
  thresholdScaleFor,
  uToVolts,
  voltsToU,
  checkCircuit,
  type NeuronCircuit,
} from '../../../models/neuron/units.ts';

const circuit: NeuronCircuit = { capacitance: 100e-15, vRest: 1.3, vThreshold: 0.9, supply: 1.8, lambdaN: 0.4, lambdaP: 0.5 };

describe('units', () => {
  it('u is 0 at rest and 1 at threshold', () => {
    expect(voltsToU(1.3, circuit)).toBe(0);
    expect(voltsToU(0.9, circuit)).toBeCloseTo(1, 15);
    expect(uToVolts(voltsToU(0.42, circuit), circuit)).toBeCloseTo(0.42, 15);
    expect(swingVolts(circuit)).toBeCloseTo(0.4, 15);
  });

  it('reversal potentials follow E_n = -1/lambda_n and E_p = VDD + 1/lambda_p', () => {
    const { ePlus, eMinus } = reversalPotentials(circuit);
    expect(ePlus).toBeCloseTo((1.3 + 2.5) / 0.4, 12); // E_n = -2.5 V
    expect(eMinus).toBeCloseTo((1.3 - 3.8) / 0.4, 12); // E_p = 3.8 V
    const ideal = reversalPotentials({ ...circuit, lambdaN: 0, lambdaP: 0 });
    expect(ideal).toEqual({ ePlus: Infinity, eMinus: -Infinity });
  });

  it('a synapse current I0 (1 + lambda Vds) is g (E - u) in normalised units', () => {
    // du/dt at membrane voltage v computed from the SI current, against g * (E - u(v)).
    const t0 = 2e-6;
    const i0 = 3e-9;
    const { ePlus, eMinus } = reversalPotentials(circuit);
    const gE = synapseConductance(i0, 'nmos', circuit, t0);
    const gI = synapseConductance(i0, 'pmos', circuit, t0);
    for (const v of [1.3, 1.1, 0.9, 0.5]) {
      const u = voltsToU(v, circuit);
      // NMOS sinks I0 (1 + lambda v): dv/dt = -I/C, du/dt = -dv/dt / swing, per t0.
      const duN = ((i0 * (1 + 0.4 * v)) / circuit.capacitance / 0.4) * t0;
      expect(gE * (ePlus - u)).toBeCloseTo(duN, 12);
      const duP = ((-i0 * (1 + 0.5 * (1.8 - v))) / circuit.capacitance / 0.4) * t0;
      expect(gI * (eMinus - u)).toBeCloseTo(duP, 12);
    }
    expect(synapseDriveAtRest(i0, 'nmos', circuit, t0)).toBeCloseTo(gE * ePlus, 12);
    expect(synapseDriveAtRest(i0, 'pmos', circuit, t0)).toBeCloseTo(gI * eMinus, 12);
    // Finite in the ideal limit.
    const ideal = { ...circuit, lambdaN: 0 };
    expect(synapseDriveAtRest(i0, 'nmos', ideal, t0)).toBeCloseTo(((i0 / 100e-15) * t0) / 0.4, 9);
  });

  it('conductance conversions round-trip; threshold scale is 1 at nominal', () => {
    expect(conductanceToSiemens(siemensToConductance(1e-9, 1e-13, 1e-6), 1e-13, 1e-6)).toBeCloseTo(1e-9, 20);
    expect(thresholdScaleFor(0.9, circuit)).toBeCloseTo(1, 15);
    expect(thresholdScaleFor(0.8, circuit)).toBeCloseTo(1.25, 14);
  });

  it('rejects inconsistent circuits by field', () => {
    expect(() => checkCircuit({ ...circuit, vThreshold: 1.4 })).toThrow(/vThreshold/);
    expect(() => checkCircuit({ ...circuit, capacitance: 0 })).toThrow(/capacitance/);
    expect(() => checkCircuit({ ...circuit, lambdaP: -1 })).toThrow(/lambdaP/);
  });
});
