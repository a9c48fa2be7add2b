import type { DatasetPart } from '../../../models/datasets/types.ts';
import { mulberry } from '../rng.ts';

/** Two classes separated by which half of the inputs is bright (linearly separable). */
export function toySet(seed: number, n: number): DatasetPart {
  const rnd = mulberry(seed);
  const f = 6;
  const x = new Float32Array(n * f);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = s % 2;
    y[s] = c;
    for (let j = 0; j < f; j++) {
      const bright = j < f / 2 === (c === 0);
      x[s * f + j] = bright ? 0.6 + 0.4 * rnd() : 0.3 * rnd();
    }
  }
  return { name: 'toy', x, y, n, features: f, classes: 2, classNames: ['a', 'b'] };
}
