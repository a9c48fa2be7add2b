/**
 * Copies of a network's trainable variables as plain float32 arrays (trainableVariables() order), and
 * their return: what an optimiser step edits on the host and what a run keeps as its best state.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { SpikingNetwork } from './network.ts';

/** One float32 array per trainable variable, in net.trainableVariables() order, detached from the tensors. */
export type WeightSnapshot = Float32Array[];

/** A copy of every trainable variable's values. */
export function snapshotWeights(net: SpikingNetwork): WeightSnapshot {
  return net.trainableVariables().map((v) => Float32Array.from(v.dataSync() as Float32Array));
}

/**
 * Assigns a snapshot back to the network's variables. Throws naming the variable when the snapshot was
 * taken from another shape of network, before any variable changes.
 */
export function restoreWeights(net: SpikingNetwork, snapshot: readonly Float32Array[]): void {
  const vars = net.trainableVariables();
  if (snapshot.length !== vars.length) throw new RangeError(`a snapshot of ${snapshot.length} variables does not fit a network of ${vars.length}`);
  vars.forEach((v, i) => {
    if (snapshot[i]!.length !== v.size)
      throw new RangeError(
        `snapshot variable ${i} holds ${snapshot[i]!.length} values, the network's ${v.name} ${v.size}: restore it into the network it came from`,
      );
  });
  vars.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(snapshot[i]!, v.shape))));
}
