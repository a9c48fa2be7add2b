import type { CvPart } from '../../models/datasets/cross-validation.ts';
import type { Architecture } from '../../models/network/arch.ts';
import type { NeuronModel } from '../../models/neuron/layer.ts';
import type { SolverName } from '../../models/network/solver.ts';
import type { LrSchedule } from '../../models/training/trainer.ts';
import type { ProgressStream } from '../ui/progress.ts';
import type { ChipTarget } from './train-chip.ts';

export interface TrainWorkflowOptions {
  dataset: string;
  model: NeuronModel;
  solver: SolverName;
  /** Hidden layer widths; preset when absent. */
  layers?: number[];
  /** A network description with conv layers (--arch; models/network/arch.ts) instead of widths; saved in the network file. */
  arch?: Architecture;
  /** With arch: pixels of 0 spike at the end of the input window ('spike', archConfig's default) or never ('silent'). */
  zeros?: 'spike' | 'silent';
  bins: number;
  eulerSteps?: number;
  epochs?: number;
  seed: number;
  out: string;
  lr?: number;
  batchSize?: number;
  limitTrain?: number;
  limitTest?: number;
  fromAnn: boolean;
  /** Stratified K-fold cross-validation (2..20) over the pooled train and test parts, SNN flow only. */
  cv?: number;
  /** What `cv` pools: every sample (default) or the training part only (the test part unseen). */
  cvPart?: CvPart;
  tauSoft?: number;
  /**
   * A reference input spiking at this time in every sample (NetworkConfig.biasSpike): the network
   * takes one input more than the data has. null = none; absent = the preset's choice.
   */
  referenceSpike?: number | null;
  /**
   * The data feature the reference spike replaces (NetworkConfig.biasReplaces), keeping the data's
   * width; null = appended as an input more; absent = the preset's choice.
   */
  referenceReplaces?: number | null;
  /** Loss: hidden neurons firing for at most this fraction of a batch count as dead. */
  deadRate?: number;
  /** Loss: weight of the window term. */
  windowWeight?: number;
  /** Loss: silent outputs enter the cross-entropy after the horizon, this many windows per threshold short (LossConfig.silentScale; 0 = clamped). */
  silentScale?: number;
  /** Loss: the membrane the dead-neuron term pushes (LossConfig.deadMembrane): the ideal-limit rest potential or the model's own. */
  deadMembrane?: 'ideal' | 'model';
  /** Loss: what the dead-neuron term is a mean over (LossConfig.deadMean); absent = the preset's. */
  deadMean?: 'selected' | 'batch';
  schedule?: LrSchedule;
  /** Decay of the moving average of the weights (TrainOptions.averageDecay); 0 = off; absent = the preset's. */
  averageDecay?: number;
  /** Gaussian noise on the training batches' scaled features (TrainOptions.inputNoise); 0 = off; absent = the preset's. */
  inputNoise?: number;
  /** Decoupled weight decay (TrainOptions.weightDecay); 0 = off; absent = the preset's. */
  weightDecay?: number;
  /** Relative noise on the conductances during training (TrainOptions.weightNoise); 0 = off; absent = the preset's chipWeightNoise when training for a chip, else 0. */
  weightNoise?: number;
  /** Worker threads for the training steps (TrainOptions.workers); absent = 1. */
  workers?: number;
  /**
   * Train for this chip (chipTarget): its hidden widths, its layer windows as the twin's horizons
   * (chipTimeBase) and, from a profile, its calibrated reversal potentials.
   */
  chip?: ChipTarget;
  /** The command line, for the run record. */
  args?: string[];
  signal?: AbortSignal;
  print(line: string): void;
  /** Where the progress bar goes (default stderr). */
  progress?: ProgressStream;
}

export interface TrainSummary {
  test_acc: number;
  train_acc: number;
  epochs: number;
  samples_per_s: number;
  backend: string;
  [key: string]: unknown;
}
