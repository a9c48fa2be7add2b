/**
 * The main job as a newcomer runs it: `spikeloop demo --json` (what `npm start` runs) in its own
 * process, per chip physics, and ONE JSON line:
 *
 *   demo_s, demo_peak_rss_mb, demo_cpu_s       the first run's wall seconds, peak resident memory (MB,
 *                                              every thread) and CPU seconds, as the demo reports them
 *   demo_twin_acc, demo_nominal_acc,           its Fashion-MNIST figures: twin, deployed through nominal
 *   demo_calibrated_acc, demo_finetuned_acc    and calibrated curves, after in-situ fine-tuning
 *   runs: per chip { device, demo_s, demo_peak_rss_mb, demo_cpu_s, accuracies, test_samples,
 *                    finetune_kept_epoch (0 = the deployment), finetune_kept_state, finetune_val_acc (per epoch),
 *                    finetune_val_source ('unseen': validation images outside the twin's training subset; 'carved'),
 *                    finetune_val_comparisons (per epoch against the deployment: gained, lost, p), finetune_keep_alpha,
 *                    finetune_deployed_read ('reused': the deploy stage's read is epoch 0's), finetune_last_epoch_acc,
 *                    no_spike, rmse_pnn_ticks, stages: { name: [wall s, CPU s] },
 *                    deployed_drive_err: on a behavioural die, per calibrated layer and polarity the drive the
 *                    calibrated mapping assumed at the deployed codes over the die's hidden truth, summed, - 1 }
 *   load_before, load_after                    1-minute load averages (a shared machine's wall times say little alone)
 *
 * Environment: DEMO_SEED (default 1), DEMO_PHYSICS (comma-separated mock physics, default `default`
 * = the mock's own default, e.g. `default,sky130`), DEMO_ARGS (more demo flags, space-separated).
 *
 * Several dies: DEMO_SEEDS (comma-separated seeds) or DEMO_RANDOM_SEEDS=N (N seeds drawn at random,
 * 1..999 999, written to stderr before the first run, as `npm start` draws one) replace DEMO_SEED, and
 * the line adds
 *   seeds, per_seed: [{ seed, physics, twin, nominal, calibrated, finetuned (percent), finetune_kept_epoch,
 *                       finetune_last_epoch (percent), finetune_gain_points (finetuned - calibrated),
 *                       finetune_val ([gained, lost, p] of each epoch), gap_points
 *                       (twin - calibrated), demo_s, demo_cpu_s }],
 *   worst_gap_points, calibrated_within_3_all, finetuned_ge_calibrated_all
 * (the first run's keys stay as they are).
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendTarget } from '../calibration/backend-target.ts';
import { ChipMapping, curvesFromProfile } from '../calibration/chip-mapping.ts';
import { loadChipProfile } from '../calibration/chip-profile.ts';
import { deployedDriveError } from '../calibration/truth-score.ts';
import { DEMO_GEOMETRY } from '../host/workflows/demo-options.ts';
import { BEHAVIORAL_PHYSICS, BehavioralChip, type BehavioralPhysics } from '../models/chips/behavioral-chip.ts';
import { loadNetwork } from '../models/network/serialize.ts';
import { initBackend } from '../models/tf/backend.ts';

const cli = fileURLToPath(new URL('../bin/spikeloop.js', import.meta.url));
const seeds = demoSeeds();
const physics = (process.env.DEMO_PHYSICS ?? 'default').split(',').map((s) => s.trim());
for (const p of physics)
  if (!/^[a-z0-9-]+$/.test(p)) throw new RangeError(`DEMO_PHYSICS must be comma-separated physics names like default,sky130, got ${JSON.stringify(p)}`);
const extra = (process.env.DEMO_ARGS ?? '').split(/\s+/).filter(Boolean);

/** The dies to run: DEMO_RANDOM_SEEDS drawn at random, else DEMO_SEEDS, else DEMO_SEED (default 1). */
function demoSeeds(): string[] {
  const { DEMO_SEED, DEMO_SEEDS, DEMO_RANDOM_SEEDS } = process.env;
  if (DEMO_RANDOM_SEEDS !== undefined) {
    if (!/^\d+$/.test(DEMO_RANDOM_SEEDS) || Number(DEMO_RANDOM_SEEDS) < 1 || Number(DEMO_RANDOM_SEEDS) > 100)
      throw new RangeError(`DEMO_RANDOM_SEEDS must be a count from 1 to 100, got ${JSON.stringify(DEMO_RANDOM_SEEDS)}`);
    const drawn = Array.from({ length: Number(DEMO_RANDOM_SEEDS) }, () => String(randomInt(1, 1_000_000)));
    process.stderr.write(`bench:demo: seeds drawn at random: ${drawn.join(',')} (DEMO_SEEDS=${drawn.join(',')} repeats them)\n`);
    return drawn;
  }
  const list = (DEMO_SEEDS ?? DEMO_SEED ?? '1').split(',').map((x) => x.trim());
  for (const x of list) if (!/^\d+$/.test(x)) throw new RangeError(`DEMO_SEEDS / DEMO_SEED must be whole numbers, comma-separated, got ${JSON.stringify(x)}`);
  return list;
}

/**
 * On a behavioural die: the drive the calibrated mapping assumed at the headline network's deployed codes against
 * the die's hidden truth, per calibrated layer and polarity (`l0_pmos`: sum of assumed over true drives - 1;
 * calibration/truth-score.ts deployedDriveError). Null for other devices.
 */
async function deployedDrive(device: string, profilePath: string, networkPath: string | undefined): Promise<Record<string, number> | null> {
  const m = /^mock:behavioral\?(.*)$/.exec(device);
  if (!m || !networkPath) return null;
  const q = new URLSearchParams(m[1]);
  const physics = (q.get('physics') ?? 'sky130') as BehavioralPhysics;
  if (!BEHAVIORAL_PHYSICS.includes(physics)) return null;
  const chip = new BehavioralChip({ seed: Number(q.get('seed') ?? 1), sizes: (q.get('geometry') ?? DEMO_GEOMETRY).split('-').map(Number), physics });
  const profile = await loadChipProfile(profilePath, { chipId: chip.chipId });
  await initBackend();
  const { net } = await loadNetwork(networkPath);
  try {
    const info = backendTarget(chip);
    const codes = new ChipMapping(net, info, curvesFromProfile(profile, info)).map().layers.map((l) => l.codes);
    return Object.fromEntries(deployedDriveError(chip, profile, codes).map((e) => [`l${e.layer}_${e.polarity}`, Number(e.weighted.toFixed(4))]));
  } finally {
    net.dispose();
  }
}

/**
 * The fine-tuning run's choice (host/workflows/finetune.ts): the epoch kept (0 = the deployment), the device's
 * accuracy on the validation split per epoch, and the test accuracy of the last epoch run, kept or not.
 */
function finetuneKept(record: string): Record<string, unknown> {
  if (!existsSync(record)) return {};
  const s = (JSON.parse(readFileSync(record, 'utf8')) as { summary?: Record<string, unknown> }).summary ?? {};
  return {
    finetune_kept_epoch: s.kept_epoch ?? null,
    finetune_kept_state: s.kept_state ?? null,
    finetune_val_acc: s.val_acc ?? null,
    finetune_val_source: s.val_source ?? null,
    finetune_val_comparisons: s.val_comparisons ?? null,
    finetune_keep_alpha: s.keep_alpha ?? null,
    finetune_deployed_read: s.deployed_read ?? null,
    finetune_last_epoch_acc: s.last_epoch_acc ?? null,
  };
}

interface Stage {
  stage: string;
  seconds: number;
  cpu_seconds: number;
}
interface Net {
  dataset: string;
  network?: string;
  test_samples: number;
  deployed_no_spike: number;
  deployed_nominal_no_spike: number;
}

const loadBefore = os.loadavg()[0];
const runs: Record<string, unknown>[] = [];
const dir = mkdtempSync(join(os.tmpdir(), 'bench-demo-'));
try {
  for (const seedText of seeds)
    for (const p of physics) {
      // The demo's own chip (its default geometry); a physics other than the default goes on the address.
      const deviceArgs = p === 'default' ? [] : ['--device', `mock:behavioral?seed=${seedText}&geometry=${DEMO_GEOMETRY}&physics=${p}`];
      const out = join(dir, `${p}-${seedText}`);
      process.stderr.write(`bench:demo: ${p} physics, seed ${seedText}\n`);
      const stdout = execFileSync(process.execPath, [cli, 'demo', '--seed', seedText, ...deviceArgs, '--out', out, '--json', ...extra], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 64 << 20,
      });
      const s = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
      const fashion = (s.networks as Net[]).find((n) => n.dataset === s.headline);
      const ft = finetuneKept(join(out, `finetune-${s.headline as string}`, 'record.json'));
      runs.push({
        seed: Number(seedText),
        physics: p,
        device: s.device,
        demo_s: s.demo_s,
        demo_peak_rss_mb: s.demo_peak_rss_mb,
        demo_cpu_s: Number((s.cpu_seconds as number).toFixed(1)),
        headline: s.headline,
        twin_acc: s.twin_acc,
        nominal_acc: s.deployed_nominal_acc,
        calibrated_acc: s.deployed_acc,
        finetuned_acc: s.finetuned_acc,
        ...ft,
        test_samples: fashion?.test_samples,
        no_spike: fashion?.deployed_no_spike,
        rmse_pnn_ticks: (s.calibration as { rmse_pnn_ticks: number }).rmse_pnn_ticks,
        deployed_drive_err: await deployedDrive(s.device as string, s.profile as string, fashion?.network),
        stages: Object.fromEntries((s.stages as Stage[]).map((x) => [x.stage, [x.seconds, x.cpu_seconds]])),
      });
    }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const first = runs[0]!;
const pct = (x: unknown) => (typeof x === 'number' ? Number((100 * x).toFixed(1)) : null);
const perSeed = runs.map((r) => ({
  seed: r.seed,
  physics: r.physics,
  twin: pct(r.twin_acc),
  nominal: pct(r.nominal_acc),
  calibrated: pct(r.calibrated_acc),
  finetuned: pct(r.finetuned_acc),
  finetune_kept_epoch: r.finetune_kept_epoch ?? null,
  finetune_last_epoch: pct(r.finetune_last_epoch_acc),
  finetune_gain_points:
    typeof r.finetuned_acc === 'number' && typeof r.calibrated_acc === 'number' ? Number((100 * (r.finetuned_acc - r.calibrated_acc)).toFixed(1)) : null,
  finetune_val: Array.isArray(r.finetune_val_comparisons)
    ? (r.finetune_val_comparisons as { gained: number; lost: number; p: number }[]).map((c) => [c.gained, c.lost, Number(c.p.toPrecision(2))])
    : null,
  gap_points: Number((100 * ((r.twin_acc as number) - (r.calibrated_acc as number))).toFixed(1)),
  demo_s: r.demo_s,
  demo_cpu_s: r.demo_cpu_s,
  deployed_drive_err: r.deployed_drive_err,
}));
const several =
  seeds.length > 1
    ? {
        seeds: seeds.map(Number),
        per_seed: perSeed,
        worst_gap_points: Math.max(...perSeed.map((r) => r.gap_points)),
        calibrated_within_3_all: perSeed.every((r) => r.gap_points <= 3),
        finetuned_ge_calibrated_all: perSeed.every((r) => r.finetuned !== null && r.calibrated !== null && r.finetuned >= r.calibrated),
      }
    : {};
console.log(
  JSON.stringify({
    demo_s: first.demo_s,
    demo_peak_rss_mb: first.demo_peak_rss_mb,
    demo_cpu_s: first.demo_cpu_s,
    demo_twin_acc: first.twin_acc,
    demo_nominal_acc: first.nominal_acc,
    demo_calibrated_acc: first.calibrated_acc,
    demo_finetuned_acc: first.finetuned_acc,
    seed: Number(seeds[0]),
    ...several,
    runs,
    load_before: loadBefore,
    load_after: os.loadavg()[0],
  }),
);
