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
 *   fmnist_conv_pnn_acc, fmnist_conv_ideal_acc: with CONV_FMNIST_TRAIN=n, the CONV_ARCH preset
 *                           (default mnist-conv-s2; a .json file holding an architecture; `dense` = the dense
 *                           784-256-128-10 reference) trained for CONV_FMNIST_EPOCHS (1) epochs on n Fashion-MNIST
 *                           training images with the conv preset's settings unless set (models/training/presets.ts,
 *                           what `spikeloop train --arch` takes): batch CONV_FMNIST_BATCH 32, Adam lr CONV_FMNIST_LR
 *                           0.05 on the CONV_FMNIST_SCHEDULE cosine-steps (per step to 5 % of lr; constant, cosine),
 *                           silent zeros, its loss; DSTD CONV_FMNIST_BINS 16; scales calibrated on 64 training
 *                           images), mean over CONV_SEEDS (1) on CONV_FMNIST_TEST test images (10000); per run
 *                           in fmnist_conv_runs (samples/s, CPU and wall seconds); null when not run. With
 *                           CONV_FMNIST_VAL=v, v more training images are held out and scored instead
 *                           (fmnist_conv_*_val_acc), to choose settings without the test set. Each run also
 *                           reports init_fired (per layer, the fraction of neuron-image pairs that fire right
 *                           after initialisation, on the first 128 training images), init_early (per layer, the fraction
 *                           of those spikes before the layer's window start), init_no_output_spike, train_silent
 *                           (per layer, the silent fraction over the last epoch's batches), epoch_train_acc and
 *                           epoch_terms (per epoch: running training accuracy; cross-entropy, window and dead-neuron
 *                           terms) and no_output_spike (scored images with every output silent). CONV_SILENT_ZEROS=1
 *                           (0) gives the conv net silent zeros (zeros spiking at tIn); unset, the preset's (silent).
 *                           CONV_LOSS (JSON of LossConfig fields, e.g. {"tauSoft":0.5}) and CONV_INIT (JSON of
 *                           InitOptions fields, e.g. {"outputTargetFraction":0.1}) override the loss and the
 *                           initialisation; both are echoed per run (loss_override, init_override).
 *
 * The VGG network is initialised without the scale calibration of init.ts (40 forward passes per
 * layer, which would dwarf the step being measured) on random pixels: the cost of a DSTD step does
 * not depend on how many neurons fire. Load averages at start and end are printed, since the
 * machine's other users inflate every time here.
 * Environment: VGG_REPEATS (default 2), VGG=0 skips the VGG step, CONV_FMNIST_TRAIN, CONV_FMNIST_TEST,
 * CONV_FMNIST_VAL, CONV_FMNIST_LR, CONV_FMNIST_SCHEDULE, CONV_FMNIST_EPOCHS, CONV_FMNIST_BATCH, CONV_FMNIST_BINS, CONV_ARCH,
 * CONV_SEEDS, CONV_MODELS (pnn,ideal), CONV_SILENT_ZEROS, CONV_LOSS, CONV_INIT.
 */
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { loadDataset } from '../models/datasets/load.ts';
import { archPreset, compileArchitecture, readArchitecture } from '../models/network/arch.ts';
import { convGradCheck } from '../models/network/conv-grad-check.ts';
import { convLayerShape, type ConvLayerState } from '../models/network/conv-layer.ts';
import { initNetwork, randomConvState, randomDenseState } from '../models/network/init.ts';
import { archConfig, defaultConfig, SpikingNetwork, windowStart } from '../models/network/network.ts';
import { createSolver } from '../models/network/solver.ts';
import { initBackend } from '../models/tf/backend.ts';
import { evaluateNetwork } from '../models/training/evaluate.ts';
import { PRESETS } from '../models/training/presets.ts';
import { resolveLoss, trainNetwork, trainStep, type LrSchedule } from '../models/training/trainer.ts';

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

/** CONV_LOSS: loss settings over the bench's (JSON, LossConfig fields). */
const lossOverrideSchema = z.strictObject({
  tauSoft: z.number().positive().optional(),
  windowWeight: z.number().nonnegative().optional(),
  windowMargin: z.number().positive().lt(1).optional(),
  deadWeight: z.number().nonnegative().optional(),
  deadRate: z.number().min(0).max(1).optional(),
  deadTarget: z.number().positive().optional(),
  deadMembrane: z.union([z.literal(0), z.literal(1)]).optional(),
  deadMean: z.union([z.literal(0), z.literal(1)]).optional(),
  silentScale: z.number().nonnegative().optional(),
});
/** CONV_INIT: initialisation settings (JSON, InitOptions fields other than seed and drives). */
const initOverrideSchema = z.strictObject({
  meanRatio: z.number().optional(),
  targetFraction: z.number().gt(0).lt(1).optional(),
  outputTargetFraction: z.number().gt(0).lt(1).optional(),
  fireFraction: z.number().gt(0).max(1).nullable().optional(),
  earlyLimit: z.number().min(0).lt(1).nullable().optional(),
  medianOverFireable: z.boolean().optional(),
});
function envJson<T>(name: string, schema: z.ZodType<T>): T | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new RangeError(`${name} must be a JSON object, got ${JSON.stringify(raw)}`);
  }
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new RangeError(`${name}.${i.path.join('.')}: ${i.message} (got ${raw})`);
  }
  return r.data;
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

/**
 * Per layer the fraction of (image, neuron) pairs that fire, and the fraction of those spikes that
 * come before the layer's window start (windowStart); the fraction of images with no output spike.
 */
function initFiring(
  net: SpikingNetwork,
  x: Float32Array,
  n: number,
  solver: ReturnType<typeof createSolver>,
): { layers: number[]; early: number[]; noOutput: number } {
  return tf.tidy(() => {
    const f = net.forward(net.encode(x.subarray(0, n * net.features), n), solver);
    const early: number[] = [];
    const layers = f.spikes.map((s, l) => {
      const m = s.mask.dataSync();
      const t = s.times.dataSync();
      const start = windowStart(net.config, l);
      let k = 0;
      let before = 0;
      for (let i = 0; i < m.length; i++) {
        k += m[i]!;
        if (m[i]! > 0.5 && t[i]! < start) before++;
      }
      early.push(before / Math.max(1, k));
      return k / m.length;
    });
    const m = f.spikes.at(-1)!.mask.dataSync();
    const c = net.classes;
    let none = 0;
    for (let b = 0; b < n; b++) {
      let any = 0;
      for (let j = 0; j < c; j++) any += m[b * c + j]!;
      if (any === 0) none++;
    }
    return { layers, early, noOutput: none / n };
  });
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
    // Defaults: what `spikeloop train --arch` takes for images (models/training/presets.ts).
    const conv = PRESETS.conv;
    const nTest = envInt('CONV_FMNIST_TEST', 10000);
    const nVal = envInt('CONV_FMNIST_VAL', 0);
    const epochs = Math.max(1, envInt('CONV_FMNIST_EPOCHS', 1));
    const batchSize = Math.max(1, envInt('CONV_FMNIST_BATCH', conv.batchSize));
    const bins = Math.max(2, envInt('CONV_FMNIST_BINS', 16));
    const archName = process.env.CONV_ARCH ?? 'mnist-conv-s2';
    const seeds = (process.env.CONV_SEEDS ?? '1').split(',').map(Number);
    const models = (process.env.CONV_MODELS ?? 'pnn,ideal').split(',');
    const silentZerosEnv = process.env.CONV_SILENT_ZEROS;
    if (silentZerosEnv !== undefined && silentZerosEnv !== '0' && silentZerosEnv !== '1')
      throw new RangeError(`CONV_SILENT_ZEROS must be 0 or 1, got ${JSON.stringify(silentZerosEnv)}`);
    // Unset: the conv preset's (the dense reference always has silent zeros).
    const silentZeros = { silentZeros: silentZerosEnv === undefined ? conv.silentZeros : silentZerosEnv === '1' };
    if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new RangeError(`CONV_SEEDS must be whole numbers like 1,2,3, got ${process.env.CONV_SEEDS}`);
    if (!models.every((m) => m === 'pnn' || m === 'ideal')) throw new RangeError(`CONV_MODELS must list pnn and/or ideal, got ${process.env.CONV_MODELS}`);
    const lossOverride = envJson('CONV_LOSS', lossOverrideSchema) ?? {};
    const initOverride = envJson('CONV_INIT', initOverrideSchema) ?? {};
    const lr = Number(process.env.CONV_FMNIST_LR ?? conv.lr);
    const schedule = (process.env.CONV_FMNIST_SCHEDULE ?? conv.schedule) as LrSchedule;
    if (!['constant', 'cosine', 'cosine-steps'].includes(schedule))
      throw new RangeError(`CONV_FMNIST_SCHEDULE must be constant, cosine or cosine-steps, got ${process.env.CONV_FMNIST_SCHEDULE}`);
    if (!(lr > 0 && lr < 1)) throw new RangeError(`CONV_FMNIST_LR must lie in (0, 1), got ${process.env.CONV_FMNIST_LR}`);
    const all = await loadDataset('fashion-mnist', { limitTrain: nTrain + nVal, limitTest: nTest });
    // With CONV_FMNIST_VAL = v the last v of the training subset are held out and scored instead of
    // the test set: settings are chosen on them, never on the test set.
    const part = (from: number, n: number, name: string) => ({
      ...all.train,
      name,
      n,
      x: all.train.x.subarray(from * 784, (from + n) * 784),
      y: all.train.y.subarray(from, from + n),
    });
    const train = nVal > 0 ? part(0, all.train.n - nVal, 'fashion-mnist/train (head)') : all.train;
    const scored = nVal > 0 ? part(all.train.n - nVal, nVal, 'fashion-mnist/train (held out)') : all.test;
    const solver = createSolver('dstd', { bins });
    const runs: Record<string, unknown>[] = [];
    for (const model of models as ('pnn' | 'ideal')[]) {
      const accs: number[] = [];
      for (const seed of seeds) {
        const t0 = performance.now();
        const c0 = cpuMs();
        // CONV_ARCH=dense: the 784-256-128-10 reference network (silent zeros, as its preset) under the same recipe.
        const config = archName === 'dense' ? defaultConfig([784, 256, 128, 10], { model }) : archConfig(readArchitecture(archName), { model, ...silentZeros });
        const net = initNetwork(config, { x: train.x, n: Math.min(64, train.n) }, solver, { seed, ...initOverride });
        const initS = (performance.now() - t0) / 1000;
        const fired = initFiring(net, train.x, Math.min(128, train.n), solver);
        const hist = await trainNetwork(
          net,
          { train },
          {
            epochs,
            batchSize,
            lr,
            schedule,
            seed,
            solver,
            loss: { ...conv.loss, ...lossOverride },
            onBatch: (p) => {
              if (p.batch % 20 === 0)
                note(`${model} seed ${seed}: epoch ${p.epoch} batch ${p.batch}/${p.batches}, loss ${round(p.loss, 3)}, train acc ${round(p.acc, 3)}`);
            },
          },
        );
        const e = evaluateNetwork(net, scored, solver, { batchSize: 64, tauSoft: 0.2 });
        note(`${model} seed ${seed}: ${scored.name} acc ${e.acc}`);
        accs.push(e.acc);
        runs.push({
          model,
          seed,
          scored: scored.name,
          scored_n: scored.n,
          acc: round(e.acc),
          // Scored images with no output spike at all (counted wrong).
          no_output_spike: round(e.noSpike / e.n),
          train_n: train.n,
          epochs,
          lr,
          schedule,
          batch: batchSize,
          bins,
          silent_zeros: config.silentZeros,
          loss_override: lossOverride,
          init_override: initOverride,
          train_acc: round(hist.at(-1)?.train_acc ?? NaN),
          // Per epoch: running training accuracy and the loss terms (cross-entropy, window, dead-neuron).
          epoch_train_acc: hist.map((m) => round(m.train_acc)),
          epoch_terms: hist.map((m) => [round(m.train_terms.ce), round(m.train_terms.window), round(m.train_terms.dead)]),
          // Per layer, the mean fraction of neuron-image pairs that stayed silent over the last epoch's batches.
          train_silent: hist.at(-1)?.silent.map((f) => round(f, 3)),
          init_s: round(initS),
          init_fired: fired.layers.map((f) => round(f, 3)),
          init_early: fired.early.map((f) => round(f, 3)),
          init_no_output_spike: round(fired.noOutput, 3),
          train_samples_per_s: round(hist.reduce((t, m) => t + m.samples_per_s * m.seconds, 0) / hist.reduce((t, m) => t + m.seconds, 0)),
          total_wall_s: round((performance.now() - t0) / 1000),
          total_cpu_s: round((cpuMs() - c0) / 1000),
        });
        net.dispose();
      }
      if (nVal === 0) out[`fmnist_conv_${model}_acc`] = round(accs.reduce((a, b) => a + b, 0) / accs.length);
      else out[`fmnist_conv_${model}_val_acc`] = round(accs.reduce((a, b) => a + b, 0) / accs.length);
    }
    out.fmnist_conv_arch = archName;
    out.fmnist_conv_runs = runs;
  }
  out.load_avg_end = loadavg().map((v) => round(v, 3));
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.log(JSON.stringify({ ok: false, error: (err as Error).message }));
  process.exitCode = 1;
});
