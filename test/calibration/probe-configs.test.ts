import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  allOffCodes,
  codeWindow,
  fullOnCode,
  memoryPatternCodes,
  MEMORY_PATTERNS,
  midCode,
  relayCodes,
  rowsAtCodes,
  selectRows,
  withInputsOff,
} from '../../calibration/probe-configs.ts';
import { dualRailLayer, NMOS, PMOS, type LayerGeometry } from '../../models/chips/chip-backend.ts';
import { IdealChip } from '../../models/chips/ideal-chip.ts';
import { DEFAULT_DAC, DEFAULT_SAFE } from '../../models/chips/sky130-nominal.ts';
import { MockBoard } from '../../firmware-protocol/mock-board/board.ts';

// Hand-computed windows of the reference DAC (10 bits over 0..1.8 V): NMOS 0..1.0 V -> codes 0..568
// (1.0 / 1.8 * 1023 = 568.3), PMOS 0.8..1.8 V -> codes 455..1023 (0.8 / 1.8 * 1023 = 454.7).
const N_LO = 0,
  N_HI = 568,
  P_LO = 455,
  P_HI = 1023;
const dac = DEFAULT_DAC;
const safe = DEFAULT_SAFE;

/** A layer whose rows are not in dual-rail order, to catch code that assumes row 2j / 2j+1. */
function scrambledLayer(): LayerGeometry {
  return {
    inputs: 3,
    outputs: 4,
    rowInput: Uint16Array.from([2, 0, 1, 0, 2, 1, 1]),
    rowPolarity: Uint8Array.from([PMOS, NMOS, NMOS, PMOS, NMOS, PMOS, NMOS]),
  };
}

function cell(codes: Uint16Array, g: LayerGeometry, r: number, i: number): number {
  return codes[r * g.outputs + i];
}

describe('code windows', () => {
  it('match the hand-computed windows of the reference DAC', () => {
    expect(codeWindow(dac, safe, NMOS)).toEqual([N_LO, N_HI]);
    expect(codeWindow(dac, safe, PMOS)).toEqual([P_LO, P_HI]);
    expect(fullOnCode(dac, safe, NMOS)).toBe(N_HI);
    expect(fullOnCode(dac, safe, PMOS)).toBe(P_LO);
    expect(midCode(dac, safe, NMOS)).toBe(284);
    expect(midCode(dac, safe, PMOS)).toBe(739);
  });

  it('throw when a window holds no code', () => {
    expect(() => codeWindow({ bits: 2, vMin: 0, vMax: 1.8 }, { nmos: [0.1, 0.2], pmos: [0.8, 1.8] }, NMOS)).toThrow(/no DAC code/);
  });
});

describe('allOffCodes', () => {
  it("equals the mock board's power-up weight memory", () => {
    const chip = new IdealChip({ sizes: [5, 3, 2] });
    const board = new MockBoard(chip);
    chip.geometry.forEach((g, l) => expect(allOffCodes(g, dac, safe)).toEqual(board.readWeights(l)));
  });

  it('puts NMOS rows at their lowest and PMOS rows at their highest safe code, whatever the row order', () => {
    const g = scrambledLayer();
    const c = allOffCodes(g, dac, safe);
    for (let r = 0; r < 7; r++) for (let i = 0; i < 4; i++) expect(cell(c, g, r, i)).toBe(g.rowPolarity[r] === NMOS ? N_LO : P_HI);
  });
});

describe('rowsAtCodes', () => {
  it('sets exactly the given rows and leaves the rest off', () => {
    const g = scrambledLayer();
    const c = rowsAtCodes(g, dac, safe, [1, 5], { nmos: 300, pmos: 600 });
    for (let r = 0; r < 7; r++) {
      const want = r === 1 ? 300 : r === 5 ? 600 : g.rowPolarity[r] === NMOS ? N_LO : P_HI;
      for (let i = 0; i < 4; i++) expect(cell(c, g, r, i)).toBe(want);
    }
  });

  it('refuses a code outside the row window, naming row, code and window', () => {
    const g = dualRailLayer(2, 2);
    expect(() => rowsAtCodes(g, dac, safe, [0], N_HI + 1)).toThrow(/code 569 for row 0 \(NMOS\) is outside its safe window 0\.\.568/);
    expect(() => rowsAtCodes(g, dac, safe, [1], 100)).toThrow(/PMOS.*455\.\.1023/);
    expect(() => rowsAtCodes(g, dac, safe, [4], 10)).toThrow(/row 4 does not exist/);
  });

  it('with selectRows picks rows by input and polarity', () => {
    const g = scrambledLayer();
    expect(selectRows(g, { inputs: [1] })).toEqual([2, 5, 6]);
    expect(selectRows(g, { polarity: PMOS })).toEqual([0, 3, 5]);
    expect(selectRows(g, { inputs: [0, 2], polarity: NMOS })).toEqual([1, 4]);
  });
});

describe('relayCodes', () => {
  it('drives neuron i from input i - shift through its NMOS rows only', () => {
    const g = scrambledLayer(); // 3 inputs, 4 outputs
    for (const shift of [0, 1, 3, -1]) {
      const c = relayCodes(g, dac, safe, 500, shift);
      for (let r = 0; r < 7; r++) {
        for (let i = 0; i < 4; i++) {
          const on = g.rowPolarity[r] === NMOS && g.rowInput[r] === i - shift;
          expect(cell(c, g, r, i)).toBe(on ? 500 : g.rowPolarity[r] === NMOS ? N_LO : P_HI);
        }
      }
    }
  });

  it('is the identity on the square corner of a dual-rail layer', () => {
    const g = dualRailLayer(4, 3);
    const c = relayCodes(g, dac, safe, N_HI);
    // row 2j is input j's NMOS row: only (2j, j) is on, for j < 3.
    const on: string[] = [];
    for (let r = 0; r < 8; r++) for (let i = 0; i < 3; i++) if (cell(c, g, r, i) === N_HI) on.push(`${r},${i}`);
    expect(on).toEqual(['0,0', '2,1', '4,2']);
  });
});

describe('withInputsOff', () => {
  it('switches off every row of the given inputs and nothing else', () => {
    const g = scrambledLayer();
    const base = rowsAtCodes(g, dac, safe, [0, 1, 2, 3, 4, 5, 6], { nmos: 200, pmos: 700 });
    const c = withInputsOff(base, g, dac, safe, [1]);
    for (let r = 0; r < 7; r++) {
      const off = g.rowInput[r] === 1;
      for (let i = 0; i < 4; i++) {
        expect(cell(c, g, r, i)).toBe(off ? (g.rowPolarity[r] === NMOS ? N_LO : P_HI) : g.rowPolarity[r] === NMOS ? 200 : 700);
      }
    }
    expect(cell(base, g, 2, 0)).toBe(200); // the input array is not modified
  });
});

describe('memoryPatternCodes', () => {
  const g = dualRailLayer(3, 5);

  it('low / high use the safe extremes, not the DAC extremes', () => {
    const lo = memoryPatternCodes(g, dac, safe, 'low');
    const hi = memoryPatternCodes(g, dac, safe, 'high');
    for (let r = 0; r < 6; r++) {
      for (let i = 0; i < 5; i++) {
        expect(cell(lo, g, r, i)).toBe(r % 2 === 0 ? N_LO : P_LO);
        expect(cell(hi, g, r, i)).toBe(r % 2 === 0 ? N_HI : P_HI);
      }
    }
  });

  it('checkerboard alternates with (row + output) parity; random is seeded', () => {
    const cb = memoryPatternCodes(g, dac, safe, 'checkerboard');
    expect(cell(cb, g, 0, 0)).toBe(N_LO);
    expect(cell(cb, g, 0, 1)).toBe(N_HI);
    expect(cell(cb, g, 1, 0)).toBe(P_HI);
    expect(cell(cb, g, 1, 1)).toBe(P_LO);
    expect(memoryPatternCodes(g, dac, safe, 'random', 5)).toEqual(memoryPatternCodes(g, dac, safe, 'random', 5));
    expect(memoryPatternCodes(g, dac, safe, 'random', 5)).not.toEqual(memoryPatternCodes(g, dac, safe, 'random', 6));
  });

  it('every pattern is accepted by a board enforcing the safe windows (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(...MEMORY_PATTERNS),
        fc.integer({ min: 0, max: 1000 }),
        (nIn, nOut, pattern, seed) => {
          const chip = new IdealChip({ sizes: [nIn, nOut] });
          const board = new MockBoard(chip);
          const codes = memoryPatternCodes(chip.geometry[0], dac, safe, pattern, seed);
          const win = [board.codeWindow(NMOS), board.codeWindow(PMOS)];
          for (let k = 0; k < codes.length; k++) {
            const [lo, hi] = win[chip.geometry[0].rowPolarity[Math.floor(k / nOut)]];
            if (codes[k] < lo || codes[k] > hi) return false;
          }
          return true;
        },
      ),
      { numRuns: 50 },
    );
  });
});
