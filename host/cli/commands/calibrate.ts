/** `spikeloop calibrate`: fit a chip's PNN parameters from probe measurements and write its profile. */
import { z } from 'zod';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { deviceOption, flag, intOption, timeoutOption, stringOption, workersOption } from '../common-options.ts';
import { ChipDevice } from '../../device/chip-device.ts';
import { createProgress } from '../../ui/progress.ts';
import { PROFILE_FILE, runCalibrateWorkflow } from '../../workflows/calibrate.ts';
import { checkInputFile, PROFILE_FILE_FIX } from '../../workflows/input-file.ts';
import { checkOutWritable } from '../../runs/out-path.ts';
import path from 'node:path';
import { MAX_CAP_SLOPE } from '../../../models/solvers/sloped-membrane.ts';

export const name = 'calibrate';
export const summary = 'probe a chip, fit its PNN parameters (E+, E-, thresholds, delays, per-transistor curves) and write its profile';
export const description =
  'Probes every layer (code scans, single-synapse sweeps of NMOS and PMOS rows, sparse and dense E/I patterns, and a held-out set ' +
  'never used by the fit; deeper layers through identity relays), fits the bottom-up PNN and the ideal top-down model to the same ' +
  'measurements with Levenberg-Marquardt, and scores both on the held-out set. Writes DIR/profile.slp (versioned, validated, written ' +
  'atomically), DIR/calibration.json, DIR/report.html (predicted-vs-measured, per-neuron residuals, calibration curves) and DIR/record.json. ' +
  '--quick refits only the global parameters (E+, E-, timer offset; the kicks are kept) of an existing profile against drift: DIR/profile.slp is ' +
  'updated in place, or --profile PATH is read and a new DIR written. --layers limits a full calibration to some layers (the others ' +
  'keep nominal placeholders). The --json line carries rmse_pnn and rmse_ideal in seconds (and *_ticks), ratio and profile.';
export const examples = [
  "spikeloop calibrate --device 'mock:behavioral?seed=7&geometry=32-16-8' --out runs/cal-7",
  "spikeloop calibrate --device 'mock:behavioral?seed=7&geometry=32-16-8' --out runs/cal-7 --quick",
  "spikeloop calibrate --device 'mock:spice?seed=3&mode=table' --out runs/cal-spice --json",
  "spikeloop calibrate --device 'mock:spice?seed=3&mode=table' --out runs/cal-spice-c --gate-reversal --cap-slope spice",
  'spikeloop calibrate --device serial:/dev/ttyACM0 --out runs/chip-a --layers 2',
];

export const options = {
  device: deviceOption,
  out: {
    type: 'string',
    placeholder: 'DIR',
    description: 'run folder: new (must be empty or missing), or with --quick the folder of an earlier calibration',
    schema: z.string({ error: 'is required: the run folder, e.g. --out runs/cal-1' }).min(1, 'must not be empty'),
  },
  quick: flag('refit only the global parameters of an existing profile (drift); seconds, not minutes'),
  profile: stringOption('with --quick: the profile to start from (default DIR/profile.slp)', 'PATH'),
  layers: {
    type: 'string',
    placeholder: 'L[,L...]',
    description: 'layers to calibrate, comma separated, e.g. 0,1 (default all)',
    schema: z
      .string()
      .regex(/^\d+(,\d+)*$/, 'expected comma-separated layer indices like 0,1')
      .transform((v) => v.split(',').map(Number))
      .optional(),
  },
  seed: intOption('seed of the probe patterns (default 1)', 0, 2 ** 31 - 1),
  sweepRepeats: intOption(
    'how many times each single-synapse sweep is measured (default 3): fewer is faster, more pins the conductances closer for patterns that end near threshold',
    1,
    16,
  ),
  adaptive: flag(
    'after the first fit, measure 4 x 256 random patterns per layer and refit with those the model predicts to creep up to threshold (fewer large held-out errors when the model form is exact; slightly worse on the SPICE mock)',
  ),
  gateReversal: flag(
    "fit each transistor's reversal potential at its own effective gate, shaped by the sky130 card's E(Vg) and anchored by the fitted E+ and E- (sky130 dies: on SPICE dies it lowered the held-out error where an input's NMOS and PMOS rows nearly cancel); the profile records it and --quick keeps it",
  ),
  referencePairsOnly: flag(
    'measure each PMOS code against the two reference NMOS codes only, not against every NMOS sweep code: about a fifth fewer blocks, a larger held-out error on patterns that pair a PMOS code with another NMOS code',
  ),
  capSlope: {
    type: 'string',
    placeholder: 'spice|K[,K...]',
    description:
      "the membrane capacitance's slope per unit of u the fit carries, C(u) = C(0) (1 + K u): spice characterises the nominal sky130 array at the measured supply and temperature (SPICE, cached), or give one K per layer; the fitted E+ and E- are then the transistors' own (default: constant C)",
    schema: z
      .string()
      .regex(/^(spice|-?\d*\.?\d+(e-?\d+)?(,-?\d*\.?\d+(e-?\d+)?)*)$/, 'expected spice, or one slope per layer like 0.0015,0.005')
      .transform((v) => (v === 'spice' ? ('spice' as const) : v.split(',').map(Number)))
      .refine(
        (v) => v === 'spice' || v.every((k) => Math.abs(k) < MAX_CAP_SLOPE),
        `each slope must lie within (-${MAX_CAP_SLOPE}, ${MAX_CAP_SLOPE}) per unit of u (the arrays measured are near 0.005)`,
      )
      .optional(),
  },
  timeout: timeoutOption,
  workers: workersOption,
} satisfies OptionsSpec;

export function check(o: ParsedOptions<typeof options>): string | undefined {
  if (o.profile && !o.quick) return '--profile goes with --quick (a full calibration starts from nothing)';
  if (o.layers && o.quick) return '--layers goes with a full calibration; --quick refits the globals of every calibrated layer';
  if (o.adaptive && o.quick) return '--adaptive goes with a full calibration; --quick refits only the globals';
  if (o.sweepRepeats !== undefined && o.quick) return '--sweep-repeats goes with a full calibration; --quick measures no sweeps';
  if (o.gateReversal && o.quick) return '--gate-reversal goes with a full calibration; --quick keeps what the profile was fitted with';
  if (o.capSlope && o.quick) return '--cap-slope goes with a full calibration; --quick keeps the slope the profile was fitted with';
  if (o.referencePairsOnly && o.quick) return '--reference-pairs-only goes with a full calibration; --quick measures no sweeps';
  return undefined;
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  // The run folder's place and the profile to start from are checked before the device is opened.
  checkOutWritable(o.out);
  if (o.quick)
    checkInputFile(
      '--profile',
      o.profile ?? path.join(o.out, PROFILE_FILE),
      o.profile
        ? PROFILE_FILE_FIX
        : `--quick refits the profile of an earlier calibration in --out ${o.out}; give that folder, or the profile with --profile FILE`,
    );
  const device = await ChipDevice.open(o.device, o.timeout ? { timeouts: { HELLO: o.timeout, RUN: o.timeout, WEIGHTS_WRITE: o.timeout } } : {});
  try {
    const n = device.info.layers.length;
    for (const l of o.layers ?? []) {
      if (l >= n) throw new RangeError(`--layers ${l}: the chip has layers 0..${n - 1}`);
    }
    let bar: ReturnType<typeof createProgress> | undefined;
    let stage = '';
    const summary = await runCalibrateWorkflow(device, {
      out: o.out,
      quick: o.quick,
      profile: o.profile,
      layers: o.layers,
      seed: o.seed,
      adaptive: o.adaptive,
      workers: o.workers,
      sizes: o.sweepRepeats !== undefined ? { sweepRepeats: o.sweepRepeats } : undefined,
      fit: { gateReversal: o.gateReversal === true, allPairPartners: o.referencePairsOnly !== true },
      ...(o.capSlope ? { capSlope: o.capSlope } : {}),
      signal: ctx.signal,
      print: ctx.print,
      deviceUri: o.device,
      onProgress: (s, done, total) => {
        if (s !== stage) {
          bar?.finish();
          stage = s;
          bar = createProgress({ total, label: s, unit: 'steps' });
        }
        bar!.update(done);
      },
    });
    bar?.finish();
    return { ...summary };
  } finally {
    await device.close();
  }
}
