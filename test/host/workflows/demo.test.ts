import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readMetrics } from '../../../host/runs/metrics-log.ts';
import { runDemo } from '../../../host/workflows/demo.ts';
import { defaultCalibrationLayers, defaultFinetune, type DemoOptions, type DemoSummary } from '../../../host/workflows/demo-options.ts';
import { deviceAccuracy } from '../../../host/workflows/demo-report.ts';
import type { DeviceInfo } from '../../../host/device/chip-device.ts';
import { formatPercent } from '../../../host/ui/format.ts';

// A small chip whose first layer still takes 784 inputs, so both data sets fit; every stage runs.
const DEVICE = 'mock:behavioral?seed=5&geometry=784-16-8-10';
// Small sets, one reading per sweep: this test checks the flow, test/calibration the fit's accuracy.
const SMALL_PROBES = { patternConfigs: 2, eiConfigs: 1, patternsPerConfig: 24, heldOutPatterns: 24, sweepRepeats: 1 };

describe('demo defaults', () => {
  const chip = (...inputs: number[]) => ({ layers: inputs.map((n) => ({ inputs: n })) }) as unknown as DeviceInfo;
  it('calibrates every layer of the reference chip, and only the narrow layers of a wider one', () => {
    expect(defaultCalibrationLayers(chip(784, 256, 128))).toEqual([0, 1, 2]);
    expect(defaultCalibrationLayers(chip(4096, 256, 128))).toEqual([1, 2]);
    expect(defaultCalibrationLayers(chip(4096))).toEqual([0]);
  });
  it('fine-tunes Fashion-MNIST when it is trained, else Iris', () => {
    expect(defaultFinetune(true)).toEqual(['fashion-mnist']);
    expect(defaultFinetune(false)).toEqual(['iris']);
  });
  it('words a device accuracy with its silent samples only when there are some', () => {
    expect(deviceAccuracy(0, 45, 45)).toBe('0.00 % (45 of 45 without an output spike)');
    expect(deviceAccuracy(28 / 30, 2, 30)).toBe('93.33 % (2 of 30 without an output spike)');
    expect(deviceAccuracy(42 / 45, 0, 45)).toBe('93.33 %');
  });
});

describe('runDemo on a small chip', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeloop-demo-'));
  const out = path.join(dir, 'run');
  const lines: string[] = [];
  let summary: DemoSummary;
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs bring-up, calibration, training, deployment and fine-tuning end to end', async () => {
    summary = await runDemo({
      device: DEVICE,
      out,
      seed: 3,
      irisEpochs: 4,
      fashion: { train: 64, test: 32, epochs: 1 },
      finetuneEpochs: 1,
      // The wide 784-input layer and Fashion-MNIST fine-tuning are the defaults' slow parts.
      calibrateLayers: [1, 2],
      finetune: ['iris'],
      jitterRepeats: 4,
      calibrationSizes: SMALL_PROBES,
      print: (l) => lines.push(l),
      warn: (l) => lines.push(l),
      progress: { write: () => true, isTTY: false },
    });
    expect(summary.bringup_ok).toBe(true);
    expect(summary.calibrated_layers).toEqual([1, 2]);
    expect(summary.networks.map((n) => n.dataset)).toEqual(['iris', 'fashion-mnist']);
  }, 300_000);

  it("reports the whole run's wall time and peak resident memory", () => {
    expect(summary.demo_s).toBeCloseTo(summary.seconds, 1);
    expect(summary.demo_s).toBeGreaterThanOrEqual(summary.stages.reduce((a, s) => a + s.seconds, 0) - 0.1);
    // maxRSS of this process: a Node process with the twin loaded holds well above 30 MB.
    expect(summary.demo_peak_rss_mb).toBeGreaterThan(30);
    expect(Number.isInteger(summary.demo_peak_rss_mb)).toBe(true);
    expect(summary.workers).toBeGreaterThanOrEqual(1);
  });

  it('reports a calibration whose PNN beats the ideal model', () => {
    const c = summary.calibration;
    expect(Number.isFinite(c.rmse_pnn_ticks)).toBe(true);
    expect(c.rmse_pnn_ticks).toBeGreaterThan(0);
    expect(c.rmse_pnn_ticks).toBeLessThan(c.rmse_ideal_ticks);
    expect(fs.existsSync(summary.profile)).toBe(true);
  });

  it('measures the fine-tuned accuracy on the device, in the fine-tuning run', () => {
    const iris = summary.networks[0]!;
    expect(iris.finetuned_acc).not.toBeNull();
    expect(summary.finetuned_acc).toBe(iris.finetuned_acc);
    // The fine-tuning run's own metrics: epoch 0 is the deployment; the figure is the kept epoch's (best on validation).
    const { records } = readMetrics(path.join(out, 'finetune-iris', 'metrics.jsonl'));
    const epochs = records.filter((r) => typeof r.device_acc === 'number');
    expect(epochs.length).toBe(2);
    const kept = JSON.parse(fs.readFileSync(path.join(out, 'finetune-iris', 'record.json'), 'utf8')).summary.kept_epoch as number;
    expect(epochs[kept]!.device_acc).toBe(iris.finetuned_acc);
    // Fine-tuning starts from the calibrated deployment: its epoch 0 is the demo's deployed figure, the deploy
    // stage's own read (the same codes), so a kept deployment scores exactly what was deployed.
    expect(epochs[0]!.device_acc).toBe(iris.deployed_acc);
    const ft = JSON.parse(fs.readFileSync(path.join(out, 'finetune-iris', 'record.json'), 'utf8')).summary;
    expect(ft.deployed_read).toBe('reused');
    expect(epochs[0]!.test_read).toBe('deployment read reused');
    // A measured accuracy is a count over the test set.
    const n = iris.test_samples;
    expect(Math.abs(iris.finetuned_acc! * n - Math.round(iris.finetuned_acc! * n))).toBeLessThan(1e-6);
    // Fashion-MNIST was not fine-tuned (default: Iris only).
    expect(summary.networks[1]!.finetuned_acc).toBeNull();
  });

  it('measures deployed accuracies over the test sets', () => {
    for (const n of summary.networks) {
      for (const a of [n.twin_acc, n.deployed_acc, n.deployed_nominal_acc]) {
        expect(a).toBeGreaterThanOrEqual(0);
        expect(a).toBeLessThanOrEqual(1);
        expect(Math.abs(a * n.test_samples - Math.round(a * n.test_samples))).toBeLessThan(1e-6);
      }
    }
    const text = lines.join('\n');
    for (const n of summary.networks) {
      for (const [acc, silent] of [
        [n.deployed_nominal_acc, n.deployed_nominal_no_spike],
        [n.deployed_acc, n.deployed_no_spike],
      ] as const) {
        expect(Number.isInteger(silent)).toBe(true);
        expect(silent).toBeGreaterThanOrEqual(0);
        // A sample without an output spike is never right.
        expect(Math.round(acc * n.test_samples) + silent).toBeLessThanOrEqual(n.test_samples);
        // The printed table names the silent samples exactly when there are some.
        expect(text.includes(`${formatPercent(acc)} (${silent} of ${n.test_samples} without an output spike)`)).toBe(silent > 0);
      }
    }
    expect(summary.networks[1]!.test_samples).toBe(32);
    expect(summary.networks[1]!.train_samples).toBe(64);
  });

  it('leaves one run folder with the record, metrics, networks, stage reports and a report holding the table', () => {
    for (const f of [
      'record.json',
      'metrics.jsonl',
      'profile.slp',
      'iris-network.bin',
      'fashion-mnist-network.bin',
      'bringup/report.html',
      'calibration/report.html',
      'finetune-iris/report.html',
    ]) {
      expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
    const record = JSON.parse(fs.readFileSync(path.join(out, 'record.json'), 'utf8')) as { status: string };
    expect(record.status).toBe('finished');
    const html = fs.readFileSync(summary.report, 'utf8');
    expect(summary.report).toBe(path.join(out, 'report.html'));
    expect(html).toContain('deployed, calibrated curves');
    expect(html).toContain('after in-situ fine-tuning');
    expect(html).toContain('held-out RMSE PNN / ideal');
    expect(html).toContain('href="bringup/report.html"');
    expect(html).toContain('<svg');
    const stages = readMetrics(path.join(out, 'metrics.jsonl')).records.map((r) => r.stage);
    for (const s of ['bringup', 'train', 'deploy', 'finetune']) expect(stages).toContain(s);
    // The printed table names every stage's time and the total.
    const text = lines.join('\n');
    expect(text).toContain('time taken');
    expect(summary.stages.map((s) => s.stage.split(' (')[0])).toEqual([
      'bring-up',
      'calibration',
      'twin training',
      'deploy',
      'twin training',
      'deploy',
      'in-situ fine-tuning',
    ]);
  });
});

/** A demo that should stop early, in a fresh temporary folder: its run folder and the promise. */
function quickDemo(tag: string, over: Partial<DemoOptions>): { dir: string; out: string; run: Promise<DemoSummary> } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `spikeloop-demo-${tag}-`));
  const out = path.join(dir, 'run');
  const run = runDemo({
    device: DEVICE,
    out,
    seed: 3,
    irisEpochs: 0,
    fashion: null,
    finetuneEpochs: 0,
    print: () => {},
    progress: { write: () => true, isTTY: false },
    ...over,
  });
  return { dir, out, run };
}

describe('runDemo with nothing to train', () => {
  it('refuses before it opens a run folder or the device', async () => {
    const { dir, out, run } = quickDemo('none', {});
    try {
      await expect(run).rejects.toThrow(/needs a network to train/);
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runDemo on an unhealthy chip', () => {
  it('stops after bring-up with the failed check named', async () => {
    const { dir, out, run } = quickDemo('bad', {
      device: 'mock:behavioral?seed=5&geometry=784-16-8-10&faults=dead-neuron:1.3',
      irisEpochs: 1,
      jitterRepeats: 4,
    });
    try {
      await expect(run).rejects.toThrow(/failed bring-up.*neuron/s);
      expect(fs.existsSync(path.join(out, 'bringup', 'report.html'))).toBe(true);
      expect(fs.existsSync(path.join(out, 'calibration'))).toBe(false);
      const record = JSON.parse(fs.readFileSync(path.join(out, 'record.json'), 'utf8')) as { status: string };
      expect(record.status).toBe('failed');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
