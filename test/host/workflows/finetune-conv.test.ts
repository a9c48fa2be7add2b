import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chipTimeBase, ChipMapping, curvesFromProfile, layerGeometry } from '../../../calibration/chip-mapping.ts';
import { loadChipProfile } from '../../../calibration/chip-profile.ts';
import { LayerCodeRule } from '../../../calibration/weight-mapping.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { runCalibrateWorkflow } from '../../../host/workflows/calibrate.ts';
import { loadCheckpoint } from '../../../host/workflows/finetune-checkpoint.ts';
import { runFinetune } from '../../../host/workflows/finetune.ts';
import { NMOS } from '../../../models/chips/chip-backend.ts';
import { architectureSchema } from '../../../models/network/arch.ts';
import { conductancesOf } from '../../../models/network/conductance-units.ts';
import type { ConvLayerState } from '../../../models/network/conv-layer.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { archConfig } from '../../../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { bars } from '../../models/network/bar-images.ts';

// A 6x6 image, conv 2@3x3 with stride 2 (a 3x3x2 map: 18 neurons), dense 3: unrolled 36-18-3.
const ARCH = architectureSchema.parse({
  input: { height: 6, width: 6, channels: 1 },
  layers: [
    { type: 'conv', channels: 2, kernel: 3, stride: 2 },
    { type: 'dense', units: 3 },
  ],
});
const DEVICE = 'mock:behavioral?seed=23&geometry=36-18-3';
const root = mkdtempSync(join(tmpdir(), 'spikeloop-finetune-conv-'));
const sink = { print: () => {}, warn: () => {}, progress: { write: () => true } };

/** A train/test IDX set of 6x6 bar images (finetune reads its data by spec). */
function writeBars(dir: string, nTrain: number, nTest: number): void {
  mkdirSync(dir);
  const idx = (dims: number[], bytes: ArrayLike<number>) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head.writeUInt8(8, 2);
    head.writeUInt8(dims.length, 3);
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([head, Buffer.from(bytes)]);
  };
  for (const [prefix, seed, n] of [
    ['train', 1, nTrain],
    ['t10k', 2, nTest],
  ] as const) {
    const b = bars(seed, n, 6);
    writeFileSync(
      join(dir, `${prefix}-images-idx3-ubyte`),
      idx(
        [n, 6, 6],
        Uint8Array.from(b.x, (v) => Math.round(v * 255)),
      ),
    );
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), idx([n], b.y));
  }
}

/** Unrolled input of kernel entry (ky, kx) at output position (oy, ox), by a direct loop ('same' padding, 6 -> 3: 0 before, 1 after); -1 in the padding. */
function inputAt(oy: number, ox: number, ky: number, kx: number): number {
  const iy = 2 * oy + ky;
  const ix = 2 * ox + kx;
  return iy > 5 || ix > 5 ? -1 : iy * 6 + ix;
}

let model: string;
let profile: string;
let start: ConvLayerState;

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  const device = await ChipDevice.open(DEVICE);
  try {
    const cal = await runCalibrateWorkflow(device, {
      out: join(root, 'cal'),
      sizes: { patternsPerConfig: 24, heldOutPatterns: 16, patternConfigs: 1, eiConfigs: 1 },
    });
    profile = cal.profile;
    const p = await loadChipProfile(profile, { chipId: device.info.chipId });
    const train = bars(1, 150, 6);
    const solver = createSolver('dstd', { bins: 16 });
    const cfg = archConfig(ARCH, { model: 'pnn', ...chipTimeBase(device.info), ePlus: p.global.ePlus, eMinus: p.global.eMinus });
    const net = initNetwork(cfg, { x: train.x, n: 64 }, solver, { seed: 4 });
    await trainNetwork(
      net,
      { train: { name: 'bars', x: train.x, y: train.y, n: 150, features: 36, classes: 3, classNames: ['0', '1', '2'] } },
      { epochs: 6, batchSize: 16, lr: 0.02, seed: 4, solver, loss: { tauSoft: 0.2, windowWeight: 0, deadWeight: 1, deadMean: 1 } },
    );
    start = net.layers[0]!.state() as ConvLayerState;
    await saveNetwork((model = join(root, 'model.bin')), net, {});
    net.dispose();
  } finally {
    await device.close();
  }
  writeBars(join(root, 'bars'), 96, 60);
}, 600_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('spikeloop finetune on a conv net', () => {
  it('keeps the weight sharing: the kernel is trained, and every copy takes the code of the shared conductance through its own calibrated curve', async () => {
    const out = join(root, 'run');
    const s = await runFinetune({
      device: DEVICE,
      out,
      model,
      profile,
      dataset: `idx:${join(root, 'bars')}`,
      epochs: 2,
      batchSize: 16,
      lr: 0.01,
      seed: 5,
      // No validation split: the run ends on its last epoch, whose codes the checkpoint holds (checked below).
      val: 0,
      ...sink,
    });
    expect(s.interrupted).toBe(false);
    expect(s.curves).toBe('calibrated');
    expect(s.batches).toBe(2 * Math.ceil(96 / 16));
    // The device's accuracy after fine-tuning is measured on the device (bars: an easy task).
    expect(s.finetuned_acc).toBeGreaterThan(0.8);

    // The saved network is still a conv net: one 3x3x1x2 kernel, moved by the in-loop steps.
    const saved = await loadNetwork(s.network);
    const conv = saved.net.layers[0]!.state();
    saved.net.dispose();
    expect(conv.kind).toBe('conv');
    if (conv.kind !== 'conv') return;
    expect(conv.pE.length).toBe(3 * 3 * 2);
    let moved = 0;
    for (let k = 0; k < conv.pE.length; k++) moved = Math.max(moved, Math.abs(conv.pE[k]! - start.pE[k]!), Math.abs(conv.pI[k]! - start.pI[k]!));
    expect(moved).toBeGreaterThan(1e-3);

    // The codes the run left on the device (CRC-verified at the epoch's end) against the kernel's
    // conductances, copy by copy, each through its own synapse's calibrated curve.
    const { net, checkpoint } = await loadCheckpoint(out);
    try {
      const layer = net.layers[0]!.state() as ConvLayerState;
      expect(Array.from(layer.pE)).toEqual(Array.from(conv.pE));
      const g = conductancesOf(layer, layer.pE, layer.pI);
      const dev = await ChipDevice.open(DEVICE);
      const info = dev.info;
      await dev.close();
      const curves = curvesFromProfile(await loadChipProfile(profile), info);
      const t0 = new ChipMapping(net, info, curves).t0;
      const geometry = layerGeometry(info.layers[0]!);
      const rule = new LayerCodeRule({ geometry, dac: info.dac, safe: info.safe, t0 }, curves[0]!);
      const codes = checkpoint.codes[0]!;
      const rows = geometry.rowInput.length;
      // Rows per (input, polarity): their conductances add up to the target.
      const share = new Map<string, number>();
      for (let r = 0; r < rows; r++) {
        const key = `${geometry.rowInput[r]}:${geometry.rowPolarity[r]}`;
        share.set(key, (share.get(key) ?? 0) + 1);
      }
      let checked = 0;
      let distinctCopies = 0;
      for (let ky = 0; ky < 3; ky++)
        for (let kx = 0; kx < 3; kx++)
          for (let o = 0; o < 2; o++) {
            const entry = (ky * 3 + kx) * 2 + o;
            for (const nmos of [true, false]) {
              const target = (nmos ? g.gE : g.gI)[entry]!;
              const seen = new Set<number>();
              for (let oy = 0; oy < 3; oy++)
                for (let ox = 0; ox < 3; ox++) {
                  const j = inputAt(oy, ox, ky, kx);
                  if (j < 0) continue;
                  const neuron = (oy * 3 + ox) * 2 + o;
                  for (let r = 0; r < rows; r++) {
                    if (geometry.rowInput[r] !== j || (geometry.rowPolarity[r] === NMOS) !== nmos) continue;
                    const k = r * geometry.outputs + neuron;
                    const c = codes[k]!;
                    seen.add(c);
                    const [lo, hi] = rule.window(r);
                    const want = target / share.get(`${j}:${geometry.rowPolarity[r]}`)!;
                    if (want <= 0 || c === lo || c === hi) continue;
                    // The code's half-step neighbours bracket the copy's target on this synapse's own curve.
                    const a = rule.conductanceAt(r, k, c - 0.5);
                    const b = rule.conductanceAt(r, k, c + 0.5);
                    expect(want).toBeGreaterThanOrEqual(Math.min(a, b) * (1 - 1e-3));
                    expect(want).toBeLessThanOrEqual(Math.max(a, b) * (1 + 1e-3));
                    checked++;
                  }
                }
              if (seen.size > 1) distinctCopies++;
            }
          }
      expect(checked).toBeGreaterThan(40);
      // The copies of one weight land on different codes: each follows its own transistor, not one shared code.
      expect(distinctCopies).toBeGreaterThan(0);
    } finally {
      net.dispose();
    }
  }, 600_000);
});
