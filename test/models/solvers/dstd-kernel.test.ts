// The DSTD bin recurrence's hand-written adjoints against central differences of their own forward
// kernels: layers whose neurons cross in different bins, never cross, or get no gradient, so the
// backward kernels' per-bin neuron lists (sorted by crossing bin) are exercised in every shape.
import { describe, expect, it } from 'vitest';
import { type BinDims, dstdBackwardKernel, dstdForwardKernel, membraneEndBackwardKernel, membraneEndKernel } from '../../../models/solvers/dstd-kernel.ts';
import { mulberry } from '../rng.ts';

interface KernelCase {
  G: Float64Array;
  A: Float64Array;
  theta: Float64Array;
  dy: Float64Array;
  d: BinDims;
}

/** Drives that switch on at a random bin per (sample, neuron): crossings spread over the grid, some never. */
function randomCase(seed: number): KernelCase {
  const r = mulberry(seed);
  const batch = 1 + Math.floor(r() * 3);
  const bins = 2 + Math.floor(r() * 7);
  const n = 1 + Math.floor(r() * 9);
  const d = { batch, bins, neurons: n, dt: 0.1 + r() * 0.3 };
  const G = new Float64Array(batch * bins * n);
  const A = new Float64Array(batch * bins * n);
  for (let b = 0; b < batch; b++)
    for (let i = 0; i < n; i++) {
      const on = Math.floor(r() * bins);
      for (let m = on; m < bins; m++) {
        const k = (b * bins + m) * n + i;
        G[k] = r() < 0.2 ? 0 : r() * 2;
        A[k] = r() * 6 - 1;
      }
    }
  const theta = Float64Array.from({ length: n }, () => 0.5 + r());
  // About a third of the outputs get no gradient.
  const dy = Float64Array.from({ length: batch * n }, () => (r() < 0.35 ? 0 : r() * 2 - 1));
  return { G, A, theta, dy, d };
}

/**
 * sum dy * f over the finite entries of f; NaN when an entry's finiteness or its bin (f / dt) differs
 * from `ref`'s: a neuron starts or stops firing, or its crossing moves to another bin, where the
 * time is continuous but its derivative jumps, so a difference across it measures neither side.
 */
function weighted(f: Float32Array, dy: Float64Array, ref: Float32Array, dt = Infinity): number {
  let s = 0;
  for (let k = 0; k < f.length; k++) {
    if (Number.isFinite(f[k]) !== Number.isFinite(ref[k])) return Number.NaN;
    if (!Number.isFinite(f[k])) continue;
    if (Math.floor(f[k] / dt) !== Math.floor(ref[k] / dt)) return Number.NaN;
    s += dy[k] * f[k];
  }
  return s;
}

/** Central difference of `loss` in entry k of `x` (restored afterwards); NaN when either side changes which neurons fire. */
function centralDiff(x: Float64Array, k: number, loss: () => number): number {
  const h = 1e-3 * Math.max(1, Math.abs(x[k]));
  const x0 = x[k];
  x[k] = x0 + h;
  const up = loss();
  x[k] = x0 - h;
  const down = loss();
  x[k] = x0;
  return (up - down) / (2 * h);
}

/** Every entry where the difference is defined agrees; returns how many were compared. */
function expectClose(analytic: Float32Array, x: Float64Array, loss: () => number, what: string): number {
  let compared = 0;
  for (let k = 0; k < x.length; k++) {
    const fd = centralDiff(x, k, loss);
    if (Number.isNaN(fd)) continue;
    // The forward kernels round their outputs to float32: about 1e-7 / h of noise in a difference.
    expect(Math.abs(analytic[k] - fd), `${what}[${k}]: adjoint ${analytic[k]}, difference ${fd}`).toBeLessThan(2e-3 + 2e-3 * Math.abs(fd));
    compared++;
  }
  return compared;
}

describe('dstdBackwardKernel', () => {
  it('is the gradient of sum dy * T over G, A and theta (central differences), on 40 random layers', () => {
    let nonzero = 0;
    let compared = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { G, A, theta, dy, d } = randomCase(seed);
      const ref = dstdForwardKernel(G, A, theta, d);
      const loss = () => weighted(dstdForwardKernel(G, A, theta, d), dy, ref, d.dt);
      // A tiny minSlope: the clamp must not act, so the adjoint is the plain derivative.
      const g = dstdBackwardKernel(G, A, theta, Float32Array.from(dy), d, 1e-12);
      compared += expectClose(g.G, G, loss, `seed ${seed} G`);
      compared += expectClose(g.A, A, loss, `seed ${seed} A`);
      compared += expectClose(g.theta, theta, loss, `seed ${seed} theta`);
      nonzero += g.G.filter((v) => v !== 0).length;
    }
    // The cases must reach bins before crossings, not only crossing bins.
    expect(nonzero).toBeGreaterThan(200);
    expect(compared).toBeGreaterThan(2000);
  });

  it('writes into the arrays it is given, zeroing them first', () => {
    const { G, A, theta, dy, d } = randomCase(3);
    const size = d.batch * d.bins * d.neurons;
    const into = { G: new Float32Array(size + 5).fill(7), A: new Float32Array(size + 5).fill(7) };
    const fresh = dstdBackwardKernel(G, A, theta, Float32Array.from(dy), d, 1e-12);
    const reused = dstdBackwardKernel(G, A, theta, Float32Array.from(dy), d, 1e-12, into);
    expect(Array.from(reused.G)).toEqual(Array.from(fresh.G));
    expect(Array.from(reused.A)).toEqual(Array.from(fresh.A));
  });
});

describe('membraneEndBackwardKernel', () => {
  it('is the gradient of sum dy * u(end) over G and A (central differences), on 40 random layers', () => {
    let compared = 0;
    for (let seed = 101; seed <= 140; seed++) {
      const { G, A, dy, d } = randomCase(seed);
      const ref = membraneEndKernel(G, A, d);
      const loss = () => weighted(membraneEndKernel(G, A, d), dy, ref);
      const g = membraneEndBackwardKernel(G, A, Float32Array.from(dy), d);
      compared += expectClose(g.G, G, loss, `seed ${seed} G`);
      compared += expectClose(g.A, A, loss, `seed ${seed} A`);
    }
    expect(compared).toBeGreaterThan(2000);
  });
});
