/**
 * Convolutional PNNs (issue #31): gradient check, the cost of a VGG-5-like training step, and
 * optionally a short Fashion-MNIST training of the small conv net on the PNN and the ideal model.
 * Prints ONE JSON line:
 *
 *   conv_grad_max_rel_err   exact solver through a conv layer with shared kernels and 2x2 pooling
 *                           (6x6x2 input, 3 channels of 3x3, batch 3, E+ = 4, E- = -2): autodiff of
 *                           L = sum w t against central differences of the float64 exact forward pass,
 *                           max over kernel entries of |a - f| / (|f| + 0.01 max |f|)
 *                           (models/network/conv-grad-check.ts); conv_grad_rel_l2 the same in norm;
 *   conv_dstd_grad_rel_l2   DSTD (M = 16) against the same finite differences, |a - f| / |f|;
 *                           per entry DSTD is off where an input arrives in a crossing bin
 *                           (docs/MODEL.md §5.5), so only the norm is meaningful;
 *   vgg5_step_ms            one training step (forward, backward, Adam, projection; trainStep) of the
 *                           cifar-vgg5 preset (models/network/arch.ts), batch 32, DSTD M = 16, PNN model:
 *                           median process CPU ms over VGG_REPEATS steps after a warm-up (CPU, not
 *                           wall, because the machine is shared; vgg5_step_wall_ms beside it);
 *   vgg5_samples_per_s, vgg5_epoch_hours_projected (50,000 images) from vgg5_step_ms;
 *   fmnist_conv_pnn_acc, fmnist_conv_ideal_acc: with CONV_FMNIST_TRAIN=n, the mnist-conv preset
 *                           trained for one epoch on n Fashion-MNIST training images (batch 32, lr CONV_FMNIST_LR
 *                           default 0.01, the image preset's loss) and tested on CONV_FMNIST_TEST images (default
 *                           2000; scales calibrated on 32 training images): a smoke run, not the 91 % target
 *                           run; null when not run.
 *
 * The VGG network is initialised without the scale calibration of init.ts (40 forward passes per
 * layer, which would dwarf the step being measured) on random pixels: the cost of a DSTD step does
 * not depend on how many neurons fire. Load averages at start and end are printed, since the
 * machine's other users inflate every time here.
 * Environment: VGG_REPEATS (default 2), VGG=0 skips the VGG step, CONV_FMNIST_TRAIN, CONV_FMNIST_TEST,
 * CONV_FMNIST_LR.
 */
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { loadDataset } from '../models/datasets/load.ts';
import { archPreset, compileArchitecture } from '../models/network/arch.ts';
import { convGradCheck } from '../models/network/conv-grad-check.ts';
import { convLayerShape, type ConvLayerState } from '../models/network/conv-layer.ts';
import { initNetwork, randomConvState, randomDenseState } from '../models/network/init.ts';
import { archConfig, SpikingNetwork } from '../models/network/network.ts';
import { createSolver } from '../models/network/solver.ts';
import { initBackend } from '../models/tf/backend.ts';
import { evaluateNetwork } from '../models/training/evaluate.ts';
import { resolveLoss, trainNetwork, trainStep } from '../models/training/trainer.ts';

const round = (v: number, d = 4) => Number(v.toPrecision(d));
const note = (s: string) => process.stderr.write(`${s}\n`);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
function envInt(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^\d+$/.test(raw)) throw new RangeError(`${name} must be a whole number, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** The gradient-check layer: most neurons fire, some do not (as test/models/network/conv-layer.test.ts). */
function gradCase(): { s: ConvLayerState; x: Float64Array; batch: number } {
  let a = 4;
  const rnd = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const g = { inH: 6, inW: 6, inC: 2, channels: 3, kernelH: 3, kernelW: 3, stride: 1, padding: 'same' as const };
  const sh = convLayerShape({ ...g, pool: 2 });
  const s: ConvLayerState = {
    kind: 'conv',
    ...g,
    pool: 2,
    nIn: sh.nIn,
    nOut: sh.nPooled,
    model: 'pnn',
    ePlus: 4,
    eMinus: -2,
    horizon: 1.5,
    timeOffset: 0,
    scale: 0.25,
    pE: Float32Array.from({ length: sh.kernelSize }, () => 0.2 + rnd()),
    pI: Float32Array.from({ length: sh.kernelSize }, () => (rnd() < 0.4 ? 0.5 * rnd() : 0)),
  };
  const batch = 3;
  const x = Float64Array.from({ length: batch * sh.nIn }, () => (rnd() < 0.2 ? Infinity : 0.8 * rnd()));
  return { s, x, batch };
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const out: Record<string, unknown> = { backend, cores: cpus().length, load_avg_start: loadavg().map((v) => round(v, 3)) };

  const c = gradCase();
  const exact = convGradCheck(c.s, c.x, c.batch, createSolver('exact'));
  const dstd = convGradCheck(c.s, c.x, c.batch, createSolver('dstd', { bins: 16 }));
  out.conv_grad_max_rel_err = round(exact.maxRelErr, 3);
  out.conv_grad_rel_l2 = round(exact.relL2, 3);
  out.conv_dstd_grad_rel_l2 = round(dstd.relL2, 3);
  out.conv_grad_outputs = exact.fired;
  note(`grad check: exact max rel ${exact.maxRelErr}, DSTD rel L2 ${dstd.relL2}`);

  if (process.env.VGG !== '0') {
    const B = 32;
    const arch = archPreset('cifar-vgg5');
    const config = archConfig(arch, { model: 'pnn' });
    const kinds = compileArchitecture(arch).layers;
    const net = SpikingNetwork.fromStates(
      config,
      kinds.map((k, l) => (k.kind === 'conv' ? randomConvState(config, l, 1) : randomDenseState(config, l, 1))),
    );
    const x = Float32Array.from({ length: B * config.sizes[0]! }, (_, k) => ((k * 2654435761) % 1000) / 1000);
    const y = Uint8Array.from({ length: B }, (_, k) => k % 10);
    const solver = createSolver('dstd', { bins: 16 });
    const opt = tf.train.adam(0.001);
    const loss = resolveLoss({ tauSoft: 0.2, windowWeight: 0.1, deadWeight: 1, deadMean: 1 });
    const repeats = Math.max(1, envInt('VGG_REPEATS', 2));
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      const c0 = cpuMs();
      const w0 = performance.now();
      trainStep(net, opt, x, y, solver, loss);
      if (r > 0) {
        cpu.push(cpuMs() - c0);
        wall.push(performance.now() - w0);
      }
      note(`vgg5 step ${r}${r === 0 ? ' (warm-up)' : ''}: cpu ${round(cpuMs() - c0)} ms, wall ${round(performance.now() - w0)} ms`);
    }
    const med = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
    const stepMs = med(cpu);
    out.vgg5_arch = 'conv64-pool2-conv128-pool2-conv256-pool2-dense256-dense10 (3x3 same, widths 3072-16384-8192-4096-256-10)';
    out.vgg5_step_ms = round(stepMs);
    out.vgg5_step_wall_ms = round(med(wall));
    out.vgg5_samples_per_s = round((B * 1000) / stepMs);
    out.vgg5_epoch_hours_projected = round(50000 / ((B * 1000) / stepMs) / 3600, 3);
    out.vgg5_tensor_bytes_after = tf.memory().numBytes;
    opt.dispose();
    net.dispose();
  }

  const nTrain = envInt('CONV_FMNIST_TRAIN', 0);
  out.fmnist_conv_pnn_acc = null;
  out.fmnist_conv_ideal_acc = null;
  if (nTrain > 0) {
    const nTest = envInt('CONV_FMNIST_TEST', 2000);
    const lr = Number(process.env.CONV_FMNIST_LR ?? '0.01');
    if (!(lr > 0 && lr < 1)) throw new RangeError(`CONV_FMNIST_LR must lie in (0, 1), got ${process.env.CONV_FMNIST_LR}`);
    const data = await loadDataset('fashion-mnist', { limitTrain: nTrain, limitTest: nTest });
    const solver = createSolver('dstd', { bins: 16 });
    const runs: Record<string, unknown> = {};
    for (const model of ['pnn', 'ideal'] as const) {
      const t0 = performance.now();
      const c0 = cpuMs();
      const net = initNetwork(archConfig(archPreset('mnist-conv'), { model }), { x: data.train.x, n: Math.min(32, data.train.n) }, solver, { seed: 1 });
      const initS = (performance.now() - t0) / 1000;
      const hist = await trainNetwork(
        net,
        { train: data.train },
        {
          epochs: 1,
          batchSize: 32,
          lr,
          seed: 1,
          solver,
          loss: { tauSoft: 0.2, windowWeight: 0.1, deadWeight: 1, deadMean: 1 },
          onBatch: (p) => {
            if (p.batch % 10 === 0) note(`${model}: batch ${p.batch}/${p.batches}, train acc ${round(p.acc, 3)}`);
          },
        },
      );
      const e = evaluateNetwork(net, data.test, solver, { batchSize: 64, tauSoft: 0.2 });
      out[`fmnist_conv_${model}_acc`] = round(e.acc);
      runs[model] = {
        train_n: data.train.n,
        test_n: data.test.n,
        epochs: 1,
        lr,
        train_acc: round(hist[0]?.train_acc ?? NaN),
        init_s: round(initS),
        train_samples_per_s: round(hist[0]?.samples_per_s ?? NaN),
        total_wall_s: round((performance.now() - t0) / 1000),
        total_cpu_s: round((cpuMs() - c0) / 1000),
      };
      net.dispose();
    }
    out.fmnist_conv_runs = runs;
  }
  out.load_avg_end = loadavg().map((v) => round(v, 3));
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.log(JSON.stringify({ ok: false, error: (err as Error).message }));
  process.exitCode = 1;
});
