/**
 * The ANN-to-IMC search: map a trained ReLU network onto the ideal spiking model with a few values
 * of slack (which decides whether neurons with negative pre-activation fire late or stay silent),
 * keep the best on a selection set, then search the PNN's current scale, at the nominal reversal
 * potentials and over the operating points a chip can be set to (docs/MODEL.md §10).
 */

import { NOMINAL_CIRCUIT } from '../chips/sky130-nominal.ts';
import type { DatasetPart } from '../datasets/types.ts';
import { reversalPotentials } from '../neuron/units.ts';
import { NOMINAL_REVERSAL, type SpikingNetwork } from '../network/network.ts';
import { createSolver, type SpikeSolver } from '../network/solver.ts';
import { evaluateNetwork } from '../training/evaluate.ts';
import { mapAnnToSnn, searchCurrentScale, type ReversalPair, type SearchPoint, type SearchResult } from './mapping.ts';
import type { AnnLayerWeights } from './relu-net.ts';

/** Operating points a chip can be set to (precharge and threshold voltages), as reversal pairs. */
export function reversalCandidates(): (ReversalPair & { vRest: number; vThreshold: number })[] {
  const out: (ReversalPair & { vRest: number; vThreshold: number })[] = [];
  for (const vRest of [1.2, 1.3, 1.4, 1.5]) {
    for (const vThreshold of [0.8, 0.9, 1.0]) {
      if (vRest - vThreshold < 0.2) continue;
      const r = reversalPotentials({ ...NOMINAL_CIRCUIT, vRest, vThreshold });
      out.push({ ...r, vRest, vThreshold });
    }
  }
  return out;
}

/**
 * Slacks tried when mapping. The larger ones let more of the late (negative) neurons fire before the
 * next layer does: on a conv net they score best (docs/RESULTS.md, ANN-to-IMC for conv nets).
 */
export const IMC_SLACKS = [0, 0.25, 0.5, 1, 2];

/** DSTD bins that score a mapped conv net (imcSolver). */
export const IMC_CONV_BINS = 32;

/**
 * The solver that scores mapped networks: the exact one (the reference) for dense networks; DSTD
 * with IMC_CONV_BINS bins for conv nets, because the exact solver runs a conv layer as its unrolled
 * dense layer (about 40 ms an image for mnist-conv-s2 against 2 ms, and the search scores thousands
 * of images at each of its points).
 */
export function imcSolver(conv: boolean): { solver: SpikeSolver; name: string } {
  return conv
    ? { solver: createSolver('dstd', { bins: IMC_CONV_BINS }), name: `DSTD, ${IMC_CONV_BINS} bins` }
    : { solver: createSolver('exact'), name: 'the exact solver' };
}
/** Current scales searched: geometric, since a balanced excitatory/inhibitory network can need several times the current. */
export const IMC_SCALES = Array.from({ length: 11 }, (_, k) => Number((0.5 * Math.SQRT2 ** k).toPrecision(3)));

export interface ImcSearch {
  /** The ideal-model network of the best slack (the caller disposes it). */
  mapped: SpikingNetwork;
  slack: number;
  /** Current scales at the nominal reversal potentials. */
  nominalSearch: SearchResult;
  /** Current scales over every operating point (reversalCandidates). */
  fullSearch: SearchResult;
}

export interface ImcSearchHooks {
  /** One mapping tried: its slack and accuracy on the selection set. */
  onMap?(p: { slack: number; ideal_select_acc: number; windows: number[]; invalid: number[] }): void;
  /** Before the current-scale search, with how many points it evaluates. */
  onSearchStart?(points: number): void;
  onPoint?(p: SearchPoint): void;
}

/**
 * Maps `weights` (the ANN's layers) with each slack, calibrating the windows on up to 2000 samples
 * of `train` and selecting on up to 1000 with `solver` (imcSolver), then
 * searches the current scale of the best mapping.
 */
export function searchImcMapping(weights: AnnLayerWeights[], train: DatasetPart, solver: SpikeSolver, hooks: ImcSearchHooks = {}): ImcSearch {
  const select = { ...train, n: Math.min(train.n, 1000) };
  let best: { slack: number; net: SpikingNetwork; acc: number } | undefined;
  for (const slack of IMC_SLACKS) {
    const m = mapAnnToSnn(weights, { x: train.x, n: Math.min(train.n, 2000) }, { slack });
    const acc = evaluateNetwork(m.net, select, solver).acc;
    hooks.onMap?.({ slack, ideal_select_acc: acc, windows: m.windows, invalid: m.invalid });
    if (!best || acc > best.acc) {
      best?.net.dispose();
      best = { slack, net: m.net, acc };
    } else m.net.dispose();
  }
  const mapped = best!.net;
  try {
    const reversal = reversalCandidates();
    hooks.onSearchStart?.(IMC_SCALES.length * (1 + reversal.length));
    const nominalSearch = searchCurrentScale(mapped, select, solver, { scales: IMC_SCALES, reversal: [NOMINAL_REVERSAL], onPoint: hooks.onPoint });
    const fullSearch = searchCurrentScale(mapped, select, solver, { scales: IMC_SCALES, reversal, onPoint: hooks.onPoint });
    return { mapped, slack: best!.slack, nominalSearch, fullSearch };
  } catch (err) {
    mapped.dispose();
    throw err;
  }
}
