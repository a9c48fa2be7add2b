import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../../models/tf/backend.ts';

describe('initBackend', () => {
  it('picks a backend once, reports it once, and registers gradients', async () => {
    const lines: string[] = [];
    const name = await initBackend({ log: (l) => lines.push(l) });
    expect(['tensorflow', 'wasm', 'cpu']).toContain(name);
    expect(tf.getBackend()).toBe(name);
    // tfjs-node is not a dependency: where it is absent, the wasm build must load from any cwd.
    if (process.env.SPIKELOOP_TF_BACKEND === undefined) expect(name).not.toBe('cpu');
    expect(await initBackend({ log: (l) => lines.push(l) })).toBe(name);
    expect(lines).toEqual([`tfjs backend: ${name}`]);
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, x)))(tf.tensor1d([3, -1]));
    expect(Array.from(g.dataSync())).toEqual([6, -2]);
  });

  it('the wasm build leaves the process error handlers alone', async () => {
    await initBackend();
    expect(process.listeners('uncaughtException').filter((l) => String(l).includes('ExitStatus'))).toEqual([]);
  });
});
