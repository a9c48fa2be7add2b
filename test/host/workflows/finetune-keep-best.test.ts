/**
 * Fine-tuning ends on the state whose device accuracy on the validation split is best (the deployment unless
 * an epoch beats it), and the chip is left holding it. On mock:ideal (deterministic) the runs below are fixed:
 * lr 0.005 peaks on validation at epoch 1 of 4 and falls after; lr 0.2 falls below the deployment at every epoch.
 * Which epoch may replace the deployment is the keep rule's (finetune-keep.ts, tested on its own in
 * finetune-keep.test.ts); here PEAK runs with level 1 (any gain) so its epochs compete on accuracy alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { curvesFromProfile, ChipMapping } from '../../../calibration/chip-mapping.ts';
import { loadChipProfile } from '../../../calibration/chip-profile.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { readMetrics } from '../../../host/runs/metrics-log.ts';
import { evaluateOnDevice } from '../../../host/workflows/deploy.ts';
import { loadCheckpoint } from '../../../host/workflows/finetune-checkpoint.ts';
import { runFinetune, validationSize, type FinetuneOptions } from '../../../host/workflows/finetune.ts';
import { beatsDeployment, KEEP_ALPHA } from '../../../host/workflows/finetune-keep.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { partIndices } from '../../../models/datasets/split.ts';
import { TRAINING_SUBSET_KEY, trainingSubset } from '../../../models/datasets/training-subset.ts';
import { loadNetwork, saveNetwork } from '../../../models/network/serialize.ts';
import { FINETUNE_DEVICE, SINK, useFinetuneFixture } from './finetune-fixture.ts';

const DEVICE = FINETUNE_DEVICE;
const fx = useFinetuneFixture('finetune-best-');
const sink = SINK;

/** The devices the runs opened, kept open after the run (close is a no-op) so the test can read their CRCs. */
const opened: ChipDevice[] = [];
function keepDevicesOpen(): void {
  const open = ChipDevice.open.bind(ChipDevice);
  vi.spyOn(ChipDevice, 'open').mockImplementation(async (...args: Parameters<typeof ChipDevice.open>) => {
    const d = await open(...args);
    const close = d.close.bind(d);
    d.close = async () => {};
    opened.push(Object.assign(d, { reallyClose: close }));
    return d;
  });
}
afterEach(async () => {
  vi.restoreAllMocks();
  for (const d of opened.splice(0)) await (d as ChipDevice & { reallyClose(): Promise<void> }).reallyClose();
});

// keepAlpha 1: any validation gain over the deployment counts (30 samples are too few for the default level to pass).
const PEAK = { dataset: 'iris', epochs: 4, batchSize: 16, lr: 0.005, seed: 4, val: 30, keepAlpha: 1 } as const;
const WORSE = { dataset: 'iris', epochs: 3, batchSize: 16, lr: 0.2, seed: 4, val: 20 } as const;

function opts(out: string, o: Partial<FinetuneOptions>): FinetuneOptions {
  return { device: DEVICE, out: path.join(fx.dir, out), model: fx.model, profile: fx.profile, ...o, ...sink };
}

/** The codes a network file maps to through the profile: what the chip must hold for it. */
async function codesOf(file: string, dev: ChipDevice): Promise<Uint16Array[]> {
  const { net } = await loadNetwork(file);
  try {
    const p = await loadChipProfile(fx.profile, { chipId: dev.info.chipId });
    return new ChipMapping(net, dev.info, curvesFromProfile(p, dev.info)).map().layers.map((m) => m.codes);
  } finally {
    net.dispose();
  }
}

async function chipHolds(dev: ChipDevice, codes: Uint16Array[]): Promise<boolean> {
  const v = await Promise.all(codes.map((c, l) => dev.verifyWeights(l, c)));
  return v.every((r) => r.ok);
}

async function params(file: string): Promise<number[][]> {
  const { net } = await loadNetwork(file);
  const p = net.states().flatMap((s) => [Array.from(s.pE), Array.from(s.pI)]);
  net.dispose();
  return p;
}

function firstArgmax(a: number[]): number {
  return a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);
}

describe('fine-tuning keeps the best validation state', () => {
  it('ends on the epoch that is best on validation, the chip holding its codes (CRC), though a later epoch was run', async () => {
    keepDevicesOpen();
    const s = await runFinetune(opts('peak', PEAK));
    const dev = opened[0]!;
    const epochs = readMetrics(path.join(fx.dir, 'peak', 'metrics.jsonl')).records.filter((r) => typeof r.device_acc === 'number');
    const valAcc = epochs.map((r) => r.val_acc as number);
    expect(epochs.map((r) => r.epoch)).toEqual([0, 1, 2, 3, 4]);
    expect(s.val_acc).toEqual(valAcc);
    expect(s.kept_epoch).toBe(firstArgmax(valAcc));
    // The case this run is here for: the best is neither the deployment nor the last epoch.
    expect(s.kept_epoch).toBe(1);
    expect(s.finetuned_acc).toBe(epochs[1]!.device_acc);
    expect(s.twin_acc).toBe(epochs[1]!.twin_acc);
    expect(s.last_epoch_acc).toBe(epochs[4]!.device_acc);
    expect(s.last_epoch_acc).not.toBe(s.finetuned_acc);
    expect(s.kept_state).toBe('epoch');
    expect(s.keep_alpha).toBe(1);
    // Every epoch compared with the deployment sample by sample: the net gain is the accuracy difference.
    expect(s.val_comparisons.map((c) => c.epoch)).toEqual([1, 2, 3, 4]);
    for (const c of s.val_comparisons) expect((c.gained - c.lost) / PEAK.val).toBeCloseTo(valAcc[c.epoch]! - valAcc[0]!, 10);

    // The chip holds the codes network.bin maps to, not the last epoch's (the checkpoint's training state).
    const kept = await codesOf(s.network, dev);
    expect(await chipHolds(dev, kept)).toBe(true);
    const { net: lastNet, checkpoint } = await loadCheckpoint(path.join(fx.dir, 'peak'));
    lastNet.dispose();
    expect(await chipHolds(dev, checkpoint.codes)).toBe(false);
    expect(checkpoint.best!.epoch).toBe(1);
    expect(checkpoint.best!.codes.map((c) => Array.from(c))).toEqual(kept.map((c) => Array.from(c)));

    // Measured again on the chip as left, the kept state scores what the run reports.
    const data = await loadDataset('iris', { seed: PEAK.seed });
    const { net } = await loadNetwork(s.network);
    try {
      expect((await evaluateOnDevice(dev, net, data.test.x, data.test.y, data.test.n)).accuracy).toBe(s.finetuned_acc);
    } finally {
      net.dispose();
    }
  }, 120_000);

  it('keeps the deployment when no epoch beats it on validation: fine-tuned == deployed, the chip back on the deployed codes', async () => {
    keepDevicesOpen();
    const s = await runFinetune(opts('worse', WORSE));
    const dev = opened[0]!;
    expect(s.val_acc.slice(1).every((v) => v! <= s.val_acc[0]!)).toBe(true);
    expect(s.kept_epoch).toBe(0);
    expect(s.kept_state).toBe('deployment');
    expect(s.finetuned_acc).toBe(s.deployed_acc);
    expect(s.last_epoch_acc).toBeLessThan(s.deployed_acc);
    expect(await chipHolds(dev, await codesOf(fx.model, dev))).toBe(true);
    expect(await params(s.network)).toEqual(await params(fx.model));
  }, 120_000);

  it('a run stopped after its best epoch and resumed still ends on that state', async () => {
    const whole = await runFinetune(opts('whole', PEAK));
    const perEpoch = Math.ceil((105 - PEAK.val) / PEAK.batchSize);
    const ac = new AbortController();
    // Stop in the third epoch: the best (epoch 1) is only in the checkpoint by then.
    const cut = await runFinetune({ ...opts('cut', PEAK), signal: ac.signal, onBatch: (p) => p.steps === 2 * perEpoch + 2 && ac.abort() });
    expect(cut.interrupted).toBe(true);
    expect(cut.kept_epoch).toBeNull();
    keepDevicesOpen();
    const resumed = await runFinetune({ device: DEVICE, out: path.join(fx.dir, 'cut'), resume: true, ...sink });
    const dev = opened[0]!;
    expect(resumed.kept_epoch).toBe(whole.kept_epoch);
    expect(resumed.finetuned_acc).toBe(whole.finetuned_acc);
    expect(resumed.val_acc).toEqual(whole.val_acc);
    // The deployment's validation correctness came back from the checkpoint: the same comparisons as the whole run.
    expect(resumed.val_comparisons).toEqual(whole.val_comparisons);
    expect(await params(resumed.network)).toEqual(await params(whole.network));
    expect(await chipHolds(dev, await codesOf(whole.network, dev))).toBe(true);
    // ... which is epoch 1's, from the checkpoint, not the last epoch's.
    expect(resumed.kept_epoch).toBe(1);
    const { net, checkpoint } = await loadCheckpoint(path.join(fx.dir, 'cut'));
    net.dispose();
    expect(await chipHolds(dev, checkpoint.best!.codes)).toBe(true);
    expect(checkpoint.valDeployed?.length).toBe(PEAK.val);
    expect(await chipHolds(dev, checkpoint.codes)).toBe(false);
  }, 120_000);

  it("an epoch replaces the deployment only when its paired gain on validation passes the sign test at the run's level", async () => {
    const s = await runFinetune(opts('rule', { ...PEAK, keepAlpha: undefined }));
    expect(s.keep_alpha).toBe(KEEP_ALPHA);
    expect(s.val_comparisons).toHaveLength(PEAK.epochs);
    // The kept epoch is the passing one with the best validation accuracy (the earlier on a tie).
    const passing = s.val_comparisons.filter((c) => beatsDeployment(c, KEEP_ALPHA)).map((c) => c.epoch);
    expect(passing.length).toBeGreaterThan(0);
    const best = passing.reduce((k, e) => (s.val_acc[e]! > s.val_acc[k]! ? e : k), passing[0]!);
    expect(s.kept_epoch).toBe(best);
    // Its evidence: epoch 1 gains 9 of the 30 samples, a one-sided p of 2^-9 or so: below 1e-4 nothing passes.
    expect(Math.min(...s.val_comparisons.map((c) => c.p))).toBeGreaterThan(1e-4);

    keepDevicesOpen();
    const strict = await runFinetune(opts('strict', { ...PEAK, keepAlpha: 1e-4 }));
    const dev = opened[0]!;
    expect(strict.val_acc).toEqual(s.val_acc);
    expect(strict.kept_epoch).toBe(0);
    expect(strict.kept_state).toBe('deployment');
    expect(strict.finetuned_acc).toBe(strict.deployed_acc);
    expect(Math.max(...strict.val_acc.slice(1).map((v) => v!))).toBeGreaterThan(strict.val_acc[0]!);
    expect(await chipHolds(dev, await codesOf(fx.model, dev))).toBe(true);
    expect(await params(strict.network)).toEqual(await params(fx.model));
    await expect(runFinetune(opts('alpha0', { ...PEAK, keepAlpha: 0 }))).rejects.toThrow(/--keep-alpha 0: give a significance level above 0/);
  }, 120_000);

  it('reuses a deployment read of the same codes for epoch 0, and measures again when the codes differ', async () => {
    keepDevicesOpen();
    const data = await loadDataset('iris', { seed: PEAK.seed });
    const probe = await ChipDevice.open(DEVICE);
    const codes = await codesOf(fx.model, probe);
    const predictions = Int32Array.from(data.test.y, (y, i) => (i % 3 === 0 ? -1 : y)); // a read no device gave: 2/3 right
    const read = { codes, labels: data.test.y, predictions };
    const s = await runFinetune(opts('reuse', { ...WORSE, epochs: 1, deployedRead: read }));
    expect(s.deployed_read).toBe('reused');
    expect(s.deployed_acc).toBeCloseTo(predictions.filter((p, i) => p === data.test.y[i]).length / data.test.n, 12);
    expect(s.kept_epoch).toBe(0);
    expect(s.finetuned_acc).toBe(s.deployed_acc);
    const other = codes.map((c) => c.map((v) => v ^ 1));
    const warned: string[] = [];
    const t = await runFinetune({ ...opts('remeasure', { ...WORSE, epochs: 1, deployedRead: { ...read, codes: other } }), warn: (l) => warned.push(l) });
    expect(t.deployed_read).toBe('measured');
    expect(t.deployed_acc).not.toBeCloseTo(s.deployed_acc, 12);
    expect(warned.join('\n')).toMatch(/does not match this run/);
  }, 120_000);

  it('carves the validation split from the training part: disjoint from every training batch and from the test part', async () => {
    const seen: Uint32Array[][] = [[], []];
    const s = await runFinetune({ ...opts('split', { ...PEAK, epochs: 2 }), onBatch: (p) => seen[p.epoch]!.push(p.samples) });
    const v = JSON.parse(fs.readFileSync(path.join(fx.dir, 'split', 'validation.json'), 'utf8')) as { samples: number; indices: number[] };
    expect(v.samples).toBe(PEAK.val);
    expect(s.val_samples).toBe(PEAK.val);
    const val = new Set(v.indices);
    expect(val.size).toBe(PEAK.val);
    // Each epoch learns from every training sample but the validation ones, once.
    for (const epoch of seen) {
      const all = epoch.flatMap((b) => Array.from(b)).sort((a, b) => a - b);
      expect(all).toEqual(Array.from({ length: 105 }, (_, i) => i).filter((i) => !val.has(i)));
    }
    // The positions are the loaded training part's (same data set, limits and seed), and no validation row is a test row.
    const data = await loadDataset('iris', { seed: PEAK.seed });
    const row = (x: Float32Array, i: number) => Array.from(x.subarray(i * 4, i * 4 + 4)).join(',');
    const testRows = new Set(Array.from({ length: data.test.n }, (_, i) => row(data.test.x, i)));
    expect(v.indices.every((i) => i < data.train.n && !testRows.has(row(data.train.x, i)))).toBe(true);
    // Stratified: each of the three classes keeps its share of the training part (35 of 105 each).
    for (let c = 0; c < 3; c++) expect(v.indices.filter((i) => data.train.y[i] === c).length).toBe(10);
  }, 120_000);

  it('takes validation samples the network never trained on when its file names its training subset', async () => {
    // The same network, its file saying it learnt from 50 of iris's 105 training samples (seed 1).
    const { net, info } = await loadNetwork(fx.model);
    const model = path.join(fx.dir, 'model-subset.bin');
    await saveNetwork(model, net, { ...info, [TRAINING_SUBSET_KEY]: trainingSubset('iris', { seed: 1, limitTrain: 50 }) });
    net.dispose();
    const batches: Uint32Array[] = [];
    const warned: string[] = [];
    const run = { ...PEAK, epochs: 1, limitTrain: 30, val: 20 };
    const s = await runFinetune({ ...opts('unseen', run), model, onBatch: (p) => batches.push(p.samples), warn: (l) => warned.push(l) });
    expect(s.val_source).toBe('unseen');
    expect(s.val_samples).toBe(20);
    expect(warned.join('\n')).not.toMatch(/carved/);
    const v = JSON.parse(fs.readFileSync(path.join(fx.dir, 'unseen', 'validation.json'), 'utf8')) as { samples: number; data_set_train_rows: number[] };
    expect(v.samples).toBe(20);
    // Rows of iris's training part: none among the 50 the network learnt from, nor among the run's 30, whose every
    // sample the batches see (no carving).
    const whole = await loadDataset('iris');
    const raw = { ...whole, train: { x: whole.train.x, y: whole.train.y, n: whole.train.n }, test: { x: whole.test.x, y: whole.test.y, n: whole.test.n } };
    const twin = new Set(partIndices(raw, 'train', 50, 1));
    const own = new Set(partIndices(raw, 'train', 30, PEAK.seed));
    expect(new Set(v.data_set_train_rows).size).toBe(20);
    for (const r of v.data_set_train_rows) {
      expect(twin.has(r)).toBe(false);
      expect(own.has(r)).toBe(false);
    }
    expect(
      batches
        .flatMap((b) => Array.from(b))
        .sort((a, b) => a - b)
        .join(),
    ).toBe(Array.from({ length: 30 }, (_, i) => i).join());
    // Resumed for a second epoch, the run validates on the same samples.
    const r = await runFinetune({ device: DEVICE, out: path.join(fx.dir, 'unseen'), resume: true, epochs: 2, ...sink });
    expect(r.val_source).toBe('unseen');
    expect(r.epochs).toBe(2);
    expect(r.val_acc.every((a) => typeof a === 'number')).toBe(true);
    expect(r.val_acc).toHaveLength(3);
    // A network file without the record: carved from the run's training part, and said so.
    const warnedOld: string[] = [];
    const c = await runFinetune({ ...opts('carved', run), warn: (l) => warnedOld.push(l) });
    expect(c.val_source).toBe('carved');
    expect(warnedOld.join('\n')).toMatch(/does not say which samples trained it; the 20 validation samples are carved/);
  }, 120_000);

  it('sizes the split: a count, a fraction, 0 (no split), or a tenth of the part up to 500; never the whole part', () => {
    expect(validationSize(undefined, 105)).toBe(11);
    expect(validationSize(undefined, 20_000)).toBe(500);
    expect(validationSize(0.2, 105)).toBe(21);
    expect(validationSize(40, 105)).toBe(40);
    expect(validationSize(0, 105)).toBe(0);
    expect(() => validationSize(105, 105)).toThrow(/--val 105: 105 validation samples leave none of the 105 training samples/);
    expect(() => validationSize(2.5, 105)).toThrow(/--val 2.5: give a count/);
  });

  it('with --val 0 keeps the last epoch, as before validation splits', async () => {
    const s = await runFinetune(opts('noval', { ...WORSE, val: 0 }));
    expect(s.kept_epoch).toBeNull();
    expect(s.val_samples).toBe(0);
    expect(s.finetuned_acc).toBe(s.last_epoch_acc);
    expect(fs.existsSync(path.join(fx.dir, 'noval', 'validation.json'))).toBe(false);
  }, 60_000);
});
