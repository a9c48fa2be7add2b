/** What `spikeloop demo` runs when no flag says otherwise, its options and the summary it returns. */

import os from 'node:os';
import type { ProbeSizes } from '../../calibration/probe-plan.ts';
import { REST_SHIFT_VOLTS } from '../../calibration/calibrate-chip.ts';
import type { DeviceInfo } from '../device/chip-device.ts';
import type { ProgressStream } from '../ui/progress.ts';
import type { CalibrateWorkflowOptions } from './calibrate.ts';

/**
 * Layers with at most this many inputs are calibrated by default: every layer of the reference
 * 784-256-128-10 chip. Leaving its first layer on nominal curves saves about 90 s but costs the
 * Fashion-MNIST network most of its accuracy on the chip (10-38 % instead of about 38 % deployed).
 */
export const CALIBRATE_MAX_INPUTS = 1024;

/**
 * Networks fine-tuned on the chip by default: Fashion-MNIST when the demo trains it, where the loop has the most to win:
 * once the chip is calibrated, Iris deploys at its twin's accuracy, and a 45-sample test set
 * makes a few more epochs on it noise.
 */
export function defaultFinetune(fashionTrained: boolean): DemoDataset[] {
  return fashionTrained ? ['fashion-mnist'] : ['iris'];
}

/**
 * Probe sizes of the demo's calibration: fewer and shorter pattern sets than `spikeloop calibrate`
 * (2 E/I configurations of 32 patterns, 1 excite-then-inhibit, 32 held out, against 3 x 96, 2 and
 * 64) and each single-synapse sweep read once instead of three times. The fit, not the probing, is
 * what costs, and it grows with the observations per synapse: on a 784-64-10 die (seed 1) these sizes
 * with DEMO_FIT took 58 CPU s for the whole calibration against 183 s with three readings, two more
 * precharge steps and the wide layer polished, at a held-out PNN RMSE of 0.60 against 0.49 ticks
 * (floor 0.39); docs/RESULTS.md has the figures and what the deployment loses.
 */
export const DEMO_PROBE_SIZES: Partial<ProbeSizes> = { patternConfigs: 2, eiConfigs: 1, patternsPerConfig: 32, heldOutPatterns: 32, sweepRepeats: 1 };

/**
 * How much the demo's calibration fits: the joint per-transistor polish only on layers of at most 64
 * driven inputs (on the 784-input layer it was a third of the fit's CPU time), and two of calibration's
 * four precharge steps (REST_SHIFT_VOLTS; they pin E+, and the network is trained with the fitted value
 * either way). The top one is calibration's top step, which every die's supply allows: a higher step is
 * skipped on dies whose supply is low, and the fitted E+ then depends on the die's supply draw. The PMOS
 * pairs against the two reference NMOS codes only (`allPairPartners` false): the others, and the refit they
 * take, made the demo's calibration a third to a half longer for no better deployment (docs/RESULTS.md).
 */
export const DEMO_FIT = { polishMaxInputs: 64, restShiftVolts: [REST_SHIFT_VOLTS[1]!, REST_SHIFT_VOLTS.at(-1)!], allPairPartners: false } as const;

/**
 * Layer widths of the demo's own mock chip (no --device). Calibration's cost grows with neurons x
 * inputs and most of it is the 784-input first layer: 64 first-layer neurons instead of the
 * reference chip's 256 (and one layer fewer) make every stage several times cheaper, and on
 * Fashion-MNIST a 784-64-10 network still reaches 80 % in seconds of training (docs/RESULTS.md).
 */
export const DEMO_GEOMETRY = '784-64-10';

/** What `spikeloop demo` runs when no flag says otherwise (the CLI's defaults); docs/RESULTS.md has what each costs. */
export const DEMO_DEFAULTS = {
  // Iris is off by default: 11 CPU s of a three-minute budget for a figure nobody doubts, and on
  // sky130-physics dies its calibrated deployment left most test samples silent (docs/RESULTS.md).
  irisEpochs: 0,
  fashionTrain: 20_000,
  fashionTest: 1000,
  fashionEpochs: 2,
  finetuneTrain: 2000,
  // Two epochs: the keep rule takes the better of them when both pass (docs/RESULTS.md, issue #30 keep rule).
  finetuneEpochs: 2,
} as const;

/**
 * Fashion-MNIST validation images of the fine-tuning, from training images outside the twin's subset (or, when the
 * twin took nearly all, carved from the fine-tuning's, added to finetuneTrain): the device's predictions on them at the deployment and after each epoch decide the state kept (the deployment
 * unless an epoch's paired gain passes the sign test, host/workflows/finetune-keep.ts). 500 resolved about 1.7
 * points: a +1.8-point epoch (+17/-8 samples) did not pass; with images the twin never saw, 2000 left epochs
 * about 0.5 points up unresolved on three of three dies, 5000 resolve them on three of four (docs/RESULTS.md).
 * A device pass is a forward run only: the 5000 cost about 5 s of the demo.
 */
export const DEMO_FINETUNE_VAL = 5000;

/** Twin batch size and Adam rate on images (see trainTwin). */
export const DEMO_IMAGE_BATCH = 32;
export const DEMO_IMAGE_LR = 0.02;

export type DemoDataset = 'iris' | 'fashion-mnist';

export interface DemoOptions {
  device: string;
  out: string;
  /** Seed of network initialisation, data split, batch order and probe patterns. */
  seed: number;
  /** Twin epochs on Iris; 0 skips Iris. */
  irisEpochs: number;
  /**
   * The Fashion-MNIST subset (training and test samples), its twin epochs and, optionally, the training
   * images in-situ fine-tuning sees (default: the twin's subset); null skips Fashion-MNIST.
   */
  fashion: { train: number; test: number; epochs: number; finetuneTrain?: number } | null;
  /** In-situ fine-tuning epochs, and of which networks (default Iris). */
  finetuneEpochs: number;
  finetune?: DemoDataset[];
  /** Layers to calibrate (default: every layer with at most CALIBRATE_MAX_INPUTS inputs). */
  calibrateLayers?: number[];
  /** Probe sizes of the calibration (default DEMO_PROBE_SIZES). */
  calibrationSizes?: Partial<ProbeSizes>;
  /** How much the calibration fits (default DEMO_FIT; {} = all of it, as `spikeloop calibrate`). */
  calibrationFit?: CalibrateWorkflowOptions['fit'];
  /** Identical runs of bring-up's jitter check (default 32). */
  jitterRepeats?: number;
  /** Worker threads for the calibration's per-neuron fits and the twin's training steps (default: the cores available). */
  workers?: number;
  signal?: AbortSignal;
  print(line: string): void;
  warn?(line: string): void;
  /** Where progress bars go (default stderr). */
  progress?: ProgressStream;
}

export interface DemoNetworkResult {
  dataset: DemoDataset;
  sizes: number[];
  train_samples: number;
  test_samples: number;
  epochs: number;
  twin_acc: number;
  /** Device test accuracy through the nominal curves (uncalibrated) and the profile's. */
  deployed_nominal_acc: number;
  deployed_acc: number;
  /**
   * Test samples with no output spike at all on the device (each counts as wrong), through the
   * nominal and the calibrated curves: tells a chip left silent by the mapping from one that fires
   * the wrong class.
   */
  deployed_nominal_no_spike: number;
  deployed_no_spike: number;
  clipped_synapses: number;
  /** After in-situ fine-tuning, measured on the device; null when the network was not fine-tuned. */
  finetuned_acc: number | null;
  finetuned_twin_acc: number | null;
  network: string;
}

export interface DemoSummary {
  device: string;
  chip_id: string;
  /** The transistor physics of the chip (describeChipPhysics; 'silicon' for a serial device). */
  chip_physics: string;
  seed: number;
  backend: string;
  geometry: string;
  bringup_ok: boolean;
  calibrated_layers: number[];
  calibration: { rmse_pnn: number; rmse_ideal: number; rmse_pnn_ticks: number; rmse_ideal_ticks: number };
  networks: DemoNetworkResult[];
  /** The headline network's figures (the first fine-tuned one, else Iris), at the top level for scripts. */
  headline: DemoDataset;
  twin_acc: number;
  deployed_nominal_acc: number;
  deployed_acc: number;
  finetuned_acc: number | null;
  /** Wall and CPU seconds per stage (CPU: this process, every thread). */
  stages: { stage: string; seconds: number; cpu_seconds: number; result: string }[];
  seconds: number;
  cpu_seconds: number;
  /** The whole run, wall seconds (= seconds), and the process's peak resident memory in MB (every thread). */
  demo_s: number;
  demo_peak_rss_mb: number;
  workers: number;
  profile: string;
  report: string;
  [key: string]: unknown;
}

/** Default calibration subset: the layers narrow enough to calibrate within the demo's budget. */
export function defaultCalibrationLayers(info: DeviceInfo): number[] {
  const small = info.layers.flatMap((l, k) => (l.inputs <= CALIBRATE_MAX_INPUTS ? [k] : []));
  return small.length ? small : [info.layers.length - 1];
}

/** Peak resident memory of this process so far, MB (maxRSS covers every thread, so a worker pool's too). */
export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export function workersOf(o: DemoOptions): number {
  return o.workers ?? os.availableParallelism();
}

export function settingsOf(o: DemoOptions): Record<string, unknown> {
  return {
    seed: o.seed,
    iris_epochs: o.irisEpochs,
    fashion: o.fashion,
    finetune_epochs: o.finetuneEpochs,
    finetune: o.finetune ?? defaultFinetune(o.fashion !== null),
    calibrate_layers: o.calibrateLayers ?? 'default',
    calibration_sizes: o.calibrationSizes ?? DEMO_PROBE_SIZES,
    calibration_fit: o.calibrationFit ?? DEMO_FIT,
    workers: workersOf(o),
  };
}

export function label(d: DemoDataset): string {
  return d === 'iris' ? 'Iris' : 'Fashion-MNIST subset';
}
