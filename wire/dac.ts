/**
 * DAC code <-> gate voltage, and the code window of a safe voltage range. The board, the host's
 * upload checks and the weight mapping all use these rules, so a code one side calls safe the
 * others accept.
 */

export interface DacLike {
  bits: number;
  vMin: number;
  vMax: number;
}

/** Tolerance in code units when turning a voltage bound into a code bound (absorbs float rounding). */
export const CODE_EPSILON = 1e-6;

export function dacMaxCode(dac: DacLike): number {
  return 2 ** dac.bits - 1;
}

/** Volts driven by `code`: vMin + code * (vMax - vMin) / (2^bits - 1). */
export function codeToVolts(dac: DacLike, code: number): number {
  return dac.vMin + (code * (dac.vMax - dac.vMin)) / dacMaxCode(dac);
}

/** The nearest code to `volts`, clamped to the DAC's range. */
export function voltsToCode(dac: DacLike, volts: number): number {
  const max = dacMaxCode(dac);
  const c = Math.round(((volts - dac.vMin) / (dac.vMax - dac.vMin)) * max);
  return Math.min(max, Math.max(0, c));
}

/**
 * The codes whose voltage lies in [lo, hi] (inclusive, with CODE_EPSILON of a step of slack):
 * `[ceil((lo - vMin)/step - eps), floor((hi - vMin)/step + eps)]` clamped to 0..2^bits-1,
 * or undefined when no code qualifies.
 */
export function safeCodeRange(dac: DacLike, range: readonly [number, number]): [number, number] | undefined {
  const max = dacMaxCode(dac);
  const step = (dac.vMax - dac.vMin) / max;
  const lo = Math.max(0, Math.ceil((range[0] - dac.vMin) / step - CODE_EPSILON));
  const hi = Math.min(max, Math.floor((range[1] - dac.vMin) / step + CODE_EPSILON));
  return lo <= hi ? [lo, hi] : undefined;
}
