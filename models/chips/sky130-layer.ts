/**
 * Gate voltages -> the normalised layer that sky130 transistors (SPICE-characterised curves,
 * sky130-curves.ts) imply, for the behavioural chip's `physics=sky130`.
 *
 * Each synapse's drain current is linearised around mid-swing: I(v) = I(vm) + s (v - vm), with the
 * slope s from the curves, so in u units it adds `a - b u` to du/dt (b = -s/C, a per-synapse
 * reversal potential a/b that moves with the gate, unlike the PNN model's one E+ and one E-). The
 * exact solver takes one ePlus and one eMinus per layer, but every input drives one NMOS and one
 * PMOS row, so its summed drive A - B u is matched exactly by
 *   gE + gI = B,  gE ePlus + gI eMinus = A
 * with the layer's ePlus / eMinus anchored outside every input's A/B. The layer then solves the
 * gate-dependent reversal potentials exactly; its ePlus / eMinus are anchors, not the device's E.
 */

import { makeLayer, type PnnLayer } from '../neuron/layer.ts';
import { NMOS, type LayerGeometry } from './chip-backend.ts';
import type { LayerSpreadParams } from './gate-to-layer.ts';
import type { TransferCurves } from './sky130-curves.ts';

/** Threshold shifts act on |Vth| here. */
export interface Sky130MappingParams extends LayerSpreadParams {
  curves: TransferCurves;
  /** Farads (nominal: what the conductances are referred to), volts. */
  capacitance: number;
  vRest: number;
  vThreshold: number;
}

/** Half-width of the centred difference for the drain slope, volts (the curves' membrane knots are 0.1 V apart). */
const SLOPE_DV = 0.1;
/** Gate step of the per-membrane-window drive tables, volts (ln I and s/I are smooth on it: error ~1e-6). */
const DRIVE_STEP = 0.5e-3;

/** ln|I| at mid-swing and the slope over the current (s/I, 1/V) on a fine gate grid, for one device and membrane window. */
interface DriveTable {
  start: number;
  count: number;
  lnI: Float64Array;
  slopeOverI: Float64Array;
}

const driveTables = new WeakMap<TransferCurves, Map<string, DriveTable>>();

function driveTable(curves: TransferCurves, pmos: boolean, vRest: number, vThreshold: number): DriveTable {
  let byKey = driveTables.get(curves);
  if (!byKey) driveTables.set(curves, (byKey = new Map()));
  const key = `${pmos ? 'p' : 'n'}:${vRest}:${vThreshold}`;
  const have = byKey.get(key);
  if (have) return have;
  const [gLo, gHi] = curves.gateRange;
  const count = Math.round((gHi - gLo) / DRIVE_STEP) + 1;
  const vm = 0.5 * (vRest + vThreshold);
  const pol = pmos ? 'pmos' : 'nmos';
  const lnI = new Float64Array(count);
  const slopeOverI = new Float64Array(count);
  for (let k = 0; k < count; k++) {
    const g = Math.min(gHi, gLo + k * DRIVE_STEP);
    const i0 = curves.current(pol, g, vm);
    const s = (curves.current(pol, g, vm + SLOPE_DV) - curves.current(pol, g, vm - SLOPE_DV)) / (2 * SLOPE_DV);
    lnI[k] = Math.log(Math.abs(i0));
    // A drain current that grows toward the membrane's own voltage is no conductance (junction-level currents): a constant current.
    slopeOverI[k] = s < 0 ? s / i0 : 0;
  }
  const t = { start: gLo, count, lnI, slopeOverI };
  byKey.set(key, t);
  return t;
}

/** One transistor's drive in u units: du/dt += a - b u (normalised by t0). */
export function synapseDrive(
  curves: TransferCurves,
  pmos: boolean,
  vg: number,
  p: Pick<Sky130MappingParams, 'capacitance' | 'vRest' | 'vThreshold' | 't0'>,
  dVth = 0,
  gain = 1,
): { a: number; b: number } {
  return driveFrom(driveTable(curves, pmos, p.vRest, p.vThreshold), pmos, vg, p, dVth, gain);
}

function driveFrom(
  t: DriveTable,
  pmos: boolean,
  vg: number,
  p: Pick<Sky130MappingParams, 'capacitance' | 'vRest' | 'vThreshold' | 't0'>,
  dVth: number,
  gain: number,
): { a: number; b: number } {
  // A threshold shift acts as a gate offset (|Vgs| smaller for a positive shift); clamped to the curves.
  const x = Math.min(t.count - 1, Math.max(0, ((pmos ? vg + dVth : vg - dVth) - t.start) / DRIVE_STEP));
  const j = Math.min(t.count - 2, Math.floor(x));
  const f = x - j;
  const i0 = (pmos ? 1 : -1) * gain * Math.exp(t.lnI[j] + f * (t.lnI[j + 1] - t.lnI[j]));
  const s = i0 * (t.slopeOverI[j] + f * (t.slopeOverI[j + 1] - t.slopeOverI[j]));
  const swing = p.vRest - p.vThreshold;
  const vm = 0.5 * (p.vRest + p.vThreshold);
  // dv/dt = I/C and u = (vRest - v)/swing: du/dt = -(I0 + s (vRest - u swing - vm)) / (C swing).
  const a = (-(i0 + s * (p.vRest - vm)) / (p.capacitance * swing)) * p.t0;
  const b = (-s / p.capacitance) * p.t0;
  return { a, b };
}

export function sky130GateVoltagesToLayer(geometry: LayerGeometry, volts: Float64Array, p: Sky130MappingParams): PnnLayer {
  const { inputs, outputs, rowInput, rowPolarity } = geometry;
  const rows = rowInput.length;
  if (volts.length !== rows * outputs) throw new RangeError(`gate voltages have length ${volts.length}, expected rows*outputs = ${rows}*${outputs}`);
  const A = new Float64Array(inputs * outputs);
  const B = new Float64Array(inputs * outputs);
  // The drive tables once per layer, not per synapse (their lookup builds a key).
  const tables = [driveTable(p.curves, false, p.vRest, p.vThreshold), driveTable(p.curves, true, p.vRest, p.vThreshold)];
  for (let r = 0; r < rows; r++) {
    const pmos = rowPolarity[r] !== NMOS;
    const table = tables[pmos ? 1 : 0];
    const base = rowInput[r] * outputs;
    for (let i = 0; i < outputs; i++) {
      const k = r * outputs + i;
      const gain = p.gain ? p.gain[k] : 1;
      if (gain === 0) continue;
      const d = driveFrom(table, pmos, volts[k], p, p.dVth ? p.dVth[k] : 0, gain);
      A[base + i] += d.a;
      B[base + i] += d.b;
    }
  }
  // Anchors outside every input's reversal potential A/B (with room), so gE and gI stay >= 0.
  let hi = 1.5;
  let lo = -0.5;
  for (let k = 0; k < A.length; k++) {
    if (B[k] > 0) {
      const e = A[k] / B[k];
      if (e > hi) hi = e;
      if (e < lo) lo = e;
    }
  }
  const ePlus = hi * 1.25 + 1;
  const eMinus = lo * 1.25 - 1;
  const gE = new Float64Array(A.length);
  const gI = new Float64Array(A.length);
  for (let k = 0; k < A.length; k++) {
    if (B[k] > 0) {
      gE[k] = (A[k] - B[k] * eMinus) / (ePlus - eMinus);
      gI[k] = B[k] - gE[k];
    } else if (A[k] > 0) {
      // A pure current (no slope): the closest the two anchors give is a conductance at ePlus.
      gE[k] = A[k] / ePlus;
    } else if (A[k] < 0) {
      gI[k] = A[k] / eMinus;
    }
  }
  return makeLayer({ nIn: inputs, nOut: outputs, model: 'pnn', gE, gI, ePlus, eMinus, horizon: p.horizon, thresholdScale: p.thresholdScale, delay: p.delay });
}
