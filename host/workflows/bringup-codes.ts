import { codeWindow, fullOnCode, rowsAtCodes, selectRows } from '../../calibration/probe-configs.ts';
import { NMOS, PMOS } from '../../models/chips/chip-backend.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import type { ProbeCodes } from './bringup-record.ts';
import type { Bench } from './bringup-bench.ts';

/**
 * Bisection over integer codes [lo, hi] for the code whose statistic (a median time or delay) is
 * closest to `target` in ratio. The statistic falls as the code rises (more NMOS drive, less PMOS
 * inhibition) unless `increasing`; Infinity (silent) means the code is on the weak side.
 */
export async function searchCode(lo: number, hi: number, target: number, increasing: boolean, stat: (code: number) => Promise<number>): Promise<number> {
  let a = lo;
  let b = hi;
  let best = a;
  let bestErr = Infinity;
  while (a <= b) {
    const mid = (a + b) >> 1;
    const v = await stat(mid);
    const err = Number.isFinite(v) && v > 0 ? Math.abs(Math.log(v / target)) : Infinity;
    if (err < bestErr) {
      bestErr = err;
      best = mid;
    }
    if (err < 0.05) break;
    const below = !(v >= target); // NaN / Infinity: too slow or silent
    const goUp = increasing ? below : !below;
    if (!Number.isFinite(v)) {
      // Silent: NMOS too weak or PMOS too strong; both mean a higher code.
      a = mid + 1;
    } else if (goUp) a = mid + 1;
    else b = mid - 1;
  }
  return best;
}

/** Median NMOS-alone time and median relative PMOS delay of a few inputs of layer 0 (deeper layers off), at given codes. */
interface Layer0Probe {
  medianTime(nmosCode: number): Promise<number>;
  relDelay(nmosCode: number, pmosCode: number): Promise<number>;
}

async function layer0Probe(bench: Bench): Promise<Layer0Probe> {
  const { geometry, dac, safe } = bench;
  const g = geometry[0];
  const k = Math.min(16, g.inputs);
  const inputs = Array.from({ length: k }, (_, m) => Math.floor((m * g.inputs) / k));
  const x = bench.samples(inputs.map((j) => [j]));
  const nRows = selectRows(g, { inputs, polarity: NMOS });
  const allRows = selectRows(g, { inputs });
  for (let l = 1; l < bench.layers; l++) await bench.set(l, bench.off(l));
  const times = async (codes: Uint16Array): Promise<Float64Array> => {
    await bench.set(0, codes);
    const t = (await bench.run(x, k, undefined, [0]))[0];
    return Float64Array.from(t, (v) => (v === SILENT_TICK ? Infinity : v));
  };
  const bases = new Map<number, Float64Array>();
  return {
    medianTime: async (code) => medianWithInf(await times(rowsAtCodes(g, dac, safe, nRows, code))),
    relDelay: async (nmos, pmos) => {
      let base = bases.get(nmos);
      if (!base) bases.set(nmos, (base = await times(rowsAtCodes(g, dac, safe, nRows, nmos))));
      const b = base;
      const t = await times(rowsAtCodes(g, dac, safe, allRows, { nmos, pmos }));
      const r = Array.from(t, (v, m) => (Number.isFinite(b[m]) ? (v - b[m]) / b[m] : NaN)).filter((v) => !Number.isNaN(v));
      return medianWithInf(Float64Array.from(r));
    },
  };
}

/** Finds the probe codes on layer 0 with a few inputs. */
export async function chooseCodes(bench: Bench): Promise<ProbeCodes> {
  const { dac, safe } = bench;
  const h0 = bench.info.layers[0].horizonTicks;
  const [nLo, nHi] = codeWindow(dac, safe, NMOS);
  const [pLo, pHi] = codeWindow(dac, safe, PMOS);
  const probe = await layer0Probe(bench);
  const n0 = await searchCode(nLo, nHi, h0 / 6, false, probe.medianTime);
  const n1 = await searchCode(n0, nHi, h0 / 20, false, probe.medianTime);
  const n2 = await searchCode(n1, nHi, Math.max(12, h0 / 100), false, probe.medianTime);
  // PMOS: inhibition grows as the gate code falls from the top of its window.
  const pmos = (c: number) => probe.relDelay(n0, c).then(relDelayOrZero);
  const p1 = await searchCode(pLo, pHi, 0.15, false, pmos);
  const p2 = await searchCode(pLo, p1, 0.5, false, pmos);
  return { full: fullOnCode(dac, safe, NMOS), n0, n1, n2, p1, p2 };
}

/**
 * Codes of the shape re-check (bringup-recheck.ts): an NMOS drive `q` that fires in about a
 * fortieth of the window (24 ticks at least), so a PMOS that matches it is as strong as the timer
 * resolves, and the PMOS code `p3` that delays that drive by half: the strongest PMOS gate a delay
 * measures well, as far toward strong inversion from p2 as the timer allows.
 */
export async function chooseShapeCodes(bench: Bench, codes: ProbeCodes): Promise<{ q: number; p3: number }> {
  const { dac, safe } = bench;
  const h0 = bench.info.layers[0].horizonTicks;
  const [, nHi] = codeWindow(dac, safe, NMOS);
  const [pLo] = codeWindow(dac, safe, PMOS);
  const probe = await layer0Probe(bench);
  const q = await searchCode(codes.n1, nHi, Math.max(24, h0 / 40), false, probe.medianTime);
  const p3 = await searchCode(pLo, codes.p2, 0.5, false, (c) => probe.relDelay(q, c).then(relDelayOrZero));
  return { q, p3 };
}

export function relDelayOrZero(v: number): number {
  return v === 0 ? 1e-6 : v;
}

export function medianWithInf(v: Float64Array): number {
  const s = Float64Array.from(v).sort();
  if (s.length === 0) return NaN;
  return s[s.length >> 1];
}
