/**
 * The hidden per-chip parameters of the behavioural chip: their magnitudes (sky130-derived, justified
 * in README.md, "Behavioural chip: hidden parameters") and the seeded draw of one chip.
 *
 * Every quantity comes from its own sub-stream (`deriveSeed(seed, stream, layer, row)`), so a draw
 * never shifts when another quantity or another layer changes size, and per-transistor values are
 * drawn row by row in output order: a smaller geometry with the same seed sees the same devices in
 * the corner it shares with a larger one.
 */

import { deriveSeed, Rng } from '../datasets/rng.ts';
import { NMOS, type LayerGeometry } from './chip-backend.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, OPERATING_GATES } from './sky130-nominal.ts';
import { loadDeviceData } from './spice/device-data.ts';

/** Standard deviations and means of every hidden quantity. SI units unless a name says otherwise. */
export interface MismatchMagnitudes {
  /** Pelgrom threshold coefficient A_VT of the synapse devices, volt * um (sigma = A_VT / sqrt(W L)). */
  aVtNmos: number;
  aVtPmos: number;
  /** Pelgrom current-factor coefficient A_beta, (relative) * um. */
  aBeta: number;
  /** Chip-to-chip (process) threshold shift per polarity, volts. */
  globalVthSigma: number;
  /** Chip-to-chip current-factor (kp) spread per polarity, relative. */
  globalKpSigma: number;
  /** Chip-to-chip channel-length-modulation spread per polarity, relative to nominal lambda. */
  lambdaSigma: number;
  /** Chip-to-chip MIM capacitance density spread, relative. */
  globalCapSigma: number;
  /** MIM matching coefficient A_C, (relative) * um, and density, F / um^2 (sigma = A_C / sqrt(area)). */
  aCap: number;
  capDensity: number;
  /** Per-neuron trip-point (threshold) offset of the sensing inverter, volts. */
  tripSigma: number;
  /** Comparator + output buffer delay: base, per driven gate of fan-out, relative per-neuron spread. */
  delayBaseSeconds: number;
  delayPerFanoutSeconds: number;
  delaySigma: number;
  /** Leakage current toward rest per neuron: log-normal median (amperes) and sigma of ln. */
  leakMedianAmps: number;
  leakLogSigma: number;
  /** Gate-drain overlap capacitance of a synapse device, farads (sets the switching kick). */
  overlapCapNmos: number;
  overlapCapPmos: number;
  /** Gaussian timing noise on every output edge, seconds rms; a fresh draw per run. */
  jitterSeconds: number;
  /** Board/pad delay between input launch and output capture: chip-level mean and sigma, seconds. */
  tdcOffsetMeanSeconds: number;
  tdcOffsetSigmaSeconds: number;
  /** Supply (relative) and die temperature (deg C) spread from chip to chip. */
  supplySigma: number;
  temperatureSigmaC: number;
  /** Sensor read noise, volts and deg C rms. */
  supplySensorSigmaV: number;
  temperatureSensorSigmaC: number;
}

/** sky130 nfet_01v8 vth0_slope and voff_slope (PDK mismatch parameters), volt * um. */
const VTH0_SLOPE_NFET = 3.356e-3;
const VOFF_SLOPE_NFET = 7.0e-3;
/** sky130 pfet_01v8 vth0_slope (its voff_slope is 0), volt * um. */
const VTH0_SLOPE_PFET = 5.856e-3;

/**
 * Trip point of a ratioed inverter, V_M = (Vtn + r (VDD - |Vtp|)) / (1 + r) with r ~ 1: half of each
 * threshold shift reaches V_M. Sensing inverter nfet 1/0.5 um, pfet 2/0.5 um, strong inversion at the
 * trip point (vth0 mismatch only).
 */
const TRIP_SIGMA = 0.5 * Math.hypot(VTH0_SLOPE_NFET / Math.sqrt(1 * 0.5), VTH0_SLOPE_PFET / Math.sqrt(2 * 0.5));

export const SKY130_MAGNITUDES: Readonly<MismatchMagnitudes> = Object.freeze({
  // Synapses work in weak inversion, where BSIM4's voff shifts the current exactly like vth0.
  aVtNmos: Math.hypot(VTH0_SLOPE_NFET, VOFF_SLOPE_NFET),
  aVtPmos: VTH0_SLOPE_PFET,
  aBeta: 0.01,
  globalVthSigma: 0.012,
  globalKpSigma: 0.03,
  lambdaSigma: 0.08,
  globalCapSigma: 0.03,
  aCap: 0.01,
  capDensity: 2e-15,
  tripSigma: TRIP_SIGMA,
  delayBaseSeconds: 0.35e-9,
  delayPerFanoutSeconds: 2e-12,
  delaySigma: 0.1,
  leakMedianAmps: 5e-12,
  leakLogSigma: 0.7,
  overlapCapNmos: 0.15e-15,
  overlapCapPmos: 0.15e-15,
  jitterSeconds: 0.25e-9,
  tdcOffsetMeanSeconds: 1.5e-9,
  tdcOffsetSigmaSeconds: 0.3e-9,
  supplySigma: 0.005,
  temperatureSigmaC: 1.5,
  supplySensorSigmaV: 0.002,
  temperatureSensorSigmaC: 0.3,
});

let pdk: Readonly<MismatchMagnitudes> | undefined;

/**
 * SKY130_MAGNITUDES with the synapse threshold mismatch taken from the PDK's own Monte Carlo
 * (spice/data/sky130-devices.json, `mismatch`: the spread of ln I over 200 copies at W/L 1/0.25 um,
 * divided by the nominal d ln I / dVg, i.e. the gate offset that explains it): the median over the
 * operating gate windows, as a Pelgrom coefficient for these devices. It includes every mismatch
 * parameter the card varies (vth0, voff, nfactor, toxe slopes), so it replaces the hand sum of
 * vth0 and voff above (NMOS 16.7 mV where that gives 15.5, PMOS 16.2 where vth0 alone gives 11.7).
 * A_beta stays: 2 % in current is below 1 % of this spread in ln I.
 */
export function pdkMismatchMagnitudes(): Readonly<MismatchMagnitudes> {
  if (pdk) return pdk;
  const d = loadDeviceData();
  const sqrtArea = Math.sqrt(d.device.w * d.device.l * 1e12);
  const aVt = (pol: 'nmos' | 'pmos') => {
    const s = d.mismatch[pol];
    const [lo, hi] = OPERATING_GATES[pol];
    const v = s.vg
      .map((vg, k) => (vg >= lo - 1e-9 && vg <= hi + 1e-9 ? s.sdVgEquivalent[k] : null))
      .filter((x): x is number => x !== null)
      .sort((a, b) => a - b);
    if (!v.length) throw new RangeError(`device data has no ${pol} mismatch statistics inside ${lo}..${hi} V; regenerate it with npm run characterise`);
    return v[v.length >> 1] * sqrtArea;
  };
  pdk = Object.freeze({ ...SKY130_MAGNITUDES, aVtNmos: aVt('nmos'), aVtPmos: aVt('pmos') });
  return pdk;
}

/** Sigma of a synapse transistor's threshold shift, volts (Pelgrom, nominal W and L). */
export function synapseVthSigma(m: MismatchMagnitudes, polarity: number): number {
  const dev = polarity === NMOS ? NOMINAL_NMOS : NOMINAL_PMOS;
  const areaUm2 = dev.w * dev.l * 1e12;
  return (polarity === NMOS ? m.aVtNmos : m.aVtPmos) / Math.sqrt(areaUm2);
}

/** Sigma of a synapse transistor's relative current-factor deviation (Pelgrom, nominal W and L). */
export function synapseBetaSigma(m: MismatchMagnitudes, polarity: number): number {
  const dev = polarity === NMOS ? NOMINAL_NMOS : NOMINAL_PMOS;
  return m.aBeta / Math.sqrt(dev.w * dev.l * 1e12);
}

/** Sigma of a membrane capacitor's relative local deviation (MIM matching over its area). */
export function capacitorSigma(m: MismatchMagnitudes): number {
  const areaUm2 = NOMINAL_CIRCUIT.capacitance / m.capDensity;
  return m.aCap / Math.sqrt(areaUm2);
}

/** Chip-level (process, board, environment) draws. */
export interface ProcessDraw {
  /** Global threshold shift on |Vth| per polarity, volts. */
  dVthN: number;
  dVthP: number;
  /** Global current-factor multipliers per polarity. */
  kpN: number;
  kpP: number;
  /** Channel-length modulation per polarity, 1/V. */
  lambdaN: number;
  lambdaP: number;
  /** Global MIM capacitance multiplier. */
  capacitance: number;
  /** True supply (volts) and die temperature (deg C). */
  supplyV: number;
  temperatureC: number;
  /** Output-capture minus input-launch path delay, seconds. */
  tdcOffsetSeconds: number;
}

/** Per-layer device draws. */
export interface LayerDraw {
  /** Local (Pelgrom) threshold shift per transistor, rows x outputs, volts. */
  dVthLocal: Float64Array;
  /** Local current factor 1 + dbeta/beta per transistor, rows x outputs. */
  betaLocal: Float64Array;
  /** Local capacitor factor per neuron (1 + dC/C), nOut. */
  capLocal: Float64Array;
  /** Local trip-point offset per neuron, volts. */
  tripLocal: Float64Array;
  /** Comparator + buffer delay per neuron, seconds. */
  delaySeconds: Float64Array;
  /** Leakage current toward rest per neuron, amperes. */
  leakAmps: Float64Array;
}

export interface ChipDraw {
  process: ProcessDraw;
  layers: LayerDraw[];
}

/** Sub-stream identifiers: one per quantity, so draws stay put when others change. */
const STREAM = {
  process: 1,
  dVth: 2,
  beta: 3,
  cap: 4,
  trip: 5,
  delay: 6,
  leak: 7,
} as const;

/** Sub-streams of run-time noise (used by the chip, defined here so every stream id lives in one place). */
export const RUN_STREAM = { jitter: 8, sensors: 9 } as const;

function drawProcess(seed: number, m: MismatchMagnitudes): ProcessDraw {
  const r = new Rng(deriveSeed(seed, STREAM.process));
  // Fixed order: appending a quantity at the end keeps every earlier draw.
  const dVthN = r.normal(0, m.globalVthSigma);
  const dVthP = r.normal(0, m.globalVthSigma);
  const kpN = 1 + r.normal(0, m.globalKpSigma);
  const kpP = 1 + r.normal(0, m.globalKpSigma);
  const lambdaN = NOMINAL_NMOS.lambda * (1 + r.normal(0, m.lambdaSigma));
  const lambdaP = NOMINAL_PMOS.lambda * (1 + r.normal(0, m.lambdaSigma));
  const capacitance = 1 + r.normal(0, m.globalCapSigma);
  const supplyV = NOMINAL_CIRCUIT.supply * (1 + r.normal(0, m.supplySigma));
  const temperatureC = 27 + r.normal(0, m.temperatureSigmaC);
  const tdcOffsetSeconds = Math.max(0, r.normal(m.tdcOffsetMeanSeconds, m.tdcOffsetSigmaSeconds));
  // A 5-sigma draw must still be a working circuit.
  return {
    dVthN,
    dVthP,
    kpN: Math.max(0.5, kpN),
    kpP: Math.max(0.5, kpP),
    lambdaN: Math.max(0.05, lambdaN),
    lambdaP: Math.max(0.05, lambdaP),
    capacitance: Math.max(0.5, capacitance),
    supplyV,
    temperatureC,
    tdcOffsetSeconds,
  };
}

/** Fan-out of layer l's neurons: the gates their output line drives in layer l + 1 (0 for the last layer). */
function fanout(geometry: readonly LayerGeometry[], l: number): number {
  const next = geometry[l + 1];
  if (!next) return 0;
  return (next.rowInput.length / next.inputs) * next.outputs;
}

function drawLayer(seed: number, geometry: readonly LayerGeometry[], l: number, m: MismatchMagnitudes): LayerDraw {
  const g = geometry[l];
  const rows = g.rowInput.length;
  const n = g.outputs;
  const dVthLocal = new Float64Array(rows * n);
  const betaLocal = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const sv = synapseVthSigma(m, g.rowPolarity[r]);
    const sb = synapseBetaSigma(m, g.rowPolarity[r]);
    const rv = new Rng(deriveSeed(seed, STREAM.dVth, l, r));
    const rb = new Rng(deriveSeed(seed, STREAM.beta, l, r));
    const base = r * n;
    for (let i = 0; i < n; i++) {
      dVthLocal[base + i] = rv.normal(0, sv);
      betaLocal[base + i] = Math.max(0.05, 1 + rb.normal(0, sb));
    }
  }
  const rc = new Rng(deriveSeed(seed, STREAM.cap, l));
  const rt = new Rng(deriveSeed(seed, STREAM.trip, l));
  const rd = new Rng(deriveSeed(seed, STREAM.delay, l));
  const rl = new Rng(deriveSeed(seed, STREAM.leak, l));
  const sc = capacitorSigma(m);
  const meanDelay = m.delayBaseSeconds + m.delayPerFanoutSeconds * fanout(geometry, l);
  const capLocal = new Float64Array(n);
  const tripLocal = new Float64Array(n);
  const delaySeconds = new Float64Array(n);
  const leakAmps = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    capLocal[i] = 1 + rc.normal(0, sc);
    tripLocal[i] = rt.normal(0, m.tripSigma);
    delaySeconds[i] = Math.max(0, meanDelay * (1 + rd.normal(0, m.delaySigma)));
    leakAmps[i] = m.leakMedianAmps * Math.exp(rl.normal(0, m.leakLogSigma));
  }
  return { dVthLocal, betaLocal, capLocal, tripLocal, delaySeconds, leakAmps };
}

/** The hidden parameters of the chip `seed` with this geometry. Deterministic. */
export function drawChip(seed: number, geometry: readonly LayerGeometry[], m: MismatchMagnitudes): ChipDraw {
  return {
    process: drawProcess(seed, m),
    layers: geometry.map((_, l) => drawLayer(seed, geometry, l, m)),
  };
}
