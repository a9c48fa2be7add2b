/**
 * The seam between a network's layers and the three solvers of docs/MODEL.md §5.
 *
 * A layer hands the solver either its dense parameters (`dense`) or, for solvers that work on a
 * time grid, the per-bin drives it computed itself (`fromDrives`): that second path lets a layer
 * with any connectivity (dense, event-driven, convolutional) reuse the solver's crossing step
 * without the solver knowing how the drives were formed. Both paths are differentiable with
 * respect to everything the layer passes in.
 */

import * as tf from '@tensorflow/tfjs-core';
import { dstdDense, spikeTimesFromDrives } from '../solvers/dstd.ts';
import { eulerDense } from '../solvers/euler.ts';
import { finishTimes, type DenseLayerTensors, type LayerSpikes } from '../solvers/spike-tensors.ts';
import { exactDenseOp } from './exact-op.ts';

export type SolverName = 'dstd' | 'euler' | 'exact';
export const SOLVER_NAMES: readonly SolverName[] = ['dstd', 'euler', 'exact'];

export interface DenseCallOptions {
  /** Gradients with respect to the input times are needed (false for the network's first layer). */
  inputGrad?: boolean;
  /**
   * Grid solvers: bins (steps) over [0, horizon] for this call, when the layer extends its grid
   * beyond the solver's resolution (layer.ts, layerGrid). Default: the solver's resolution.
   */
  bins?: number;
}

export interface SpikeSolver {
  readonly name: SolverName;
  /** Bins per layer (DSTD) or steps per layer (Euler); undefined for the exact solver. */
  readonly resolution?: number;
  /** What createSolver(name, options) rebuilds this solver from (another thread's copy of it). */
  readonly options?: SolverOptions;
  /** A dense layer: input times [B, N_in] (+Infinity = silent) to spikes (times clamped at the horizon, mask). */
  dense(p: DenseLayerTensors, inputTimes: tf.Tensor2D, opts?: DenseCallOptions): LayerSpikes;
  /**
   * Grid solvers only: spikes from per-bin conductance G and drive A, both [B, M, N] with M equal
   * bins over [0, horizon] (M = resolution, or more when the layer extended its grid). theta =
   * firing levels [N].
   */
  fromDrives?(G: tf.Tensor3D, A: tf.Tensor3D, theta: tf.Tensor1D, horizon: number, delay?: tf.Tensor1D): LayerSpikes;
}

export interface SolverOptions {
  /** DSTD bins per layer (default 16). */
  bins?: number;
  /** Euler steps per layer (default 256). */
  eulerSteps?: number;
  /**
   * DSTD: lower bound on du/dt at a crossing in the backward pass, as a fraction of 1/span
   * (default 1e-3), span = resolution bins' width (the horizon unless the grid was extended).
   */
  minSlope?: number;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

export function dstdSolver(bins = 16, minSlope = 1e-3): SpikeSolver {
  positiveInt('bins', bins);
  return {
    name: 'dstd',
    resolution: bins,
    options: { bins, minSlope },
    dense: (p, x, o) => {
      const m = o?.bins ?? bins;
      positiveInt('bins', m);
      return dstdDense(p, x, { bins: m, minSlope: minSlope / ((p.horizon / m) * bins) });
    },
    fromDrives: (G, A, theta, horizon, delay) => {
      const dt = horizon / G.shape[1];
      const [times, mask] = tf.tidy(() => {
        const raw = spikeTimesFromDrives(G, A, theta, { dt, minSlope: minSlope / (dt * bins) });
        const out = finishTimes(raw, horizon, delay);
        return [out.times, out.mask];
      });
      return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
    },
  };
}

export function eulerSolver(steps = 256): SpikeSolver {
  positiveInt('eulerSteps', steps);
  return {
    name: 'euler',
    resolution: steps,
    options: { eulerSteps: steps },
    dense: (p, x, o) => eulerDense(p, x, { steps: positiveInt('steps', o?.bins ?? steps) }),
  };
}

export function exactSolver(): SpikeSolver {
  return { name: 'exact', dense: (p, x, o) => exactDenseOp(p, x, { inputGrad: o?.inputGrad ?? true }) };
}

export function createSolver(name: SolverName, opts: SolverOptions = {}): SpikeSolver {
  switch (name) {
    case 'dstd':
      return dstdSolver(opts.bins ?? 16, opts.minSlope ?? 1e-3);
    case 'euler':
      return eulerSolver(opts.eulerSteps ?? 256);
    case 'exact':
      return exactSolver();
    default:
      throw new RangeError(`unknown solver '${String(name)}'; use one of ${SOLVER_NAMES.join(', ')}`);
  }
}
