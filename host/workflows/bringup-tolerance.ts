/** When a bring-up that did not pass may still go on to calibration (the demo's rule). */
import type { BringupRecord } from './bringup-record.ts';

/** At most this fraction of a die's synapses may be flagged weak, and nothing else, for the demo to go on. */
export const WEAK_TOLERATED_FRACTION = 1e-4;

/**
 * A bring-up whose only findings are a few weak PMOS synapses that the shape re-check could not
 * judge. The re-check (bringup-recheck.ts) clears the natural threshold-mismatch tails that once
 * stopped one 784-64-10 die in several, and a synapse it measures with a current factor no threshold
 * shift explains is a defect that stops the demo. What is left to tolerate is a candidate it could
 * not tell (too few references, too much scatter, or a bring-up run without it: `shape` absent):
 * there a natural outlier is as likely as a fault, and calibration fits each transistor's own
 * conductance either way, so the demo warns and goes on. Anything else (a weak NMOS, a dead, stuck
 * or shorted part, a failed link check) still stops it.
 */
export function isolatedWeakSynapses(rec: BringupRecord, layers: readonly { inputs: number; outputs: number }[]): boolean {
  if (rec.stoppedEarly || rec.bad_synapses.length === 0) return false;
  if (rec.dead_neurons.length > 0 || !rec.bad_synapses.every((s) => s.startsWith('weak-synapse:'))) return false;
  if (!rec.synapses.every((s) => s.kind === 'weak' && s.polarity === 'pmos' && s.shape !== 'weak')) return false;
  if (rec.checks.some((c) => c.status === 'fail' && c.step !== 'synapses')) return false;
  const synapses = layers.reduce((a, l) => a + 2 * l.inputs * l.outputs, 0);
  return rec.bad_synapses.length <= Math.max(1, WEAK_TOLERATED_FRACTION * synapses);
}
