/**
 * Test support: a random dense layer and central finite differences of the exact solver's
 * weighted spike-time loss L = sum w * t (the independent reference for every gradient test).
 */
import { makeLayer, type LayerSpec, type NeuronModel } from '../../../models/neuron/layer.ts';
import { exactForward } from '../../../models/solvers/exact.ts';
import { mulberry } from '../rng.ts';

export interface FdCase {
  spec: LayerSpec & {
    gE: Float64Array;
    gI: Float64Array;
    gL: Float64Array;
    thresholdScale: Float64Array;
    delay: Float64Array;
  };
  x: Float64Array;
  batch: number;
  /** Loss weights; zero where the exact output is silent. */
  w: Float64Array;
  exactTimes: Float64Array;
}

export function randomCase(seed: number, model: NeuronModel, nIn = 20, nOut = 6, batch = 4): FdCase {
  const rnd = mulberry(seed);
  const spec = {
    nIn,
    nOut,
    model,
    ePlus: 4,
    eMinus: -2,
    horizon: 1.5,
    gE: Float64Array.from({ length: nIn * nOut }, () => rnd() * 0.3),
    gI: Float64Array.from({ length: nIn * nOut }, () => rnd() * 0.15),
    gL: Float64Array.from({ length: nOut }, () => rnd() * 0.3),
    thresholdScale: Float64Array.from({ length: nOut }, () => 0.8 + 0.4 * rnd()),
    delay: Float64Array.from({ length: nOut }, () => 0.05 * rnd()),
  };
  const x = Float64Array.from({ length: batch * nIn }, () => (rnd() < 0.2 ? Infinity : rnd() * 0.8));
  const exactTimes = exactForward(makeLayer(spec), x, batch).times;
  const w = Float64Array.from(exactTimes, (t) => (Number.isFinite(t) ? rnd() - 0.5 : 0));
  return { spec, x, batch, w, exactTimes };
}

export function exactLoss(c: FdCase): number {
  const t = exactForward(makeLayer(c.spec), c.x, c.batch).times;
  let s = 0;
  for (let k = 0; k < t.length; k++) if (c.w[k] !== 0) s += c.w[k] * t[k];
  return s;
}

export interface FdGradients {
  gE: Float64Array;
  gI: Float64Array;
  gL: Float64Array;
  thresholdScale: Float64Array;
  delay: Float64Array;
  ePlus: number;
  eMinus: number;
  inputTimes: Float64Array;
}

export function exactFdGradients(c: FdCase, h = 1e-6): FdGradients {
  const fd = (arr: Float64Array | null, k: number, key?: 'ePlus' | 'eMinus'): number => {
    const get = () => (arr ? arr[k] : c.spec[key!]);
    const set = (v: number) => (arr ? (arr[k] = v) : (c.spec[key!] = v));
    const o = get();
    set(o + h);
    const lp = exactLoss(c);
    set(o - h);
    const lm = exactLoss(c);
    set(o);
    return (lp - lm) / (2 * h);
  };
  const all = (arr: Float64Array) => Float64Array.from(arr, (v, k) => (Number.isFinite(v) ? fd(arr, k) : 0));
  return {
    gE: all(c.spec.gE),
    gI: all(c.spec.gI),
    gL: all(c.spec.gL),
    thresholdScale: all(c.spec.thresholdScale),
    delay: all(c.spec.delay),
    ePlus: fd(null, 0, 'ePlus'),
    eMinus: fd(null, 0, 'eMinus'),
    inputTimes: all(c.x),
  };
}

/** ||a - b|| / ||b||. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let n = 0;
  for (let k = 0; k < a.length; k++) {
    d += (a[k] - b[k]) ** 2;
    n += b[k] ** 2;
  }
  return Math.sqrt(d / n);
}
