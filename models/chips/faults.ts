/**
 * Planted faults of the behavioural chip: the `faults=` option's grammar, its parser and the check
 * against a geometry. Bring-up diagnostics are tested against these.
 *
 *   faults  = fault *( ";" fault )            (whitespace around tokens is ignored)
 *   fault   = "dead-neuron:" L "." I          comparator output stuck low: never fires
 *           | "stuck-neuron:" L "." I         comparator output stuck high: fires at t = 0, always
 *           | "dead-synapse:" S               open drain: conducts nothing, no kick
 *           | "shorted-synapse:" S            gate shorted to its on rail (NMOS to VDD, PMOS to ground):
 *                                             full current once its input spikes, whatever its weight
 *           | "weak-synapse:" S [ "@" F ]     current factor times F, 0 < F < 1 (default 0.1)
 *   S       = L "." J "." I "." ("nmos" | "pmos")
 *
 * L is the layer, I the neuron (output) within it, J the input. Indices are decimal, from 0.
 */

import type { LayerGeometry } from './chip-backend.ts';

export type NeuronFaultKind = 'dead-neuron' | 'stuck-neuron';
export type SynapseFaultKind = 'dead-synapse' | 'shorted-synapse' | 'weak-synapse';

export interface NeuronFault {
  kind: NeuronFaultKind;
  /** The token as written (trimmed), for messages. */
  token: string;
  layer: number;
  neuron: number;
}

export interface SynapseFault {
  kind: SynapseFaultKind;
  token: string;
  layer: number;
  input: number;
  output: number;
  polarity: 'nmos' | 'pmos';
  /** Current factor of a weak synapse (1 for other kinds). */
  fraction: number;
}

export type ChipFault = NeuronFault | SynapseFault;

export const DEFAULT_WEAK_FRACTION = 0.1;

/** Accepted forms, quoted in every error message. */
export const FAULT_FORMS =
  'dead-neuron:L.I, stuck-neuron:L.I, dead-synapse:L.J.I.nmos|pmos, shorted-synapse:L.J.I.nmos|pmos, ' +
  'weak-synapse:L.J.I.nmos|pmos[@F] (L layer, J input, I neuron, 0 < F < 1), joined by ";"';

export class FaultSpecError extends RangeError {
  override name = 'FaultSpecError';
}

function fail(token: string, why: string): never {
  throw new FaultSpecError(`fault '${token}': ${why}; accepted forms: ${FAULT_FORMS}`);
}

const NEURON_KINDS: readonly string[] = ['dead-neuron', 'stuck-neuron'];
const SYNAPSE_KINDS: readonly string[] = ['dead-synapse', 'shorted-synapse', 'weak-synapse'];

function index(token: string, what: string, s: string): number {
  if (!/^\d{1,5}$/.test(s)) fail(token, `${what} '${s}' is not a whole number`);
  return Number(s);
}

function parseOne(token: string): ChipFault {
  const colon = token.indexOf(':');
  if (colon < 0) fail(token, 'missing ":" between the fault kind and its target');
  const kind = token.slice(0, colon).trim();
  const target = token.slice(colon + 1).trim();
  if (NEURON_KINDS.includes(kind)) {
    const parts = target.split('.');
    if (parts.length !== 2) fail(token, `${kind} takes a neuron LAYER.INDEX, got '${target}'`);
    return { kind: kind as NeuronFaultKind, token, layer: index(token, 'layer', parts[0]), neuron: index(token, 'neuron', parts[1]) };
  }
  if (SYNAPSE_KINDS.includes(kind)) {
    let address = target;
    let fraction = kind === 'weak-synapse' ? DEFAULT_WEAK_FRACTION : 1;
    const at = target.indexOf('@');
    if (at >= 0) {
      if (kind !== 'weak-synapse') fail(token, `only weak-synapse takes a fraction "@F"`);
      const f = target.slice(at + 1);
      fraction = /^(0(\.\d+)?|\.\d+)$/.test(f) ? Number(f) : NaN;
      if (!(fraction > 0 && fraction < 1)) fail(token, `fraction '${f}' must be a decimal number with 0 < F < 1`);
      address = target.slice(0, at);
    }
    const parts = address.split('.');
    if (parts.length !== 4) fail(token, `${kind} takes a synapse LAYER.INPUT.NEURON.POLARITY, got '${address}'`);
    const polarity = parts[3];
    if (polarity !== 'nmos' && polarity !== 'pmos') fail(token, `polarity '${polarity}' must be nmos or pmos`);
    return {
      kind: kind as SynapseFaultKind,
      token,
      layer: index(token, 'layer', parts[0]),
      input: index(token, 'input', parts[1]),
      output: index(token, 'neuron', parts[2]),
      polarity,
      fraction,
    };
  }
  return fail(token, `unknown fault kind '${kind}'`);
}

function targetKey(f: ChipFault): string {
  return 'neuron' in f ? `n${f.layer}.${f.neuron}` : `s${f.layer}.${f.input}.${f.output}.${f.polarity}`;
}

/**
 * Parses a fault list (syntax only; `checkFaults` checks indices against a geometry). Throws
 * FaultSpecError naming the bad token and the accepted forms. Two faults on one neuron or one
 * synapse are rejected: the chip could not show both.
 */
export function parseFaults(spec: string): ChipFault[] {
  if (typeof spec !== 'string') throw new FaultSpecError(`faults must be a string; accepted forms: ${FAULT_FORMS}`);
  const faults: ChipFault[] = [];
  const seen = new Map<string, string>();
  for (const raw of spec.split(';')) {
    const token = raw.trim();
    if (token === '') continue;
    const f = parseOne(token);
    const key = targetKey(f);
    const prior = seen.get(key);
    if (prior !== undefined) fail(token, `its target already has the fault '${prior}'; give one fault per neuron or synapse`);
    seen.set(key, token);
    faults.push(f);
  }
  if (faults.length === 0) throw new FaultSpecError(`faults='${spec}' names no fault; accepted forms: ${FAULT_FORMS}`);
  return faults;
}

/** The row of a synapse (input, polarity) in a layer, or -1 if the layer has none. */
export function synapseRow(g: LayerGeometry, input: number, polarity: 'nmos' | 'pmos'): number {
  const pol = polarity === 'nmos' ? 0 : 1;
  for (let r = 0; r < g.rowInput.length; r++) if (g.rowInput[r] === input && g.rowPolarity[r] === pol) return r;
  return -1;
}

/** Checks every fault's indices against a geometry; throws FaultSpecError naming the token. */
export function checkFaults(faults: readonly ChipFault[], geometry: readonly LayerGeometry[]): void {
  for (const f of faults) {
    if (f.layer >= geometry.length) {
      fail(f.token, `layer ${f.layer} does not exist; this chip has layers 0..${geometry.length - 1}`);
    }
    const g = geometry[f.layer];
    if ('neuron' in f) {
      if (f.neuron >= g.outputs) fail(f.token, `neuron ${f.neuron} does not exist; layer ${f.layer} has neurons 0..${g.outputs - 1}`);
    } else {
      if (f.input >= g.inputs) fail(f.token, `input ${f.input} does not exist; layer ${f.layer} has inputs 0..${g.inputs - 1}`);
      if (f.output >= g.outputs) fail(f.token, `neuron ${f.output} does not exist; layer ${f.layer} has neurons 0..${g.outputs - 1}`);
      if (synapseRow(g, f.input, f.polarity) < 0) fail(f.token, `layer ${f.layer} has no ${f.polarity} synapse for input ${f.input}`);
    }
  }
}

/** The canonical text of a fault list (parseFaults(formatFaults(x)) equals x up to tokens). */
export function formatFaults(faults: readonly ChipFault[]): string {
  return faults
    .map((f) => {
      if ('neuron' in f) return `${f.kind}:${f.layer}.${f.neuron}`;
      const base = `${f.kind}:${f.layer}.${f.input}.${f.output}.${f.polarity}`;
      return f.kind === 'weak-synapse' ? `${base}@${f.fraction}` : base;
    })
    .join(';');
}
