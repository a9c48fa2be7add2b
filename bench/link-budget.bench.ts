/**
 * What each workflow moves over the link and how long it takes on a real line rate: the command
 * runs in process against the embedded behavioural mock (784-256-128-10, seed 7) twice, once
 * behind a line paced to 921,600 baud (10 bits per byte, both directions) and once unpaced. The
 * bytes and frames are the host's own link counters (every device the workflow opened and closed).
 *
 * Prints ONE JSON line: per workflow bytes_out, bytes_in, frames (requests sent), wall_s at
 * 921,600 baud, wall_s_unpaced, and wire_s_out (bytes_out alone at that rate).
 *
 *   npm run bench:link-budget                                   deploy,finetune (the cheap ones)
 *   npm run bench:link-budget -- --workflows deploy,finetune,bringup
 *   --workflows calibrate,calibrate-quick,start   the long ones: a full calibration (calibrate-quick
 *                starts from its profile, or from one made first, unpaced and not counted), and
 *                `npm start` (the demo) on the same chip
 *   --images N   test images scored by deploy (default 1000; the figure is 10000)
 *   --train N    training images of the one fine-tuning epoch, batch 32 (default 320)
 *   --baud B     the paced rate (default 921600)
 *   --cal-layers L,..  the full calibration probes only these layers (`calibrate --layers`), also the
 *                one calibrate-quick starts from: a quicker profile for calibrate-quick alone (its figure
 *                then is for a profile of those layers; the JSON says which)
 *   --unpaced-only  no paced run: wall_s_projected gives [max(unpaced, wire out), unpaced + wire out
 *                + wire in] at the rate (perfect overlap of compute and wire, and none), for
 *                workflows too long to run paced in the time at hand
 *   --paced-only  no unpaced run (its figures null): run the unpaced one in another process with
 *                --unpaced-only to measure both side by side
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { main as cli } from '../host/cli/main.ts';
import { ChipDevice, closedLinkTotals } from '../host/device/chip-device.ts';
import { deviceHorizons } from '../calibration/chip-mapping.ts';
import { loadDataset } from '../models/datasets/load.ts';
import { initNetwork } from '../models/network/init.ts';
import { defaultConfig } from '../models/network/network.ts';
import { saveNetwork } from '../models/network/serialize.ts';
import { createSolver } from '../models/network/solver.ts';
import { initBackend } from '../models/tf/backend.ts';

const WORKFLOWS = ['deploy', 'finetune', 'bringup', 'calibrate', 'calibrate-quick', 'start'] as const;
type Workflow = (typeof WORKFLOWS)[number];

const { values } = parseArgs({
  options: {
    workflows: { type: 'string' },
    images: { type: 'string' },
    train: { type: 'string' },
    baud: { type: 'string' },
    'unpaced-only': { type: 'boolean' },
    'paced-only': { type: 'boolean' },
    'cal-layers': { type: 'string' },
  },
});
const chosen = (values.workflows ?? 'deploy,finetune').split(',') as Workflow[];
for (const w of chosen) if (!WORKFLOWS.includes(w)) throw new RangeError(`--workflows: unknown workflow '${w}'; choose from ${WORKFLOWS.join(', ')}`);
const IMAGES = Number(values.images ?? 1000);
const TRAIN = Number(values.train ?? 320);
const BAUD = Number(values.baud ?? 921_600);
const CHIP = 'mock:behavioral?seed=7&geometry=784-256-128-10';
const CAL_LAYERS = values['cal-layers'];
if (CAL_LAYERS !== undefined && !/^\d+(,\d+)*$/.test(CAL_LAYERS))
  throw new RangeError(`--cal-layers: expected layer indices like 2 or 1,2, got '${CAL_LAYERS}'`);

const round = (x: number, d = 4) => Number(x.toPrecision(d));

async function prepareModel(dir: string): Promise<string> {
  await initBackend();
  const dev = await ChipDevice.open(CHIP, { notice: () => {} });
  const info = dev.info;
  await dev.close();
  const data = await loadDataset('fashion-mnist', { limitTrain: 256, limitTest: 32, seed: 1 });
  const config = defaultConfig([784, 256, 128, 10], { inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2), shiftGrids: false });
  const net = initNetwork(config, { x: data.train.x, n: data.train.n }, createSolver('dstd'), { seed: 1 });
  const file = path.join(dir, 'model.bin');
  await saveNetwork(file, net, { seed: 1 });
  net.dispose();
  return file;
}

/** A full calibration's run folder, for calibrate --quick to start from (made once per bench run). */
let calibrated: string | undefined;

function argv(w: Workflow, device: string, model: string, out: string): string[] {
  switch (w) {
    case 'calibrate':
      return ['calibrate', '--device', device, '--out', out, ...(CAL_LAYERS ? ['--layers', CAL_LAYERS] : []), '--json'];
    case 'calibrate-quick':
      return ['calibrate', '--device', device, '--out', calibrated!, '--quick', '--json'];
    case 'start':
      return ['demo', '--device', device, '--seed', '7', '--out', out, '--json'];
    case 'deploy':
      return ['deploy', '--device', device, '--model', model, '--dataset', 'fashion-mnist', '--limit-test', String(IMAGES), '--json'];
    case 'finetune':
      return [
        'finetune',
        '--device',
        device,
        '--model',
        model,
        '--dataset',
        'fashion-mnist',
        '--limit-train',
        String(TRAIN),
        '--limit-test',
        '100',
        '--epochs',
        '1',
        '--batch-size',
        '32',
        '--uncalibrated',
        '--out',
        out,
        '--json',
      ];
    case 'bringup':
      return ['bringup', '--device', device, '--out', out, '--json'];
  }
}

async function measure(w: Workflow, device: string, model: string, dir: string) {
  if (w === 'calibrate-quick' && calibrated === undefined) await measure('calibrate', CHIP, model, dir);
  const before = closedLinkTotals();
  const cpu0 = process.cpuUsage();
  const load0 = os.loadavg()[0]!;
  const t0 = performance.now();
  let err = '';
  let out = '';
  const out0 = fs.mkdtempSync(path.join(dir, `${w}-`));
  if (w === 'calibrate') calibrated = out0;
  const code = await cli(argv(w, device, model, out0), {
    stdout: (t) => (out += t),
    stderr: (t) => (err += t),
    signal: new AbortController().signal,
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const load1 = os.loadavg()[0]!;
  const after = closedLinkTotals();
  if (code !== 0 && w !== 'bringup') throw new Error(`${w} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  return {
    code,
    wall,
    // This process's CPU seconds (the host and the in-process board): beside the wall time on a shared machine.
    cpu: (cpu.user + cpu.system) / 1e6,
    load: [round(load0, 3), round(load1, 3)],
    bytesOut: after.bytesOut - before.bytesOut,
    bytesIn: after.bytesIn - before.bytesIn,
    frames: after.framesOut - before.framesOut,
    summary: lastJson(out),
  };
}

/** The demo's stages as { name: [wall s, CPU s] } (its --json summary lists them with their results). */
function stageTimes(summary: Record<string, unknown>): Record<string, [number, number]> {
  const stages = (summary.stages ?? []) as { stage: string; seconds: number; cpu_seconds: number }[];
  return Object.fromEntries(stages.map((x) => [x.stage, [round(x.seconds), round(x.cpu_seconds)]]));
}

/** The workflow's --json summary (its last JSON line), for the per-batch timings of finetune. */
function lastJson(text: string): Record<string, unknown> {
  for (const line of text.trim().split('\n').reverse()) {
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object') return v as Record<string, unknown>;
    } catch {
      // not JSON: a table or a progress line
    }
  }
  return {};
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'link-budget-'));
  try {
    const model = await prepareModel(dir);
    const result: Record<string, unknown> = {};
    for (const w of chosen) {
      if (values['paced-only'] && values['unpaced-only']) throw new RangeError('--paced-only and --unpaced-only: give at most one');
      const unpaced = values['paced-only'] ? undefined : await measure(w, CHIP, model, dir);
      if (unpaced && values['unpaced-only']) {
        const out = (unpaced.bytesOut * 10) / BAUD;
        const inn = (unpaced.bytesIn * 10) / BAUD;
        result[w] = {
          bytes_out: unpaced.bytesOut,
          bytes_in: unpaced.bytesIn,
          frames: unpaced.frames,
          wall_s_unpaced: round(unpaced.wall),
          cpu_s_unpaced: round(unpaced.cpu),
          load_1min: unpaced.load,
          wire_s_out: round(out),
          wall_s_projected: [round(Math.max(unpaced.wall, out)), round(unpaced.wall + out + inn)],
          ...(w === 'calibrate' || w === 'calibrate-quick'
            ? { rmse_pnn_ticks_unpaced: round(Number(unpaced.summary.rmse_pnn_ticks)), link_by_stage: unpaced.summary.link_by_stage }
            : w === 'start'
              ? { exit_code: unpaced.code, stages_unpaced: stageTimes(unpaced.summary) }
              : {}),
        };
        continue;
      }
      const paced = await measure(w, `${CHIP}&baud=${BAUD}`, model, dir);
      result[w] = {
        bytes_out: paced.bytesOut,
        bytes_in: paced.bytesIn,
        frames: paced.frames,
        wall_s: round(paced.wall),
        wall_s_unpaced: unpaced ? round(unpaced.wall) : null,
        cpu_s: round(paced.cpu),
        cpu_s_unpaced: unpaced ? round(unpaced.cpu) : null,
        // the 1-minute load average at the start and end of the paced run
        load_1min: paced.load,
        wire_s_out: round((paced.bytesOut * 10) / BAUD),
        ...(w === 'deploy'
          ? { images: IMAGES }
          : w === 'finetune'
            ? {
                train_images: TRAIN,
                batch: 32,
                ms_per_sample: round((paced.wall * 1000) / TRAIN),
                // host / device / wall ms per batch (steady batches), paced and unpaced
                batch_ms: [paced, unpaced].map((m) =>
                  ['host_ms_per_batch', 'device_ms_per_batch', 'wall_ms_per_batch'].map((k) => round(Number(m?.summary[k]))),
                ),
                link_per_batch: paced.summary.link_per_batch,
              }
            : w === 'calibrate' || w === 'calibrate-quick'
              ? // held-out RMSE of the PNN model, paced and unpaced (the target: within 10 % of each other); the paced run's traffic per stage
                {
                  rmse_pnn_ticks: round(Number(paced.summary.rmse_pnn_ticks)),
                  rmse_pnn_ticks_unpaced: unpaced ? round(Number(unpaced.summary.rmse_pnn_ticks)) : null,
                  link_by_stage: paced.summary.link_by_stage,
                }
              : w === 'start'
                ? // [wall, CPU] seconds per stage of the demo, paced and unpaced
                  { exit_code: paced.code, stages: stageTimes(paced.summary), stages_unpaced: unpaced ? stageTimes(unpaced.summary) : null }
                : { exit_code: paced.code }),
      };
    }
    console.log(JSON.stringify({ bench: 'link-budget', chip: CHIP, baud: BAUD, ...(CAL_LAYERS ? { cal_layers: CAL_LAYERS } : {}), workflows: result }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.log(JSON.stringify({ bench: 'link-budget', ok: false, error: (err as Error).message }));
  process.exitCode = 1;
});
