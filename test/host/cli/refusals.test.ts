/**
 * Commands refused before they do any work: every input checked before the device is touched,
 * messages that name the flag, the value and the fix, and no run folder left behind (or one the
 * same --out takes again).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './run-cli.ts';
import { nominalChipProfile, saveChipProfile } from '../../../calibration/chip-profile.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { cpuTwinDir, helloOf } from './setup.ts';

const CHIP = 'mock:behavioral?seed=5&geometry=16-8-4';
// A device that cannot be opened: a command that reports something else has checked it first.
const NO_DEVICE = 'pty:/nonexistent/spikeloop-board';
let dir: string;
let profile: string;
let foreign: string;
let damaged: string;
let model: string;

beforeAll(async () => {
  dir = await cpuTwinDir('cli-refusals-');
  const info = await helloOf(CHIP);
  const layers = info.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, rows: l.rowInput.length, horizonTicks: l.horizonTicks }));
  await saveChipProfile((profile = path.join(dir, 'chip.slp')), nominalChipProfile({ chipId: info.chipId, secondsPerTick: info.tickSeconds, layers }));
  await saveChipProfile((foreign = path.join(dir, 'other.slp')), nominalChipProfile({ chipId: 'another-chip', secondsPerTick: info.tickSeconds, layers }));
  fs.writeFileSync((damaged = path.join(dir, 'damaged.slp')), fs.readFileSync(profile).subarray(0, 200));
  // A network with the twin's default windows, not the chip's.
  const data = await loadDataset('iris', { seed: 1 });
  const net = initNetwork(defaultConfig([4, 8, 3]), { x: data.train.x, n: data.train.n }, createSolver('dstd'), { seed: 1 });
  await saveNetwork((model = path.join(dir, 'plain.bin')), net, { seed: 1, dataset: 'iris' });
  net.dispose();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const gone = (p: string) => !fs.existsSync(p);

describe('train for a chip: refusals before the run folder', () => {
  it('a data set with more inputs than the chip: names the mismatch, leaves no folder', async () => {
    const out = path.join(dir, 'fm');
    const r = await cli('train', '--dataset', 'fashion-mnist', '--limit-train', '20', '--limit-test', '10', '--profile', profile, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/needs 784 inputs .*but the chip of profile .*chip\.slp \(behavioral-5-16x8x4, 16-8-4\) has 16: train for a chip with more inputs/);
    expect(gone(out)).toBe(true);
  });

  it("--layers that are not the chip's: names the flag and says to drop it", async () => {
    const out = path.join(dir, 'layers');
    const r = await cli('train', '--dataset', 'iris', '--layers', '32', '--profile', profile, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--layers 32 asks for hidden layers 32, but the chip .* has 8: .*drop --layers/);
    expect(gone(out)).toBe(true);
  });

  it('a damaged or missing profile: names --profile and where a profile comes from', async () => {
    const out = path.join(dir, 'damaged');
    const r = await cli('train', '--dataset', 'iris', '--profile', damaged, '--out', out);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--profile .*damaged\.slp: .*pass the profile\.slp that spikeloop calibrate wrote/);
    expect(gone(out)).toBe(true);
    const m = await cli('train', '--dataset', 'iris', '--profile', path.join(dir, 'nope.slp'), '--out', out);
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/--profile .*nope\.slp: no such file; pass the profile\.slp that spikeloop calibrate wrote/);
    expect(m.err).not.toMatch(/ENOENT/);
    expect(gone(out)).toBe(true);
  });

  it('--out on a pseudo-filesystem is refused at once', async () => {
    const r = await cli('train', '--dataset', 'iris', '--out', '/proc/spikeloop-run');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--out \/proc\/spikeloop-run: \/proc is a system pseudo-filesystem, not storage; choose a folder on disk/);
  });
});

describe('deploy checks every input before the device', () => {
  it('a missing --model: the flag, the value and the fix, no bare ENOENT', async () => {
    const r = await cli('deploy', '--device', NO_DEVICE, '--model', path.join(dir, 'nope.bin'), '--dataset', 'iris');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--model .*nope\.bin: no such file; pass the network\.bin that spikeloop train wrote/);
    expect(r.err).not.toMatch(/ENOENT/);
  });

  it('a --dataset the network was not trained on is refused before the device is opened', async () => {
    const r = await cli('deploy', '--device', NO_DEVICE, '--model', model, '--dataset', 'fashion-mnist', '--limit-test', '10');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--dataset fashion-mnist: .*784 features .*pass the data set it was trained on \(iris\)/);
  });

  it('a damaged --profile is refused before the device is opened', async () => {
    const r = await cli('deploy', '--device', NO_DEVICE, '--model', model, '--profile', damaged, '--dataset', 'iris');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/damaged\.slp/);
    expect(r.err).not.toMatch(/nonexistent/);
  });

  it('a network not trained for the chip is refused before upload, naming the flag that fixes it', async () => {
    const r = await cli('deploy', '--device', CHIP, '--model', model, '--profile', profile, '--dataset', 'iris');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not fit behavioral-5-16x8x4: .*train the network for this chip with spikeloop train --profile FILE \(or --device URI\)/);
    expect(r.err).not.toMatch(/deviceHorizons/);
    expect(r.err).not.toMatch(/uploaded layers/);
  });
});

describe('finetune checks every input before the device', () => {
  it('a --dataset the network was not trained on is refused before the device is opened, leaving no folder', async () => {
    const out = path.join(dir, 'ft-data', 'run');
    const r = await cli(
      'finetune',
      '--device',
      NO_DEVICE,
      '--model',
      model,
      '--uncalibrated',
      '--dataset',
      'fashion-mnist',
      '--limit-train',
      '10',
      '--limit-test',
      '10',
      '--epochs',
      '1',
      '--out',
      out,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--dataset fashion-mnist: .*784 features .*pass the data set it was trained on/);
    expect(r.err).not.toMatch(/nonexistent/);
    expect(gone(path.join(dir, 'ft-data'))).toBe(true);
  });

  it('a damaged --profile is refused before the device is opened', async () => {
    const out = path.join(dir, 'ft-prof', 'run');
    const r = await cli('finetune', '--device', NO_DEVICE, '--model', model, '--profile', damaged, '--dataset', 'iris', '--epochs', '1', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/damaged\.slp: damaged profile/);
    expect(r.err).not.toMatch(/nonexistent/);
    expect(gone(path.join(dir, 'ft-prof'))).toBe(true);
  });
});

describe('failed runs leave nothing behind', () => {
  it('calibrate --quick with a foreign profile: refused, no folder', async () => {
    const out = path.join(dir, 'quick');
    const r = await cli('calibrate', '--device', CHIP, '--quick', '--profile', foreign, '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/belongs to chip "another-chip"/);
    expect(gone(out)).toBe(true);
  });

  it('finetune on a device that cannot be opened: no folder, and nothing suggests a flag it lacks', async () => {
    const out = path.join(dir, 'ft', 'run');
    const r = await cli('finetune', '--device', NO_DEVICE, '--model', model, '--uncalibrated', '--dataset', 'iris', '--epochs', '1', '--out', out);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nonexistent/);
    expect(gone(path.join(dir, 'ft'))).toBe(true);
  });

  it('bringup that cannot open the device names no flag it lacks', async () => {
    const r = await cli('bringup', '--device', NO_DEVICE, '--out', path.join(dir, 'bringup'));
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(/--resume/);
  });

  it('a folder a refused run left is taken again by the same --out', async () => {
    const out = path.join(dir, 'again');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'metrics.jsonl'), '');
    const rec = {
      schema: 'spikeloop-run',
      schemaVersion: 1,
      runId: 'x',
      command: 'train',
      args: [],
      cwd: dir,
      versions: {},
      startedAt: new Date().toISOString(),
      status: 'failed',
      resumes: [],
    };
    fs.writeFileSync(path.join(out, 'record.json'), JSON.stringify(rec));
    const r = await cli('train', '--dataset', 'iris', '--epochs', '1', '--limit-train', '12', '--out', out, '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'record.json'), 'utf8')).status).toBe('finished');
  });
});
