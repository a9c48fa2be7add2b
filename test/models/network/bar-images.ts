import { mulberry } from '../rng.ts';

/**
 * Three classes of size x size images (default 8x8): a bright bar in the top, middle or bottom
 * third of the rows, plus dim noise.
 */
export function bars(seed: number, n: number, size = 8): { x: Float32Array; y: Uint8Array } {
  const rnd = mulberry(seed);
  const px = size * size;
  const x = new Float32Array(n * px);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = s % 3;
    y[s] = c;
    for (let p = 0; p < px; p++) {
      const row = Math.floor(p / size);
      const on = Math.floor((row * 3) / size) === c;
      x[s * px + p] = on ? 0.7 + 0.3 * rnd() : rnd() < 0.3 ? 0.3 * rnd() : 0;
    }
  }
  return { x, y };
}
