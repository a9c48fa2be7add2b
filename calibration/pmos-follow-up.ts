/**
 * Follow-up PMOS sweeps for the transistors the regular ones could not measure.
 *
 * A PMOS transistor is measured as the delay it adds to its input's NMOS partner (sweep-p blocks).
 * The regular codes are chosen for the median transistor; threshold mismatch spreads subthreshold
 * currents by a factor of about e per sigma, so on a 784-input neuron one or two PMOS transistors
 * sit outside every regular pair: so weak that the pair fires with the NMOS alone (no added delay),
 * or so strong that the pair never fires. Their conductance then rests on the family's curve, off
 * by up to 70 %, and every held-out pattern that switches them on is mispredicted by tens of ticks.
 *
 * From the regular sweeps' measurements this plans blocks that give each such transistor its own
 * codes (weight memory is per synapse): a weak one a stronger PMOS code against the weak NMOS
 * reference, a strong one a weaker PMOS code against the strongest NMOS code, at two distances from
 * the regular codes. Only their inputs are driven, and every other synapse is off, so the blocks
 * cost one sample per affected input.
 */

import { NMOS, PMOS, type LayerGeometry } from '../models/chips/chip-backend.ts';
import { allOffCodes, codeWindow } from './probe-configs.ts';
import type { LayerProbeContext, ProbeBlock } from './probe-plan.ts';
import type { LayerSamples } from './probe-run.ts';
import { SILENT_TICK } from '../wire/ticks.ts';

/** PMOS code steps beyond the regular codes: about 35 mV each on the reference DAC (a factor e in subthreshold current). */
export const FOLLOW_UP_STEPS: readonly number[] = [20, 40];

/** A pair whose spike comes less than this many ticks after its NMOS partner's alone carries no PMOS information. */
export const MIN_ADDED_TICKS = 1;

export interface RegularPmosSweeps {
  /** NMOS alone, each input alone, per NMOS code used as a partner (sample b drives input b's rows). */
  nmosAlone: ReadonlyMap<number, LayerSamples>;
  /** The PMOS sweeps: partner NMOS code, PMOS code, measurements. */
  pairs: readonly { nmosCode: number; pmosCode: number; samples: LayerSamples }[];
  /** The weak NMOS reference and the strongest NMOS sweep code. */
  weakRef: number;
  strongRef: number;
  /** Ticks per normalised time unit. */
  perUnit: number;
}

/** Which driven transistors stayed unmeasured: +1 too weak, -1 too strong, 0 measured or not measurable. */
export function unmeasuredPmos(geometry: LayerGeometry, driven: number, sweeps: RegularPmosSweeps): Int8Array {
  const n = geometry.outputs;
  const state = new Int8Array(driven * n);
  const measured = new Uint8Array(driven * n);
  const silenced = new Uint8Array(driven * n);
  const partnerFired = new Uint8Array(driven * n);
  for (const { nmosCode, samples } of sweeps.pairs) {
    const alone = sweeps.nmosAlone.get(nmosCode);
    if (!alone) continue;
    const nIn = samples.inputs.length / samples.batch;
    for (let b = 0; b < samples.batch; b++) {
      let j = -1;
      for (let q = 0; q < nIn; q++) if (Number.isFinite(samples.inputs[b * nIn + q])) j = q;
      if (j < 0 || j >= driven) continue;
      for (let i = 0; i < n; i++) {
        const tN = alone.out[b * n + i];
        if (!Number.isFinite(tN)) continue;
        const k = j * n + i;
        partnerFired[k] = 1;
        const tP = samples.out[b * n + i];
        if (!Number.isFinite(tP)) silenced[k] = 1;
        else if ((tP - tN) * sweeps.perUnit >= MIN_ADDED_TICKS) measured[k] = 1;
      }
    }
  }
  for (let k = 0; k < state.length; k++) {
    if (measured[k] || !partnerFired[k]) continue;
    state[k] = silenced[k] ? -1 : 1;
  }
  return state;
}

/** Blocks that measure the transistors `unmeasuredPmos` flagged; empty when none are. */
export function pmosFollowUpBlocks(
  ctx: LayerProbeContext,
  flags: Int8Array,
  regularPmos: readonly number[],
  sweeps: Pick<RegularPmosSweeps, 'weakRef' | 'strongRef'>,
): ProbeBlock[] {
  const { geometry: g, dac, safe, driven } = ctx;
  const n = g.outputs;
  if (!regularPmos.length || !flags.some((f) => f !== 0)) return [];
  const [lo, hi] = codeWindow(dac, safe, PMOS);
  const strongest = Math.min(...regularPmos);
  const weakest = Math.max(...regularPmos);
  const inputs: number[] = [];
  for (let j = 0; j < driven; j++) {
    for (let i = 0; i < n; i++) {
      if (flags[j * n + i] !== 0) {
        inputs.push(j);
        break;
      }
    }
  }
  const blocks: ProbeBlock[] = [];
  for (const step of FOLLOW_UP_STEPS) {
    const stronger = Math.max(lo, strongest - step);
    const weaker = Math.min(hi, weakest + step);
    const codes = allOffCodes(g, dac, safe);
    let any = false;
    for (let r = 0; r < g.rowInput.length; r++) {
      const j = g.rowInput[r];
      if (j >= driven) continue;
      for (let i = 0; i < n; i++) {
        const f = flags[j * n + i];
        if (f === 0) continue;
        // Weak: more PMOS drive against the weak partner; strong: less against the strongest one.
        const code = g.rowPolarity[r] === NMOS ? (f > 0 ? sweeps.weakRef : sweeps.strongRef) : f > 0 ? stronger : weaker;
        codes[r * n + i] = code;
        if (g.rowPolarity[r] === PMOS && code !== (f > 0 ? strongest : weakest)) any = true;
      }
    }
    if (!any) continue;
    const inputTicks = new Uint16Array(inputs.length * g.inputs).fill(SILENT_TICK);
    inputs.forEach((j, b) => (inputTicks[b * g.inputs + j] = 0));
    blocks.push({ layer: ctx.layer, kind: 'sweep-p', codes, inputTicks, batch: inputs.length });
  }
  return blocks;
}
