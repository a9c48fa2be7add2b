import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../../host/cli/main.ts';
import { readMetrics } from '../../../host/runs/run-dir.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { loadNetwork } from '../../../models/network/serialize.ts';
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
  const args = (out: string) => ['--dataset', 'iris', '--layers', '6', '--epochs', '4', '--batch-size', '35', '--bins', '8', '--seed', '3', '--out', out, '--json'];
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
    // Iris preset: a reference input spiking at t = 0 beside the 4 features.
    expect(net.config.biasSpike).toBe(0);
    expect([net.inputs, net.features]).toEqual([5, 4]);
    net.dispose();
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
});
