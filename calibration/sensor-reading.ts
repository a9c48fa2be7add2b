/**
 * The die's supply and temperature for a calibration: the mean of several sensor reads.
 *
 * The profile's supply places the sky130 card's PMOS curves (their source sits at the supply, so a die
 * 4 mV off the reading is a 4 mV gate offset, about a third of a sigma of process position,
 * reversal-curve.ts), and its temperature picks the card's shape. One read carries the board's
 * read noise (the behavioural mock: 2 mV and 0.3 C rms, ADC-rounded to 1 mV and 0.1 C); the mean of
 * SENSOR_READS reads a quarter of it.
 */

/** Reads averaged per calibration (a STATUS round trip each). */
export const SENSOR_READS = 16;

export interface SensorReading {
  supplyV: number;
  temperatureC: number;
}

/** The mean of `reads` readings of `read` (one after another), rounded to 0.1 mV and 0.01 C. */
export async function meanSensorReading(read: () => SensorReading | Promise<SensorReading>, reads = SENSOR_READS): Promise<SensorReading> {
  if (!Number.isInteger(reads) || reads < 1) throw new RangeError(`sensor reads must be a whole number >= 1, got ${reads}`);
  let v = 0;
  let t = 0;
  for (let k = 0; k < reads; k++) {
    const s = await read();
    if (!Number.isFinite(s.supplyV) || !Number.isFinite(s.temperatureC)) {
      throw new RangeError(
        `sensor read ${k + 1} of ${reads} is not finite (supply ${s.supplyV} V, temperature ${s.temperatureC} C): check the board's sensors`,
      );
    }
    v += s.supplyV;
    t += s.temperatureC;
  }
  return { supplyV: Math.round((v / reads) * 1e4) / 1e4, temperatureC: Math.round((t / reads) * 100) / 100 };
}
