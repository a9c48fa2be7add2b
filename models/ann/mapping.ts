/**
 * The ideal mapping: a ReLU network onto a time-to-first-spike network of the ideal (current
 * based, non-leaky) model, exact under the assumptions below; then the same conductances run on
 * the PNN with finite reversal potentials, where a uniform current scale (and, where the chip
 * allows it, the operating point that sets ePlus / eMinus) is searched for the best accuracy.
 *
 * Coding. Activation a of layer n is carried by a spike at t = T_n - tau * a_hat, inside the
 * window [T_n - D_n, T_n]; the inputs use t = tIn (1 - x), i.e. T_-1 = tIn, tau = tIn, a = x.
 *
 * Derivation. Give neuron i of layer n the signed weights w_ji = c_i W'_ji. Once all its inputs
 * have arrived (t >= T_{n-1}) its membrane is
 *   V_i(t) = c_i [tau z'_i + S'_i (t - T_{n-1})],  z'_i = sum_j W'_ji a_hat_j,  S'_i = sum_j W'_ji,
 * so it fires at T_{n-1} + 1/(c_i S'_i) - tau z'_i / S'_i. Choosing 1/(c_i S'_i) = D_n - tau b_i/S'_i
 * gives t_i = T_n - tau (z'_i + b_i)/S'_i: the ReLU pre-activation divided by S'_i, with the bias
 * carried by the per-neuron current scale c_i. The next layer undoes the division by S'_i
 * (W'_{ki} = W_{ki} S'_i). With every neuron's weights summing to the same value (the ReluNet
 * `rowSum` constraint) all S'_i of a layer are equal, so the output layer's earliest spike is the
 * ANN's argmax exactly.
 *
 * Conv layers (an architecture's ReluNet): each channel's kernel is one neuron's weights shared by
 * every position, so everything above holds per channel: S' is the kernel's sum (the previous
 * layer's S' is one value per channel, so W' stays shared), c and the bias are per channel, and a
 * max-pooled activation is the window's earliest spike (min-pool.ts). With 'same' padding a border
 * position's receptive field is cut: its slope is the part of S' inside the image, so it fires
 * later than the ANN's activation says (zero-padded pixels would have to spike at tIn); 'valid'
 * convolutions map exactly.
 *
 * Assumptions (where the spiking network departs from the ANN): a neuron must not reach threshold
 * before T_{n-1} (the window D_n is sized from the training data's activations so that this holds
 * for all but the top `1 - percentile` of them); inputs with zero activation should spike exactly
 * at T_{n-1} (network inputs do: zeros are not silenced) but hidden neurons with z <= 0 fire late
 * or not at all, so their weight is missing from the slope for a while. Each layer's horizon is
 * T_n + slack * D_n so that such neurons still fire and restore most of it.
 */

import * as tf from '@tensorflow/tfjs-core';
import { conv2dShared } from '../conv/conv-op.ts';
import { maxPool } from '../conv/min-pool.ts';
import type { NeuronModel } from '../neuron/layer.ts';
import type { Architecture, ArchLayer } from '../network/arch.ts';
import type { ConvLayerState } from '../network/conv-layer.ts';
import type { LayerState } from '../network/layer.ts';
import { checkConfig, NOMINAL_REVERSAL, SpikingNetwork, type NetworkConfig } from '../network/network.ts';
import type { SpikeSolver } from '../network/solver.ts';
import { evaluateNetwork } from '../training/evaluate.ts';
import type { AnnLayerWeights } from './relu-net.ts';

export interface MappingOptions {
  /** Input window tIn (default 1). */
  inputWindow?: number;
  /** Activation quantile that must fit in each window (default 0.999). */
  percentile?: number;
  /** Extra room after each window so that late (negative) neurons still fire (default 0.5). */
  slack?: number;
  /** Reversal potentials used to split signed weights into conductances (default nominal sky130). */
  ePlus?: number;
  eMinus?: number;
}

export interface MappingReport {
  net: SpikingNetwork;
  /** Window length D_n per layer. */
  windows: number[];
  /** Per layer, neurons whose weights sum to <= 0 or whose bias leaves no room (mapped approximately). */
  invalid: number[];
}

function quantile(values: Float64Array, p: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return 0;
  return s[Math.min(s.length - 1, Math.max(0, Math.floor(p * (s.length - 1))))]!;
}

/** The architecture of ANN layers with conv layers (undefined for dense-only ones), as the network config holds it. */
export function annArchitecture(layers: AnnLayerWeights[]): Architecture | undefined {
  const first = layers[0];
  if (first?.kind !== 'conv') {
    if (layers.some((L) => L.kind === 'conv')) throw new RangeError('conv layers must come first (a conv layer cannot follow a dense one)');
    return undefined;
  }
  const entries: ArchLayer[] = [];
  for (const L of layers) {
    if (L.kind === 'conv') {
      const g = L.geometry;
      if (g.kernelH !== g.kernelW) throw new RangeError(`conv kernels must be square for an architecture, got ${g.kernelH}x${g.kernelW}`);
      entries.push({ type: 'conv', channels: g.channels, kernel: g.kernelH, stride: g.stride, padding: g.padding });
      if (L.pool > 1) entries.push({ type: 'pool', size: L.pool });
    } else entries.push({ type: 'dense', units: L.nOut });
  }
  const g = first.geometry;
  return { input: { height: g.inH, width: g.inW, channels: g.inC }, layers: entries };
}

/** Pre-activations divided by S' (the time-domain activations y) of one conv layer over n rows, pooled: [n * nOut]. */
function convActivations(L: AnnLayerWeights & { kind: 'conv' }, Wp: Float64Array, Seff: Float64Array, aHat: Float64Array, n: number): Float64Array {
  const g = L.geometry;
  const out = new Float64Array(n * L.nOut);
  const kernel = tf.tensor4d(Float32Array.from(Wp), [g.kernelH, g.kernelW, g.inC, g.channels]);
  const bias = tf.tensor1d(L.b);
  const inv = tf.tensor1d(Float32Array.from(Seff, (v) => 1 / v));
  try {
    // In chunks: a conv layer's map over thousands of rows is large.
    const chunk = 256;
    for (let r = 0; r < n; r += chunk) {
      const m = Math.min(chunk, n - r);
      const y = tf.tidy(() => {
        const img = tf.tensor4d(Float32Array.from(aHat.subarray(r * L.nIn, (r + m) * L.nIn)), [m, g.inH, g.inW, g.inC]);
        const v = tf.mul(tf.add(conv2dShared(img, kernel, g.stride, g.padding), bias), inv) as tf.Tensor4D;
        return L.pool > 1 ? maxPool(v, L.pool) : v;
      });
      out.set(y.dataSync(), r * L.nOut);
      y.dispose();
    }
  } finally {
    tf.dispose([kernel, bias, inv]);
  }
  return out;
}

/**
 * Maps ANN layers (relu-net.ts layerWeights()) onto an ideal-model network. `calibration` rows
 * (values in [0, 1]) size the windows; use training data.
 */
export function mapAnnToSnn(layers: AnnLayerWeights[], calibration: { x: Float32Array; n: number }, opts: MappingOptions = {}): MappingReport {
  const tIn = opts.inputWindow ?? 1;
  const p = opts.percentile ?? 0.999;
  const slack = opts.slack ?? 0.5;
  const ePlus = opts.ePlus ?? NOMINAL_REVERSAL.ePlus;
  const eMinus = opts.eMinus ?? NOMINAL_REVERSAL.eMinus;
  if (!(tIn > 0 && p > 0 && p <= 1 && slack >= 0)) throw new RangeError('mapping options: need inputWindow > 0, 0 < percentile <= 1, slack >= 0');
  const n = calibration.n;
  const tau = tIn;
  // Encoded activations a_hat of the current layer's inputs, [n, nIn]; kappa: a = kappa * a_hat.
  let aHat = Float64Array.from(calibration.x.subarray(0, n * layers[0]!.nIn));
  let kappa = new Float64Array(layers[0]!.nIn).fill(1);
  let T = tIn;
  const windows: number[] = [];
  const invalid: number[] = [];
  const horizons: number[] = [];
  const states: LayerState[] = [];
  const arch = annArchitecture(layers);
  for (let l = 0; l < layers.length; l++) {
    const L = layers[l]!;
    const { nIn, nOut, w: W, b } = L;
    // Neurons of this layer with their own weights: every neuron of a dense layer, every channel of a conv layer.
    const units = L.kind === 'conv' ? L.geometry.channels : nOut;
    if (W.length % units !== 0 || b.length !== units)
      throw new RangeError(`layer ${l}: ${W.length} weights and ${b.length} biases do not fit ${units} neurons`);
    const fanIn = W.length / units;
    // Which previous-layer neuron's kappa weights row j (a conv kernel row is (ky, kx, c): channel c's, shared by positions).
    const kappaOf = L.kind === 'conv' ? (j: number) => kappa[j % L.geometry.inC]! : (j: number) => kappa[j]!;
    // Compensated weights W' = diag(kappa) W and their column sums S'.
    const Wp = new Float64Array(fanIn * units);
    const S = new Float64Array(units);
    for (let j = 0; j < fanIn; j++) {
      const k = kappaOf(j);
      for (let i = 0; i < units; i++) {
        const v = W[j * units + i]! * k;
        Wp[j * units + i] = v;
        S[i] += v;
      }
    }
    let bad = 0;
    const posS = Array.from(S)
      .filter((s) => s > 0)
      .sort((a, c) => a - c);
    const fallbackS = posS.length ? posS[Math.floor(posS.length / 2)]! : 1;
    const Seff = Float64Array.from(S, (s) => {
      if (s > 0) return s;
      bad++;
      return fallbackS;
    });
    // Time-domain activations y = (z' + b) / S' over the calibration rows.
    let y: Float64Array;
    if (L.kind === 'conv') y = convActivations(L, Wp, Seff, aHat, n);
    else {
      y = new Float64Array(n * nOut);
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < nOut; i++) {
          let z = b[i]!;
          for (let j = 0; j < nIn; j++) z += Wp[j * nOut + i]! * aHat[r * nIn + j]!;
          y[r * nOut + i] = z / Seff[i]!;
        }
      }
    }
    let D = tau * Math.max(quantile(y, p), 1e-6) * 1.02;
    // c_i > 0 needs D > tau b_i / S'_i.
    let maxBias = 0;
    for (let i = 0; i < units; i++) maxBias = Math.max(maxBias, (tau * b[i]!) / Seff[i]!);
    if (maxBias >= D) D = maxBias * 1.05;
    const wSigned = new Float64Array(fanIn * units);
    let wMax = 0;
    for (let i = 0; i < units; i++) {
      const c = 1 / (Seff[i]! * D - tau * b[i]!);
      for (let j = 0; j < fanIn; j++) {
        const v = c * Wp[j * units + i]!;
        wSigned[j * units + i] = v;
        wMax = Math.max(wMax, Math.abs(v));
      }
    }
    const scale = wMax > 0 ? wMax : 1;
    const pE = new Float32Array(fanIn * units);
    const pI = new Float32Array(fanIn * units);
    for (let k = 0; k < wSigned.length; k++) {
      const v = wSigned[k]! / scale;
      if (v >= 0) pE[k] = v;
      else pI[k] = -v;
    }
    T += D;
    const horizon = T + slack * D;
    windows.push(D);
    invalid.push(bad);
    horizons.push(horizon);
    const common = { nIn, nOut, model: 'ideal' as const, ePlus, eMinus, horizon, timeOffset: 0, scale, pE, pI };
    states.push(L.kind === 'conv' ? ({ kind: 'conv', ...L.geometry, pool: L.pool, ...common } satisfies ConvLayerState) : { kind: 'dense', ...common });
    // Next layer's inputs: a_hat = relu(y) (time-domain activation / tau), kappa = S' of each output neuron (its channel's for a conv layer).
    aHat = Float64Array.from(y, (v) => Math.max(0, v));
    kappa = L.kind === 'conv' ? Float64Array.from({ length: nOut }, (_, k) => Seff[k % units]!) : Seff;
    // Windows must increase strictly; a degenerate layer still gets a sliver.
    if (l + 1 < layers.length && !(D > 0)) throw new RangeError(`layer ${l} maps to an empty window`);
  }
  const sizes = [layers[0]!.nIn, ...layers.map((l) => l.nOut)];
  const config: NetworkConfig = checkConfig({
    sizes,
    model: 'ideal' as NeuronModel,
    ePlus,
    eMinus,
    inputWindow: tIn,
    horizons,
    silentZeros: false,
    shiftGrids: false,
    ...(arch ? { arch } : {}),
  });
  return { net: SpikingNetwork.fromStates(config, states), windows, invalid };
}

export interface ReversalPair {
  ePlus: number;
  eMinus: number;
}

export interface SearchPoint extends ReversalPair {
  scale: number;
  acc: number;
}

export interface SearchResult {
  best: SearchPoint;
  grid: SearchPoint[];
}

/**
 * Runs the mapped network on the PNN for every (current scale, reversal pair) and keeps the most
 * accurate on `select` (use training data, not the test set). The scale multiplies every
 * synapse's current (all conductances); the drive at rest of each synapse is otherwise held at
 * the mapped ideal weight.
 */
export function searchCurrentScale(
  mapped: SpikingNetwork,
  select: { x: Float32Array; y: Uint8Array; n: number; features: number },
  solver: SpikeSolver,
  opts: { scales: number[]; reversal: ReversalPair[]; onPoint?: (p: SearchPoint) => void },
): SearchResult {
  if (opts.scales.length === 0 || opts.reversal.length === 0) throw new RangeError('the search needs at least one scale and one reversal pair');
  const grid: SearchPoint[] = [];
  for (const r of opts.reversal) {
    for (const scale of opts.scales) {
      const pnn = mapped.withModel({ model: 'pnn', ePlus: r.ePlus, eMinus: r.eMinus, scaleFactor: scale });
      try {
        const acc = evaluateNetwork(pnn, select, solver).acc;
        const point = { scale, ePlus: r.ePlus, eMinus: r.eMinus, acc };
        grid.push(point);
        opts.onPoint?.(point);
      } finally {
        pnn.dispose();
      }
    }
  }
  let best = grid[0]!;
  for (const g of grid) if (g.acc > best.acc) best = g;
  return { best, grid };
}
