import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { carriesNeuronLevels, ChipMapping, chipNeuronLevels } from '../../../calibration/chip-mapping.ts';
import { loadChipProfile, saveChipProfile } from '../../../calibration/chip-profile.ts';
import { evaluateOnDevice } from '../../../host/workflows/deploy.ts';
import { loadCheckpoint } from '../../../host/workflows/finetune-checkpoint.ts';
import { runFinetune, validationSize, type FinetuneOptions } from '../../../host/workflows/finetune.ts';
import { readMetrics } from '../../../host/runs/metrics-log.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { loadNetwork } from '../../../models/network/serialize.ts';
import { FINETUNE_DEVICE, SINK, useFinetuneFixture } from './finetune-fixture.ts';

const DEVICE = FINETUNE_DEVICE;
const fx = useFinetuneFixture('finetune-test-');
const sink = SINK;

function base(out: string): FinetuneOptions {
  return {
    device: DEVICE,
    out: path.join(fx.dir, out),
    model: fx.model,
    profile: fx.profile,
    dataset: 'iris',
    epochs: 2,
    batchSize: 16,
    lr: 0.005,
    seed: 4,
    ...sink,
  };
}

async function params(file: string): Promise<Float32Array[]> {
  const { net } = await loadNetwork(file);
  const p = net.states().flatMap((s) => [s.pE, s.pI]);
  net.dispose();
  return p;
}

describe('runFinetune', () => {
  it('an aborted and resumed run ends exactly where an uninterrupted one does', async () => {
    const whole = await runFinetune(base('whole'));
    expect(whole.interrupted).toBe(false);
    // The default validation split (a tenth of Iris's 105 training samples) is carved off the batches.
    expect(whole.batches).toBe(2 * Math.ceil((105 - validationSize(undefined, 105)) / 16));

    const ac = new AbortController();
    const cut = await runFinetune({ ...base('cut'), signal: ac.signal, onBatch: (p) => p.steps === 3 && ac.abort() });
    expect(cut.interrupted).toBe(true);
    expect(cut.batches).toBe(3);
    const saved = await loadCheckpoint(path.join(fx.dir, 'cut'));
    expect(saved.checkpoint.cursor).toEqual({ epoch: 0, batch: 3 });
    saved.net.dispose();

    const resumed = await runFinetune({ device: DEVICE, out: path.join(fx.dir, 'cut'), resume: true, ...sink });
    expect(resumed.interrupted).toBe(false);
    expect(resumed.batches).toBe(whole.batches);
    const a = await params(whole.network);
    const b = await params(resumed.network);
    a.forEach((p, i) => expect(Buffer.from(b[i]!.buffer).equals(Buffer.from(p.buffer))).toBe(true));
    const ma = readMetrics(path.join(fx.dir, 'whole', 'metrics.jsonl')).records.map((r) => [r.epoch, r.device_acc, r.twin_acc]);
    const mb = readMetrics(path.join(fx.dir, 'cut', 'metrics.jsonl')).records.map((r) => [r.epoch, r.device_acc, r.twin_acc]);
    expect(mb).toEqual(ma);
    expect(ma.map((r) => r[0])).toEqual([0, 1, 2]);
    for (const f of ['learning-curve.svg', 'spike-raster.svg', 'report.html', 'network.bin', 'checkpoint.json'])
      expect(fs.existsSync(path.join(fx.dir, 'cut', f))).toBe(true);
    const record = JSON.parse(fs.readFileSync(path.join(fx.dir, 'cut', 'record.json'), 'utf8'));
    expect(record.status).toBe('finished');
    expect(record.resumes).toHaveLength(1);
  }, 120_000);

  it("leaves on the device the codes of its conductances, and the device's accuracy is what it reports", async () => {
    const s = await runFinetune({ ...base('check'), epochs: 1 });
    const { net } = await loadNetwork(s.network);
    const dev = await ChipDevice.open(DEVICE);
    try {
      // A fresh device with the final conductances mapped and uploaded scores what the run reported last.
      const codes = new ChipMapping(net, dev.info).map().layers.map((m) => m.codes);
      for (const [l, c] of codes.entries()) await dev.uploadWeights(l, c);
      const data = await loadDataset('iris', { seed: 4 });
      const e = await evaluateOnDevice(dev, net, data.test.x, data.test.y, data.test.n);
      expect(e.accuracy).toBeCloseTo(s.finetuned_acc, 10);
    } finally {
      net.dispose();
      await dev.close();
    }
  }, 60_000);

  it('needs a profile unless told to map uncalibrated, and refuses another chip on resume', async () => {
    await expect(runFinetune({ ...base('noprofile'), profile: undefined })).rejects.toThrow(/profile.*--uncalibrated/);
    await expect(runFinetune({ ...base('check'), device: 'mock:ideal?seed=4&geometry=4-12-3', resume: true })).rejects.toThrow(
      /resume on the same chip|belongs to chip/,
    );
  }, 30_000);
});

describe("runFinetune with a profile's firing levels", () => {
  it('gives the twin the levels and delays the profile measured, with a note, and saves the network with them', async () => {
    const p = await loadChipProfile(fx.profile);
    p.layers.forEach((l, k) => {
      l.thresholdScale = Float64Array.from({ length: l.outputs }, (_, i) => 1.01 + 0.005 * i + 0.02 * k);
      l.delay = Float64Array.from({ length: l.outputs }, (_, i) => 0.001 * i);
    });
    const profile = path.join(fx.dir, 'levels.slp');
    await saveChipProfile(profile, p);
    const notes: string[] = [];
    const o = { ...base('levels'), profile, epochs: 1, warn: (line: string) => notes.push(line) };
    await runFinetune(o);
    expect(notes.some((n) => /the twin takes the profile's measured firing levels and output delays in place of the ones .*model\.bin carries/.test(n))).toBe(
      true,
    );
    const { net } = await loadNetwork(path.join(o.out, 'network.bin'));
    const levels = chipNeuronLevels(p, net.config);
    expect(carriesNeuronLevels(net, levels)).toBe(true);
    expect(net.states()[1]!.thresholdScale![2]).toBeCloseTo(1.01 + 0.01 + 0.02, 6);
    net.dispose();
    // A network that already carries them is taken as it is: no note.
    const again: string[] = [];
    await runFinetune({ ...base('levels-again'), model: path.join(o.out, 'network.bin'), profile, epochs: 1, warn: (line: string) => again.push(line) });
    expect(again.some((n) => /firing levels/.test(n))).toBe(false);
  }, 60_000);
});
