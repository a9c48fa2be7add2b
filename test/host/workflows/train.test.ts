import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../../host/cli/main.ts';
import { readMetrics } from '../../../host/runs/metrics-log.ts';
import { readIrisSamples } from '../../../models/datasets/iris.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { imcSolver } from '../../../models/ann/imc-search.ts';
import { loadNetwork } from '../../../models/network/serialize.ts';
import { nominalChipProfile, saveChipProfile } from '../../../calibration/chip-profile.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { evaluateNetwork } from '../../../models/training/evaluate.ts';

const root = mkdtempSync(join(tmpdir(), 'spikeloop-train-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['train', ...args], { stdout: (t) => (out += t), stderr: (t) => (err += t), signal: new AbortController().signal });
  return { code, out, err };
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;

/** A tiny IDX set in `dir` (2x2 images whose pixels follow the label), for the image preset. */
function writeIdxSet(dir: string, trainY: number[], testY: number[]): void {
  mkdirSync(dir);
  const idx = (dims: number[], bytes: number[]) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt8(8, 2);
    head.writeUInt8(dims.length, 3);
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([head, Buffer.from(bytes)]);
  };
  const pixels = (ys: number[]) => ys.flatMap((y) => [y * 80, 20, 200, y * 40]);
  writeFileSync(join(dir, 'train-images-idx3-ubyte'), idx([trainY.length, 2, 2], pixels(trainY)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte'), idx([trainY.length], trainY));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx([testY.length, 2, 2], pixels(testY)));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx([testY.length], testY));
}

/** The training settings a run folder's record.json holds. */
function recordedSettings(dir: string): { loss: Record<string, number>; weightNoise: number; [key: string]: unknown } {
  return (JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as { summary: { settings: ReturnType<typeof recordedSettings> } }).summary.settings;
}

/** The loss settings a run folder's record.json holds. */
function recordedLoss(dir: string): Record<string, number> {
  return recordedSettings(dir).loss;
}

/** A one-epoch Iris run into `out` with a 4-neuron hidden layer and the --json line. */
function shortIris(out: string): string[] {
  return ['--dataset', 'iris', '--layers', '4', '--epochs', '1', '--bins', '4', '--out', out, '--json'];
}

describe('spikeloop train: flags', () => {
  const cases: [string[], RegExp][] = [
    [['--out', 'x'], /invalid --dataset \(missing\): is required; use one of iris/],
    [['--dataset', 'imagenet', '--out', 'x'], /invalid --dataset 'imagenet': unknown dataset "imagenet"; use one of iris/],
    [['--dataset', 'iris', '--model', 'lif', '--out', 'x'], /invalid --model 'lif': must be pnn or ideal/],
    [['--dataset', 'iris', '--solver', 'rk4', '--out', 'x'], /invalid --solver 'rk4': must be one of dstd, euler, exact/],
    [['--dataset', 'iris', '--layers', '256,x', '--out', 'x'], /invalid --layers '256,x': expected comma-separated positive whole numbers like 256,128/],
    [['--dataset', 'iris', '--layers', '0', '--out', 'x'], /invalid --layers '0': each width must be >= 1/],
    [['--dataset', 'iris', '--lr=-0.1', '--out', 'x'], /invalid --lr '-0.1': expected a positive number like 0.01/],
    [['--dataset', 'iris', '--lr', '0', '--out', 'x'], /invalid --lr '0': must be > 0/],
    [['--dataset', 'iris', '--bins', '0', '--out', 'x'], /invalid --bins '0': must be >= 1/],
    [['--dataset', 'iris', '--epochs', 'ten', '--out', 'x'], /invalid --epochs 'ten': expected a whole number/],
    [['--dataset', 'iris'], /invalid --out \(missing\): is required: a folder for the run/],
    [['--dataset', 'iris', '--from-ann', '--solver', 'exact', '--out', 'x'], /--from-ann evaluates with the exact solver.*drop --solver exact/],
    [['--dataset', 'iris', '--euler-steps', '64', '--out', 'x'], /--euler-steps only applies to --solver euler/],
    [['--dataset', 'iris', '--ephocs', '3', '--out', 'x'], /unknown flag --ephocs for 'train'; did you mean --epochs\?/],
    [['--dataset', 'iris', '--cv', '3', '--from-ann', '--out', 'x'], /--cv works with the SNN flow only; drop --from-ann/],
    [['--dataset', 'iris', '--cv', '1', '--out', 'x'], /invalid --cv '1': must be >= 2/],
    [['--dataset', 'iris', '--cv', '21', '--out', 'x'], /invalid --cv '21': must be <= 20/],
    [['--dataset', 'iris', '--cv', 'five', '--out', 'x'], /invalid --cv 'five': expected a whole number/],
    [['--dataset', 'iris', '--cv', '3', '--limit-train', '50', '--out', 'x'], /--cv pools the whole data set into 3 folds; drop --limit-train/],
    [['--dataset', 'iris', '--reference-spike', '1.5', '--out', 'x'], /invalid --reference-spike '1.5': expected a time in \[0, 1\] like 0 or 0.5, or none/],
    [['--dataset', 'iris', '--ema', '1', '--out', 'x'], /invalid --ema '1': expected a decay in \[0, 1\) like 0.999, or 0 for off/],
    [['--dataset', 'iris', '--ema', '0.999.1', '--out', 'x'], /invalid --ema '0.999.1': expected a decay in \[0, 1\)/],
    [['--dataset', 'iris', '--from-ann', '--ema', '0.9', '--out', 'x'], /--ema averages a spiking network's weights.*drop --ema/],
    [['--dataset', 'iris', '--input-noise', '1', '--out', 'x'], /invalid --input-noise '1': expected a standard deviation in \[0, 1\) like 0.05, or 0 for off/],
    [['--dataset', 'iris', '--input-noise=-0.1', '--out', 'x'], /invalid --input-noise '-0.1': expected a standard deviation in \[0, 1\)/],
    [['--dataset', 'iris', '--from-ann', '--input-noise', '0.05', '--out', 'x'], /--input-noise regularises a spiking network's training.*drop --input-noise/],
    [['--dataset', 'iris', '--weight-decay', 'lots', '--out', 'x'], /invalid --weight-decay 'lots': expected a number >= 0 like 0.01/],
    [
      ['--dataset', 'iris', '--from-ann', '--weight-decay', '0.01', '--out', 'x'],
      /--weight-decay regularises a spiking network's training.*drop --weight-decay/,
    ],
    [['--dataset', 'iris', '--dead-mean', 'all', '--out', 'x'], /invalid --dead-mean 'all': must be selected or batch/],
    [['--dataset', 'iris', '--cv', '3', '--cv-part', 'test', '--out', 'x'], /invalid --cv-part 'test': must be all or train/],
    [['--dataset', 'iris', '--cv-part', 'train', '--out', 'x'], /--cv-part chooses what --cv pools; add --cv K or drop --cv-part/],
    [
      ['--dataset', 'iris', '--arch', 'resnet', '--out', 'x'],
      /invalid --arch 'resnet': 'resnet' is neither a preset \(mnist-conv, mnist-conv-s2, mnist-conv-valid, cifar-vgg5\) nor a .json file/,
    ],
    [['--dataset', 'iris', '--arch', 'mnist-conv', '--layers', '8', '--out', 'x'], /--arch and --layers both describe the network; give one/],
    [
      ['--dataset', 'iris', '--arch', 'mnist-conv', '--from-ann', '--zeros', 'silent', '--out', 'x'],
      /--from-ann maps onto a network whose dark pixels spike.*drop --zeros/,
    ],
    [['--dataset', 'iris', '--zeros', 'silent', '--out', 'x'], /--zeros chooses how an --arch network codes dark pixels.*drop --zeros or add --arch/],
    [['--dataset', 'iris', '--arch', 'mnist-conv', '--zeros', 'dark', '--out', 'x'], /invalid --zeros 'dark': must be spike or silent/],
    [
      ['--dataset', 'iris', '--cv', '3', '--cv-part', 'train', '--limit-test', '5', '--out', 'x'],
      /--cv pools the whole training part into 3 folds; drop --limit-train/,
    ],
  ];
  for (const [args, message] of cases) {
    it(`rejects ${args.join(' ')} with exit code 2 and a message naming flag, value and fix`, async () => {
      const r = await cli([...args, '--json']);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(message);
      expect(lastJson(r.out)).toMatchObject({ ok: false, kind: 'usage' });
    });
  }

  it('refuses a non-empty run folder without touching it (exit 1)', async () => {
    const dir = join(root, 'busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    const r = await cli(['--dataset', 'iris', '--epochs', '1', '--out', dir]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/folder is not empty \(notes.txt\); choose a new folder/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});

describe('spikeloop train: runs', () => {
  const args = (out: string) => [...'--dataset iris --layers 6 --epochs 4 --batch-size 35 --bins 8 --seed 3 --out'.split(' '), out, '--json'];
  const strip = (records: Record<string, unknown>[]) => records.map(({ time: _t, seconds: _s, samples_per_s: _r, ...rest }) => rest);

  it('writes metrics, record, plots and a reloadable network; same seed, identical metrics', async () => {
    const [a, b] = [join(root, 'a'), join(root, 'b')];
    const ra = await cli(args(a));
    const rb = await cli(args(b));
    expect(ra.code, ra.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    const sa = lastJson(ra.out);
    expect(Object.keys(sa).slice(0, 7)).toEqual(['ok', 'command', 'test_acc', 'train_acc', 'epochs', 'samples_per_s', 'backend']);
    expect(sa.epochs).toBe(4);
    const ma = readMetrics(join(a, 'metrics.jsonl'));
    const mb = readMetrics(join(b, 'metrics.jsonl'));
    expect(ma.records).toHaveLength(4);
    expect(ma.records[0]).toHaveProperty('test_acc');
    expect(strip(ma.records)).toEqual(strip(mb.records));
    const record = JSON.parse(readFileSync(join(a, 'record.json'), 'utf8'));
    expect(record).toMatchObject({ command: 'train', status: 'finished', summary: { test_acc: sa.test_acc } });
    expect(readFileSync(join(a, 'learning-curve.svg'), 'utf8')).toMatch(/^<svg/);
    // The saved network predicts exactly as the trained one did: its test accuracy is the run's.
    const data = await loadDataset('iris', { seed: 3 });
    const { net, info } = await loadNetwork(join(a, 'network.bin'));
    expect(info).toMatchObject({ dataset: data.name, seed: 3, bins: 8 });
    expect(evaluateNetwork(net, data.test, createSolver('dstd', { bins: 8 })).acc).toBe(sa.test_acc);
    // The exact solver's accuracy is reported beside the training solver's.
    expect(evaluateNetwork(net, data.test, createSolver('exact')).acc).toBe(sa.test_acc_exact);
    // The confusion matrix counts the exact solver's predictions on the test part.
    const cm = JSON.parse(readFileSync(join(a, 'confusion.json'), 'utf8')) as { classes: string[]; columns: string[]; rows: number[][]; n: number };
    expect(sa.confusion).toBe(join(a, 'confusion.json'));
    expect(cm.classes).toEqual([...data.classNames]);
    expect(cm.columns).toEqual([...data.classNames, 'no spike']);
    const pred = evaluateNetwork(net, data.test, createSolver('exact')).predictions;
    const expected = data.classNames.map(() => [0, 0, 0, 0]);
    for (let i = 0; i < data.test.n; i++) expected[data.test.y[i]!]![pred[i]! < 0 ? 3 : pred[i]!]!++;
    expect(cm.rows).toEqual(expected);
    expect(cm.rows.reduce((t, r, c) => t + r[c]!, 0) / cm.n).toBe(sa.test_acc_exact);
    expect(ra.err).toMatch(/per class \(test part, exact solver\)[\s\S]*versicolor\s+15/);
    expect(readFileSync(join(a, 'report.html'), 'utf8')).toContain('<table class="confusion">');
    // Iris preset: a reference input spiking at t = 0 beside the 4 features.
    expect(net.config.biasSpike).toBe(0);
    expect([net.inputs, net.features]).toEqual([5, 4]);
    net.dispose();
  });

  it("--profile trains the twin with the chip's measured firing levels and delays, saved with the network", async () => {
    // A 16-8-4 chip whose neurons fire above the nominal level, each its own, with delays.
    const layers = [
      { inputs: 16, outputs: 8, rows: 32, horizonTicks: 2000 },
      { inputs: 8, outputs: 4, rows: 16, horizonTicks: 4000 },
    ];
    const p = nominalChipProfile({ chipId: 'levels-chip', secondsPerTick: 1e-9, layers });
    p.layers.forEach((l, k) => {
      l.thresholdScale = Float64Array.from({ length: l.outputs }, (_, i) => 1.02 + 0.01 * i + 0.05 * k);
      l.delay = Float64Array.from({ length: l.outputs }, (_, i) => 0.002 * i);
    });
    const file = join(root, 'levels.slp');
    await saveChipProfile(file, p);
    const out = join(root, 'for-chip');
    const r = await cli([...'--dataset iris --epochs 2 --bins 8 --seed 3 --profile'.split(' '), file, '--out', out]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/for levels-chip: .*its calibrated ePlus and eMinus, its neurons' firing levels and delays/);
    // For a chip, through the Iris preset's conductance noise.
    expect(r.out).toMatch(/conductance noise 0\.1/);
    expect(recordedSettings(out).weightNoise).toBe(0.1);
    const { net } = await loadNetwork(join(out, 'network.bin'));
    // Iris with its reference input: 5-8-3 on the 16-8-4 chip; the twin's unit is half the first window.
    expect(net.config.sizes).toEqual([5, 8, 3]);
    net.states().forEach((s, l) => {
      expect(Array.from(s.thresholdScale!)).toEqual(Array.from(Float32Array.from(p.layers[l]!.thresholdScale.subarray(0, s.nOut))));
      s.delay!.forEach((d, i) => expect(d).toBeCloseTo(2 * p.layers[l]!.delay[i]!, 7));
    });
    net.dispose();
  });

  it('--reference-spike moves the reference input or removes it', async () => {
    const [none, half] = [join(root, 'ref-none'), join(root, 'ref-half')];
    const rn = await cli([...shortIris(none), '--reference-spike', 'none']);
    const rh = await cli([...shortIris(half), '--reference-spike', '0.5']);
    expect(rn.code, rn.err).toBe(0);
    expect(rh.code, rh.err).toBe(0);
    const a = await loadNetwork(join(none, 'network.bin'));
    const b = await loadNetwork(join(half, 'network.bin'));
    expect([a.net.inputs, a.net.config.biasSpike]).toEqual([4, undefined]);
    expect([b.net.inputs, b.net.config.biasSpike]).toEqual([5, 0.5]);
    a.net.dispose();
    b.net.dispose();
  });

  it('--dead-mean batch is recorded and makes the dead term a mean over the batch', async () => {
    const [sel, bat] = [join(root, 'dead-selected'), join(root, 'dead-batch')];
    const rs = await cli(shortIris(sel));
    const rb = await cli([...shortIris(bat), '--dead-mean', 'batch']);
    expect(rs.code, rs.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    const settings = recordedLoss;
    expect(settings(sel).deadMean).toBeUndefined();
    expect(settings(bat).deadMean).toBe(1);
    const firstEpoch = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n')[0]!) as { train_terms: { dead: number } };
    // The same first batch's selections, divided by every candidate pair instead of by the selected ones.
    expect(firstEpoch(sel).train_terms.dead).toBeGreaterThan(0);
    expect(firstEpoch(bat).train_terms.dead).toBeLessThan(firstEpoch(sel).train_terms.dead);
  });

  it('image data sets take the batch mean by default; --dead-mean selected restores the selected mean', async () => {
    const data = join(root, 'idx-dead-mean');
    writeIdxSet(data, [0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 2]);
    const [dflt, sel] = [join(root, 'img-dead-default'), join(root, 'img-dead-selected')];
    const short = (out: string) => ['--dataset', `idx:${data}`, '--layers', '3', '--epochs', '1', '--bins', '4', '--out', out, '--json'];
    const rd = await cli(short(dflt));
    const rs = await cli([...short(sel), '--dead-mean', 'selected']);
    expect(rd.code, rd.err).toBe(0);
    expect(rs.code, rs.err).toBe(0);
    const loss = recordedLoss;
    expect(loss(dflt).deadMean).toBe(1);
    expect(loss(sel).deadMean).toBe(0);
    // Input noise is an Iris setting; images train on their pixels as they are.
    expect(recordedSettings(dflt).inputNoise).toBe(0);
  });

  it('conductance noise: none off a chip by default, --weight-noise sets it, values outside [0, 0.5) are refused', async () => {
    const [plain, noisy] = [join(root, 'wn-plain'), join(root, 'wn-noisy')];
    const rp = await cli(shortIris(plain));
    const rn = await cli([...shortIris(noisy), '--weight-noise', '0.1']);
    expect(rp.code, rp.err).toBe(0);
    expect(rn.code, rn.err).toBe(0);
    expect(recordedSettings(plain).weightNoise).toBe(0);
    expect(recordedSettings(noisy).weightNoise).toBe(0.1);
    expect(rn.out + rn.err).toMatch(/conductance noise 0\.1/);
    const bad = await cli([...shortIris(join(root, 'wn-bad')), '--weight-noise', '0.5']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--weight-noise.*must be below 0\.5/);
  });

  it('--arch trains a conv net described in a file, saves the description and reloads it; an architecture the data do not fit is refused', async () => {
    const data = join(root, 'idx-arch');
    writeIdxSet(data, [0, 0, 0, 1, 1, 1, 2, 2, 2], [0, 1, 2]);
    const archFile = join(root, 'tiny-arch.json');
    const arch = {
      input: { height: 2, width: 2, channels: 1 },
      layers: [
        { type: 'conv', channels: 3, kernel: 2 },
        { type: 'pool', size: 2 },
        { type: 'dense', units: 3 },
      ],
    };
    writeFileSync(archFile, JSON.stringify(arch));
    const out = join(root, 'img-arch');
    const r = await cli(['--dataset', `idx:${data}`, '--arch', archFile, '--zeros', 'silent', '--epochs', '1', '--bins', '4', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const summary = lastJson(r.out);
    expect(summary.sizes).toEqual([4, 3, 3]);
    const net = await loadNetwork(join(out, 'network.bin'));
    expect(net.net.config.arch).toMatchObject({
      input: arch.input,
      layers: [
        { type: 'conv', channels: 3, kernel: 2, stride: 1, padding: 'same' },
        { type: 'pool', size: 2 },
        { type: 'dense', units: 3 },
      ],
    });
    expect(net.net.layers.map((l) => l.kind)).toEqual(['conv', 'dense']);
    // --zeros silent is saved with the network (archConfig's default is zeros spiking at tIn).
    expect(net.net.config.silentZeros).toBe(true);
    net.net.dispose();
    const misfit = await cli(['--dataset', `idx:${data}`, '--arch', 'mnist-conv', '--epochs', '1', '--out', join(root, 'img-arch-misfit'), '--json']);
    expect(misfit.code).not.toBe(0);
    expect(misfit.err).toMatch(/--arch takes 28x28x1 = 784 input values, but the data have 4 features/);
    expect(existsSync(join(root, 'img-arch-misfit'))).toBe(false);
    // For a chip: pooling has no crossbar form, and the unrolled layers (4-12-3 here) must fit its arrays.
    const pooledForChip = await cli([
      '--dataset',
      `idx:${data}`,
      '--arch',
      archFile,
      '--device',
      'mock:ideal?seed=1&geometry=4-12-3',
      '--out',
      join(root, 'a1'),
      '--json',
    ]);
    expect(pooledForChip.code).toBe(2);
    expect(pooledForChip.err).toMatch(/pools, and earliest-spike pooling has no crossbar form: for a chip use strided conv entries/);
    const strided = join(root, 'strided-arch.json');
    writeFileSync(
      strided,
      JSON.stringify({
        input: arch.input,
        layers: [
          { type: 'conv', channels: 3, kernel: 2 },
          { type: 'dense', units: 3 },
        ],
      }),
    );
    const tooSmall = await cli([
      '--dataset',
      `idx:${data}`,
      '--arch',
      strided,
      '--device',
      'mock:ideal?seed=1&geometry=4-8-3',
      '--out',
      join(root, 'a2'),
      '--json',
    ]);
    expect(tooSmall.code).toBe(2);
    expect(tooSmall.err).toMatch(/unrolls to layers 4-12-3, which the chip of device .* does not hold: train for a chip of geometry 4-12-3 or larger/);
    const fits = await cli([
      '--dataset',
      `idx:${data}`,
      '--arch',
      strided,
      '--device',
      'mock:ideal?seed=1&geometry=4-12-3',
      '--epochs',
      '1',
      '--bins',
      '4',
      '--out',
      join(root, 'a3'),
      '--json',
    ]);
    expect(fits.code, fits.err).toBe(0);
    expect(lastJson(fits.out).sizes).toEqual([4, 12, 3]);
    // Without --zeros, --batch-size and --lr a conv net takes the conv preset: silent zeros, batches of 32, lr 0.05.
    const fitted = await loadNetwork(join(root, 'a3', 'network.bin'));
    expect(fitted.net.config.silentZeros).toBe(true);
    fitted.net.dispose();
    expect(JSON.parse(readFileSync(join(root, 'a3', 'record.json'), 'utf8')).summary.settings).toMatchObject({
      batchSize: 32,
      lr: 0.05,
      schedule: 'cosine-steps',
    });
  });

  it('--reference-replaces puts the reference in place of a feature; an index the data lack is refused', async () => {
    const out = join(root, 'ref-replaces');
    const r = await cli([...shortIris(out), '--reference-replaces', '3']);
    expect(r.code, r.err).toBe(0);
    const { net } = await loadNetwork(join(out, 'network.bin'));
    expect([net.inputs, net.features, net.config.biasSpike, net.config.biasReplaces]).toEqual([4, 4, 0, 3]);
    net.dispose();
    const bad = await cli([...shortIris(join(root, 'ref-bad')), '--reference-replaces', '4']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--reference-replaces 4: the data have features 0\.\.3/);
    const word = await cli([...shortIris(join(root, 'ref-word')), '--reference-replaces', 'first']);
    expect(word.code).toBe(2);
    expect(word.err).toMatch(/reference-replaces.*feature index/);
  });

  it("--ema reports and saves the averaged weights, with the optimiser's own beside them", async () => {
    const [plain, avg] = [join(root, 'ema-off'), join(root, 'ema-on')];
    const rp = await cli(args(plain));
    const ra = await cli([...args(avg), '--ema', '0.9']);
    expect(rp.code, rp.err).toBe(0);
    expect(ra.code, ra.err).toBe(0);
    const [sp, sa] = [lastJson(rp.out), lastJson(ra.out)];
    const [mp, ma] = [readMetrics(join(plain, 'metrics.jsonl')).records, readMetrics(join(avg, 'metrics.jsonl')).records];
    // Averaging does not change the optimiser's path: its weights test as the plain run's did.
    expect(ma.map((m) => m.test_acc_raw)).toEqual(mp.map((m) => m.test_acc));
    expect(sa.test_acc_raw).toBe(sp.test_acc);
    expect(sp).not.toHaveProperty('test_acc_raw');
    const record = JSON.parse(readFileSync(join(avg, 'record.json'), 'utf8'));
    expect(record.summary.settings.averageDecay).toBe(0.9);
    // The saved network is the averaged one: it reproduces the reported (averaged) accuracy.
    const data = await loadDataset('iris', { seed: 3 });
    const a = await loadNetwork(join(avg, 'network.bin'));
    const p = await loadNetwork(join(plain, 'network.bin'));
    expect(evaluateNetwork(a.net, data.test, createSolver('dstd', { bins: 8 })).acc).toBe(sa.test_acc);
    expect(a.net.states()).not.toEqual(p.net.states());
    a.net.dispose();
    p.net.dispose();
  });

  it('--input-noise trains on noisy inputs, records the setting and repeats for a seed; iris defaults to 0.05', async () => {
    const [plain, preset, noisy, again] = [join(root, 'noise-off'), join(root, 'noise-preset'), join(root, 'noise-on'), join(root, 'noise-again')];
    const rp = await cli([...args(plain), '--input-noise', '0']);
    const rd = await cli(args(preset));
    const rn = await cli([...args(noisy), '--input-noise', '0.1']);
    const ra = await cli([...args(again), '--input-noise', '0.1']);
    for (const r of [rp, rd, rn, ra]) expect(r.code, r.err).toBe(0);
    expect(rn.err).toMatch(/input noise 0.1/);
    expect(rp.err).not.toMatch(/input noise/);
    const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8'));
    expect(record(noisy).summary.settings.inputNoise).toBe(0.1);
    expect(record(preset).summary.settings.inputNoise).toBe(0.05);
    expect(record(plain).summary.settings.inputNoise).toBe(0);
    const losses = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).records.map((m) => m.train_loss);
    expect(losses(noisy)).toEqual(losses(again));
    expect(losses(noisy)).not.toEqual(losses(plain));
    expect(losses(preset)).not.toEqual(losses(plain));
  });

  it('--weight-decay shrinks the trained weights, records the setting and refuses a decay the rate turns negative', async () => {
    const [plain, decayed, tooMuch] = [join(root, 'wd-off'), join(root, 'wd-on'), join(root, 'wd-too-much')];
    const rp = await cli(args(plain));
    const rw = await cli([...args(decayed), '--weight-decay', '20']);
    for (const r of [rp, rw]) expect(r.code, r.err).toBe(0);
    expect(rw.err).toMatch(/weight decay 20/);
    expect(rp.err).not.toMatch(/weight decay/);
    const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8'));
    expect(record(decayed).summary.settings.weightDecay).toBe(20);
    expect(record(plain).summary.settings.weightDecay).toBe(0);
    const total = async (dir: string) => {
      const { net } = await loadNetwork(join(dir, 'network.bin'));
      const sum = net.states().reduce((s, l) => s + l.pE.reduce((a, v) => a + v, 0) + l.pI.reduce((a, v) => a + v, 0), 0);
      net.dispose();
      return sum;
    };
    expect(await total(decayed)).toBeLessThan(0.9 * (await total(plain)));
    const rt = await cli([...args(tooMuch), '--lr', '0.05', '--weight-decay', '20']);
    expect(rt.code).not.toBe(0);
    expect(rt.err).toMatch(/--weight-decay 20 with --lr 0.05: .*use a weight decay below 20/);
  });

  it('--from-ann trains a ReLU network, maps it and reports both accuracies', async () => {
    const out = join(root, 'ann');
    const r = await cli(['--dataset', 'iris', '--from-ann', '--layers', '5', '--epochs', '5', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const s = lastJson(r.out);
    for (const k of ['ann_test_acc', 'mapped_ideal_test_acc', 'mapped_pnn_nominal_test_acc', 'mapped_pnn_best_test_acc', 'test_acc']) {
      expect(s[k], k).toBeGreaterThanOrEqual(0);
      expect(s[k], k).toBeLessThanOrEqual(1);
    }
    expect([s.mapped_pnn_scaled_test_acc, s.mapped_pnn_best_test_acc]).toContain(s.test_acc);
    // The saved network is the chosen PNN network: its exact-solver test accuracy is the reported one.
    const { net } = await loadNetwork(join(out, 'network.bin'));
    expect(net.config.model).toBe('pnn');
    const data = await loadDataset('iris', { seed: 1 });
    expect(evaluateNetwork(net, data.test, createSolver('exact')).acc).toBe(s.test_acc);
    net.dispose();
  });

  it('--from-ann --arch maps a ReLU conv net onto a conv PNN, saved with its architecture', async () => {
    const data = join(root, 'idx-ann-arch');
    writeIdxSet(data, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], [0, 1, 2, 2, 1, 0]);
    const archFile = join(root, 'ann-arch.json');
    const arch = {
      input: { height: 2, width: 2, channels: 1 },
      layers: [
        { type: 'conv', channels: 3, kernel: 2, padding: 'valid' },
        { type: 'dense', units: 3 },
      ],
    };
    writeFileSync(archFile, JSON.stringify(arch));
    const out = join(root, 'ann-arch');
    const r = await cli(['--dataset', `idx:${data}`, '--from-ann', '--arch', archFile, '--epochs', '3', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const s = lastJson(r.out);
    expect(s.sizes).toEqual([4, 3, 3]);
    expect([s.mapped_pnn_scaled_test_acc, s.mapped_pnn_best_test_acc]).toContain(s.test_acc);
    const { net } = await loadNetwork(join(out, 'network.bin'));
    expect(net.config.arch).toMatchObject({
      input: arch.input,
      layers: [
        { type: 'conv', channels: 3, kernel: 2, stride: 1, padding: 'valid' },
        { type: 'dense', units: 3 },
      ],
    });
    expect(net.layers.map((l) => l.kind)).toEqual(['conv', 'dense']);
    expect(net.config.model).toBe('pnn');
    // Scored as the flow scores conv nets: DSTD at IMC_CONV_BINS.
    const test = await loadDataset(`idx:${data}`, {});
    expect(evaluateNetwork(net, test.test, imcSolver(true).solver).acc).toBe(s.test_acc);
    net.dispose();
  });
});

describe('spikeloop train --cv', () => {
  const args = (out: string, seed: number) => [
    ...'--dataset iris --cv 3 --layers 6 --epochs 2 --bins 8 --seed'.split(' '),
    String(seed),
    '--out',
    out,
    '--json',
  ];
  type FoldLine = {
    fold: number;
    n: number;
    correct: number;
    correct_exact: number;
    test_acc: number;
    test_acc_exact: number;
    train_acc: number;
    class_counts: number[];
    test_indices: number[];
    normalization: { min: number[]; max: number[] };
  };
  const folds = (dir: string) => readMetrics(join(dir, 'cv.jsonl')).records as unknown as FoldLine[];
  const runs = new Map<string, { code: number; out: string; err: string }>();
  const runOnce = async (tag: string, seed: number) => {
    if (!runs.has(tag)) runs.set(tag, await cli(args(join(root, tag), seed)));
    const r = runs.get(tag)!;
    expect(r.code, r.err).toBe(0);
    return { summary: lastJson(r.out), folds: folds(join(root, tag)), dir: join(root, tag), err: r.err };
  };

  it('tests every sample exactly once, in stratified folds, and pools the accuracy from the per-fold counts', async () => {
    const { summary, folds: lines, dir, err } = await runOnce('cv-a', 3);
    const iris = readIrisSamples();
    expect(lines.map((l) => l.fold)).toEqual([1, 2, 3]);
    // Every pooled sample held out exactly once.
    const all = lines.flatMap((l) => l.test_indices).sort((p, q) => p - q);
    expect(all).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(lines.reduce((t, l) => t + l.n, 0)).toBe(150);
    for (const l of lines) expect(l.test_indices).toHaveLength(l.n);
    // Stratified: the labels of each fold's held-out samples, counted from the data set itself.
    const perFold = lines.map((l) => [0, 1, 2].map((c) => l.test_indices.filter((i) => iris.y[i] === c).length));
    expect(perFold).toEqual(lines.map((l) => l.class_counts));
    for (let c = 0; c < 3; c++) {
      const counts = perFold.map((p) => p[c]!);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
    // Pooled accuracy = correct held-out samples over all folds / 150, for both solvers.
    const cv = summary.cv as { k: number; n: number; folds: FoldLine[]; mean: number; std: number; test_acc_exact: number };
    expect(cv.k).toBe(3);
    expect(cv.folds.map((f) => [f.fold, f.n, f.correct, f.test_acc, f.test_acc_exact])).toEqual(
      lines.map((l) => [l.fold, l.n, l.correct, l.test_acc, l.test_acc_exact]),
    );
    for (const l of lines) {
      expect(l.correct).toBe(Math.round(l.test_acc * l.n));
      expect(l.correct / l.n).toBe(l.test_acc);
    }
    expect(summary.test_acc).toBe(lines.reduce((t, l) => t + l.correct, 0) / 150);
    expect(cv.test_acc_exact).toBe(lines.reduce((t, l) => t + l.correct_exact, 0) / 150);
    expect(summary.test_acc_exact).toBe(cv.test_acc_exact);
    expect(cv.mean).toBeCloseTo(lines.reduce((t, l) => t + l.test_acc, 0) / 3, 12);
    // A per-fold line on the console and the summary table.
    for (const f of [1, 2, 3]) expect(err).toMatch(new RegExp(`fold ${f}/3: 50 held out, test`));
    expect(err).toMatch(/fold\s+n test\s+test acc\s+exact test acc/);
    expect(err).toMatch(/pooled\s+150/);
    const record = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'finished', summary: { test_acc: summary.test_acc, cv: { k: 3 } } });
    // The pooled confusion matrix holds every sample once: rows are the class sizes, the diagonal the exact solver's right answers.
    const cm = JSON.parse(readFileSync(join(dir, 'confusion.json'), 'utf8')) as { rows: number[][]; n: number; what: string };
    expect(cm.n).toBe(150);
    expect(cm.rows.map((r) => r.reduce((t, c) => t + c, 0))).toEqual([50, 50, 50]);
    expect(cm.rows.reduce((t, r, c) => t + r[c]!, 0)).toBe(lines.reduce((t, l) => t + l.correct_exact, 0));
    expect(cm.what).toMatch(/held out once, 3 folds/);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('all 150 samples (train and test parts)');
  });

  it('scales each fold with its training folds only; the saved fold networks reproduce the fold accuracies', async () => {
    const { folds: lines, dir } = await runOnce('cv-a', 3);
    const iris = readIrisSamples();
    const F = iris.features;
    for (const l of lines) {
      // Min/max of the raw features over the samples NOT held out, computed here from the raw data.
      const held = new Set(l.test_indices);
      const train = Array.from({ length: 150 }, (_, i) => i).filter((i) => !held.has(i));
      const min = Array.from({ length: F }, (_, f) => Math.min(...train.map((i) => iris.x[i * F + f]!)));
      const max = Array.from({ length: F }, (_, f) => Math.max(...train.map((i) => iris.x[i * F + f]!)));
      expect(l.normalization).toEqual({ min, max });
      const x = new Float32Array(l.n * F);
      l.test_indices.forEach((i, r) => {
        for (let f = 0; f < F; f++) x[r * F + f] = Math.min(1, Math.max(0, (iris.x[i * F + f]! - min[f]!) / (max[f]! - min[f]!)));
      });
      const part = { x, y: Uint8Array.from(l.test_indices, (i) => iris.y[i]!), n: l.n, features: F };
      const { net, info } = await loadNetwork(join(dir, `fold-${l.fold}`, 'network.bin'));
      expect(info).toMatchObject({ cv_k: 3, cv_fold: l.fold, seed: 3 });
      expect(evaluateNetwork(net, part, createSolver('dstd', { bins: 8 })).acc).toBe(l.test_acc);
      expect(evaluateNetwork(net, part, createSolver('exact')).acc).toBe(l.test_acc_exact);
      net.dispose();
    }
  });

  it('same seed, same folds and accuracies; another seed, other folds', async () => {
    const a = await runOnce('cv-a', 3);
    const b = await runOnce('cv-b', 3);
    const c = await runOnce('cv-c', 4);
    const key = (ls: FoldLine[]) =>
      ls.map(({ fold, test_indices, test_acc, test_acc_exact, train_acc, correct }) => ({ fold, test_indices, test_acc, test_acc_exact, train_acc, correct }));
    expect(key(b.folds)).toEqual(key(a.folds));
    expect(b.summary.cv).toEqual(a.summary.cv);
    expect(b.summary.test_acc).toBe(a.summary.test_acc);
    expect(c.folds.map((l) => l.test_indices)).not.toEqual(a.folds.map((l) => l.test_indices));
  });

  it("with --cv-part train holds out only the fixed split's training samples, each once, and scales each fold from its own training folds", async () => {
    const out = join(root, 'cv-train-part');
    const r = await cli([...'--dataset iris --cv 3 --cv-part train --layers 6 --epochs 2 --bins 8 --seed 3 --out'.split(' '), out, '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/cross-validation over the 105 samples of the training part \(the test part unseen/);
    const summary = lastJson(r.out);
    const lines = folds(out);
    const iris = readIrisSamples();
    const F = iris.features;
    const held = lines.flatMap((l) => l.test_indices).sort((p, q) => p - q);
    expect(new Set(held).size).toBe(105);
    // The held-out samples are the training part the plain loader gives: the same raw rows, scaled with its statistics.
    const fixed = await loadDataset('iris');
    const { min, max } = fixed.normalization!;
    const key = (v: ArrayLike<number>) => Array.from(v).join(',');
    const scaledHeld = held.map((i) => key(Array.from({ length: F }, (_, f) => Math.fround((iris.x[i * F + f]! - min[f]!) / (max[f]! - min[f]!))))).sort();
    const trainRows = Array.from({ length: fixed.train.n }, (_, r) => key(fixed.train.x.subarray(r * F, (r + 1) * F))).sort();
    expect(scaledHeld).toEqual(trainRows);
    // Each fold's scaling comes from the other training-part samples only (never a test-part sample).
    for (const l of lines) {
      const mine = new Set(l.test_indices);
      const others = held.filter((i) => !mine.has(i));
      expect(l.normalization).toEqual({
        min: Array.from({ length: F }, (_, f) => Math.min(...others.map((i) => iris.x[i * F + f]!))),
        max: Array.from({ length: F }, (_, f) => Math.max(...others.map((i) => iris.x[i * F + f]!))),
      });
    }
    expect(summary.cv).toMatchObject({ k: 3, part: 'train', n: 105 });
    expect(summary.test_acc).toBe(lines.reduce((t, l) => t + l.correct, 0) / 105);
    const record = JSON.parse(readFileSync(join(out, 'record.json'), 'utf8'));
    expect(record.summary.settings).toMatchObject({ cv: 3, cv_part: 'train' });
    // The summary table and the report say which samples were pooled.
    expect(r.err).toMatch(/spikeloop train --cv 3 --cv-part train: iris/);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('the 105 samples of the training part (the test part unseen)');
  });

  it('rejects more folds than the smallest class has samples, naming the class and its count, before creating the run folder', async () => {
    // A tiny IDX set: 2x2 images, classes 0 and 1 with 6 samples each, class 2 with 2 train + 1 test.
    const data = join(root, 'idx-small');
    writeIdxSet(data, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2], [0, 1, 2]);
    const out = join(root, 'cv-small');
    const r = await cli(['--dataset', `idx:${data}`, '--cv', '4', '--epochs', '1', '--out', out, '--json']);
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/--cv 4 needs at least 4 samples of every class, but class 2 has 3; use --cv 3 or fewer folds/);
    expect(lastJson(r.out)).toMatchObject({ ok: false, kind: 'usage' });
    expect(existsSync(out)).toBe(false);
    // Three folds fit: every class in every fold.
    const ok = await cli(['--dataset', `idx:${data}`, '--cv', '3', '--layers', '3', '--epochs', '1', '--out', out, '--json']);
    expect(ok.code, ok.err).toBe(0);
    const lines = folds(out);
    for (const l of lines) expect(l.class_counts.every((n) => n >= 1)).toBe(true);
    expect(lines.reduce((t, l) => t + l.n, 0)).toBe(17);
    // The training part alone has 2 samples of class 2: 3 folds no longer fit, 2 do, over training samples 0..13.
    const trainOnly = (k: string, dir: string) =>
      cli(['--dataset', `idx:${data}`, '--cv', k, '--cv-part', 'train', '--layers', '3', '--epochs', '1', '--out', join(root, dir), '--json']);
    const three = await trainOnly('3', 'cv-small-train-3');
    expect(three.code).toBe(2);
    expect(three.err).toMatch(/--cv 3 needs at least 3 samples of every class, but class 2 has 2; use --cv 2/);
    const two = await trainOnly('2', 'cv-small-train-2');
    expect(two.code, two.err).toBe(0);
    expect(
      folds(join(root, 'cv-small-train-2'))
        .flatMap((l) => l.test_indices)
        .sort((p, q) => p - q),
    ).toEqual(Array.from({ length: 14 }, (_, i) => i));
  });
});
