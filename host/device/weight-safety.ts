/**
 * The host never sends a gate code that would drive a transistor outside its announced safe
 * window. The code window comes from the protocol's own DAC rules (firmware-protocol/dac.ts,
 * code c -> vMin + c * (vMax - vMin) / (2^bits - 1)), the ones the board applies, so host and
 * board agree on every code.
 */
import type { HelloResponse } from '../../firmware-protocol/index.ts';
import { codeToVolts, safeCodeRange } from '../../wire/dac.ts';

export interface CodeRange {
  /** Lowest and highest safe code (inclusive); lo > hi when no code is safe. */
  lo: number;
  hi: number;
}

/** Safe code range per polarity: index 0 = NMOS, 1 = PMOS. */
export type SafeCodes = readonly [CodeRange, CodeRange];

export const dacVolts = codeToVolts;

function rangeFor(dac: HelloResponse['dac'], window: readonly [number, number]): CodeRange {
  const r = safeCodeRange(dac, window);
  return r ? { lo: r[0], hi: r[1] } : { lo: 1, hi: 0 };
}

export function safeCodeRanges(info: Pick<HelloResponse, 'dac' | 'safe'>): SafeCodes {
  return [rangeFor(info.dac, info.safe.nmos), rangeFor(info.dac, info.safe.pmos)];
}

export class UnsafeWeightsError extends Error {
  override name = 'UnsafeWeightsError';
}

/**
 * Checks codes[from..to) of a layer's weight memory (row-major, rows x outputs). Throws
 * UnsafeWeightsError naming the first offending code, its voltage and the allowed codes.
 */
export function assertSafeCodes(
  info: Pick<HelloResponse, 'dac' | 'safe'>,
  safe: SafeCodes,
  layer: number,
  rowPolarity: Uint8Array,
  outputs: number,
  codes: Uint16Array,
  from = 0,
  to = codes.length,
): void {
  const nLo = safe[0].lo,
    nHi = safe[0].hi,
    pLo = safe[1].lo,
    pHi = safe[1].hi;
  for (let i = from; i < to; i++) {
    const row = (i / outputs) | 0;
    const pol = rowPolarity[row];
    const c = codes[i];
    const ok = pol === 0 ? c >= nLo && c <= nHi : c >= pLo && c <= pHi;
    if (ok) continue;
    const name = pol === 0 ? 'NMOS' : 'PMOS';
    const r = safe[pol === 0 ? 0 : 1];
    const window = pol === 0 ? info.safe.nmos : info.safe.pmos;
    const fix = r.lo <= r.hi ? `clamp ${name} codes to [${r.lo}, ${r.hi}]` : `no ${name} code is safe on this board; check its HELLO safe window`;
    throw new UnsafeWeightsError(
      `layer ${layer}: code ${c} at index ${i} (row ${row}, ${name}, output ${i - row * outputs}) drives ` +
        `${dacVolts(info.dac, c).toFixed(4)} V, outside the ${name} safe window [${window[0]}, ${window[1]}] V; ${fix}; nothing was sent`,
    );
  }
}
