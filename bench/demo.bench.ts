/**
 * The main job as a newcomer runs it: `spikeloop demo --json` (what `npm start` runs) in its own
 * process, per chip physics, and ONE JSON line:
 *
 *   demo_s, demo_peak_rss_mb, demo_cpu_s       the first run's wall seconds, peak resident memory (MB,
 *                                              every thread) and CPU seconds, as the demo reports them
 *   demo_twin_acc, demo_nominal_acc,           its Fashion-MNIST figures: twin, deployed through nominal
 *   demo_calibrated_acc, demo_finetuned_acc    and calibrated curves, after in-situ fine-tuning
 *   runs: per chip { device, demo_s, demo_peak_rss_mb, demo_cpu_s, accuracies, test_samples,
 *                    no_spike, rmse_pnn_ticks, stages: { name: [wall s, CPU s] } }
 *   load_before, load_after                    1-minute load averages (a shared machine's wall times say little alone)
 *
 * Environment: DEMO_SEED (default 1), DEMO_PHYSICS (comma-separated mock physics, default `default`
 * = the mock's own default, e.g. `default,sky130`), DEMO_ARGS (more demo flags, space-separated).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_GEOMETRY } from '../host/workflows/demo-options.ts';

const cli = fileURLToPath(new URL('../bin/spikeloop.js', import.meta.url));
const seedText = process.env.DEMO_SEED ?? '1';
if (!/^\d+$/.test(seedText)) throw new RangeError(`DEMO_SEED must be a whole number, got ${JSON.stringify(seedText)}`);
const physics = (process.env.DEMO_PHYSICS ?? 'default').split(',').map((s) => s.trim());
for (const p of physics)
  if (!/^[a-z0-9-]+$/.test(p)) throw new RangeError(`DEMO_PHYSICS must be comma-separated physics names like default,sky130, got ${JSON.stringify(p)}`);
const extra = (process.env.DEMO_ARGS ?? '').split(/\s+/).filter(Boolean);

interface Stage {
  stage: string;
  seconds: number;
  cpu_seconds: number;
}
interface Net {
  dataset: string;
  test_samples: number;
  deployed_no_spike: number;
  deployed_nominal_no_spike: number;
}

const loadBefore = os.loadavg()[0];
const runs: Record<string, unknown>[] = [];
const dir = mkdtempSync(join(os.tmpdir(), 'bench-demo-'));
try {
  for (const p of physics) {
    // The demo's own chip (its default geometry); a physics other than the default goes on the address.
    const deviceArgs = p === 'default' ? [] : ['--device', `mock:behavioral?seed=${seedText}&geometry=${DEMO_GEOMETRY}&physics=${p}`];
    const out = join(dir, p);
    process.stderr.write(`bench:demo: ${p} physics, seed ${seedText}\n`);
    const stdout = execFileSync(process.execPath, [cli, 'demo', '--seed', seedText, ...deviceArgs, '--out', out, '--json', ...extra], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 64 << 20,
    });
    const s = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    const fashion = (s.networks as Net[]).find((n) => n.dataset === s.headline);
    runs.push({
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
      test_samples: fashion?.test_samples,
      no_spike: fashion?.deployed_no_spike,
      rmse_pnn_ticks: (s.calibration as { rmse_pnn_ticks: number }).rmse_pnn_ticks,
      stages: Object.fromEntries((s.stages as Stage[]).map((x) => [x.stage, [x.seconds, x.cpu_seconds]])),
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const first = runs[0]!;
console.log(
  JSON.stringify({
    demo_s: first.demo_s,
    demo_peak_rss_mb: first.demo_peak_rss_mb,
    demo_cpu_s: first.demo_cpu_s,
    demo_twin_acc: first.twin_acc,
    demo_nominal_acc: first.nominal_acc,
    demo_calibrated_acc: first.calibrated_acc,
    demo_finetuned_acc: first.finetuned_acc,
    seed: Number(seedText),
    runs,
    load_before: loadBefore,
    load_after: os.loadavg()[0],
  }),
);
