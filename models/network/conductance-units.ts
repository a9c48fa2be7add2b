/**
 * The one mapping between a layer's trainable units and the conductances they stand for
 * (docs/MODEL.md §7): pE = gE ePlus / scale and pI = gI |eMinus| / scale, so one unit of pE or pI
 * moves the drive at rest by `scale` whatever the reversal potentials are.
 */

/** What fixes the units: the layer's scale and reversal potentials. */
export interface ConductanceUnits {
  scale: number;
  ePlus: number;
  eMinus: number;
}

/** The factors from (pE, pI) to (gE, gI): gE = pE kE, gI = pI kI. */
export function conductanceFactors(u: ConductanceUnits): { kE: number; kI: number } {
  return { kE: u.scale / u.ePlus, kI: u.scale / -u.eMinus };
}

/** gE, gI (float64) of trainable units pE, pI. */
export function conductancesOf(u: ConductanceUnits, pE: ArrayLike<number>, pI: ArrayLike<number>): { gE: Float64Array; gI: Float64Array } {
  const { kE, kI } = conductanceFactors(u);
  return { gE: Float64Array.from(pE, (p) => p * kE), gI: Float64Array.from(pI, (p) => p * kI) };
}

/** The trainable units (float32, as the layers hold them) of conductances gE, gI. */
export function unitsOf(u: ConductanceUnits, gE: ArrayLike<number>, gI: ArrayLike<number>): { pE: Float32Array; pI: Float32Array } {
  return { pE: Float32Array.from(gE, (g) => (g * u.ePlus) / u.scale), pI: Float32Array.from(gI, (g) => (g * -u.eMinus) / u.scale) };
}
