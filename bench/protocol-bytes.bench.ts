/**
 * Bytes on the link, protocol 1 against protocol 2, for two workflows on the embedded mock
 * (mock:behavioral?seed=7&geometry=784-256-128-10), counted by the host's own link counters:
 *   calibrate --quick   runCalibrateWorkflow({ quick: true }) from the profile of one full
 *                       calibration (run first, on protocol 2; its bytes are reported too)
 *   deploy              deployNetwork (upload + verify of all layers) and evaluateOnDevice on
 *                       DEPLOY_SAMPLES MNIST test images, with an initialised (untrained) network
 *                       of the chip's geometry and windows
 * Each runs once with the host offering protocol 1 (RUN, WEIGHTS_WRITE) and once offering 2
 * (RUN_PACKED, WEIGHTS_PATCH). `CALIBRATE=0` skips the calibrations, `DEPLOY=0` the deploy,
 * `CAL_LAYERS=2` calibrates (and refits) only those layers (a full 784-256-128-10 calibration
 * takes 6 minutes or more). Prints ONE JSON line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChipDevice } from '../host/device/chip-device.ts';
import type { LinkStats } from '../host/link/link-client.ts';
import { runCalibrateWorkflow } from '../host/workflows/calibrate.ts';
import { deviceHorizons } from '../calibration/chip-mapping.ts';
import { deployNetwork, evaluateOnDevice } from '../host/workflows/deploy.ts';
import { loadDataset } from '../models/datasets/load.ts';
import { defaultConfig } from '../models/network/network.ts';
import { initNetwork } from '../models/network/init.ts';
import { createSolver } from '../models/network/solver.ts';
import { initBackend } from '../models/tf/backend.ts';

const URI = 'mock:behavioral?seed=7&geometry=784-256-128-10';
const DEPLOY_SAMPLES = Number(process.env.DEPLOY_SAMPLES ?? 1000);
/** CALIBRATE=0 measures the deploy alone (no full calibration, no --quick). */
const CALIBRATE = process.env.CALIBRATE !== '0';
/** DEPLOY=0 measures the calibrations alone. */
const DEPLOY = process.env.DEPLOY !== '0';
/** CAL_LAYERS=2 (comma-separated) limits the full calibration, and so what --quick refits, to those layers. */
const CAL_LAYERS = process.env.CAL_LAYERS ? process.env.CAL_LAYERS.split(',').map(Number) : undefined;

type Counts = { bytes_out: number; bytes_in: number; frames_out: number; s: number };

function delta(dev: ChipDevice, b: LinkStats, t0: number): Counts {
  const a = dev.link.stats;
  return {
    bytes_out: a.bytesOut - b.bytesOut,
    bytes_in: a.bytesIn - b.bytesIn,
    frames_out: a.framesOut - b.framesOut,
    s: Number(((performance.now() - t0) / 1000).toFixed(1)),
  };
}

async function main(): Promise<void> {
  await initBackend();
  const dir = mkdtempSync(path.join(tmpdir(), 'protocol-bytes-'));
  const data = await loadDataset('mnist', { limitTrain: 256, limitTest: DEPLOY_SAMPLES });
  const out: Record<string, unknown> = { uri: URI, deploy_samples: DEPLOY ? DEPLOY_SAMPLES : 0, cal_layers: CAL_LAYERS ?? 'all' };
  const profFile = path.join(dir, 'full', 'profile.slp');
  try {
    // the profile --quick starts from: one full calibration (protocol 2), its bytes recorded too
    if (CALIBRATE) {
      const dev = await ChipDevice.open(URI);
      try {
        const t0 = performance.now();
        await runCalibrateWorkflow(dev, { out: path.join(dir, 'full'), ...(CAL_LAYERS ? { layers: CAL_LAYERS } : {}) });
        out.v2_calibrate_full = delta(dev, { bytesOut: 0, bytesIn: 0, framesOut: 0 } as LinkStats, t0);
      } finally {
        await dev.close();
      }
    }
    for (const p of [1, 2]) {
      const dev = await ChipDevice.open(URI, { maxProtocol: p });
      try {
        const info = dev.info;
        let b = dev.link.stats;
        let t0 = performance.now();
        if (CALIBRATE) await runCalibrateWorkflow(dev, { out: path.join(dir, `quick-${p}`), quick: true, profile: profFile });
        const quick = CALIBRATE ? delta(dev, b, t0) : undefined;
        if (!DEPLOY) {
          out[`v${p}`] = { negotiated: info.negotiatedProtocol, calibrate_quick: quick };
          continue;
        }
        // deploy: upload + verify, then score
        const sizes = [784, ...info.layers.map((l) => l.outputs)];
        const config = defaultConfig(sizes, {
          model: 'pnn',
          inputWindow: 1,
          horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2),
          shiftGrids: false,
        });
        const net = initNetwork(config, { x: data.train.x, n: Math.min(256, data.train.n) }, createSolver('dstd', { bins: 16 }), { seed: 1 });
        b = dev.link.stats;
        t0 = performance.now();
        await deployNetwork(dev, net);
        const upload = delta(dev, b, t0);
        b = dev.link.stats;
        t0 = performance.now();
        const ev = await evaluateOnDevice(dev, net, data.test.x, data.test.y, data.test.n);
        const score = delta(dev, b, t0);
        out[`v${p}`] = { negotiated: info.negotiatedProtocol, calibrate_quick: quick, deploy_upload: upload, deploy_score: score, deploy_no_spike: ev.noSpike };
      } finally {
        await dev.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out));
}

await main();
