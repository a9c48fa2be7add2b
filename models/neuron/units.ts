/**
 * The one place where SI quantities (volts, seconds, siemens, amperes) become the normalised
 * quantities every solver works in, and back.
 *
 * Normalised units (docs/MODEL.md §3, eq. (6)):
 * - membrane state `u = (vRest - v) / (vRest - vThreshold)`: 0 at rest, 1 at the nominal threshold;
 * - time `t / t0`, where `t0` (seconds) is the network's time unit. By convention `t0` is the first
 *   layer's horizon, so layer 0's window is [0, 1]; later layers carry their own horizon in the same
 *   unit (one time base for the whole network keeps spike times comparable across layers);
 * - conductance `g * t0 / C` (a rate: g/C measured in 1/t0). A synapse conducting `gE` moves `u` by
 *   about `gE * ePlus` per time unit when the membrane is at rest;
 * - reversal potentials `ePlus`, `eMinus` in units of `u`.
 */

export type Polarity = 'nmos' | 'pmos';

/** The electrical description of one layer's neurons, SI units. */
export interface NeuronCircuit {
  /** Membrane capacitance, farads. */
  capacitance: number;
  /** Precharge (resting) voltage, volts. */
  vRest: number;
  /** Nominal firing threshold, volts (below vRest: excitatory synapses pull the membrane down). */
  vThreshold: number;
  /** Supply voltage VDD, volts (PMOS synapses source current from it). */
  supply: number;
  /** NMOS channel-length modulation, 1/V (0 = ideal current source). */
  lambdaN: number;
  /** PMOS channel-length modulation, 1/V. */
  lambdaP: number;
}

function positiveFinite(name: string, x: number): void {
  if (!(Number.isFinite(x) && x > 0)) {
    throw new RangeError(`${name} must be a positive finite number, got ${x}`);
  }
}

/** Validates a circuit description; throws RangeError naming the offending field. */
export function checkCircuit(c: NeuronCircuit): void {
  positiveFinite('capacitance', c.capacitance);
  positiveFinite('supply', c.supply);
  if (!(Number.isFinite(c.vRest) && Number.isFinite(c.vThreshold) && c.vThreshold < c.vRest)) {
    throw new RangeError(`vThreshold (${c.vThreshold} V) must be below vRest (${c.vRest} V); both finite`);
  }
  for (const [name, v] of [
    ['lambdaN', c.lambdaN],
    ['lambdaP', c.lambdaP],
  ] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${name} must be finite and >= 0, got ${v}`);
  }
}

/** Membrane swing from rest to threshold, volts (the voltage unit of `u`). */
export function swingVolts(c: NeuronCircuit): number {
  return c.vRest - c.vThreshold;
}

export function voltsToU(v: number, c: NeuronCircuit): number {
  return (c.vRest - v) / swingVolts(c);
}

export function uToVolts(u: number, c: NeuronCircuit): number {
  return c.vRest - u * swingVolts(c);
}

export function secondsToTime(seconds: number, t0: number): number {
  return seconds / t0;
}

export function timeToSeconds(t: number, t0: number): number {
  return t * t0;
}

/** Conductance in siemens to normalised conductance g*t0/C. */
export function siemensToConductance(g: number, capacitance: number, t0: number): number {
  return (g * t0) / capacitance;
}

export function conductanceToSiemens(gNorm: number, capacitance: number, t0: number): number {
  return (gNorm * capacitance) / t0;
}

/**
 * Reversal potentials in units of u. NMOS: E_n = -1/lambdaN, PMOS: E_p = VDD + 1/lambdaP
 * (docs/MODEL.md §2, eq. (5)). lambda = 0 gives +/-Infinity: the ideal current-source limit.
 */
export function reversalPotentials(c: NeuronCircuit): { ePlus: number; eMinus: number } {
  const dv = swingVolts(c);
  const ePlus = c.lambdaN > 0 ? (c.vRest + 1 / c.lambdaN) / dv : Infinity;
  const eMinus = c.lambdaP > 0 ? (c.vRest - c.supply - 1 / c.lambdaP) / dv : -Infinity;
  return { ePlus, eMinus };
}

/**
 * Normalised conductance of a synapse whose drain current is `i0 * (1 + lambda * Vds)`:
 * g = i0 * lambda, then g*t0/C. Zero when lambda = 0 (use synapseDriveAtRest in that limit).
 */
export function synapseConductance(i0: number, polarity: Polarity, c: NeuronCircuit, t0: number): number {
  const lambda = polarity === 'nmos' ? c.lambdaN : c.lambdaP;
  return siemensToConductance(i0 * lambda, c.capacitance, t0);
}

/**
 * The synapse's drive at rest, du/dt at u = 0, signed (NMOS > 0, PMOS < 0). Equals g * ePlus (or
 * g * eMinus) exactly and stays finite as lambda -> 0: it is the weight of the ideal (current-based)
 * model, computed without huge intermediate numbers.
 */
export function synapseDriveAtRest(i0: number, polarity: Polarity, c: NeuronCircuit, t0: number): number {
  const dv = swingVolts(c);
  if (polarity === 'nmos') return (i0 * (1 + c.lambdaN * c.vRest) * t0) / (c.capacitance * dv);
  return (-i0 * (1 + c.lambdaP * (c.supply - c.vRest)) * t0) / (c.capacitance * dv);
}

/** Per-neuron threshold scale: the neuron fires at u = thresholdScale (1 = nominal vThreshold). */
export function thresholdScaleFor(vThresholdNeuron: number, c: NeuronCircuit): number {
  return (c.vRest - vThresholdNeuron) / swingVolts(c);
}
