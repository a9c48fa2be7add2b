/**
 * The RC-Spike circuit as drawn for the SPICE chip: device sizes, switches and the transient
 * settings. One place, so the transient netlists and the table-mode characterisation describe
 * exactly the same circuit.
 *
 * Device sizes fall inside the bins of the bundled sky130 models (they are binned per W/L; a size
 * between bins would not simulate). Diffusion areas follow the usual layout estimate (a 0.29 um
 * drain/source extension), so junction capacitance on the membrane is present as after layout.
 */

export interface MosSize {
  /** Width and length, metres. */
  w: number;
  l: number;
}

export interface RcSpikeDesign {
  /** Synapse current source (the reference design's 1 um / 0.25 um). */
  synapse: MosSize;
  /** Sensing inverter; sized so that its trip point sits near the nominal 0.9 V threshold. */
  inverterP: MosSize;
  inverterN: MosSize;
  /** NMOS that empties the membrane between inferences; gate held low during the window. */
  discharger: MosSize;
  /** Drain/source diffusion extension, metres: ad = w * ext, pd = 2 (w + ext). 0 = no junctions. */
  diffusionExtent: number;
  /**
   * `mos`: the precharge switch and the input switches are sky130 transistors driven by gate edges
   * (charge injection and gate-edge kicks included); `ideal`: voltage-controlled resistors.
   */
  switches: 'mos' | 'ideal';
  /** Precharge switch (PMOS, membrane to vRest, gate low while precharging). */
  prechargeSwitch: MosSize;
  /** Input switches: NMOS (excitatory row's source to ground), PMOS (inhibitory row's source to VDD). */
  inputSwitchN: MosSize;
  inputSwitchP: MosSize;
  /** Rise time of the precharge switch's gate at release (t = 0 .. this), seconds. */
  prechargeEdge: number;
  /** Ideal switch on and off resistance, ohms (switches = 'ideal'). */
  switchOn: number;
  switchOff: number;
  /** Rise time of an input's switch control edge, seconds; the switch closes mid-edge, at the spike time. */
  inputEdge: number;
  /** Load on the inverter output (the board's edge detector), farads. */
  outputLoad: number;
  /** Pelgrom threshold-mismatch coefficients A_VT, volt metres (sigma = A_VT / sqrt(W L)). */
  avtN: number;
  avtP: number;
  /** Die temperature, deg C (a `.temp` line in every netlist); absent = ngspice's 27 C. */
  temperatureC?: number;
}

/**
 * Defaults. A_VT values are the sky130 cards' own mismatch slopes for these bins
 * (`sky130_fd_pr__nfet_01v8__vth0_slope` = 3.356 mV um, `..pfet_01v8__vth0_slope1` = 7.356 mV um),
 * so sigma(Vth) = 6.7 mV (NMOS) and 14.7 mV (PMOS) for a 1 um x 0.25 um synapse.
 */
export const DEFAULT_DESIGN: Readonly<RcSpikeDesign> = Object.freeze({
  synapse: Object.freeze({ w: 1e-6, l: 0.25e-6 }),
  inverterP: Object.freeze({ w: 3e-6, l: 0.15e-6 }),
  inverterN: Object.freeze({ w: 1e-6, l: 0.15e-6 }),
  discharger: Object.freeze({ w: 1e-6, l: 0.15e-6 }),
  diffusionExtent: 0.29e-6,
  switches: 'mos',
  prechargeSwitch: Object.freeze({ w: 0.42e-6, l: 0.15e-6 }),
  inputSwitchN: Object.freeze({ w: 0.42e-6, l: 0.15e-6 }),
  inputSwitchP: Object.freeze({ w: 0.42e-6, l: 0.15e-6 }),
  prechargeEdge: 10e-12,
  switchOn: 10,
  switchOff: 1e13,
  inputEdge: 10e-12,
  outputLoad: 2e-15,
  avtN: 3.356e-9,
  avtP: 7.356e-9,
});

/** Standard deviation of a device's threshold voltage, volts (Pelgrom). */
export function sigmaVth(avt: number, size: MosSize): number {
  return avt / Math.sqrt(size.w * size.l);
}

/** Subcircuit names of the bundled sky130 devices. */
export const NFET = 'sky130_fd_pr__nfet_01v8';
export const PFET = 'sky130_fd_pr__pfet_01v8';

/** Netlist preamble that loads the bundled sky130 models with Monte Carlo off (mismatch is ours). */
export const SKY130_PREAMBLE = ['.param mc_switch=0', '.include modelcard.skywater'] as const;

/** The preamble of a netlist of this design: the models, and the die's temperature when it has one. */
export function preamble(design: RcSpikeDesign): string[] {
  return design.temperatureC === undefined ? [...SKY130_PREAMBLE] : [...SKY130_PREAMBLE, `.temp ${Number(design.temperatureC.toPrecision(12))}`];
}
