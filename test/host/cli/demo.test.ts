import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './run-cli.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-demo-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('spikeloop demo', () => {
  it('rejects an unknown network to fine-tune, naming the value and the choices', async () => {
    const r = await cli('demo', '--finetune', 'cifar', '--out', path.join(dir, 'bad1'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cifar.*iris, fashion-mnist/);
    expect(fs.existsSync(path.join(dir, 'bad1'))).toBe(false);
  });

  it('rejects fine-tuning Fashion-MNIST when it is not trained', async () => {
    const r = await cli('demo', '--fashion-train', '0', '--finetune', 'fashion-mnist', '--out', path.join(dir, 'bad2'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--fashion-train/);
  });

  it('rejects a malformed layer list', async () => {
    const r = await cli('demo', '--calibrate-layers', '1;2', '--out', path.join(dir, 'bad3'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/calibrate-layers/);
  });

  it('refuses --geometry beside --device, which brings its own geometry', async () => {
    const r = await cli('demo', '--device', 'mock:behavioral?seed=5&geometry=784-16-8-10', '--geometry', '784-32-10', '--out', path.join(dir, 'bad4'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--geometry.*--device/);
    expect(fs.existsSync(path.join(dir, 'bad4'))).toBe(false);
  });

  it('refuses a run with nothing to train', async () => {
    const r = await cli('demo', '--iris-epochs', '0', '--fashion-train', '0', '--out', path.join(dir, 'bad5'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--iris-epochs 0.*--fashion-train 0/);
  });

  it('runs on a small chip and ends --json with the summary; the seed is printed and used', async () => {
    const out = path.join(dir, 'run');
    const r = await cli(
      'demo',
      '--device',
      'mock:behavioral?seed=5&geometry=784-16-8-10',
      '--seed',
      '9',
      '--iris-epochs',
      '2',
      '--fashion-train',
      '0',
      '--finetune-epochs',
      '1',
      '--calibrate-layers',
      '1,2',
      '--workers',
      '2',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.err + r.out.slice(-2000)).toBe(0);
    const s = JSON.parse(r.last) as Record<string, unknown>;
    expect(s.ok).toBe(true);
    expect(s.seed).toBe(9);
    expect(r.err).toContain('--seed 9');
    for (const k of ['twin_acc', 'deployed_acc', 'deployed_nominal_acc', 'finetuned_acc', 'rmse_pnn', 'rmse_ideal', 'seconds', 'demo_s', 'demo_peak_rss_mb']) {
      expect(typeof s[k], k).toBe('number');
    }
    // The whole run's wall time and the process's peak memory (a Node process holds tens of MB at least).
    expect(s.demo_s).toBeCloseTo(s.seconds as number, 1);
    expect(s.demo_peak_rss_mb as number).toBeGreaterThan(30);
    expect(s.workers).toBe(2);
    expect(s.rmse_pnn as number).toBeLessThan(s.rmse_ideal as number);
    expect(s.calibrated_layers).toEqual([1, 2]);
    expect(s.report).toBe(path.join(out, 'report.html'));
    expect(fs.readFileSync(s.report as string, 'utf8')).toContain('after in-situ fine-tuning');
  }, 300_000);
});
