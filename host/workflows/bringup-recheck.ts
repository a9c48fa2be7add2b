/**
 * The shape re-check of weak-PMOS candidates: a natural threshold-mismatch outlier of a large die
 * sits as far below the layer at p1 / p2 as a weak synapse (a current factor F) does, but a
 * threshold shift's deficit shrinks toward strong inversion while F stays (bringup-shape.ts). So
 * each candidate's input, with a few reference inputs, is measured once more at a stronger PMOS
 * code p3 on a strong NMOS drive q; candidates whose deficit shrank as a threshold shift's does
 * leave the flags for `mismatchTails`. Only layers with a candidate are re-probed, so a die with
 * none pays nothing; one with candidates pays the two bisections for q / p3 (once per run) and
 * two probes on a few tens of inputs per layer.
 */

import { codeWindow, selectRows } from '../../calibration/probe-configs.ts';
import { codeToVolts } from '../../wire/dac.ts';
import { NMOS, PMOS } from '../../models/chips/chip-backend.ts';
import { pdkMismatchMagnitudes, synapseVthSigma } from '../../models/chips/mismatch.ts';
import { excitatoryFromTime, inhibitoryFromTime } from './bringup-analysis.ts';
import type { Bench } from './bringup-bench.ts';
import { chooseShapeCodes } from './bringup-codes.ts';
import { equalisingCodes, type LayerDiagnosis, type LayerMeasurements, neuronOffsets } from './bringup-diagnosis.ts';
import { measureLayer, type Probe } from './bringup-measure.ts';
import type { ProbeCodes } from './bringup-record.ts';
import { classifyShape } from './bringup-shape.ts';
import type { NeuronFaults } from './bringup-steps.ts';

/** Reference inputs measured beside the candidates' (evenly spread; each gives every neuron of the layer). */
export const SHAPE_REFERENCE_INPUTS = 16;
/** The NMOS meter is slowed by at most e^this for a weak candidate (its time stays inside the window). */
export const MAX_METER_DEFICIT = 2.5;

export interface RecheckContext {
  bench: Bench;
  layer: number;
  /** The layer's main measurements (for the neurons' offsets and which inputs were reached). */
  m: LayerMeasurements;
  /** Its diagnosis: weak-PMOS flags leave it for `mismatchTails` when their shape is a threshold shift. */
  d: LayerDiagnosis;
  /** The run's probe codes; q and p3 are added on the first re-check. */
  codes: ProbeCodes;
  nf: NeuronFaults;
  /** Applied to every probe's codes (inputs from stuck neurons off). */
  prepare: (codes: Uint16Array) => Uint16Array;
  onSamples: (n: number) => void;
}

export async function recheckWeakPmos(c: RecheckContext): Promise<void> {
  const { bench, layer: l, m, d, codes, nf } = c;
  const candidates = d.flags.filter((f) => f.polarity === 'pmos' && f.kind === 'weak');
  if (candidates.length === 0) return;
  const { geometry, dac, safe } = bench;
  const g = geometry[l];
  const n = g.outputs;
  if (codes.q === undefined || codes.p3 === undefined) Object.assign(codes, await chooseShapeCodes(bench, codes));
  const q = codes.q!;
  const p3 = codes.p3!;

  const only = new Uint8Array(g.inputs);
  const refs = Math.min(SHAPE_REFERENCE_INPUTS, g.inputs);
  for (let r = 0; r < refs; r++) only[Math.floor((r * g.inputs) / refs)] = 1;
  for (const f of candidates) only[f.input] = 1;
  for (let j = 0; j < g.inputs; j++) if (!m.reached[j]) only[j] = 0;
  // The NMOS meter per synapse: a weaker PMOS gets a weaker NMOS (as much weaker as it was at p2), so
  // every synapse's PMOS delays its NMOS by a resolvable fraction at p3, candidates included.
  const tq = Math.max(24, m.horizonTicks / 40);
  const targets = new Float64Array(g.inputs * n).fill(NaN);
  for (let k = 0; k < targets.length; k++) {
    if (!only[Math.floor(k / n)]) continue;
    const deficit = d.pmosMedianLnG.p2 - d.pmosLnG2[k];
    targets[k] = tq * Math.exp(Number.isFinite(deficit) ? Math.min(MAX_METER_DEFICIT, Math.max(-1, deficit)) : 0);
  }
  const meter = equalisingCodes(m, codes, codeWindow(dac, safe, NMOS), targets);
  const nmos = bench.off(l);
  for (const r of selectRows(g, { polarity: NMOS })) {
    const j = g.rowInput[r];
    if (!only[j]) continue;
    for (let i = 0; i < n; i++) nmos[r * n + i] = meter[j * n + i] >= 0 ? meter[j * n + i] : q;
  }
  const withP3 = nmos.slice();
  for (const r of selectRows(g, { polarity: PMOS })) if (only[g.rowInput[r]]) withP3.fill(p3, r * n, (r + 1) * n);
  const probes: Probe[] = [
    { name: 'q' as const, codes: nmos },
    { name: 'q3' as const, codes: withP3 },
  ].map((p) => ({ ...p, codes: c.prepare(p.codes) }));
  const mq = await measureLayer(bench, l, probes, nf, c.onSamples, only);

  // ln gI at p3 per synapse, from the NMOS-alone time at q and the delay the PMOS adds to it.
  const offset = neuronOffsets(m, nf.dead[l], nf.stuck[l]);
  const H = m.horizonTicks;
  const lnG3 = new Float64Array(g.inputs * n).fill(NaN);
  for (let k = 0; k < lnG3.length; k++) {
    const off = offset[k % n];
    const tq = mq.times.q[k] - off;
    const tq3 = mq.times.q3[k] - off;
    if (!(Number.isFinite(tq) && tq >= 0.5) || Number.isNaN(tq3)) continue;
    const gI = inhibitoryFromTime(excitatoryFromTime(tq / H), tq3 / H);
    lnG3[k] = gI > 0 ? Math.log(gI) : gI === 0 ? -Infinity : NaN;
  }
  const flagged = new Set(d.flags.map((f) => f.input * n + f.neuron));
  const refX: number[] = [];
  const refY: number[] = [];
  for (let k = 0; k < lnG3.length; k++) {
    if (flagged.has(k) || !Number.isFinite(lnG3[k]) || !Number.isFinite(d.pmosLnG2[k])) continue;
    refX.push(d.pmosLnG2[k]);
    refY.push(lnG3[k]);
  }
  // PMOS strength grows as its code falls: ln g per volt from the layer's medians at p1 and p2.
  const slopePerVolt = (d.pmosMedianLnG.p2 - d.pmosMedianLnG.p1) / (codeToVolts(dac, codes.p1) - codeToVolts(dac, codes.p2));
  const pdkSigmaV = synapseVthSigma(pdkMismatchMagnitudes(), PMOS);

  const tails = new Set<string>();
  for (const f of candidates) {
    const k = f.input * n + f.neuron;
    const r = classifyShape({ refX, refY, x: d.pmosLnG2[k], y: lnG3[k], slopePerVolt, pdkSigmaV });
    const shape =
      `at PMOS code ${p3} on NMOS ${q}: unexplained current factor ${fmt(r.unexplainedFactor)} (+-${fmt(r.lnFactorSigma)} in ln), ` +
      `threshold-shift equivalent ${fmt(r.shiftV * 1e3)} mV = ${fmt(r.pdkSigmas)} PDK sigmas`;
    if (r.verdict === 'tail') {
      tails.add(`${f.input}.${f.neuron}`);
      d.mismatchTails.push({
        layer: l,
        input: f.input,
        neuron: f.neuron,
        polarity: 'pmos',
        z: d.pmosZ[k],
        unexplainedFactor: round3(r.unexplainedFactor),
        shiftMv: round3(r.shiftV * 1e3),
        pdkSigmas: round3(r.pdkSigmas),
        evidence: `${f.evidence}; ${shape}: ${r.reason}`,
      });
    } else {
      f.shape = r.verdict;
      f.evidence += `; ${shape}: ${r.verdict === 'weak' ? r.reason : `shape inconclusive (${r.reason}), kept`}`;
    }
  }
  d.flags = d.flags.filter((f) => !(f.polarity === 'pmos' && f.kind === 'weak' && tails.has(`${f.input}.${f.neuron}`)));
  if (tails.size) {
    d.notes.push(
      `${tails.size} PMOS synapse(s) low at p1 / p2 lose their deficit toward strong inversion as a threshold shift does (a mismatch tail, not a fault): ` +
        d.mismatchTails.map((t) => `${t.layer}.${t.input}.${t.neuron}`).join(', '),
    );
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toFixed(Math.abs(x) >= 10 ? 1 : 2) : String(x);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
