import { describe, expect, it } from 'vitest';
import { idealLayerFromWeights, makeLayer, signedWeights } from '../../../models/neuron/layer.ts';

describe('layer', () => {
  it('fills defaults and validates by field', () => {
    const l = makeLayer({ nIn: 2, nOut: 3, ePlus: 4, eMinus: -2 });
    expect(l.gE.length).toBe(6);
    expect(l.horizon).toBe(1);
    expect(l.model).toBe('pnn');
    expect(() => makeLayer({ nIn: 2, nOut: 3, ePlus: 4, eMinus: -2, gL: [1, 2] })).toThrow(/gL has length 2, expected 3/);
    expect(() => makeLayer({ nIn: 2, nOut: 3, ePlus: 4, eMinus: -2, thresholdScale: 0 })).toThrow(/thresholdScale\[0\]/);
    expect(() => makeLayer({ nIn: 0, nOut: 3, ePlus: 4, eMinus: -2 })).toThrow(/nIn/);
    expect(() => makeLayer({ nIn: 1, nOut: 1, ePlus: 4, eMinus: -2, horizon: 0 })).toThrow(/horizon/);
  });

  it('signed ideal weights split into rails and come back', () => {
    const w = [0.5, -0.25, 0, 2];
    const l = idealLayerFromWeights(w, 2, 2);
    expect(Array.from(l.gE)).toEqual([0.5, 0, 0, 2]);
    expect(Array.from(l.gI)).toEqual([0, 0.25, 0, 0]);
    expect(Array.from(signedWeights(l))).toEqual(w);
  });
});
