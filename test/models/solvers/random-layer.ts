import { makeLayer } from '../../../models/neuron/layer.ts';
import { mulberry } from '../rng.ts';

/**
 * A seeded random layer (E+ = 4, E- = -2; gE, gI uniform below their maxima) and a batch of
 * inputs, a fifth of them silent, the rest in [0, 0.5).
 */
export function randomLayerCase(o: { model: 'pnn' | 'ideal'; seed: number; nIn: number; nOut: number; batch: number; gEMax: number; gIMax: number }) {
  const rnd = mulberry(o.seed);
  const { nIn, nOut, batch } = o;
  const gE = Array.from({ length: nIn * nOut }, () => rnd() * o.gEMax);
  const gI = Array.from({ length: nIn * nOut }, () => rnd() * o.gIMax);
  const layer = makeLayer({ nIn, nOut, model: o.model, ePlus: 4, eMinus: -2, gE, gI });
  const x = Float64Array.from({ length: batch * nIn }, () => (rnd() < 0.2 ? Infinity : rnd() * 0.5));
  return { layer, x, batch };
}
