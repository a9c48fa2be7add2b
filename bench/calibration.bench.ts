/**
 * Calibration accuracy and speed on the two mocks. Prints ONE JSON line, one object per mock:
 *
 *   behavioral: { backend, geometry, seeds, rmse_pnn, rmse_ideal (seconds), rmse_pnn_ticks, rmse_ideal_ticks,
 *                 ratio, floor_ticks, pnn_over_floor, pooled_floor_ticks, pnn_over_pooled_floor (per-layer floors from the
 *                 repeats pooled over the held-out set: deeper layers' readings also move with their inputs' jitter), e_plus_err, e_minus_err (relative, as fitted),
 *                 e_plus_err_per_theta, e_minus_err_per_theta (E / mean threshold scale against the truth's),
 *                 weak_drive_err / weak_drive_err_reversal_only / weak_drive_err_scalar_e (median |error| of the drive at
 *                 u = 0.5 the code mapping assumes, 15-90 codes weaker than the sweep codes, with the profile's reversal curve /
 *                 without its conductance shape beyond the sweep codes / with the scalars),
 *                 g_err_median, g_err_p95 (per-synapse conductance at the probe codes), tail_share (share of the
 *                 squared held-out error in the worst 1 % of pairs), rest_over_floor (RMSE of the other 99 % over
 *                 the floor), seconds (per chip) }
 *     averaged over dies (seeds) the fit never saw; the floor is sqrt(1/12 + jitter^2) ticks with the
 *     jitter estimated from repeated held-out readings (calibration/modelling-error.ts).
 *   spice: { backend, geometry, rmse_pnn, rmse_ideal, rmse_pnn_ticks, rmse_ideal_ticks, ratio, e_plus, seconds }
 *     table mode (SPICE-characterised, cached); no jitter, so its floor is the timer's 1/sqrt(12) tick.
 *
 * Both mocks are driven in process through the same probe and fit code the `calibrate` command
 * runs over a device link (calibration/backend-target.ts); the behavioural truth is read only here,
 * to score. Environment: CAL_GEOMETRY (default 32-16-8), CAL_SEEDS (default 101,202,303),
 * CAL_PROBE_SEED (the probe design's random patterns, default 1), CAL_SPICE=0 skips the SPICE mock,
 * CAL_ADAPTIVE (the adaptive round: 0 = none, the default; 1 = DEFAULT_ADAPTIVE, what
 * `calibrate --adaptive` runs; or configs,patterns,minTicksPerPermille), CAL_SWEEP_REPEATS (how many times
 * each single-synapse sweep is measured, default the probe plan's 3; `calibrate --sweep-repeats`),
 * CAL_PHYSICS (the behavioural die's transistors: sky130, the default, or ekv, the model-form die; a
 * sky130 die has a reversal potential per synapse, so its E+- truth is the die's mean over layer 0's
 * probe codes and its conductance truth the drain slope: calibration/truth-score.ts), CAL_GATE_REVERSAL (1: the
 * fit carries each transistor's E at its own gate, `calibrateChip`'s `gateReversal`; default 0 on the behavioural
 * dies, 1 on the SPICE die), CAL_ALL_PAIR_PARTNERS (1, the default: the PMOS pairs also against the NMOS sweep codes
 * other than the two references, `calibrateChip`'s `allPairPartners`; 0: the two references only).
 */
import { backendTarget } from '../calibration/backend-target.ts';
import { resolveAdaptive } from '../calibration/adaptive-patterns.ts';
import { calibrateChip, DEFAULT_ADAPTIVE, type AdaptiveOptions } from '../calibration/calibrate-chip.ts';
import { DEFAULT_PROBE_SIZES } from '../calibration/probe-plan.ts';
import { meanSensorReading } from '../calibration/sensor-reading.ts';
import { drivenInputs } from '../calibration/probe-run.ts';
import { scoreAgainstTruth, weakDriveError } from '../calibration/truth-score.ts';
import { BEHAVIORAL_PHYSICS, BehavioralChip, type BehavioralPhysics } from '../models/chips/behavioral-chip.ts';
import { createChip } from '../models/chips/index.ts';

const geometry = process.env.CAL_GEOMETRY ?? '32-16-8';
const seeds = (process.env.CAL_SEEDS ?? '101,202,303').split(',').map(Number);
// The behavioural die's transistor physics: sky130 (default, SPICE-characterised curves) or ekv (the model's form).
const physics = (process.env.CAL_PHYSICS ?? 'sky130') as BehavioralPhysics;
if (!BEHAVIORAL_PHYSICS.includes(physics)) throw new RangeError(`CAL_PHYSICS must be one of ${BEHAVIORAL_PHYSICS.join(', ')}, got ${process.env.CAL_PHYSICS}`);
const sizes = geometry.split('-').map(Number);
const probeSeed = Number(process.env.CAL_PROBE_SEED ?? 1);
if (!Number.isInteger(probeSeed) || probeSeed < 0) throw new RangeError(`CAL_PROBE_SEED must be a non-negative integer, got ${process.env.CAL_PROBE_SEED}`);
const adaptive = parseAdaptive(process.env.CAL_ADAPTIVE);
const sweepRepeats = Number(process.env.CAL_SWEEP_REPEATS ?? DEFAULT_PROBE_SIZES.sweepRepeats);
if (!Number.isInteger(sweepRepeats) || sweepRepeats < 1)
  throw new RangeError(`CAL_SWEEP_REPEATS must be an integer >= 1, got ${process.env.CAL_SWEEP_REPEATS}`);
const partnersRaw = process.env.CAL_ALL_PAIR_PARTNERS ?? '1';
if (partnersRaw !== '0' && partnersRaw !== '1') throw new RangeError(`CAL_ALL_PAIR_PARTNERS must be 0 or 1, got ${partnersRaw}`);
const allPairPartners = partnersRaw === '1';
const round = (x: number, d = 4) => Number(x.toPrecision(d));
const avg = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

function parseAdaptive(v: string | undefined): Partial<AdaptiveOptions> | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === '0') return { configs: 0 };
  if (v === '1') return { ...DEFAULT_ADAPTIVE };
  const parts = v.split(',').map(Number);
  if (parts.length !== 3) throw new RangeError(`CAL_ADAPTIVE must be 0, 1 or configs,patterns,minTicksPerPermille like 4,256,1.5, got ${v}`);
  const [configs, patterns, minTicksPerPermille] = parts;
  return resolveAdaptive({ configs, patterns, minTicksPerPermille });
}

/** Calibrates an in-process chip with the bench's settings, at the supply and temperature it reports (the mean of the reads `calibrate` takes). */
async function calibrateBackend(
  chip: Parameters<typeof backendTarget>[0] & { chipId: string },
  target = backendTarget(chip),
  gateReversal = gateReversalFor('0'),
) {
  const sup = await meanSensorReading(() => chip.supply());
  return calibrateChip(target, {
    seed: probeSeed,
    chipId: chip.chipId,
    temperatureC: sup.temperatureC,
    supplyV: sup.supplyV,
    adaptive,
    sizes: { sweepRepeats },
    gateReversal,
    allPairPartners,
  });
}

/** CAL_GATE_REVERSAL, or the mock's default. */
function gateReversalFor(fallback: '0' | '1'): boolean {
  const v = process.env.CAL_GATE_REVERSAL ?? fallback;
  if (v !== '0' && v !== '1') throw new RangeError(`CAL_GATE_REVERSAL must be 0 or 1, got ${v}`);
  return v === '1';
}

async function behavioural(): Promise<Record<string, unknown>> {
  const rows: Record<string, number>[] = [];
  for (const seed of seeds) {
    const t = performance.now();
    const chip = new BehavioralChip({ seed, sizes, physics });
    const target = backendTarget(chip);
    const res = await calibrateBackend(chip, target);
    const seconds = (performance.now() - t) / 1000;
    const driven = target.layers.map((_, l) => drivenInputs(target.layers, l));
    const score = scoreAgainstTruth(chip, res.profile, driven);
    const truthKeys: Record<string, number> = {
      e_plus: score.ePlus.fitted,
      e_plus_true: score.ePlus.truth,
      e_minus: score.eMinus.fitted,
      e_minus_true: score.eMinus.truth,
      e_plus_err: score.ePlus.relError,
      e_minus_err: score.eMinus.relError,
      e_plus_err_per_theta: score.ePlus.relErrorPerTheta,
      e_minus_err_per_theta: score.eMinus.relErrorPerTheta,
      g_err_median: score.conductance.median,
      g_err_p95: score.conductance.p95,
      weak_drive_err: weakDriveError(chip, res.profile, 'curve', driven),
      weak_drive_err_reversal_only: weakDriveError(chip, res.profile, 'reversal', driven),
      weak_drive_err_scalar_e: weakDriveError(chip, res.profile, 'scalar', driven),
    };
    rows.push({
      rmse_pnn: res.rmse.pnnSeconds,
      rmse_ideal: res.rmse.idealSeconds,
      rmse_pnn_ticks: res.rmse.pnnTicks,
      rmse_ideal_ticks: res.rmse.idealTicks,
      ratio: res.rmse.ratio,
      floor_ticks: res.noise.floorTicks,
      pnn_over_floor: res.rmse.pnnTicks / res.noise.floorTicks,
      pooled_floor_ticks: res.noise.pooledFloorTicks,
      pnn_over_pooled_floor: res.rmse.pnnTicks / res.noise.pooledFloorTicks,
      ...truthKeys,
      tail_share: res.tail.share,
      rest_over_floor: res.tail.rmseRestTicks / res.noise.pooledFloorTicks,
      probe_blocks: res.probes.blocks,
      seconds,
    });
    process.stderr.write(`behavioral seed ${seed}: ${JSON.stringify(rows.at(-1))}\n`);
  }
  const out: Record<string, unknown> = {
    backend: 'mock:behavioral',
    physics,
    geometry,
    seeds,
    probe_seed: probeSeed,
    adaptive: process.env.CAL_ADAPTIVE ?? '0',
    sweep_repeats: sweepRepeats,
    all_pair_partners: allPairPartners,
  };
  for (const k of Object.keys(rows[0])) out[k] = round(avg(rows.map((r) => r[k])));
  out.worst_pnn_over_floor = round(Math.max(...rows.map((r) => r.pnn_over_floor)));
  out.worst_pnn_over_pooled_floor = round(Math.max(...rows.map((r) => r.pnn_over_pooled_floor)));
  out.worst_e_plus_err = round(Math.max(...rows.map((r) => r.e_plus_err)));
  out.worst_e_minus_err = round(Math.max(...rows.map((r) => r.e_minus_err)));
  out.worst_g_err_median = round(Math.max(...rows.map((r) => r.g_err_median)));
  out.min_ratio = round(Math.min(...rows.map((r) => r.ratio)));
  out.worst_rest_over_floor = round(Math.max(...rows.map((r) => r.rest_over_floor)));
  return out;
}

async function spice(): Promise<Record<string, unknown>> {
  const t = performance.now();
  const chip = await createChip('spice', { seed: '3', mode: 'table' });
  try {
    const gateReversal = gateReversalFor('1');
    const res = await calibrateBackend(chip, backendTarget(chip), gateReversal);
    return {
      backend: 'mock:spice?seed=3&mode=table',
      gate_reversal: gateReversal,
      geometry: [chip.geometry[0].inputs, ...chip.geometry.map((g) => g.outputs)].join('-'),
      sweep_repeats: sweepRepeats,
      rmse_pnn: round(res.rmse.pnnSeconds),
      rmse_ideal: round(res.rmse.idealSeconds),
      rmse_pnn_ticks: round(res.rmse.pnnTicks),
      rmse_ideal_ticks: round(res.rmse.idealTicks),
      ratio: round(res.rmse.ratio),
      e_plus: round(res.globals.ePlus),
      e_minus: round(res.globals.eMinus),
      seconds: round((performance.now() - t) / 1000),
    };
  } finally {
    await chip.close?.();
  }
}

const result: Record<string, unknown> = { behavioral: await behavioural() };
if (process.env.CAL_SPICE !== '0') result.spice = await spice();
console.log(JSON.stringify(result));
