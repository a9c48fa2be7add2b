/**
 * measureBlocks on a pipelined target (a ChipDevice): blocks are issued ahead of the one being read,
 * the target sees the same uploads and runs in the same order as when each block is awaited, and a
 * calibration through a device gives the same profile, byte for byte, either way.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { calibrateChip } from '../../calibration/calibrate-chip.ts';
import { BLOCKS_AHEAD, measureBlocks, type ProbeTarget } from '../../calibration/probe-run.ts';
import type { ProbeBlock } from '../../calibration/probe-plan.ts';
import { ChipDevice } from '../../host/device/chip-device.ts';
import { deviceProbeTarget } from '../../host/workflows/calibrate.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

const open: ChipDevice[] = [];
afterEach(async () => {
  for (const d of open.splice(0)) await d.close();
});

/** A target that records every call, answers each run after a macrotask, and counts runs not yet answered. */
function recordingTarget(pipelined: boolean) {
  const calls: string[] = [];
  let outstanding = 0;
  let most = 0;
  const layers = [
    { inputs: 4, outputs: 3, rowInput: Uint16Array.of(0, 1, 2, 3), rowPolarity: Uint8Array.of(0, 0, 0, 0), horizonTicks: 100 },
    { inputs: 3, outputs: 2, rowInput: Uint16Array.of(0, 1, 2), rowPolarity: Uint8Array.of(0, 0, 0), horizonTicks: 100 },
  ];
  const target: ProbeTarget = {
    layers,
    dac: { bits: 10, vMin: 0, vMax: 1.8 },
    safe: { nmos: [0, 1.8], pmos: [0, 1.8] },
    tickSeconds: 1e-9,
    pipelined,
    async upload(layer, codes) {
      calls.push(`upload ${layer} ${codes[0]}`);
    },
    async run(ticks, batch) {
      calls.push(`run ${batch} ${ticks[0]}`);
      most = Math.max(most, ++outstanding);
      await new Promise((r) => setTimeout(r, 1));
      outstanding--;
      return layers.map((l) => new Uint16Array(batch * l.outputs).fill(7));
    },
  };
  return { target, calls, most: () => most };
}

function blocks(n: number): ProbeBlock[] {
  return Array.from({ length: n }, (_, k) => {
    const layer = k % 2;
    const g = layer === 0 ? { rows: 4, outputs: 3, inputs: 4 } : { rows: 3, outputs: 2, inputs: 3 };
    const codes = new Uint16Array(g.rows * g.outputs).fill(100 + k);
    const inputTicks = new Uint16Array(2 * g.inputs).fill(SILENT_TICK);
    inputTicks[0] = k;
    return { layer, kind: 'pattern', codes, batch: 2, inputTicks } as unknown as ProbeBlock;
  });
}

describe('measureBlocks', () => {
  it('issues up to BLOCKS_AHEAD blocks ahead on a pipelined target, in the same order as block by block, with the same readings', async () => {
    const seq = recordingTarget(false);
    const pipe = recordingTarget(true);
    const a = await measureBlocks(seq.target, blocks(12));
    const b = await measureBlocks(pipe.target, blocks(12));
    expect(pipe.calls).toEqual(seq.calls);
    expect(b).toEqual(a);
    expect(seq.most()).toBe(1);
    expect(pipe.most()).toBe(BLOCKS_AHEAD + 1);
  });

  it('a calibration through a device gives the same profile, byte for byte, pipelined or block by block', async () => {
    const uri = 'mock:behavioral?seed=5&geometry=12-6-3';
    const profiles: string[] = [];
    const stats: number[] = [];
    for (const pipelined of [false, true]) {
      const dev = await ChipDevice.open(uri, { notice: () => {} });
      open.push(dev);
      const target = { ...deviceProbeTarget(dev), pipelined };
      const status = await dev.status();
      const res = await calibrateChip(target, {
        chipId: dev.info.chipId,
        temperatureC: status.temperatureC,
        supplyV: status.supplyV,
        sizes: { patternsPerConfig: 24, heldOutPatterns: 16 },
        workers: 1,
      });
      profiles.push(JSON.stringify({ ...res.profile, createdAt: '' }));
      stats.push(dev.link.stats.framesOut);
    }
    expect(profiles[1]).toBe(profiles[0]);
    expect(stats[1]).toBe(stats[0]); // the same requests went to the board
  }, 120_000);
});
