/**
 * One layer of PNN neurons in normalised units (see units.ts): the parameters of eq. (1) of
 * docs/MODEL.md §2, shared by the float64 exact solver and converted to tensors for DSTD and Euler.
 *
 *   du_i/dt = sum_j H(t - t_j) [ gE_ij (ePlus - u_i) + gI_ij (eMinus - u_i) ] - gL_i u_i     ('pnn')
 *   du_i/dt = sum_j H(t - t_j) [ gE_ij ePlus + gI_ij eMinus ]             - gL_i u_i     ('ideal')
 *
 * plus a jump of u_i by kick_ij when input j switches on. Neuron i fires the first time u_i reaches
 * thresholdScale_i; its output time is that instant plus delay_i, silent (+Infinity) if later than
 * the horizon. 'ideal' is the lambda -> 0 limit of 'pnn' with gE*ePlus and gI*eMinus held fixed
 * (each synapse a current source with its current at rest), so the same parameters describe both
 * the bottom-up and the top-down model.
 *
 * Matrices are `nIn x nOut`, row-major (index `j * nOut + i`), the layout of `inputs x weights`.
 */

export type NeuronModel = 'pnn' | 'ideal';

export interface PnnLayer {
  readonly nIn: number;
  readonly nOut: number;
  readonly model: NeuronModel;
  /** Excitatory conductances (>= 0), nIn x nOut. */
  readonly gE: Float64Array;
  /** Inhibitory conductances (>= 0), nIn x nOut. */
  readonly gI: Float64Array;
  /** Excitatory reversal potential (physically > 1). */
  readonly ePlus: number;
  /** Inhibitory reversal potential (physically < 0). */
  readonly eMinus: number;
  /** Window end in normalised time; outputs later than this are silent. May be Infinity. */
  readonly horizon: number;
  /** Leak conductance per neuron (>= 0), nOut; absent = 0. */
  readonly gL?: Float64Array;
  /** Jump of u when input j switches on, nIn x nOut; absent = 0. */
  readonly kick?: Float64Array;
  /** Firing level per neuron (> 0), nOut; absent = 1. */
  readonly thresholdScale?: Float64Array;
  /** Output delay per neuron (comparator), nOut; absent = 0. */
  readonly delay?: Float64Array;
}

export interface LayerSpec {
  nIn: number;
  nOut: number;
  model?: NeuronModel;
  gE?: Float64Array | ArrayLike<number>;
  gI?: Float64Array | ArrayLike<number>;
  ePlus: number;
  eMinus: number;
  horizon?: number;
  gL?: number | ArrayLike<number>;
  kick?: ArrayLike<number>;
  thresholdScale?: number | ArrayLike<number>;
  delay?: number | ArrayLike<number>;
}

function vector(name: string, v: number | ArrayLike<number> | undefined, n: number): Float64Array | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return new Float64Array(n).fill(v);
  if (v.length !== n) throw new RangeError(`${name} has length ${v.length}, expected ${n}`);
  return Float64Array.from(v);
}

/** Builds a validated layer, filling absent conductances with zeros and the horizon with 1. */
export function makeLayer(spec: LayerSpec): PnnLayer {
  const { nIn, nOut } = spec;
  if (!Number.isInteger(nIn) || nIn < 1) throw new RangeError(`nIn must be a positive integer, got ${nIn}`);
  if (!Number.isInteger(nOut) || nOut < 1) throw new RangeError(`nOut must be a positive integer, got ${nOut}`);
  const size = nIn * nOut;
  const layer: PnnLayer = {
    nIn,
    nOut,
    model: spec.model ?? 'pnn',
    gE: vector('gE', spec.gE, size) ?? new Float64Array(size),
    gI: vector('gI', spec.gI, size) ?? new Float64Array(size),
    ePlus: spec.ePlus,
    eMinus: spec.eMinus,
    horizon: spec.horizon ?? 1,
    gL: vector('gL', spec.gL, nOut),
    kick: vector('kick', spec.kick, size),
    thresholdScale: vector('thresholdScale', spec.thresholdScale, nOut),
    delay: vector('delay', spec.delay, nOut),
  };
  checkLayer(layer);
  return layer;
}

function checkArray(name: string, a: Float64Array | undefined, n: number, ok: (x: number) => boolean, what: string): void {
  if (a === undefined) return;
  if (!(a instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
  if (a.length !== n) throw new RangeError(`${name} has length ${a.length}, expected ${n}`);
  for (let k = 0; k < n; k++) {
    if (!ok(a[k])) throw new RangeError(`${name}[${k}] = ${a[k]} must be ${what}`);
  }
}

const nonNegative = (x: number) => Number.isFinite(x) && x >= 0;
const finite = (x: number) => Number.isFinite(x);

/** Throws a RangeError/TypeError naming the first invalid field; returns silently otherwise. */
export function checkLayer(layer: PnnLayer): void {
  const { nIn, nOut } = layer;
  if (!Number.isInteger(nIn) || nIn < 1) throw new RangeError(`nIn must be a positive integer, got ${nIn}`);
  if (!Number.isInteger(nOut) || nOut < 1) throw new RangeError(`nOut must be a positive integer, got ${nOut}`);
  if (layer.model !== 'pnn' && layer.model !== 'ideal') {
    throw new RangeError(`model must be 'pnn' or 'ideal', got '${String(layer.model)}'`);
  }
  if (!Number.isFinite(layer.ePlus)) {
    throw new RangeError(`ePlus must be finite, got ${layer.ePlus} (for the lambda -> 0 limit use model 'ideal')`);
  }
  if (!Number.isFinite(layer.eMinus)) {
    throw new RangeError(`eMinus must be finite, got ${layer.eMinus} (for the lambda -> 0 limit use model 'ideal')`);
  }
  if (!(layer.horizon > 0)) throw new RangeError(`horizon must be > 0 (Infinity allowed), got ${layer.horizon}`);
  const size = nIn * nOut;
  if (!(layer.gE instanceof Float64Array) || !(layer.gI instanceof Float64Array)) {
    throw new TypeError('gE and gI must be Float64Arrays');
  }
  checkArray('gE', layer.gE, size, nonNegative, 'finite and >= 0');
  checkArray('gI', layer.gI, size, nonNegative, 'finite and >= 0');
  checkArray('gL', layer.gL, nOut, nonNegative, 'finite and >= 0');
  checkArray('kick', layer.kick, size, finite, 'finite');
  checkArray('thresholdScale', layer.thresholdScale, nOut, (x) => Number.isFinite(x) && x > 0, 'finite and > 0');
  checkArray('delay', layer.delay, nOut, nonNegative, 'finite and >= 0');
}

/**
 * Splits signed ideal-model weights w (nIn x nOut) into an 'ideal' layer with gE = max(w, 0),
 * gI = max(-w, 0), ePlus = 1, eMinus = -1, so that gE*ePlus + gI*eMinus = w.
 */
export function idealLayerFromWeights(
  w: ArrayLike<number>,
  nIn: number,
  nOut: number,
  rest: Omit<LayerSpec, 'nIn' | 'nOut' | 'model' | 'gE' | 'gI' | 'ePlus' | 'eMinus'> = {},
): PnnLayer {
  if (w.length !== nIn * nOut) throw new RangeError(`w has length ${w.length}, expected ${nIn * nOut}`);
  const gE = new Float64Array(w.length);
  const gI = new Float64Array(w.length);
  for (let k = 0; k < w.length; k++) {
    const x = w[k];
    if (x >= 0) gE[k] = x;
    else gI[k] = -x;
  }
  return makeLayer({ ...rest, nIn, nOut, model: 'ideal', gE, gI, ePlus: 1, eMinus: -1 });
}

/** The ideal model's signed weights gE*ePlus + gI*eMinus (the drive of each synapse at rest). */
export function signedWeights(layer: PnnLayer): Float64Array {
  const w = new Float64Array(layer.gE.length);
  for (let k = 0; k < w.length; k++) w[k] = layer.gE[k] * layer.ePlus + layer.gI[k] * layer.eMinus;
  return w;
}
