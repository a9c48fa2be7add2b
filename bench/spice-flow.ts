/**
 * `spice_flow` of bench:fidelity: the whole flow on a SPICE die, as a user runs it. `spikeloop demo`
 * in its own process on `mock:spice?seed=DIE&mode=table&geometry=G`: bring-up, calibration of every
 * layer, twin training on Iris for the die (its 4 inputs on the first layer's first rows, the die's
 * firing levels, the Iris preset's conductance noise), deployment through the nominal and through
 * the calibrated curves, in-situ fine-tuning; every accuracy measured on the die.
 *
 * `deployed_drive_err` then reads the deployed network's codes against the die's own current tables
 * (calibration/truth-score-spice.ts): how far the calibrated mapping's drive was off where the network
 * sits, and how much of the network sits at codes weaker than any calibration probe.
 *
 * A sample of test patterns then runs again on the same die in transient mode (spice-spot-check.ts):
 * `transient_spot_check` compares the two spike by spike.
 *
 * The targets it reports against (issue #29): calibrated deployment within 3 points of the twin,
 * fine-tuned >= twin - 1. Iris has 45 test samples, so one sample is 2.2 points.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transientSpotCheck } from './spice-spot-check.ts';
import { backendTarget } from '../calibration/backend-target.ts';
import { ChipMapping, curvesFromProfile } from '../calibration/chip-mapping.ts';
import { loadChipProfile } from '../calibration/chip-profile.ts';
import { spiceDeployedDriveError } from '../calibration/truth-score-spice.ts';
import { PROFILE_FILE } from '../host/workflows/calibrate.ts';
import { createChip } from '../models/chips/index.ts';
import type { SpiceChip } from '../models/chips/spice/spice-chip.ts';
import { loadNetwork } from '../models/network/serialize.ts';
import { initBackend } from '../models/tf/backend.ts';

export interface SpiceFlowOptions {
  die: number;
  /** Test patterns re-run in transient mode (spice-spot-check.ts); 0 = none. */
  spotSamples: number;
  geometry: string;
  seed: number;
  irisEpochs: number;
  finetuneEpochs: number;
  engine: 'wasm' | 'ngspice';
}

interface DemoNet {
  twin_acc: number;
  deployed_nominal_acc: number;
  deployed_acc: number;
  finetuned_acc: number | null;
  test_samples: number;
  deployed_no_spike: number;
}

const round = (x: number, d = 4) => Number(x.toFixed(d));

/** Runs the flow and returns the `spice_flow` object (figures, targets and whether each is met). */
export async function spiceFlow(o: SpiceFlowOptions): Promise<Record<string, unknown>> {
  const cli = fileURLToPath(new URL('../bin/spikeloop.js', import.meta.url));
  const device = `mock:spice?seed=${o.die}&mode=table&engine=${o.engine}&geometry=${o.geometry}`;
  const dir = mkdtempSync(join(os.tmpdir(), 'bench-spice-flow-'));
  const t0 = performance.now();
  try {
    const args = ['demo', '--device', device, '--seed', String(o.seed), '--iris-epochs', String(o.irisEpochs), '--fashion-train', '0'];
    args.push('--finetune', 'iris', '--finetune-epochs', String(o.finetuneEpochs), '--out', join(dir, 'run'), '--json');
    process.stderr.write(`bench:fidelity spice_flow: spikeloop ${args.join(' ')}\n`);
    const stdout = execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    const s = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      bringup_ok: boolean;
      networks: DemoNet[];
      calibration: { rmse_pnn_ticks: number; rmse_ideal_ticks: number };
      stages: { stage: string; seconds: number; cpu_seconds: number }[];
    };
    const n = s.networks[0]!;
    const finetuned = n.finetuned_acc ?? NaN;
    const drive = await deployedDrive(join(dir, 'run'), o);
    const spot =
      o.spotSamples > 0
        ? await transientSpotCheck({ runDir: join(dir, 'run'), die: o.die, geometry: o.geometry, engine: o.engine, seed: o.seed, samples: o.spotSamples })
        : undefined;
    return {
      device,
      dataset: 'iris',
      test_samples: n.test_samples,
      bringup_ok: s.bringup_ok,
      twin_acc: round(n.twin_acc),
      nominal_acc: round(n.deployed_nominal_acc),
      calibrated_acc: round(n.deployed_acc),
      calibrated_no_spike: n.deployed_no_spike,
      finetuned_acc: round(finetuned),
      calibrated_gap_points: round((n.twin_acc - n.deployed_acc) * 100, 2),
      calibrated_within_3: n.twin_acc - n.deployed_acc <= 0.03 + 1e-9,
      finetuned_ge_twin_minus_1: finetuned >= n.twin_acc - 0.01 - 1e-9,
      rmse_pnn_ticks: round(s.calibration.rmse_pnn_ticks),
      rmse_ideal_ticks: round(s.calibration.rmse_ideal_ticks),
      deployed_drive_err: drive,
      stages: Object.fromEntries(s.stages.map((x) => [x.stage, [round(x.seconds, 1), round(x.cpu_seconds, 1)]])),
      ...(spot ? { transient_spot_check: spot } : {}),
      seconds: round((performance.now() - t0) / 1000, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The drive the calibrated mapping assumed at the deployed network's codes against the die's own
 * tables (calibration/truth-score-spice.ts), per layer and polarity: the share of synapses at codes
 * weaker than the profile's probe codes, and the signed median error overall and over those.
 */
async function deployedDrive(runDir: string, o: SpiceFlowOptions): Promise<Record<string, unknown>[]> {
  await initBackend();
  const { net } = await loadNetwork(join(runDir, 'iris-network.bin'));
  const chip = (await createChip('spice', { seed: String(o.die), mode: 'table', engine: o.engine, geometry: o.geometry })) as SpiceChip;
  try {
    // The in-process die as the mapping sees a chip: geometry, windows, DAC, safe windows, tick.
    const info = backendTarget(chip);
    const profile = await loadChipProfile(join(runDir, PROFILE_FILE), { chipId: chip.chipId });
    const codes = new ChipMapping(net, info, curvesFromProfile(profile, info)).map().layers.map((m) => m.codes);
    return spiceDeployedDriveError(chip, profile, codes).map((e) => ({
      layer: e.layer,
      polarity: e.polarity,
      synapses: e.count,
      median_err: round(e.median),
      mean_err: round(e.mean),
      weighted_err: round(e.weighted),
      weaker_than_probes: round(e.weakerThanProbes),
      median_err_weaker: Number.isNaN(e.medianWeaker) ? null : round(e.medianWeaker),
    }));
  } finally {
    net.dispose();
    await chip.close?.();
  }
}

/** The flow FIDELITY_FLOW_DIE asks for (die seed; FIDELITY_FLOW_GEOMETRY, default 64-32-10), or undefined. */
export async function spiceFlowFromEnv(engine: 'wasm' | 'ngspice'): Promise<Record<string, unknown> | undefined> {
  const raw = process.env.FIDELITY_FLOW_DIE;
  if (raw === undefined || raw === '') return undefined;
  const die = Number(raw);
  if (!Number.isInteger(die) || die < 0) throw new RangeError(`FIDELITY_FLOW_DIE=${raw}: give a non-negative integer die seed, e.g. FIDELITY_FLOW_DIE=4`);
  const geometry = process.env.FIDELITY_FLOW_GEOMETRY ?? '64-32-10';
  if (!/^\d+(-\d+)+$/.test(geometry)) throw new RangeError(`FIDELITY_FLOW_GEOMETRY=${geometry}: give layer widths like 64-32-10`);
  const spot = Number(process.env.FIDELITY_FLOW_SPOT ?? 1);
  if (!Number.isInteger(spot) || spot < 0)
    throw new RangeError(`FIDELITY_FLOW_SPOT=${process.env.FIDELITY_FLOW_SPOT}: give the number of test patterns to re-run in transient mode (0 = none)`);
  return spiceFlow({ die, geometry, seed: 1, irisEpochs: 150, finetuneEpochs: 3, engine, spotSamples: spot });
}
