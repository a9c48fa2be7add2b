/** When a bring-up that did not pass may still go on to calibration (the demo's rule). */
import type { BringupRecord } from './bringup-record.ts';

/** At most this fraction of a die's synapses may be flagged weak, and nothing else, for the demo to go on. */
export const WEAK_TOLERATED_FRACTION = 1e-4;

/**
 * A bring-up whose only finding is a few weak synapses: a natural mismatch outlier of a 100k-synapse die can sit
 * where a planted weak synapse does (both about 5.5 robust sigmas low), so the demo warns and goes on rather than
 * refusing one die in several; anything else (a dead, stuck or shorted part, a failed link check) still stops it.
 */
export function isolatedWeakSynapses(rec: BringupRecord, layers: readonly { inputs: number; outputs: number }[]): boolean {
  if (rec.stoppedEarly || rec.bad_synapses.length === 0) return false;
  if (rec.dead_neurons.length > 0 || !rec.bad_synapses.every((s) => s.startsWith('weak-synapse:'))) return false;
  if (rec.checks.some((c) => c.status === 'fail' && c.step !== 'synapses')) return false;
  const synapses = layers.reduce((a, l) => a + 2 * l.inputs * l.outputs, 0);
  return rec.bad_synapses.length <= Math.max(1, WEAK_TOLERATED_FRACTION * synapses);
}
