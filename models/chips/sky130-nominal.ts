/**
 * Nominal (mismatch-free) device and circuit parameters of the reference RC-Spike design in
 * sky130, and the board's default timing. Shared by every chip model that starts from nominal.
 */

import type { MosfetParams } from '../neuron/transfer-curve.ts';
import type { NeuronCircuit } from '../neuron/units.ts';
import type { DacSpec, SafeRange } from './chip-backend.ts';

/**
 * The nominal synapse transistors in the PNN model's form (EKV, docs/MODEL.md §8): sky130 nfet_01v8
 * and pfet_01v8 at W = 1u, L = 0.25u, FITTED to the SPICE characterisation of the bundled card
 * (spice/data/sky130-devices.json, `npm run characterise`), not made up. The fit (least squares in
 * ln I over the operating gate windows, NMOS 0.30-0.70 V and PMOS 1.00-1.45 V, membrane at
 * mid-swing 1.1 V; lambda the geometric mean of slope / I0 over the same gates) follows the card
 * within 7 % (NMOS) and 13 % (PMOS) in current there; test/models/chips/sky130-nominal.test.ts
 * holds it to the data. These parameters are what a calibration starts from and what the nominal
 * deployment maps weights with; the chips themselves take their currents from the curves
 * (sky130NominalCurves), so the fit's residual and the curves' gate-dependent E+- are modelling
 * error the model carries. The vth / kp pairs are fit parameters of the EKV form, not the card's
 * vth0 and u0 Cox.
 */
export const NOMINAL_NMOS: Readonly<MosfetParams> = Object.freeze({
  polarity: 'nmos',
  vth: 0.609,
  kp: 53.3e-6,
  w: 1e-6,
  l: 0.25e-6,
  n: 1.221,
  lambda: 0.846,
});

/**
 * Gate windows where trained synapses operate on the sky130 card (about 10 pA to 1 uA at
 * mid-swing): the EKV fit above, the PDK mismatch statistics the dies draw, and the fidelity checks
 * are taken over these.
 */
export const OPERATING_GATES: Readonly<{ nmos: readonly [number, number]; pmos: readonly [number, number] }> = Object.freeze({
  nmos: Object.freeze([0.3, 0.7]) as readonly [number, number],
  pmos: Object.freeze([1.0, 1.45]) as readonly [number, number],
});

/** sky130 pfet_01v8 synapse, W = 1u, L = 0.25u, fitted as NOMINAL_NMOS. */
export const NOMINAL_PMOS: Readonly<MosfetParams> = Object.freeze({
  polarity: 'pmos',
  vth: -0.675,
  kp: 4.48e-6,
  w: 1e-6,
  l: 0.25e-6,
  n: 1.373,
  lambda: 1.3,
});

/**
 * Membrane: 103.3 fF MIM capacitor, precharged to 1.3 V, inverter trip point 0.9 V, VDD 1.8 V.
 * With the lambdas above: ePlus = (1.3 + 1/0.846)/0.4 = 6.20, eMinus = (1.3 - 1.8 - 1/1.3)/0.4 = -3.17
 * (the card's E+ runs 5.6-7.8 and E- -3.9 to -2.7 over the operating gate windows).
 */
export const NOMINAL_CIRCUIT: Readonly<NeuronCircuit> = Object.freeze({
  capacitance: 103.3e-15,
  vRest: 1.3,
  vThreshold: 0.9,
  supply: 1.8,
  lambdaN: NOMINAL_NMOS.lambda,
  lambdaP: NOMINAL_PMOS.lambda,
});

export const NOMINAL_TEMPERATURE_C = 27;

/** The Fashion-MNIST reference network. */
export const DEFAULT_SIZES: readonly number[] = Object.freeze([784, 256, 128, 10]);

/**
 * Timing. Firing takes C * (vRest - vThreshold) = 41.3 fC. Trained synapses sit in weak inversion
 * (0.2-18 nA at mid-swing: NMOS Vg ~ 0.37-0.50 V, PMOS Vg ~ 1.31-1.15 V on the sky130 card); with tens to hundreds of active inputs the net current is
 * ~20 nA to a few uA, i.e. spikes 10 ns to 2 us after the inputs. A 1 ns tick (a TDC or a fast
 * timer-capture; coarse next to the 1e-3-of-horizon spike-time resolution the twin resolves) and a
 * 2000-tick (2 us) window per layer put a neuron fed by 100 inputs at 1 nA each (413 ns) well
 * inside the first window. Layer l's window is 2000 (l + 1) ticks from the common time origin, so
 * each layer gets another 2 us after the previous one's latest spike; 31 layers fit in 16 bits.
 */
export const DEFAULT_TICK_SECONDS = 1e-9;
export const DEFAULT_LAYER_WINDOW_TICKS = 2000;
export const MAX_LAYERS = 31;

/**
 * 10-bit gate-voltage DACs spanning the supply: 1.76 mV a code, 5.7 % of a weak-inversion NMOS
 * current on the card (n UT = 31.6 mV an e-fold), so a trained conductance lands within 3 % of its
 * target.
 */
export const DEFAULT_DAC: Readonly<DacSpec> = Object.freeze({ bits: 10, vMin: 0, vMax: 1.8 });

/**
 * Gate windows that keep a synapse under ~0.1 mA, so a fully driven column cannot push tens of
 * milliamps through one membrane node and its wiring: on the sky130 card (membrane at 1.1 V) the
 * NMOS at 1.0 V draws 50 uA (1.15 V would reach 0.1 mA), the PMOS at 0.8 V 4 uA. Both windows
 * contain the operating ranges above with room (NMOS to 1.0 V is 2000x the strongest trained
 * current, PMOS to 0.8 V 200x); test/models/chips/sky130-nominal.test.ts checks the limits on the data.
 */
export const DEFAULT_SAFE: Readonly<SafeRange> = Object.freeze({
  nmos: Object.freeze([0, 1.0]) as readonly [number, number],
  pmos: Object.freeze([0.8, 1.8]) as readonly [number, number],
});

/**
 * The synapse transistors as the bundled sky130 card simulates them (27 C, no corner): tabulated
 * drain current against gate and membrane voltage, and E+ / E- against gate voltage, from
 * spice/data/sky130-devices.json (`npm run characterise`). The default chips run on these; the EKV
 * parameters above are their fit in the model's form.
 */
export { sky130NominalCurves, sky130Curves, type TransferCurves } from './sky130-curves.ts';
