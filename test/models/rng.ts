/** Deterministic PRNG for tests (mulberry32): uniform in [0, 1). */
export function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Least-squares slope of log(err) against log(1/n): the convergence order. */
export function convergenceOrder(ns: number[], errs: number[]): number {
  const x = ns.map((n) => Math.log(n));
  const y = errs.map((e) => -Math.log(e));
  const mx = x.reduce((a, b) => a + b, 0) / x.length;
  const my = y.reduce((a, b) => a + b, 0) / y.length;
  let num = 0;
  let den = 0;
  for (let k = 0; k < x.length; k++) {
    num += (x[k] - mx) * (y[k] - my);
    den += (x[k] - mx) ** 2;
  }
  return num / den;
}
