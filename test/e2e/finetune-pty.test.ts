/**
 * Pipelined fine-tuning over a real pseudo-terminal: the uploads of consecutive batches overlap
 * on the wire (each batch's changed-only upload is issued, not awaited), and the end-of-epoch
 * CRC of every layer must still match the codes the host last issued, on 10 runs of 10 (the
 * timing on the PTY differs from run to run). Each run: 41 samples in batches of 8 end with a
 * batch of one, whose upload is issued while the previous batch's is still on the wire. With
 * protocol 1's WEIGHTS_WRITE runs (about 950 frames a batch) the sparser last upload used to
 * overtake the one before and leave stale codes (CRC mismatch on every run before uploads were
 * ordered per layer); WEIGHTS_EDIT now carries a batch in a few frames, so the runs are small
 * enough for ten to fit a CI job.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChipDevice } from '../../host/device/chip-device.ts';
import { deviceHorizons } from '../../calibration/chip-mapping.ts';
import { runFinetune } from '../../host/workflows/finetune.ts';
import { loadDataset } from '../../models/datasets/load.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { haveSocat, startChildBoard, type ChildBoard } from './helpers.ts';
import { cpuTwinDir } from '../host/cli/setup.ts';

const GEOMETRY = '784-64-10';
const SEED = 7;
const TRAIN = 41;
const RUNS = 10;
const socat = haveSocat();

describe.skipIf(!socat)('pipelined finetune over a pseudo-terminal', () => {
  let dir: string;
  let model: string;
  let board: ChildBoard;

  beforeAll(async () => {
    dir = await cpuTwinDir('ft-pty-');
    board = await startChildBoard(['--chip', 'behavioral', '--geometry', GEOMETRY, '--seed', String(SEED)]);
    const dev = await ChipDevice.open(`mock:behavioral?seed=${SEED}&geometry=${GEOMETRY}`);
    const info = dev.info;
    await dev.close();
    const data = await loadDataset('fashion-mnist', { limitTrain: TRAIN, limitTest: 8, seed: 1 });
    const config = defaultConfig([784, 64, 10], { inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2), shiftGrids: false });
    const net = initNetwork(config, { x: data.train.x, n: data.train.n }, createSolver('dstd'), { seed: 1 });
    await saveNetwork((model = path.join(dir, 'model.bin')), net, { seed: 1 });
    net.dispose();
  }, 120_000);

  afterAll(async () => {
    if (board) await board.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`ends the epoch with every layer CRC-verified, ${RUNS} runs of ${RUNS}`, async () => {
    const failed: string[] = [];
    for (let k = 0; k < RUNS; k++) {
      try {
        const s = await runFinetune({
          device: `pty:${board.hostPath}`,
          out: path.join(dir, `run-${k}`),
          model,
          dataset: 'fashion-mnist',
          limitTrain: TRAIN,
          limitTest: 8,
          // No validation split: all 41 samples are batches, so the last batch is the one-sample one.
          val: 0,
          epochs: 1,
          batchSize: 8,
          uncalibrated: true,
          pipelined: true,
          print: () => {},
          warn: () => {},
        });
        expect(s.pipelined).toBe(true);
        expect(s.batches).toBe(6);
        expect(s.changed_codes_per_batch).toBeGreaterThan(100);
        expect(s.interrupted).toBe(false);
      } catch (err) {
        // runFinetune throws when the end-of-epoch CRC of a layer does not match
        failed.push(`run ${k + 1}: ${(err as Error).message}`);
      }
    }
    expect(failed).toEqual([]);
  }, 600_000);
});
