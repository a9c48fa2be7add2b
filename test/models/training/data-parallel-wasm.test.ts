// The data-parallel step on the wasm backend, the one training runs on: there the weights reach
// the replicas and the gradients leave them through views of the backend's memory (tensor-io.ts),
// and the event-drive and DSTD kernels read their operands the same way.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { TaskPool } from '../../../models/parallel/pool.ts';
import { DataParallelStep } from '../../../models/training/data-parallel.ts';
import { batchLoss, resolveLoss, trainStep } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

const N = 40;
const F = 12;
const solver = createSolver('dstd', { bins: 8 });
let pool: TaskPool;

beforeAll(async () => {
  expect(await initBackend({ prefer: 'wasm' })).toBe('wasm');
  pool = new TaskPool(2);
});
afterAll(async () => {
  await pool.close();
});

function batch(seed: number) {
  const rnd = mulberry(seed);
  const x = Float32Array.from({ length: N * F }, () => rnd());
  const y = Uint8Array.from({ length: N }, () => Math.floor(rnd() * 4));
  return { x, y };
}

describe('data-parallel training steps on the wasm backend', () => {
  // Tolerances as in data-parallel.test.ts: shards regroup each gradient's float32 sum.
  it('gives the one-thread gradients with 1 and 2 workers, step after step', async () => {
    const { x } = batch(1);
    const net = initNetwork(defaultConfig([F, 16, 10, 4]), { x, n: N }, solver, { seed: 3 });
    const cfg = resolveLoss({});
    const twin = SpikingNetwork.fromStates(net.config, net.states());
    const opt1 = tf.train.adam(0.02);
    const opt2 = tf.train.adam(0.02);
    const inline = new DataParallelStep(net, new TaskPool(1), { solver, loss: cfg, maxBatch: N });
    const dp = new DataParallelStep(net, pool, { solver, loss: cfg, maxBatch: N });
    for (let step = 0; step < 3; step++) {
      const { x: xs, y: ys } = batch(10 + step);
      const ref = tf.tidy(() => {
        const r = tf.variableGrads(() => batchLoss(twin, twin.encode(xs, N), ys, solver, cfg).loss, twin.trainableVariables());
        return twin.trainableVariables().map((v) => Float32Array.from(r.grads[v.name]!.dataSync()));
      });
      const largest = Math.max(...ref.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      expect(largest).toBeGreaterThan(0);
      for (const [name, step2] of [
        ['1 worker', inline],
        ['2 workers', dp],
      ] as const) {
        const r = await step2.gradients(xs, ys);
        let worst = 0;
        r.grads.forEach((g, k) => g.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ref[k]![i]!)))));
        expect(worst, `${name}, step ${step}`).toBeLessThanOrEqual(1e-5 * largest);
      }
      // Both networks take an Adam step of their own; the next step's weights reach the workers through shared memory.
      trainStep(twin, opt1, xs, ys, solver, cfg);
      await dp.step(opt2, xs, ys);
      const a = net.states();
      const b = twin.states();
      a.forEach((l, k) => {
        const pe = (l as { pE: Float32Array }).pE;
        const pe2 = (b[k] as { pE: Float32Array }).pE;
        let d = 0;
        pe.forEach((v, i) => (d = Math.max(d, Math.abs(v - pe2[i]!))));
        expect(d, `layer ${k} pE after step ${step}`).toBeLessThan(1e-4);
      });
    }
    opt1.dispose();
    opt2.dispose();
    net.dispose();
    twin.dispose();
  }, 240_000);

  /** Every layer's pE and pI, flat. */
  const weightsOf = (net: SpikingNetwork) => Float32Array.from(net.trainableVariables().flatMap((v) => Array.from(v.dataSync())));

  it("steps on the workers' loop as the shards' gradients and tf.train.adam do here (to float32 rounding), and repeats bit for bit for a seed and a worker count", async () => {
    const { x } = batch(1);
    const cfg = resolveLoss({});
    const make = () => initNetwork(defaultConfig([F, 16, 10, 4]), { x, n: N }, solver, { seed: 5 });
    // Reference: the shards' gradients (pool tasks, summed here) through tf's Adam and projection.
    const ref = make();
    const refOpt = tf.train.adam(0.02);
    const refStep = new DataParallelStep(ref, pool, { solver, loss: cfg, maxBatch: N });
    const refLoss: number[] = [];
    for (let step = 0; step < 4; step++) {
      const { x: xs, y: ys } = batch(20 + step);
      const r = await refStep.gradients(xs, ys);
      refLoss.push(r.loss);
      tf.tidy(() => {
        refOpt.applyGradients(ref.trainableVariables().map((v, k) => ({ name: v.name, tensor: tf.tensor(r.grads[k]!, v.shape) })));
      });
      ref.project();
    }
    const runs = [];
    for (let run = 0; run < 2; run++) {
      const net = make();
      const opt = tf.train.adam(0.02);
      const dp = new DataParallelStep(net, pool, { solver, loss: cfg, maxBatch: N });
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        const { x: xs, y: ys } = batch(20 + step);
        losses.push((await dp.step(opt, xs, ys)).loss);
      }
      await dp.close();
      runs.push({ weights: weightsOf(net), losses });
      opt.dispose();
      net.dispose();
    }
    // The same gradients; the fused Adam parts from tf's by float32 roundings (fused-adam.test.ts), carried through 4 steps.
    const want = weightsOf(ref);
    const bound = 8 * 2 ** -23 * (want.reduce((m, v) => Math.max(m, Math.abs(v)), 0) + 4 * 0.02);
    let worst = 0;
    runs[0]!.weights.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[i]!))));
    expect(worst).toBeLessThanOrEqual(bound);
    runs[0]!.losses.forEach((l, k) => expect(l).toBeCloseTo(refLoss[k]!, 5));
    expect(runs[1]).toEqual(runs[0]);
    refOpt.dispose();
    ref.dispose();
  }, 240_000);

  it('drops a step the signal cuts short whole, and rejects a step whose pool closes under it instead of hanging', async () => {
    const { x } = batch(1);
    const cfg = resolveLoss({});
    const make = () => initNetwork(defaultConfig([F, 16, 10, 4]), { x, n: N }, solver, { seed: 6 });
    const plain = make();
    const cut = make();
    const optPlain = tf.train.adam(0.02);
    const optCut = tf.train.adam(0.02);
    const a = new DataParallelStep(plain, pool, { solver, loss: cfg, maxBatch: N });
    const b = new DataParallelStep(cut, pool, { solver, loss: cfg, maxBatch: N });
    const b0 = batch(30);
    const b1 = batch(31);
    await a.step(optPlain, b0.x, b0.y);
    await a.step(optPlain, b1.x, b1.y);
    await a.close();
    await b.step(optCut, b0.x, b0.y);
    const ac = new AbortController();
    const aborted = b.step(optCut, batch(99).x, batch(99).y, ac.signal);
    ac.abort();
    await expect(aborted).rejects.toThrow(/abort/i);
    await b.step(optCut, b1.x, b1.y);
    expect(weightsOf(cut)).toEqual(weightsOf(plain));
    await b.close();

    const own = new TaskPool(2);
    const dp = new DataParallelStep(plain, own, { solver, loss: cfg, maxBatch: N });
    const opt = tf.train.adam(0.02);
    await dp.step(opt, b0.x, b0.y);
    const running = expect(dp.step(opt, b1.x, b1.y)).rejects.toThrow(/left its loop|terminat/i);
    await own.close();
    await running;
    opt.dispose();
    for (const o of [optPlain, optCut]) o.dispose();
    plain.dispose();
    cut.dispose();
  }, 240_000);

  it("rejects a step with a worker's own error (the other worker leaves its loop too), and the next step starts a new loop", async () => {
    const { x, y } = batch(40);
    const cfg = resolveLoss({});
    const net = initNetwork(defaultConfig([F, 16, 10, 4]), { x, n: N }, solver, { seed: 7 });
    const opt = tf.train.adam(0.02);
    const dp = new DataParallelStep(net, pool, { solver, loss: cfg, maxBatch: N });
    // The replica spec the workers read: garbage in it makes each worker's set-up throw.
    const spec = new Uint8Array((dp as unknown as { specBytes: SharedArrayBuffer }).specBytes);
    const saved = spec.slice();
    spec.fill(0xff);
    const before = net.states();
    const err = await dp.step(opt, x, y).then(
      () => undefined,
      (e: unknown) => e,
    );
    // The worker's own error (v8's deserializer), not the bare fact that a worker left.
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).not.toMatch(/left its loop/);
    console.info(`a worker's failure surfaced as: ${(err as Error).message}`);
    expect(net.states()).toEqual(before);
    spec.set(saved);
    const r = await dp.step(opt, x, y);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(net.states()).not.toEqual(before);
    await dp.close();
    opt.dispose();
    net.dispose();
  }, 240_000);
});
