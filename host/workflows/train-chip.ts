/**
 * Training for a chip: the chip a `--profile` records or a `--device` announces, and whether a
 * network of the run's settings fits it (widths, inputs, outputs), naming the flag that fixes it.
 */

import { loadChipProfile, type ChipProfile } from '../../calibration/chip-profile.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { checkInputFile, PROFILE_FILE_FIX } from './input-file.ts';
import type { Preset } from '../../models/training/presets.ts';
import { compileArchitecture, describeArch, type Architecture } from '../../models/network/arch.ts';
import type { TrainWorkflowOptions } from './train-options.ts';

/** A chip to train for: what a profile records or a device announces in HELLO. */
export interface ChipTarget {
  /** Where the chip was read, for messages: "profile runs/cal/profile.slp" or "device mock:...". */
  source: string;
  chipId: string;
  layers: { inputs: number; outputs: number; horizonTicks: number }[];
  /** Calibrated reversal potentials (a profile's); the nominal ones when absent. */
  ePlus?: number;
  eMinus?: number;
  /** The calibration itself, when the chip was read from a profile: its neurons' firing levels and delays (`chipNeuronLevels`). */
  profile?: ChipProfile;
}

/** A network that cannot be trained for the chip as asked: what differs and the flag that fixes it. */
export class ChipFitError extends Error {
  override name = 'ChipFitError';
}

/**
 * The chip `--profile FILE` records or `--device URI` announces (HELLO only: the device is opened,
 * read and closed). Throws with the flag named when the file or the device cannot be read.
 */
export async function chipTarget(o: { profile?: string; device?: string }): Promise<ChipTarget | undefined> {
  if (o.profile !== undefined) {
    checkInputFile('--profile', o.profile, PROFILE_FILE_FIX);
    let p: ChipProfile;
    try {
      p = await loadChipProfile(o.profile);
    } catch (err) {
      throw new ChipFitError(`--profile ${o.profile}: ${(err as Error).message.replace(`${o.profile}: `, '')}; ${PROFILE_FILE_FIX}`);
    }
    return {
      source: `profile ${o.profile}`,
      chipId: p.chipId,
      layers: p.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, horizonTicks: l.horizonTicks })),
      ePlus: p.global.ePlus,
      eMinus: p.global.eMinus,
      profile: p,
    };
  }
  if (o.device !== undefined) {
    const device = await ChipDevice.open(o.device);
    try {
      const info = device.info;
      return {
        source: `device ${o.device}`,
        chipId: info.chipId,
        layers: info.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, horizonTicks: l.horizonTicks })),
      };
    } finally {
      await device.close();
    }
  }
  return undefined;
}

/** The layer sizes a run trains: inputs (the data's, plus an appended reference input), hidden widths, classes. */
export function networkSizes(
  opts: TrainWorkflowOptions,
  preset: Preset,
  features: number,
  classes: number,
): { sizes: number[]; biasSpike?: number; biasReplaces?: number } {
  if (opts.arch) return { sizes: archSizes(opts.arch, features, classes) };
  const hidden = opts.chip ? opts.chip.layers.slice(0, -1).map((l) => l.outputs) : (opts.layers ?? preset.layers);
  const biasSpike = opts.referenceSpike === null ? undefined : (opts.referenceSpike ?? preset.biasSpike);
  const biasReplaces = biasSpike === undefined || opts.referenceReplaces === null ? undefined : (opts.referenceReplaces ?? preset.biasReplaces);
  if (biasReplaces !== undefined && !(biasReplaces < features)) {
    throw new RangeError(
      `--reference-replaces ${biasReplaces}: the data have features 0..${features - 1}; name one of them, or none to append the reference input`,
    );
  }
  const sizes = [features + (biasSpike === undefined || biasReplaces !== undefined ? 0 : 1), ...hidden, classes];
  return { sizes, ...(biasSpike !== undefined ? { biasSpike } : {}), ...(biasReplaces !== undefined ? { biasReplaces } : {}) };
}

/** The widths of an architecture (--arch), checked against the data: its input image holds the features, its last layer the classes. */
export function archSizes(arch: Architecture, features: number, classes: number): number[] {
  const sizes = compileArchitecture(arch).sizes;
  const { height, width, channels } = arch.input;
  if (sizes[0] !== features)
    throw new RangeError(
      `--arch takes ${height}x${width}x${channels} = ${sizes[0]} input values, but the data have ${features} features: use an architecture whose input is the data's image (e.g. mnist-conv for MNIST and Fashion-MNIST, cifar-vgg5 for CIFAR-10)`,
    );
  const last = arch.layers.at(-1)!;
  if (last.type !== 'dense' || last.units !== classes)
    throw new RangeError(
      `--arch ends in ${last.type === 'dense' ? `${last.units} output neurons` : `a ${last.type} entry`}, but the data have ${classes} classes: end it with a dense layer of ${classes} units`,
    );
  return sizes;
}

/** Why a network of the run's settings cannot be trained for the chip (flag and fix named), or undefined. */
export function chipFitProblem(opts: TrainWorkflowOptions, preset: Preset, features: number, classes: number, dataName: string): string | undefined {
  const chip = opts.chip;
  if (!chip) return undefined;
  if (opts.arch) return archChipFitProblem(opts.arch, chip, features, classes);
  const hidden = chip.layers.slice(0, -1).map((l) => l.outputs);
  const of = `the chip of ${chip.source} (${chip.chipId}, ${[chip.layers[0]!.inputs, ...chip.layers.map((l) => l.outputs)].join('-')})`;
  if (opts.layers && opts.layers.join(',') !== hidden.join(',')) {
    return `--layers ${opts.layers.join(',')} asks for hidden layers ${opts.layers.join('-')}, but ${of} has ${hidden.length ? hidden.join('-') : 'none'}: a network for a chip takes the chip's widths, so drop --layers`;
  }
  if (hidden.length === 0) return `${of} has a single layer; a network trained here needs at least one hidden layer: train for a chip with two or more layers`;
  const { sizes, biasSpike, biasReplaces } = networkSizes(opts, preset, features, classes);
  const inputs = chip.layers[0]!.inputs;
  if (sizes[0]! > inputs) {
    const ref = biasSpike !== undefined && biasReplaces === undefined;
    return `${dataName} needs ${sizes[0]} inputs (${features} features${ref ? ' and the reference input' : ''}), but ${of} has ${inputs}: ${ref && features <= inputs ? 'pass --reference-replaces K to put the reference spike in place of feature K, or --reference-spike none' : 'train for a chip with more inputs'}`;
  }
  const outputs = chip.layers.at(-1)!.outputs;
  if (classes > outputs)
    return `${dataName} has ${classes} classes, but ${of} has ${outputs} output neurons: train for a chip with at least ${classes} outputs`;
  return undefined;
}

/**
 * Why an architecture cannot be trained for the chip: a conv layer runs on a crossbar as its
 * unrolled (Toeplitz) layer, so every unrolled layer must fit the chip's array, and pooling has no
 * crossbar form. The message names the chip geometry that would hold the network.
 */
function archChipFitProblem(arch: Architecture, chip: ChipTarget, features: number, classes: number): string | undefined {
  const sizes = archSizes(arch, features, classes);
  const of = `the chip of ${chip.source} (${chip.chipId}, ${[chip.layers[0]!.inputs, ...chip.layers.map((l) => l.outputs)].join('-')})`;
  if (arch.layers.some((e) => e.type === 'pool'))
    return `--arch ${describeArch(arch)} pools, and earliest-spike pooling has no crossbar form: for a chip use strided conv entries instead of conv + pool (e.g. --arch mnist-conv-s2)`;
  const fits = sizes.length - 1 === chip.layers.length && chip.layers.every((c, l) => sizes[l]! <= c.inputs && sizes[l + 1]! <= c.outputs);
  if (!fits)
    return `--arch ${describeArch(arch)} unrolls to layers ${sizes.join('-')}, which ${of} does not hold: train for a chip of geometry ${sizes.join('-')} or larger in every layer (e.g. --device 'mock:behavioral?geometry=${sizes.join('-')}')`;
  return undefined;
}
