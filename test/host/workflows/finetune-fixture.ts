/**
 * What the fine-tuning tests start from: an Iris network (4-12-3, five twin epochs) and the nominal profile of
 * a deterministic chip (mock:ideal has no jitter, so two runs on it see the same spike times), in a fresh
 * temporary folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { deviceHorizons } from '../../../calibration/chip-mapping.ts';
import { nominalChipProfile, saveChipProfile } from '../../../calibration/chip-profile.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { loadDataset } from '../../../models/datasets/load.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';

export const FINETUNE_DEVICE = 'mock:ideal?seed=3&geometry=4-12-3';

export interface FinetuneFixture {
  /** The temporary folder; the caller removes it. */
  dir: string;
  /** The trained network file. */
  model: string;
  /** The chip's nominal profile. */
  profile: string;
}

export async function makeFinetuneFixture(prefix: string): Promise<FinetuneFixture> {
  await initBackend({ prefer: 'cpu' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dev = await ChipDevice.open(FINETUNE_DEVICE);
  const info = dev.info;
  const profile = path.join(dir, 'profile.slp');
  await saveChipProfile(
    profile,
    nominalChipProfile({
      chipId: info.chipId,
      secondsPerTick: info.tickSeconds,
      layers: info.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, rows: l.rowInput.length, horizonTicks: l.horizonTicks })),
    }),
  );
  await dev.close();
  const data = await loadDataset('iris', { seed: 1 });
  const solver = createSolver('dstd', { bins: 16 });
  const config = defaultConfig([4, 12, 3], { inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2), shiftGrids: false });
  const net = initNetwork(config, { x: data.train.x, n: data.train.n }, solver, { seed: 2 });
  await trainNetwork(net, data, { epochs: 5, batchSize: 8, lr: 0.01, seed: 2, solver });
  const model = path.join(dir, 'model.bin');
  await saveNetwork(model, net, {});
  net.dispose();
  return { dir, model, profile };
}

/** Silent output for a workflow under test. */
export const SINK = { print: () => {}, warn: () => {}, progress: { write: () => true } };

/** The fixture of a test file: made before its tests (filled in by then), removed after them. */
export function useFinetuneFixture(prefix: string): FinetuneFixture {
  const fx: FinetuneFixture = { dir: '', model: '', profile: '' };
  beforeAll(async () => {
    Object.assign(fx, await makeFinetuneFixture(prefix));
  }, 120_000);
  afterAll(() => fs.rmSync(fx.dir, { recursive: true, force: true }));
  return fx;
}
