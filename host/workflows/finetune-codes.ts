/**
 * DAC codes for a network whose conductances move a little every batch, without mapping every
 * synapse again (mapping a 784x256 layer through the transfer curves costs more than its gradient).
 *
 * The code of a synapse follows calibration/weight-mapping.ts mapLayer: target g (shared between
 * the rows of one input and polarity) -> I0 -> gate voltage through the inverse curve -> nearest
 * code, clamped to the polarity's safe window; g = 0 is the off code. The gate voltage is monotonic
 * in g, so a code stands for an interval of targets, bounded by the conductances at the code's two
 * half-step voltages. Each synapse keeps its interval; a batch recomputes only the synapses whose
 * target left it (a few per cent at fine-tuning rates).
 */

import type { LayerCurves } from '../../calibration/weight-mapping.ts';
import { safeCodes } from '../../calibration/weight-mapping.ts';
import { NMOS } from '../../models/chips/chip-backend.ts';
import { dacMaxCode } from '../../wire/dac.ts';
import type { SpikingNetwork } from '../../models/network/network.ts';
import { drainCurrent, gateVoltageFor, type MosfetMismatch } from '../../models/neuron/transfer-curve.ts';
import { conductanceToSiemens, siemensToConductance } from '../../models/neuron/units.ts';
import type { DeviceInfo } from '../device/chip-device.ts';

interface LayerCache {
  codes: Uint16Array;
  /** Target interval [lo, hi) the current code covers; NaN = unknown (recompute). */
  lo: Float64Array;
  hi: Float64Array;
}

export class CodeMapper {
  private readonly cache: LayerCache[];
  /** Synapses recomputed by the last call. */
  recomputed = 0;

  /** `t0`: seconds per twin time unit; `curves` per layer (nominal ones where the caller has no profile). */
  constructor(
    private readonly info: DeviceInfo,
    private readonly curves: readonly LayerCurves[],
    private readonly t0: number,
  ) {
    this.cache = info.layers.map((l) => {
      const n = l.rowInput.length * l.outputs;
      return { codes: new Uint16Array(n), lo: new Float64Array(n).fill(NaN), hi: new Float64Array(n).fill(NaN) };
    });
  }

  /** Every layer's codes for the network's current conductances (fresh arrays). */
  codes(net: SpikingNetwork): Uint16Array[] {
    this.recomputed = 0;
    return net.toPnnLayers().map((p, l) => this.layer(l, p.gE, p.gI, p.nIn, p.nOut).slice());
  }

  private layer(l: number, gE: Float64Array, gI: Float64Array, nIn: number, nOut: number): Uint16Array {
    const chip = this.info.layers[l]!;
    const curves = this.curves[l]!;
    const { dac } = this.info;
    const { rowInput, rowPolarity, outputs, inputs } = chip;
    const c = this.cache[l]!;
    const share = new Uint16Array(inputs * 2);
    for (let r = 0; r < rowInput.length; r++) share[rowInput[r]! * 2 + (rowPolarity[r] === NMOS ? 0 : 1)]!++;
    const [nLo, nHi] = safeCodes(dac, this.info.safe.nmos);
    const [pLo, pHi] = safeCodes(dac, this.info.safe.pmos);
    const step = (dac.vMax - dac.vMin) / dacMaxCode(dac);
    const { circuit, temperatureC } = curves;
    const m: MosfetMismatch = { dVth: 0, gain: 1 };
    for (let r = 0; r < rowInput.length; r++) {
      const j = rowInput[r]!;
      const nmos = rowPolarity[r] === NMOS;
      const dev = nmos ? curves.nmos : curves.pmos;
      const lo = nmos ? nLo : pLo;
      const hi = nmos ? nHi : pHi;
      const off = nmos ? lo : hi;
      const n = share[j * 2 + (nmos ? 0 : 1)]!;
      const gAt = (code: number) =>
        siemensToConductance(drainCurrent(dev, dac.vMin + code * step, circuit.supply, temperatureC, m) * dev.lambda, circuit.capacitance, this.t0);
      for (let i = 0; i < outputs; i++) {
        const k = r * outputs + i;
        if (j >= nIn || i >= nOut) {
          c.codes[k] = off;
          continue;
        }
        const g = (nmos ? gE : gI)[j * nOut + i]! / n;
        if (!(g > 0)) {
          c.codes[k] = off;
          c.lo[k] = NaN;
          continue;
        }
        if (g >= c.lo[k]! && g < c.hi[k]!) continue;
        this.recomputed++;
        m.dVth = curves.dVth ? curves.dVth[k]! : 0;
        m.gain = curves.gain ? curves.gain[k]! : 1;
        const v = gateVoltageFor(dev, conductanceToSiemens(g, circuit.capacitance, this.t0) / dev.lambda, circuit.supply, temperatureC, m);
        const code = Math.min(hi, Math.max(lo, Math.round((v - dac.vMin) / step)));
        c.codes[k] = code;
        // NMOS: more conductance = higher gate; PMOS: lower gate. The window's ends take every target beyond them.
        const up = nmos ? code + 0.5 : code - 0.5;
        const down = nmos ? code - 0.5 : code + 0.5;
        c.lo[k] = code === off ? 0 : gAt(down);
        c.hi[k] = code === (nmos ? hi : lo) ? Infinity : gAt(up);
      }
    }
    return c.codes;
  }
}
