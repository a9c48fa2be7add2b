/**
 * The exact, event-driven solver of docs/MODEL.md §5.1 (float64, the reference).
 *
 * Per sample the active inputs are sorted once; between consecutive input times every neuron
 * follows du/dt = A - G u exactly (eq. 2), and the first interval whose end reaches threshold gives
 * the spike time through eq. (3). All neurons of a layer advance together (inner loops run over
 * contiguous weight rows). Gradients (exactBackward) come from the implicit function theorem at
 * u(T) = threshold, propagated backwards through the chain of intervals in reverse mode.
 *
 * Stable forms: over an interval of length d with z = G d,
 *   u_end = u e + A phi,   e = exp(-z),   phi = d * phi1(z),   phi1(z) = -expm1(-z)/z,
 * and the time to reach threshold theta from u is
 *   s = (D / r) * psi(x),  D = theta - u,  r = A - G u,  x = G D / r,  psi(x) = -log1p(-x)/x,
 * which tend to u + A d and D / A as G -> 0 (no division by G anywhere).
 *
 * Inputs are `batch x nIn` times in normalised units (+Infinity = silent); outputs `batch x nOut`
 * (+Infinity = silent, i.e. no crossing with crossing + delay <= horizon).
 */

import { checkLayer, type PnnLayer } from '../neuron/layer.ts';

export interface ExactOptions {
  /** Validate the layer and the inputs (default true). Skip only for data already checked. */
  validate?: boolean;
}

export interface ExactForwardResult {
  /** batch x nOut spike times, +Infinity when silent. */
  times: Float64Array;
}

/** Gradients of a scalar loss L with respect to everything a layer's output times depend on. */
export interface ExactGradients {
  gE: Float64Array;
  gI: Float64Array;
  ePlus: number;
  eMinus: number;
  gL: Float64Array;
  kick: Float64Array;
  thresholdScale: Float64Array;
  delay: Float64Array;
  /** batch x nIn; zero for silent inputs and inputs after the neuron fired. */
  inputTimes: Float64Array;
}

export interface ExactBackwardResult {
  times: Float64Array;
  grads: ExactGradients;
}

/** (1 - e^-z)/z for z >= 0, 1 at z = 0. */
export function phi1(z: number): number {
  return phi1FromExpm1(z, z < 1e-8 ? 0 : Math.expm1(-z));
}

/** d/dz phi1(z) = (e^-z (1 + z) - 1)/z^2, series near 0 where the formula cancels. */
export function dphi1(z: number): number {
  if (z < 1e-2) return dphi1Series(z);
  return (Math.exp(-z) * (1 + z) - 1) / (z * z);
}

/**
 * phi1 and dphi1 given em1 = expm1(-z), which also gives e^-z = 1 + em1: for loops that need all
 * three (the DSTD kernels), one transcendental call instead of three. dphi1's numerator
 * e^-z (1 + z) - 1 is em1 (1 + z) + z.
 */
export function phi1FromExpm1(z: number, em1: number): number {
  return z < 1e-8 ? 1 - 0.5 * z : -em1 / z;
}

export function dphi1FromExpm1(z: number, em1: number): number {
  if (z < 1e-2) return dphi1Series(z);
  return (em1 * (1 + z) + z) / (z * z);
}

function dphi1Series(z: number): number {
  return -0.5 + z * (1 / 3 + z * (-1 / 8 + z * (1 / 30 - z / 144)));
}

/** -log1p(-x)/x for 0 <= x < 1, 1 at x = 0. */
function psi(x: number): number {
  return x < 1e-8 ? 1 + 0.5 * x : -Math.log1p(-x) / x;
}

/** Time for u to rise from `u` to `theta` under du/dt = A - G u, or Infinity if it never does. */
export function timeToThreshold(u: number, G: number, A: number, theta: number): number {
  const D = theta - u;
  const r = A - G * u;
  if (!(r > 0)) return Infinity;
  const x = (G * D) / r;
  if (!(x < 1)) return Infinity;
  return (D / r) * psi(x);
}

function checkInputTimes(inputTimes: Float64Array, batch: number, nIn: number, name = 'inputTimes'): void {
  if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
  if (!(inputTimes instanceof Float64Array)) throw new TypeError(`${name} must be a Float64Array`);
  if (inputTimes.length !== batch * nIn) {
    throw new RangeError(`${name} has length ${inputTimes.length}, expected batch*nIn = ${batch}*${nIn}`);
  }
  for (let k = 0; k < inputTimes.length; k++) {
    const t = inputTimes[k];
    if (Number.isNaN(t) || t === -Infinity) {
      throw new RangeError(`${name}[${k}] = ${t}: times must be finite or +Infinity (silent)`);
    }
  }
}

const RUNNING = 0;
const FIRED = 1;
const SILENT = 2;

/**
 * Scratch state for one layer: runs one sample at a time, all neurons in lockstep. With `trace`,
 * records (u, G, A) after every applied event for the reverse pass (nIn x nOut doubles, reused).
 */
class LayerKernel {
  readonly layer: PnnLayer;
  readonly nIn: number;
  readonly nOut: number;
  readonly pnn: boolean;
  readonly theta: Float64Array;
  readonly tLim: Float64Array;
  readonly cutoff: number;
  readonly order: Int32Array;
  readonly tau: Float64Array;
  nEvents = 0;
  readonly u: Float64Array;
  readonly G: Float64Array;
  readonly A: Float64Array;
  /** Crossing time (without delay), Infinity when silent. */
  readonly T: Float64Array;
  readonly status: Uint8Array;
  /** Index of the last event applied before the crossing (-1: none). */
  readonly lastEvent: Int32Array;
  /** 1 when the neuron fired at an event because a kick lifted it over threshold. */
  readonly kickFire: Uint8Array;
  traceU: Float64Array | null = null;
  traceG: Float64Array | null = null;
  traceA: Float64Array | null = null;

  constructor(layer: PnnLayer, trace: boolean) {
    this.layer = layer;
    this.nIn = layer.nIn;
    this.nOut = layer.nOut;
    this.pnn = layer.model === 'pnn';
    const n = layer.nOut;
    this.theta = layer.thresholdScale ?? new Float64Array(n).fill(1);
    this.tLim = new Float64Array(n);
    let cutoff = -Infinity;
    for (let i = 0; i < n; i++) {
      this.tLim[i] = layer.horizon - (layer.delay ? layer.delay[i] : 0);
      if (this.tLim[i] > cutoff) cutoff = this.tLim[i];
    }
    this.cutoff = cutoff;
    this.order = new Int32Array(layer.nIn);
    this.tau = new Float64Array(layer.nIn);
    this.u = new Float64Array(n);
    this.G = new Float64Array(n);
    this.A = new Float64Array(n);
    this.T = new Float64Array(n);
    this.status = new Uint8Array(n);
    this.lastEvent = new Int32Array(n);
    this.kickFire = new Uint8Array(n);
    if (trace) {
      this.traceU = new Float64Array(layer.nIn * n);
      this.traceG = new Float64Array(layer.nIn * n);
      this.traceA = new Float64Array(layer.nIn * n);
    }
  }

  /** Sorts the sample's inputs that arrive no later than any neuron's window end. */
  private sortEvents(times: Float64Array, offset: number): void {
    const { order, tau, nIn, cutoff } = this;
    let K = 0;
    for (let j = 0; j < nIn; j++) if (times[offset + j] <= cutoff) order[K++] = j;
    const view = order.subarray(0, K);
    view.sort((a, b) => times[offset + a] - times[offset + b] || a - b);
    for (let k = 0; k < K; k++) tau[k] = times[offset + order[k]];
    this.nEvents = K;
  }

  /**
   * Advances neuron i from time a to min(b, tLim_i); marks it FIRED on a crossing, SILENT when
   * b passes its window end. `b` may be +Infinity.
   */
  private advance(i: number, a: number, b: number): void {
    const lim = this.tLim[i];
    const end = b < lim ? b : lim;
    const theta = this.theta[i];
    const u = this.u[i];
    const G = this.G[i];
    const A = this.A[i];
    if (end > a) {
      if (end === Infinity) {
        const s = timeToThreshold(u, G, A, theta);
        if (s < Infinity) {
          this.T[i] = a + s;
          this.status[i] = FIRED;
        } else {
          this.status[i] = SILENT;
        }
        return;
      }
      const d = end - a;
      const z = G * d;
      const e = Math.exp(-z);
      const uEnd = u * e + A * d * phi1(z);
      if (uEnd >= theta) {
        const s = timeToThreshold(u, G, A, theta);
        this.T[i] = a + (s < d ? s : d);
        this.status[i] = FIRED;
        return;
      }
      this.u[i] = uEnd;
    }
    if (b > lim) this.status[i] = SILENT;
  }

  /** Runs one sample; results in T/status (and the trace when enabled). */
  run(times: Float64Array, offset: number): void {
    const { layer, nOut, pnn, theta, tLim, u, G, A, T, status, lastEvent, kickFire } = this;
    const { gE, gI, ePlus, eMinus, kick } = layer;
    const { traceU, traceG, traceA } = this;
    this.sortEvents(times, offset);
    const { order, tau, nEvents } = this;
    u.fill(0);
    A.fill(0);
    if (layer.gL) G.set(layer.gL);
    else G.fill(0);
    T.fill(Infinity);
    status.fill(RUNNING);
    lastEvent.fill(-1);
    kickFire.fill(0);
    let running = nOut;
    let tPrev = -Infinity;
    for (let k = 0; k < nEvents && running > 0; k++) {
      const t = tau[k];
      if (k > 0 && t > tPrev) {
        for (let i = 0; i < nOut; i++) {
          if (status[i] !== RUNNING) continue;
          this.advance(i, tPrev, t);
          if (status[i] !== RUNNING) running--;
        }
      }
      const row = order[k] * nOut;
      const base = k * nOut;
      for (let i = 0; i < nOut; i++) {
        if (status[i] !== RUNNING) continue;
        if (t > tLim[i]) {
          status[i] = SILENT;
          running--;
          continue;
        }
        const ge = gE[row + i];
        const gi = gI[row + i];
        if (pnn) G[i] += ge + gi;
        A[i] += ge * ePlus + gi * eMinus;
        if (kick) u[i] += kick[row + i];
        lastEvent[i] = k;
        if (traceU) {
          traceU[base + i] = u[i];
          traceG![base + i] = G[i];
          traceA![base + i] = A[i];
        }
        if (u[i] >= theta[i]) {
          T[i] = t;
          status[i] = FIRED;
          kickFire[i] = 1;
          running--;
        }
      }
      tPrev = t;
    }
    if (running > 0) {
      for (let i = 0; i < nOut; i++) {
        if (status[i] === RUNNING) this.advance(i, tPrev, Infinity);
      }
    }
  }

  /** Writes output times (crossing + delay, Infinity when silent) for the last run. */
  writeTimes(out: Float64Array, offset: number): void {
    const { T, status, nOut } = this;
    const delay = this.layer.delay;
    for (let i = 0; i < nOut; i++) {
      out[offset + i] = status[i] === FIRED ? T[i] + (delay ? delay[i] : 0) : Infinity;
    }
  }
}

/** One layer, one batch: output spike times. */
export function exactForward(layer: PnnLayer, inputTimes: Float64Array, batch: number, opts: ExactOptions = {}): ExactForwardResult {
  if (opts.validate !== false) {
    checkLayer(layer);
    checkInputTimes(inputTimes, batch, layer.nIn);
  }
  const kernel = new LayerKernel(layer, false);
  const times = new Float64Array(batch * layer.nOut);
  for (let b = 0; b < batch; b++) {
    kernel.run(inputTimes, b * layer.nIn);
    kernel.writeTimes(times, b * layer.nOut);
  }
  return { times };
}

function zeroGradients(layer: PnnLayer, batch: number): ExactGradients {
  const size = layer.nIn * layer.nOut;
  return {
    gE: new Float64Array(size),
    gI: new Float64Array(size),
    ePlus: 0,
    eMinus: 0,
    gL: new Float64Array(layer.nOut),
    kick: new Float64Array(size),
    thresholdScale: new Float64Array(layer.nOut),
    delay: new Float64Array(layer.nOut),
    inputTimes: new Float64Array(batch * layer.nIn),
  };
}

/**
 * Reverse-mode gradients of L given dL/d(output time) (`gradTimes`, batch x nOut; entries for
 * silent outputs are ignored, a silent output has no gradient). Recomputes the forward pass.
 */
export function exactBackward(layer: PnnLayer, inputTimes: Float64Array, batch: number, gradTimes: Float64Array, opts: ExactOptions = {}): ExactBackwardResult {
  const { nIn, nOut } = layer;
  if (opts.validate !== false) {
    checkLayer(layer);
    checkInputTimes(inputTimes, batch, nIn);
    if (!(gradTimes instanceof Float64Array) || gradTimes.length !== batch * nOut) {
      throw new RangeError(`gradTimes must be a Float64Array of length batch*nOut = ${batch * nOut}`);
    }
    for (let k = 0; k < gradTimes.length; k++) {
      if (!Number.isFinite(gradTimes[k])) throw new RangeError(`gradTimes[${k}] = ${gradTimes[k]} must be finite`);
    }
  }
  const kernel = new LayerKernel(layer, true);
  const times = new Float64Array(batch * nOut);
  const grads = zeroGradients(layer, batch);
  const { gE, gI, ePlus, eMinus } = layer;
  const pnn = kernel.pnn;
  const lam = new Float64Array(nOut);
  const cumG = new Float64Array(nOut);
  const cumA = new Float64Array(nOut);
  const active = new Uint8Array(nOut);
  let gradEPlus = 0;
  let gradEMinus = 0;
  for (let b = 0; b < batch; b++) {
    kernel.run(inputTimes, b * nIn);
    kernel.writeTimes(times, b * nOut);
    const { T, status, lastEvent, kickFire, theta, order, tau } = kernel;
    const traceU = kernel.traceU!;
    const traceG = kernel.traceG!;
    const traceA = kernel.traceA!;
    const gTimes = grads.inputTimes;
    const tOff = b * nIn;
    lam.fill(0);
    cumG.fill(0);
    cumA.fill(0);
    active.fill(0);
    let maxK = -1;
    for (let i = 0; i < nOut; i++) {
      const g = gradTimes[b * nOut + i];
      if (status[i] !== FIRED || g === 0) continue;
      grads.delay[i] += g;
      const kc = lastEvent[i];
      if (kickFire[i]) {
        gTimes[tOff + order[kc]] += g;
        continue;
      }
      // IFT at u(T) = theta: dT/dp = -(du(T)/dp) / slope, slope = A - G theta > 0.
      const base = kc * nOut + i;
      const slope = traceA[base] - traceG[base] * theta[i];
      lam[i] = -g / slope;
      grads.thresholdScale[i] += g / slope;
      active[i] = 1;
      if (kc > maxK) maxK = kc;
    }
    for (let k = maxK; k >= 0; k--) {
      const j = order[k];
      const row = j * nOut;
      const base = k * nOut;
      const tk = tau[k];
      const tNext = k + 1 < kernel.nEvents ? tau[k + 1] : Infinity;
      const jNext = k + 1 < kernel.nEvents ? order[k + 1] : -1;
      for (let i = 0; i < nOut; i++) {
        if (!active[i]) continue;
        const kc = lastEvent[i];
        if (kc < k) continue;
        const end = kc === k ? T[i] : tNext;
        const u = traceU[base + i];
        const G = traceG[base + i];
        const A = traceA[base + i];
        const d = end - tk;
        const z = G * d;
        const e = Math.exp(-z);
        const phi = d * phi1(z);
        const l = lam[i];
        // u_end = u e + A phi: partials with respect to G, A, the interval ends and u.
        cumG[i] += l * (-d * e * u + A * d * d * dphi1(z));
        cumA[i] += l * phi;
        const dt = l * (A - G * u) * e;
        if (kc !== k) gTimes[tOff + jNext] += dt;
        gTimes[tOff + j] -= dt;
        lam[i] = l * e;
        const cg = cumG[i];
        const ca = cumA[i];
        grads.gE[row + i] += (pnn ? cg : 0) + ca * ePlus;
        grads.gI[row + i] += (pnn ? cg : 0) + ca * eMinus;
        gradEPlus += ca * gE[row + i];
        gradEMinus += ca * gI[row + i];
        grads.kick[row + i] += lam[i];
      }
    }
    for (let i = 0; i < nOut; i++) if (active[i]) grads.gL[i] += cumG[i];
  }
  grads.ePlus = gradEPlus;
  grads.eMinus = gradEMinus;
  return { times, grads };
}

function checkChain(layers: readonly PnnLayer[]): void {
  if (layers.length === 0) throw new RangeError('a network needs at least one layer');
  for (let l = 1; l < layers.length; l++) {
    if (layers[l].nIn !== layers[l - 1].nOut) {
      throw new RangeError(`layer ${l} has nIn = ${layers[l].nIn} but layer ${l - 1} has nOut = ${layers[l - 1].nOut}`);
    }
  }
}

/** Every layer's output times; layer l's inputs are layer l-1's outputs in the same time base. */
export function exactNetworkForward(layers: readonly PnnLayer[], inputTimes: Float64Array, batch: number, opts: ExactOptions = {}): Float64Array[] {
  checkChain(layers);
  const out: Float64Array[] = [];
  let x = inputTimes;
  for (let l = 0; l < layers.length; l++) {
    // Outputs of a validated layer are valid inputs: validate only the network's own inputs.
    const validate = opts.validate !== false;
    if (validate) checkLayer(layers[l]);
    if (validate && l === 0) checkInputTimes(inputTimes, batch, layers[0].nIn);
    x = exactForward(layers[l], x, batch, { validate: false }).times;
    out.push(x);
  }
  return out;
}

export interface ExactNetworkBackwardResult {
  times: Float64Array[];
  grads: ExactGradients[];
  /** dL/d(network input times), batch x nIn of layer 0. */
  inputTimes: Float64Array;
}

/**
 * Backpropagation through a network. `gradTimes[l]` is dL/d(layer l output times) for losses or
 * regularisers applied directly to layer l (undefined = none).
 */
export function exactNetworkBackward(
  layers: readonly PnnLayer[],
  inputTimes: Float64Array,
  batch: number,
  gradTimes: readonly (Float64Array | undefined)[],
  opts: ExactOptions = {},
): ExactNetworkBackwardResult {
  checkChain(layers);
  if (gradTimes.length !== layers.length) {
    throw new RangeError(`gradTimes has ${gradTimes.length} entries, expected one per layer (${layers.length})`);
  }
  const times = exactNetworkForward(layers, inputTimes, batch, opts);
  const grads: ExactGradients[] = new Array(layers.length);
  let upstream: Float64Array | null = null;
  for (let l = layers.length - 1; l >= 0; l--) {
    const n = batch * layers[l].nOut;
    const g = new Float64Array(n);
    const direct = gradTimes[l];
    if (direct) {
      if (direct.length !== n) throw new RangeError(`gradTimes[${l}] has length ${direct.length}, expected ${n}`);
      for (let k = 0; k < n; k++) {
        if (!Number.isFinite(direct[k])) throw new RangeError(`gradTimes[${l}][${k}] = ${direct[k]} must be finite`);
      }
      g.set(direct);
    }
    if (upstream) for (let k = 0; k < n; k++) g[k] += upstream[k];
    const x = l === 0 ? inputTimes : times[l - 1];
    const r = exactBackward(layers[l], x, batch, g, { validate: false });
    grads[l] = r.grads;
    upstream = r.grads.inputTimes;
  }
  return { times, grads, inputTimes: upstream! };
}
