import { mulberry } from '../rng.ts';

/** Three classes of 8x8 images: a bright bar at the top, the middle or the bottom, plus dim noise. */
export function bars(seed: number, n: number): { x: Float32Array; y: Uint8Array } {
  const rnd = mulberry(seed);
  const x = new Float32Array(n * 64);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = s % 3;
    y[s] = c;
    for (let p = 0; p < 64; p++) {
      const row = Math.floor(p / 8);
      const on = Math.floor(row / 3) === c || (c === 2 && row === 7);
      x[s * 64 + p] = on ? 0.7 + 0.3 * rnd() : rnd() < 0.3 ? 0.3 * rnd() : 0;
    }
  }
  return { x, y };
}
