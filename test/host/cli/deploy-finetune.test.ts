import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './run-cli.ts';
import { deviceHorizons } from '../../../calibration/chip-mapping.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { cpuTwinDir, helloOf } from './setup.ts';

const DEVICE = 'mock:ideal?seed=5&geometry=4-6-3';
let dir: string;
let model: string;

beforeAll(async () => {
  dir = await cpuTwinDir('cli-deploy-');
  const info = await helloOf(DEVICE);
  const data = await loadDataset('iris', { seed: 1 });
  const config = defaultConfig([4, 6, 3], { inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2), shiftGrids: false });
  const net = initNetwork(config, { x: data.train.x, n: data.train.n }, createSolver('dstd'), { seed: 1 });
  await saveNetwork((model = path.join(dir, 'model.bin')), net, { seed: 1 });
  net.dispose();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('spikeloop deploy', () => {
  it('uploads, verifies and scores on the device; without a profile it warns loudly', async () => {
    const r = await cli('deploy', '--device', DEVICE, '--model', model, '--dataset', 'iris', '--json');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/WARNING: no --profile given: .*NOMINAL/);
    const j = JSON.parse(r.last);
    expect(j).toMatchObject({ ok: true, command: 'deploy', curves: 'nominal', profile: null, weights_verified: true, test_samples: 45 });
    expect(j.deployed_acc).toBeGreaterThanOrEqual(0);
    expect(j.layers).toHaveLength(2);
    // The device's confusion matrix holds every test sample once and agrees with its accuracy.
    const cm = j.device_confusion as { rows: number[][]; n: number; columns: string[] };
    expect(cm.n).toBe(45);
    expect(cm.columns.at(-1)).toBe('no spike');
    expect(cm.rows.map((r) => r.reduce((t, c) => t + c, 0))).toEqual([15, 15, 15]);
    expect(cm.rows.reduce((t, r, c) => t + r[c]!, 0) / 45).toBeCloseTo(j.deployed_acc, 12);
    expect(cm.rows.reduce((t, r) => t + r.at(-1)!, 0)).toBe(j.device_no_spike);
    expect(r.err).toMatch(/per class on the device[\s\S]*setosa\s+15/);
  });

  it('names a missing model file', async () => {
    const r = await cli('deploy', '--device', DEVICE, '--model', path.join(dir, 'nope.bin'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nope\.bin/);
  });
});

describe('spikeloop finetune flags', () => {
  const usage: [string[], RegExp][] = [
    [['finetune', '--model', 'm.bin', '--dataset', 'iris', '--epochs', '2', '--out', 'x'], /needs the chip profile: --profile FILE .* or --uncalibrated/],
    [['finetune', '--dataset', 'iris', '--epochs', '2', '--out', 'x', '--uncalibrated'], /--model FILE is required \(or --resume DIR\)/],
    [['finetune', '--resume', 'runs/a', '--model', 'm.bin'], /--resume takes the run's own settings from its checkpoint; drop --model/],
    [['finetune', '--resume', 'runs/a', '--out', 'runs/b'], /--resume continues the run in its own folder/],
    [['finetune', '--model', 'm.bin', '--dataset', 'iris', '--epochs', '0', '--out', 'x', '--uncalibrated'], /--epochs '0': must be >= 1/],
    [
      ['finetune', '--model', 'm.bin', '--dataset', 'iris', '--epochs', '1', '--out', 'x', '--uncalibrated', '--val', '1.5'],
      /--val '1.5': expected a count like 500, a fraction below 1/,
    ],
    [['finetune', '--resume', 'runs/a', '--val', '50'], /--resume takes the run's own settings from its checkpoint; drop --val/],
    [
      ['finetune', '--model', 'm.bin', '--dataset', 'iris', '--epochs', '1', '--out', 'x', '--uncalibrated', '--keep-alpha', '0.0'],
      /--keep-alpha '0.0': must be above 0/,
    ],
    [
      ['finetune', '--model', 'm.bin', '--dataset', 'iris', '--epochs', '1', '--out', 'x', '--uncalibrated', '--keep-alpha', '5%'],
      /--keep-alpha '5%': expected a level above 0 and at most 1, like 0.05/,
    ],
    [['finetune', '--resume', 'runs/a', '--keep-alpha', '0.01'], /--resume takes the run's own settings from its checkpoint; drop --keep-alpha/],
  ];
  it.each(usage)('exits 2 on %j', async (argv, re) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(re);
  });

  it('runs an uncalibrated fine-tuning end to end with a JSON summary', async () => {
    const out = path.join(dir, 'ft');
    const r = await cli(
      'finetune',
      '--device',
      DEVICE,
      '--model',
      model,
      '--dataset',
      'iris',
      '--epochs',
      '1',
      '--out',
      out,
      '--uncalibrated',
      '--batch-size',
      '16',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.last);
    // 11 of Iris's 105 training samples held out for validation (the default tenth): 94 in batches of 16.
    expect(j).toMatchObject({ ok: true, command: 'finetune', curves: 'nominal', epochs: 1, batches: 6, val_samples: 11, interrupted: false });
    expect([0, 1]).toContain(j.kept_epoch);
    expect(j.finetuned_acc).toBe(j.kept_epoch === 0 ? j.deployed_acc : j.last_epoch_acc);
    expect(fs.existsSync(path.join(out, 'checkpoint.json'))).toBe(true);
  }, 60_000);
});
