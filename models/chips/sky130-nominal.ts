/**
 * Nominal (mismatch-free) device and circuit parameters of the reference RC-Spike design in
 * sky130, and the board's default timing. Shared by every chip model that starts from nominal.
 */

import type { MosfetParams } from '../neuron/transfer-curve.ts';
import type { NeuronCircuit } from '../neuron/units.ts';
import type { DacSpec, SafeRange } from './chip-backend.ts';

/**
 * sky130 nfet_01v8-like synapse, W = 1u, L = 0.25u. kp = mu_n Cox ~ 250 uA/V^2 (tox ~ 4.1 nm);
 * lambda = 0.4 /V is a typical channel-length modulation at L = 0.25 um. Gives Is ~ 1.7 uA, and
 * I0 ~ 0.23 nA / 1 nA / 4.3 nA / 72 nA at Vg = 0.20 / 0.25 / 0.30 / 0.40 V.
 */
export const NOMINAL_NMOS: Readonly<MosfetParams> = Object.freeze({
  polarity: 'nmos',
  vth: 0.5,
  kp: 250e-6,
  w: 1e-6,
  l: 0.25e-6,
  n: 1.3,
  lambda: 0.4,
});

/** sky130 pfet_01v8-like synapse, W = 1u, L = 0.25u; holes ~ 1/4 the electron mobility. */
export const NOMINAL_PMOS: Readonly<MosfetParams> = Object.freeze({
  polarity: 'pmos',
  vth: -0.45,
  kp: 60e-6,
  w: 1e-6,
  l: 0.25e-6,
  n: 1.35,
  lambda: 0.5,
});

/**
 * Membrane: 103.3 fF MIM capacitor, precharged to 1.3 V, inverter trip point 0.9 V, VDD 1.8 V.
 * With the lambdas above: ePlus = (1.3 + 2.5)/0.4 = 9.5, eMinus = (1.3 - 1.8 - 2)/0.4 = -6.25.
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
 * (Vg ~ 0.2-0.35 V, I0 ~ 0.2-18 nA); with tens to hundreds of active inputs the net current is
 * ~20 nA to a few uA, i.e. spikes 10 ns to 2 us after the inputs. A 1 ns tick (a TDC or a fast
 * timer-capture; coarse next to the 1e-3-of-horizon spike-time resolution the twin resolves) and a
 * 2000-tick (2 us) window per layer put a neuron fed by 100 inputs at 1 nA each (413 ns) well
 * inside the first window. Layer l's window is 2000 (l + 1) ticks from the common time origin, so
 * each layer gets another 2 us after the previous one's latest spike; 31 layers fit in 16 bits.
 */
export const DEFAULT_TICK_SECONDS = 1e-9;
export const DEFAULT_LAYER_WINDOW_TICKS = 2000;
export const MAX_LAYERS = 31;

/** 10-bit gate-voltage DACs spanning the supply. */
export const DEFAULT_DAC: Readonly<DacSpec> = Object.freeze({ bits: 10, vMin: 0, vMax: 1.8 });

/**
 * |Vgs| <= 1.0 V keeps a synapse under ~0.1 mA, so a fully driven column cannot push tens of
 * milliamps through one membrane node and its wiring.
 */
export const DEFAULT_SAFE: Readonly<SafeRange> = Object.freeze({
  nmos: Object.freeze([0, 1.0]) as readonly [number, number],
  pmos: Object.freeze([0.8, 1.8]) as readonly [number, number],
});

/**
 * The synapse transistors as the bundled sky130 card simulates them (27 C, no corner): tabulated
 * drain current against gate and membrane voltage, and E+ / E- against gate voltage, from
 * spice/data/sky130-devices.json (`npm run characterise`). The EKV parameters above are the
 * older, made-up nominal the chips still use; these curves conduct 65-1660x less in the DAC windows.
 */
export { sky130NominalCurves, sky130Curves, type TransferCurves } from './sky130-curves.ts';
