import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { adamStep, inLoopGradients, newAdamState, type MeasuredTimes } from '../../../models/training/in-loop.ts';
import { crossEntropyOf } from '../../../models/training/losses.ts';
import { batchLoss, resolveLoss } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

const B = 24;
const solver = createSolver('dstd', { bins: 16 });
let net: SpikingNetwork;
let x: Float32Array;
let labels: Uint8Array;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  const rnd = mulberry(3);
  x = Float32Array.from({ length: B * 6 }, () => rnd());
  labels = Uint8Array.from({ length: B }, (_, k) => k % 3);
  net = initNetwork(defaultConfig([6, 10, 3], { shiftGrids: false }), { x, n: B }, solver, { seed: 4 });
});

/** The twin's own spike times, as a chip equal to the twin would report them. */
function twinTimes(n: SpikingNetwork): Float32Array[] {
  return tf.tidy(() => {
    const f = n.forward(n.encode(x, B), solver);
    return f.spikes.map((s) => {
      const t = s.times.dataSync() as Float32Array;
      const m = s.mask.dataSync();
      return Float32Array.from(t, (v, k) => (m[k]! > 0.5 ? v : Infinity));
    });
  });
}

function plainGradients(cfg = resolveLoss({ windowWeight: 0.1 })): { loss: number; grads: Float32Array[] } {
  const inputTimes = net.encode(x, B);
  const vars = net.trainableVariables();
  const { value, grads } = tf.variableGrads(() => batchLoss(net, inputTimes, labels, solver, cfg).loss, vars);
  const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => Float32Array.from(grads[v.name]!.dataSync() as Float32Array)) };
  tf.dispose([value, inputTimes, ...Object.values(grads)]);
  return out;
}

describe('inLoopGradients', () => {
  it('equals the plain DSTD gradient when the chip measures what the twin computes', () => {
    const cfg = resolveLoss({ windowWeight: 0.1 });
    const ref = plainGradients(cfg);
    const r = inLoopGradients(net, x, labels, twinTimes(net), solver, cfg);
    expect(r.loss).toBeCloseTo(ref.loss, 5);
    let norm = 0;
    r.grads.forEach((g, i) => {
      for (let k = 0; k < g.length; k++) {
        expect(g[k]).toBeCloseTo(ref.grads[i]![k]!, 5);
        norm += Math.abs(g[k]!);
      }
    });
    expect(norm).toBeGreaterThan(1e-3);
  });

  it('evaluates the loss at the chip times and the output gradient through the twin Jacobian', () => {
    // A "chip" whose outputs are the twin's shifted by a per-sample amount and whose hidden layer is the twin's.
    const meas = twinTimes(net);
    const out = Float32Array.from(meas[1]!, (t, k) => (Number.isFinite(t) ? Math.max(0, t - 0.05 * ((k % 5) - 2)) : t));
    const h = net.layers[1]!.horizon;
    for (let k = 0; k < out.length; k++) if (out[k]! > h) out[k] = Infinity;
    const measured: MeasuredTimes = [meas[0]!, out];
    const cfg = resolveLoss({ windowWeight: 0, deadWeight: 0 });
    const r = inLoopGradients(net, x, labels, measured, solver, cfg);
    const clamped = Float64Array.from(out, (t) => Math.min(t, h));
    expect(r.loss).toBeCloseTo(crossEntropyOf(clamped, labels, B, 3, cfg.tauSoft), 5);
    // Independent reference for the output layer's weights: dL/dt from the float64 softmax at the
    // chip's times (zero where the chip is silent), pulled back through the twin's Jacobian.
    const dt = new Float32Array(B * 3);
    for (let b = 0; b < B; b++) {
      const z = [0, 1, 2].map((c) => -clamped[b * 3 + c]! / cfg.tauSoft);
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, v) => a + v, 0);
      for (let c = 0; c < 3; c++) {
        const p = e[c]! / s;
        const fired = Number.isFinite(out[b * 3 + c]!) ? 1 : 0;
        dt[b * 3 + c] = (fired * -(p - (labels[b] === c ? 1 : 0))) / cfg.tauSoft / B;
      }
    }
    const layer = net.layers[1]!;
    const vars = layer.trainableVariables();
    const hidden = tf.tensor2d(meas[0]!, [B, 10]);
    const { grads } = tf.variableGrads(() => {
      const s = layer.forward(hidden, solver);
      return tf.sum(tf.mul(s.times, tf.tensor2d(dt, [B, 3]))) as tf.Scalar;
    }, vars);
    const all = net.trainableVariables();
    for (const v of vars) {
      const want = grads[v.name]!.dataSync();
      const got = r.grads[all.indexOf(v)]!;
      for (let k = 0; k < got.length; k++) expect(got[k]).toBeCloseTo(want[k]!, 5);
    }
    tf.dispose([hidden, ...Object.values(grads)]);
  });

  it('refuses measurements of the wrong shape', () => {
    expect(() => inLoopGradients(net, x, labels, [new Float32Array(B * 10)], solver, resolveLoss())).toThrow(/measured times of 1 layers/);
    expect(() => inLoopGradients(net, x, labels, [new Float32Array(3), new Float32Array(B * 3)], solver, resolveLoss())).toThrow(/layer 0/);
  });
});

describe('adamStep', () => {
  it('matches tf.train.adam on the same gradients, then projects onto g >= 0', () => {
    const a = initNetwork(defaultConfig([6, 10, 3]), { x, n: B }, solver, { seed: 9 });
    const b = initNetwork(defaultConfig([6, 10, 3]), { x, n: B }, solver, { seed: 9 });
    const state = newAdamState(a);
    const opt = tf.train.adam(0.01);
    const rnd = mulberry(5);
    for (let step = 0; step < 3; step++) {
      const grads = a.trainableVariables().map((v) => Float32Array.from({ length: v.size }, () => rnd() - 0.5));
      adamStep(a, state, grads, { lr: 0.01 });
      const vb = b.trainableVariables();
      opt.applyGradients(vb.map((v, i) => ({ name: v.name, tensor: tf.tensor(grads[i]!, v.shape) })));
      b.project();
    }
    const va = a.trainableVariables();
    const vb = b.trainableVariables();
    va.forEach((v, i) => {
      const p = v.dataSync();
      const q = vb[i]!.dataSync();
      for (let k = 0; k < p.length; k++) expect(p[k]).toBeCloseTo(q[k]!, 5);
    });
    expect(state.step).toBe(3);
    // A step far past zero lands exactly on zero (a transistor switched off), never below.
    adamStep(
      a,
      state,
      va.map((v) => new Float32Array(v.size).fill(1)),
      { lr: 1e3 },
    );
    for (const v of va) expect(Math.max(...v.dataSync())).toBe(0);
    opt.dispose();
    a.dispose();
    b.dispose();
  });
});
