/**
 * Small, fast, deterministic random numbers for reproducible runs: splits, shuffles,
 * initialisation, mock-chip mismatch. Same seed, same stream, on every platform.
 *
 * The generator is mulberry32 (32-bit state, period 2^32): plenty for shuffling and
 * sampling, trivially portable, and its seeds are cheap to derive. It is not
 * cryptographic. Seeds for sub-streams (per epoch, per layer) come from `deriveSeed`,
 * which mixes integers with the murmur3 finaliser so nearby seeds give unrelated streams.
 */

/** The murmur3 32-bit finaliser: a bijection on uint32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkSeed(seed: number, what = 'seed'): number {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`${what} must be an integer, got ${seed}; pass e.g. --seed 1`);
  }
  // Fold in the high bits so that seeds beyond 2^32 are not silently aliased.
  return ((seed >>> 0) ^ fmix32(Math.floor(seed / 0x100000000) >>> 0)) >>> 0;
}

/** A seed for a named sub-stream: deriveSeed(runSeed, epoch), deriveSeed(runSeed, layer, 7). */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = fmix32(checkSeed(seed) ^ 0x2545f491);
  for (const p of parts) h = fmix32((h + Math.imul(checkSeed(p, 'seed part'), 0x9e3779b1)) >>> 0);
  return h;
}

/** The mulberry32 generator with helpers. All methods advance the same stream. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = checkSeed(seed);
  }

  /** Uniform uint32. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling), for 1 <= n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal (Box-Muller; one value per call, the second is discarded for simplicity). */
  normal(mean = 0, std = 1): number {
    let u = this.next();
    while (u === 0) u = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

/** Plain-function form: `const r = mulberry32(seed); r()` gives floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** A permutation of 0..n-1 fixed by `seed`. */
export function seededPermutation(n: number, seed: number): Uint32Array {
  return new Rng(seed).permutation(n);
}
