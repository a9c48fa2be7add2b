import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LayerSamples } from '../../calibration/probe-run.ts';
import { fineGrid, monotoneRatios, pairDelayRatios, pairTransition, SILENT_RATIO } from '../../calibration/scan-analysis.ts';

/** Single-input samples: sample b drives input inputsOf[b] at time 0; out[b][i] per neuron. */
function singles(kind: LayerSamples['kind'], nIn: number, inputsOf: number[], out: number[][]): LayerSamples {
  const batch = inputsOf.length;
  const inputs = new Float64Array(batch * nIn).fill(Infinity);
  inputsOf.forEach((j, b) => (inputs[b * nIn + j] = 0.001 * b));
  const n = out[0]!.length;
  const o = new Float64Array(batch * n);
  out.forEach((row, b) => row.forEach((t, i) => (o[b * n + i] = t + 0.001 * b)));
  return { layer: 0, kind, codes: new Uint16Array(0), batch, inputs, out: o };
}

/**
 * Independent reference for the non-increasing least-squares fit: at point i the value is
 * min over j <= i of max over k >= i of mean(y[j..k]) (the min-max formula of isotonic regression).
 */
function isotonicDecreasing(y: number[]): number[] {
  return y.map((_, i) => {
    let best = Infinity;
    for (let j = 0; j <= i; j++) {
      let hi = -Infinity;
      for (let k = i; k < y.length; k++) {
        let s = 0;
        for (let m = j; m <= k; m++) s += y[m]!;
        hi = Math.max(hi, s / (k - j + 1));
      }
      best = Math.min(best, hi);
    }
    return best;
  });
}

describe('pairDelayRatios', () => {
  it("divides each pair delay by the same synapse's NMOS-alone delay, takes the median per code, counts silence as Infinity", () => {
    // NMOS alone: input j, neuron i fires after 100 (1 + j) (1 + 0.5 i): strongly different synapses.
    const alone = singles(
      'sweep-n',
      3,
      [0, 1, 2],
      [0, 1, 2].map((j) => [0, 1].map((i) => 100 * (1 + j) * (1 + 0.5 * i))),
    );
    // Scan: neuron 0 at code 800, neuron 1 at code 820; pairs slowed by 2.0x (800) and 1.25x (820),
    // except input 2 on neuron 0, silenced.
    const codeOf = (_q: number, i: number) => (i === 0 ? 800 : 820);
    const scan = singles(
      'scan-p',
      3,
      [0, 1, 2],
      [
        [200, 150 * 1.25],
        [400, 300 * 1.25],
        [Infinity, 450 * 1.25],
      ],
    );
    const r = pairDelayRatios([scan], codeOf, alone);
    // Code 800: ratios 2, 2, Infinity -> median 2; code 820: 1.25 three times.
    expect(r.get(800)).toBeCloseTo(2, 9);
    expect(r.get(820)).toBeCloseTo(1.25, 9);
    // Raw delays would have scattered from 150 to 562: the synapse's own reference removes it.
  });

  it('skips synapses silent alone and samples that drive several inputs', () => {
    const alone = singles('sweep-n', 2, [0, 1], [[Infinity], [100]]);
    const scan = singles('scan-p', 2, [0, 1], [[500], [130]]);
    const two = { ...scan, inputs: Float64Array.of(0, 0, Infinity, 0.001) };
    for (const samples of [scan, two]) {
      const r = pairDelayRatios([samples], () => 810, alone);
      expect([...r.keys()]).toEqual([810]);
      expect(r.get(810)).toBeCloseTo(1.3, 9);
    }
  });
});

describe('monotoneRatios', () => {
  it('keeps a non-increasing sequence, pools a violating pair to its geometric mean, caps silence', () => {
    const kept = monotoneRatios(
      new Map([
        [800, 3],
        [810, 2],
        [820, 1],
      ]),
    );
    expect([...kept.keys()]).toEqual([800, 810, 820]);
    [3, 2, 1].forEach((r, k) => expect([...kept.values()][k]).toBeCloseTo(r, 12));
    const m = monotoneRatios(
      new Map([
        [800, Infinity],
        [810, 2],
        [820, 3],
        [830, 1],
      ]),
    );
    expect(m.get(800)).toBeCloseTo(SILENT_RATIO, 12);
    expect(m.get(810)).toBeCloseTo(Math.sqrt(6), 12);
    expect(m.get(820)).toBeCloseTo(Math.sqrt(6), 12);
    expect(m.get(830)).toBe(1);
    // Codes come back sorted whatever the insertion order.
    expect([
      ...monotoneRatios(
        new Map([
          [830, 1],
          [800, 3],
        ]),
      ).keys(),
    ]).toEqual([800, 830]);
  });

  it('is the least-squares non-increasing fit of the log ratios (min-max formula, random inputs)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.5, max: 20, noNaN: true }), { minLength: 1, maxLength: 12 }), (rs) => {
        const m = monotoneRatios(new Map(rs.map((r, k) => [700 + 10 * k, r])));
        const ref = isotonicDecreasing(rs.map((r) => Math.log(Math.min(r, SILENT_RATIO))));
        const got = [...m.values()].map(Math.log);
        got.forEach((v, k) => expect(v).toBeCloseTo(ref[k]!, 9));
        for (let k = 1; k < got.length; k++) expect(got[k]!).toBeLessThanOrEqual(got[k - 1]! + 1e-12);
      }),
      { numRuns: 200 },
    );
  });
});

describe('pairTransition and fineGrid', () => {
  it('spans the last silencing code to the first nearly free one; none when the step is resolved already', () => {
    const coarse = new Map([
      [786, 10],
      [810, 10],
      [834, 1.1],
      [857, 1.02],
    ]);
    expect(pairTransition(coarse, 5.2, 1.15)).toEqual([810, 834]);
    // No silencing code: from the strongest; never free: to the weakest.
    expect(
      pairTransition(
        new Map([
          [800, 2],
          [820, 1.5],
          [840, 1.3],
        ]),
        5.2,
        1.15,
      ),
    ).toEqual([800, 840]);
    expect(
      pairTransition(
        new Map([
          [800, 10],
          [802, 1.0],
        ]),
        5.2,
        1.15,
      ),
    ).toBeUndefined();
    const fine = fineGrid(810, 834, 16);
    expect(fine.length).toBeGreaterThan(12);
    expect(fine.every((c) => c > 810 && c < 834 && Number.isInteger(c))).toBe(true);
    expect(new Set(fine).size).toBe(fine.length);
  });
});
