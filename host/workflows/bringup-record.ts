/** What `spikeloop bringup` (bringup.ts) records: steps, checks, probe codes, jitter, and the early stop. */

import type { SelfTestResult, StatusResponse } from '../../firmware-protocol/index.ts';
import type { MemoryPattern } from '../../calibration/probe-configs.ts';
import type { LayerDiagnosis, SynapseFlag } from './bringup-diagnosis.ts';

export type StepId = 'link' | 'protocol' | 'memory' | 'health' | 'neurons' | 'synapses' | 'jitter' | 'supply';

export const STEP_TITLES: Record<StepId, string> = {
  link: 'link and HELLO',
  protocol: 'protocol version',
  memory: 'weight memory write and CRC read-back',
  health: 'board self-test before driving the chip',
  neurons: 'every neuron fires',
  synapses: 'every synapse conducts',
  jitter: 'repeatability of identical runs',
  supply: 'supply and temperature',
};

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'skipped';

export interface CheckResult {
  step: StepId;
  title: string;
  status: CheckStatus;
  detail: string;
  seconds: number;
}

export interface BringupProgress {
  step: StepId;
  label: string;
  done: number;
  total: number;
}

export interface BringupOptions {
  signal?: AbortSignal;
  onProgress?: (p: BringupProgress) => void;
  /** One line per finished step (for people). */
  log?: (line: string) => void;
  /** Seed of the random memory pattern. Default 1. */
  seed?: number;
  /** Identical runs for the jitter check. Default 32. */
  jitterRepeats?: number;
  /** Largest acceptable timer jitter (rms, ticks). Default 2. */
  maxJitterTicks?: number;
  /**
   * Re-measure weak-PMOS candidates at a stronger gate code and keep only those a threshold shift
   * does not explain (bringup-recheck.ts). Default true; false gives the single-pair verdict.
   */
  shapeRecheck?: boolean;
}

export interface NeuronRef {
  layer: number;
  neuron: number;
  kind: 'dead' | 'stuck';
}

export interface ProbeCodes {
  full: number;
  /** NMOS base under the PMOS probes: slow, so the delay a PMOS adds spans many ticks. */
  n0: number;
  n1: number;
  n2: number;
  p1: number;
  p2: number;
  /** Shape re-check (only when a PMOS synapse was flagged weak): NMOS drive and the stronger PMOS code on it. */
  q?: number;
  p3?: number;
}

export interface JitterResult {
  repeats: number;
  /** Root-mean-square spread of a neuron's tick over identical runs, pooled over neurons that fired every time. */
  rmsTicks: number;
  /** Largest spread (max - min) of one neuron's tick. */
  maxSpreadTicks: number;
  /** Each tick minus its neuron's mean, for the histogram. */
  deviations: number[];
  neurons: number;
}

export interface BringupRecord {
  ok: boolean;
  /** Set when the run stopped before the end: the step and why. */
  stoppedEarly?: { step: StepId; reason: string };
  device: {
    uri: string;
    chipId?: string;
    firmware?: string;
    boardId?: string;
    protocol?: number;
    minProtocol?: number;
    negotiatedProtocol?: number;
    geometry?: number[];
    features?: string[];
    tickSeconds?: number;
  };
  checks: CheckResult[];
  memory: { pattern: MemoryPattern | 'off'; layer: number; ok: boolean; detail: string }[];
  neurons: NeuronRef[];
  codes?: ProbeCodes;
  layers: LayerDiagnosis[];
  synapses: SynapseFlag[];
  jitter?: JitterResult;
  status?: { before?: StatusResponse; after?: StatusResponse };
  selfTest?: SelfTestResult[];
  alerts: { kind: string; value: number; text: string }[];
  /** Fault tokens in the `faults=` grammar of the behavioural chip (models/chips/faults.ts). */
  dead_neurons: string[];
  bad_synapses: string[];
  jitter_ticks: number | null;
  seconds: number;
}

/** Thrown inside the workflow to stop early; becomes record.stoppedEarly. */
export class StopEarly extends Error {
  constructor(
    readonly step: StepId,
    message: string,
  ) {
    super(message);
  }
}

export type Check = (step: StepId, status: CheckStatus, detail: string) => void;
export type Tick = (done: number, total: number) => void;
