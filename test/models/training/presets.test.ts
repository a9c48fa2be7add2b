import { describe, expect, it } from 'vitest';
import { PRESETS, presetFor } from '../../../models/training/presets.ts';

describe('presetFor', () => {
  it('gives images through a conv net the conv preset (silent zeros, batches of 32, lr 0.05 per step) and keeps the others', () => {
    const conv = presetFor('fashion-mnist', { arch: true });
    expect(conv).toBe(PRESETS.conv);
    expect(conv).toMatchObject({ batchSize: 32, lr: 0.05, schedule: 'cosine-steps', silentZeros: true });
    expect(conv.loss).toEqual(PRESETS.image.loss);
    expect(presetFor('fashion-mnist')).toBe(PRESETS.image);
    expect(presetFor('mnist', { arch: false })).toBe(PRESETS.image);
    expect(PRESETS.image.silentZeros).toBeUndefined();
    // Iris has no image shape: its preset does not depend on an architecture.
    expect(presetFor('iris', { arch: true })).toBe(PRESETS.tabular);
  });
});
