import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../../../host/workflows/finetune-checkpoint.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { newAdamState } from '../../../models/training/in-loop.ts';
import { initBackend } from '../../../models/tf/backend.ts';

let dir: string;
let net: SpikingNetwork;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-test-'));
  net = initNetwork(defaultConfig([3, 4, 2]), { x: new Float32Array(3 * 8).fill(0.5), n: 8 }, createSolver('exact'), { seed: 1 });
});
afterAll(() => {
  net.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

function sample(step: number): Checkpoint {
  const adam = newAdamState(net);
  adam.step = step;
  adam.m.forEach((a, i) => a.forEach((_, k) => (a[k] = Math.PI * (i + 1) * (k + step))));
  adam.v.forEach((a, i) => a.forEach((_, k) => (a[k] = 1 / (1 + i + k + step))));
  return {
    chipId: 'chip-x',
    cursor: { epoch: 2, batch: step },
    settings: {
      model: 'm.bin',
      dataset: 'iris',
      limitTrain: null,
      limitTest: 30,
      seed: 4,
      batchSize: 8,
      lr: 0.002,
      bins: 16,
      epochs: 5,
      profile: null,
      pipelined: true,
      loss: { tauSoft: 0.1 },
    },
    history: [{ epoch: 0, device_acc: 0.5, twin_acc: 0.75 }],
    steps: 17 + step,
    adam,
    codes: [Uint16Array.from([1, 2, 3, step]), Uint16Array.from([9, 8])],
    runCodes: [Uint16Array.from([1, 2, 3, 0]), Uint16Array.from([9, 7])],
  };
}

describe('finetune checkpoints', () => {
  it('round-trip every field bit for bit, keeping one generation on disk', async () => {
    const d = path.join(dir, 'a');
    fs.mkdirSync(d);
    await saveCheckpoint(d, net, sample(1));
    const want = sample(2);
    await saveCheckpoint(d, net, want);
    expect(fs.readdirSync(d).sort()).toEqual(['checkpoint-2.network.bin', 'checkpoint-2.state.bin', 'checkpoint.json']);
    const { net: back, checkpoint } = await loadCheckpoint(d);
    expect(checkpoint.cursor).toEqual(want.cursor);
    expect(checkpoint.settings).toEqual(want.settings);
    expect(checkpoint.history).toEqual(want.history);
    expect(checkpoint.steps).toBe(want.steps);
    expect(checkpoint.adam.step).toBe(2);
    checkpoint.adam.m.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(want.adam.m[i]!)));
    checkpoint.adam.v.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(want.adam.v[i]!)));
    expect(checkpoint.codes.map((c) => Array.from(c))).toEqual([
      [1, 2, 3, 2],
      [9, 8],
    ]);
    expect(checkpoint.runCodes.map((c) => Array.from(c))).toEqual([
      [1, 2, 3, 0],
      [9, 7],
    ]);
    expect(back.states().map((s) => Array.from(s.pE))).toEqual(net.states().map((s) => Array.from(s.pE)));
    back.dispose();
  });

  it('keeps the best state (epoch, validation accuracy, weights, codes) bit for bit; a checkpoint without it still loads', async () => {
    const d = path.join(dir, 'best');
    fs.mkdirSync(d);
    const weights = net.trainableVariables().map((v, i) => Float32Array.from({ length: v.size }, (_, k) => 0.001 * (k + 1) + i));
    const want = {
      ...sample(4),
      settings: { ...sample(4).settings, val: 30 },
      best: { epoch: 1, valAcc: 0.7, weights, codes: [Uint16Array.from([4, 3, 2, 1]), Uint16Array.from([5, 6])] },
    };
    await saveCheckpoint(d, net, want);
    const { net: back, checkpoint } = await loadCheckpoint(d);
    back.dispose();
    expect(checkpoint.settings.val).toBe(30);
    expect(checkpoint.best!.epoch).toBe(1);
    expect(checkpoint.best!.valAcc).toBe(0.7);
    expect(checkpoint.best!.weights.map((w) => Array.from(w))).toEqual(weights.map((w) => Array.from(w)));
    expect(checkpoint.best!.codes.map((c) => Array.from(c))).toEqual([
      [4, 3, 2, 1],
      [5, 6],
    ]);
    // Written before validation splits existed: no val, no best. It loads; its run keeps the last epoch.
    const old = path.join(dir, 'old');
    fs.mkdirSync(old);
    await saveCheckpoint(old, net, sample(5));
    const o = await loadCheckpoint(old);
    o.net.dispose();
    expect(o.checkpoint.best).toBeUndefined();
    expect(o.checkpoint.settings.val).toBeUndefined();
    // A run that holds out validation samples but whose checkpoint lost its best state is refused, not resumed without it.
    const lost = path.join(dir, 'lost');
    fs.mkdirSync(lost);
    await saveCheckpoint(lost, net, { ...sample(6), settings: { ...sample(6).settings, val: 30 } });
    await expect(loadCheckpoint(lost)).rejects.toThrow(/holds out 30 validation samples but the checkpoint has no best state/);
  });

  it('an uncommitted generation is ignored: the commit record names the complete one', async () => {
    const d = path.join(dir, 'b');
    fs.mkdirSync(d);
    await saveCheckpoint(d, net, sample(1));
    // A crash after writing the next generation's files but before the commit.
    fs.writeFileSync(path.join(d, 'checkpoint-2.state.bin'), 'half a file');
    const { net: back, checkpoint } = await loadCheckpoint(d);
    expect(checkpoint.cursor.batch).toBe(1);
    back.dispose();
  });

  it('refuses a missing, damaged or inconsistent checkpoint with a message', async () => {
    const d = path.join(dir, 'c');
    fs.mkdirSync(d);
    await expect(loadCheckpoint(d)).rejects.toThrow(/holds no checkpoint.json: nothing to resume/);
    fs.writeFileSync(path.join(d, 'checkpoint.json'), '{"generation": "x"}');
    await expect(loadCheckpoint(d)).rejects.toThrow(CheckpointError);
    await saveCheckpoint(d, net, sample(3));
    const state = path.join(d, 'checkpoint-1.state.bin');
    expect(fs.existsSync(state)).toBe(true);
    const bytes = fs.readFileSync(state);
    bytes[40] ^= 0xff;
    fs.writeFileSync(state, bytes);
    await expect(loadCheckpoint(d)).rejects.toThrow(/checkpoint state checkpoint-1.state.bin .*cannot be read/);
  });
});
