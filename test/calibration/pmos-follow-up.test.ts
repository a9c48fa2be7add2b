import { describe, expect, it } from 'vitest';
import { NMOS, PMOS, dualRailLayer } from '../../models/chips/chip-backend.ts';
import { DEFAULT_DAC, DEFAULT_SAFE } from '../../models/chips/sky130-nominal.ts';
import { allOffCodes, codeWindow } from '../../calibration/probe-configs.ts';
import { FOLLOW_UP_STEPS, pmosFollowUpBlocks, unmeasuredPmos, type RegularPmosSweeps } from '../../calibration/pmos-follow-up.ts';
import type { LayerSamples } from '../../calibration/probe-run.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

// 3 inputs (2 driven) x 2 neurons; times in normalised units, 1000 ticks per unit.
const g = dualRailLayer(3, 2);
const ctx = { layer: 0, geometry: g, dac: DEFAULT_DAC, safe: DEFAULT_SAFE, driven: 2, windowTicks: 1000 };
const perUnit = 1000;

/** A sweep block: sample b drives input b alone; out[b][i] given. */
function sweep(kind: 'sweep-n' | 'sweep-p', out: number[][]): LayerSamples {
  const inputs = new Float64Array(2 * 3).fill(Infinity);
  inputs[0 * 3 + 0] = 0;
  inputs[1 * 3 + 1] = 0;
  return { layer: 0, kind, codes: new Uint16Array(0), batch: 2, inputs, out: Float64Array.from(out.flat()) };
}

describe('PMOS follow-up sweeps', () => {
  const weakRef = 220;
  const strongRef = 240;
  // NMOS alone: every pair fires at the weak and the strong reference.
  const alone = new Map([
    [
      weakRef,
      sweep('sweep-n', [
        [0.3, 0.3],
        [0.3, Infinity],
      ]),
    ],
    [
      strongRef,
      sweep('sweep-n', [
        [0.1, 0.1],
        [0.1, 0.1],
      ]),
    ],
  ]);
  // (input 0, neuron 0): measured (0.3 -> 0.5); (0, 1): silenced at every code (too strong);
  // (1, 0): no delay added beyond 0.5 tick at any code (too weak); (1, 1): its weak-reference NMOS never fired, and at the
  // strong reference the pair is measured.
  const pairs = [
    {
      nmosCode: weakRef,
      pmosCode: 820,
      samples: sweep('sweep-p', [
        [0.5, Infinity],
        [0.3004, Infinity],
      ]),
    },
    {
      nmosCode: strongRef,
      pmosCode: 820,
      samples: sweep('sweep-p', [
        [0.2, Infinity],
        [0.1003, 0.4],
      ]),
    },
  ];
  const regular: RegularPmosSweeps = { nmosAlone: alone, pairs, weakRef, strongRef, perUnit };

  it('flags transistors no regular pair measured, as too weak (+1) or too strong (-1)', () => {
    const flags = unmeasuredPmos(g, 2, regular);
    expect(Array.from(flags)).toEqual([0, -1, 1, 0]);
  });

  it('gives each flagged transistor its own codes and drives only their inputs', () => {
    const flags = unmeasuredPmos(g, 2, regular);
    const regularP = [810, 820];
    const blocks = pmosFollowUpBlocks(ctx, flags, regularP, regular);
    expect(blocks).toHaveLength(FOLLOW_UP_STEPS.length);
    const [lo, hi] = codeWindow(DEFAULT_DAC, DEFAULT_SAFE, PMOS);
    const allOff = allOffCodes(g, DEFAULT_DAC, DEFAULT_SAFE);
    const offN = allOff[g.rowPolarity.indexOf(NMOS) * 2]!;
    const offP = allOff[g.rowPolarity.indexOf(PMOS) * 2]!;
    blocks.forEach((b, k) => {
      const step = FOLLOW_UP_STEPS[k]!;
      expect(b.kind).toBe('sweep-p');
      expect(b.batch).toBe(2);
      // Sample b drives input b alone (both driven inputs carry a flagged transistor).
      for (let s = 0; s < 2; s++) {
        const on = Array.from(b.inputTicks.subarray(s * 3, s * 3 + 3))
          .map((t, j) => (t === SILENT_TICK ? -1 : j))
          .filter((j) => j >= 0);
        expect(on).toEqual([s]);
      }
      const code = (input: number, pol: number, i: number) => {
        const r = g.rowInput.findIndex((x, q) => x === input && g.rowPolarity[q] === pol);
        return b.codes[r * 2 + i];
      };
      // Too strong (input 0, neuron 1): the strongest NMOS partner, a weaker PMOS code than any regular one.
      expect(code(0, NMOS, 1)).toBe(strongRef);
      expect(code(0, PMOS, 1)).toBe(Math.min(hi, 820 + step));
      // Too weak (input 1, neuron 0): the weak partner, a stronger PMOS code.
      expect(code(1, NMOS, 0)).toBe(weakRef);
      expect(code(1, PMOS, 0)).toBe(Math.max(lo, 810 - step));
      // Everything else is off, the undriven input included.
      expect([code(0, NMOS, 0), code(1, NMOS, 1), code(2, NMOS, 0), code(2, NMOS, 1)]).toEqual([offN, offN, offN, offN]);
      expect([code(0, PMOS, 0), code(1, PMOS, 1), code(2, PMOS, 0), code(2, PMOS, 1)]).toEqual([offP, offP, offP, offP]);
    });
  });

  it('plans nothing when every transistor was measured', () => {
    expect(pmosFollowUpBlocks(ctx, new Int8Array(4), [810, 820], regular)).toEqual([]);
  });
});
