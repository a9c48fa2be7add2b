import { describe, expect, it } from 'vitest';
import { meanSensorReading, SENSOR_READS } from '../../calibration/sensor-reading.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';

describe('meanSensorReading', () => {
  it('is the mean of the reads, in order', async () => {
    const reads = [
      { supplyV: 1.8, temperatureC: 27 },
      { supplyV: 1.81, temperatureC: 28 },
      { supplyV: 1.805, temperatureC: 26.5 },
    ];
    let k = 0;
    const m = await meanSensorReading(() => reads[k++]!, 3);
    expect(k).toBe(3);
    expect(m.supplyV).toBeCloseTo(1.805, 6);
    expect(m.temperatureC).toBeCloseTo(27.17, 6);
  });

  it("brings a behavioural die's supply reading closer to its truth than one read (20 dies)", async () => {
    let one = 0;
    let mean = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const chip = new BehavioralChip({ seed, sizes: [4, 3, 2] });
      const truth = chip.hiddenTruth().supplyV;
      one += (chip.supply().supplyV - truth) ** 2;
      mean += ((await meanSensorReading(() => chip.supply())).supplyV - truth) ** 2;
    }
    // Read noise 2 mV rms: 16 reads leave a quarter of it (plus the ADC's 1 mV rounding, dithered by the noise).
    expect(Math.sqrt(mean / 20)).toBeLessThan(0.5 * Math.sqrt(one / 20));
    expect(SENSOR_READS).toBeGreaterThanOrEqual(8);
  });

  it('refuses a count below one and a non-finite read, naming them', async () => {
    await expect(meanSensorReading(() => ({ supplyV: 1.8, temperatureC: 27 }), 0)).rejects.toThrow(/whole number >= 1, got 0/);
    await expect(meanSensorReading(() => ({ supplyV: Number.NaN, temperatureC: 27 }), 2)).rejects.toThrow(/read 1 of 2 is not finite \(supply NaN V/);
  });
});
