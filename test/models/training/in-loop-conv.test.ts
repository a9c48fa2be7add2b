import { beforeAll, describe, expect, it } from 'vitest';
import { denseToConvGrad } from '../../../models/conv/geometry.ts';
import { architectureSchema } from '../../../models/network/arch.ts';
import type { ConvSpikeLayer } from '../../../models/network/conv-layer.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { archConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { exactNetworkForward } from '../../../models/solvers/exact.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { adamStep, inLoopGradients, newAdamState } from '../../../models/training/in-loop.ts';
import { resolveLoss } from '../../../models/training/trainer.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

// A conv layer that deploys (stride, no pooling), then a dense output: unrolled 36-18-3.
const ARCH = architectureSchema.parse({
  input: { height: 6, width: 6, channels: 1 },
  layers: [
    { type: 'conv', channels: 2, kernel: 3, stride: 2 },
    { type: 'dense', units: 3 },
  ],
});

describe('in-loop fine-tuning of a conv net', () => {
  it("takes a shared weight's gradient as the sum over its positions of the unrolled layer's, and keeps every copy equal after the step", () => {
    const rnd = mulberry(7);
    const n = 12;
    const x = Float32Array.from({ length: n * 36 }, () => (rnd() < 0.4 ? 0 : rnd()));
    const y = Uint8Array.from({ length: n }, (_, k) => k % 3);
    const solver = createSolver('dstd', { bins: 16 });
    const net = initNetwork(archConfig(ARCH), { x, n }, solver, { seed: 3 });
    const dense = net.unrolled();
    // "Measured" spikes: the exact solver on the unrolled network, as a chip of these weights would fire.
    const input = Float64Array.from(net.encode(x, n).dataSync());
    const measured = exactNetworkForward(dense.toPnnLayers(), input, n).map((t) => Float32Array.from(t));
    const loss = resolveLoss({ tauSoft: 0.2, windowWeight: 0.1, deadWeight: 1 });
    const gConv = inLoopGradients(net, x, y, measured, solver, loss);
    const gDense = inLoopGradients(dense, x, y, measured, solver, loss);
    expect(gConv.loss).toBeCloseTo(gDense.loss, 4);
    const conv = net.layers[0] as ConvSpikeLayer;
    // Variables: pE, pI of each layer in order; the conv layer's are its kernels.
    for (const v of [0, 1]) {
      const want = denseToConvGrad(gDense.grads[v]!, conv.geometry);
      const got = gConv.grads[v]!;
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale).toBeGreaterThan(0);
      for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-3 * scale);
    }
    adamStep(net, newAdamState(net), gConv.grads, { lr: 0.01 });
    // After the step the chip's layer is still one kernel copied to every position.
    const after = net.states()[0]!;
    const unrolledAfter = net.unrolled();
    expect(Array.from(unrolledAfter.states()[0]!.pE)).toEqual(Array.from(after.pE));
    unrolledAfter.dispose();
    const kernel = conv.state().pE;
    // Position (0, 0), channel 0: weight (ky, kx) sits at input (ky * 6 + kx), output 0; position (1, 1) at input ((2 + ky) * 6 + 2 + kx), output (1 * 3 + 1) * 2.
    for (let ky = 0; ky < 3; ky++)
      for (let kx = 0; kx < 3; kx++) {
        const w = kernel[(ky * 3 + kx) * 2]!;
        expect(after.pE[(ky * 6 + kx) * 18]).toBe(w);
        expect(after.pE[((2 + ky) * 6 + 2 + kx) * 18 + 8]).toBe(w);
      }
    net.dispose();
    dense.dispose();
  });
});
