/**
 * Fidelity of the chip models to sky130 (issue #29's targets). Prints ONE JSON line:
 *   curve_max_rel_err        nominal curves (sky130NominalCurves, from spice/data/sky130-devices.json)
 *                            against a fresh SPICE run: largest |I_curve - I_spice| / |I_spice| over
 *                            20 points per device type spread across the safe gate windows, with the
 *                            membrane spread between threshold and rest (points off the table knots)
 *   curve_max_rel_err_nmos / _pmos   the same per device type
 *   ekv_max_rel_err          the EKV nominal the chips still use (NOMINAL_NMOS / NOMINAL_PMOS,
 *                            I0 (1 + lambda Vds)) against the same SPICE points, for contrast
 *   engine                   the SPICE engine of the fresh run (FIDELITY_ENGINE=wasm|ngspice, default wasm)
 *   data_engine, data_card_sha256   where the curves came from
 *   spice_e_plus_spread      only with FIDELITY_SPICE_DIES=<seeds, comma-separated>: each SPICE die
 *                            (16-8-4, table mode, its own C / supply / temperature draw, one model card)
 *                            is calibrated (raised-precharge sweeps through NEURON_CONFIG) and the key is
 *                            (max - min) / mean of the fitted E+; with spice_e_plus, spice_ratio (ideal
 *                            over PNN held-out RMSE) per die and spice_ratio_min, and spice_pnn_over_floor(_max)
 *                            (PNN held-out RMSE over the die's measured noise floor); spice_e_minus, spice_pnn_ticks,
 *                            spice_rest_shifts_v (the raised-precharge steps each die took), spice_seconds and
 *                            spice_cpu_s (wall and CPU seconds of this part), spice_gate_reversal (whether the
 *                            fit carried each transistor's E at its own gate: FIDELITY_GATE_REVERSAL=1, the
 *                            default, or 0 for one E+ and one E- per die, to compare), spice_shape_strength (with it:
 *                            per die the fitted strength [NMOS, PMOS] of the card's E(Vg) shape), spice_tail_share and
 *                            spice_rest_over_floor (per die: the share of the squared held-out error in the worst 1 % of
 *                            pairs, and the other pairs' RMSE over the floor), spice_adaptive_configs (FIDELITY_ADAPTIVE=N:
 *                            calibration's adaptive round with N weight configurations per layer, 4 as --adaptive runs it;
 *                            default 0, none) and spice_adaptive_kept (the rows it added per die); spice_drive_err_median
 *                            and _p95 (per die: every probed synapse's drive at mid-swing as the profile's mapping has it
 *                            against the die's own tables, |fitted / true - 1|; calibration/truth-score-spice.ts) and
 *                            spice_drive_bias (per die, the signed mean of fitted / true - 1, [NMOS, PMOS]);
 *                            spice_cap_slope (per die and layer, the membrane capacitance's slope per unit of u the fit
 *                            carries, models/chips/spice/membrane-slope.ts: FIDELITY_CAP_SLOPE=characterised, the default,
 *                            from the nominal array at the measured supply and temperature; die, from the die's own
 *                            tables; 0, none: eq. (1)'s constant C) and spice_cap_slope_die (the die's own, to compare);
 *                            spice_all_pair_partners (FIDELITY_ALL_PAIR_PARTNERS=1, the default: the PMOS pairs are also
 *                            measured against the NMOS sweep codes other than the two references, `calibrateChip`'s
 *                            allPairPartners; 0, the plan without them) and spice_probe_blocks (per die, blocks measured).
 *                            About a minute per die.
 *   spice_flow               only with FIDELITY_FLOW_DIE=<seed>: the whole flow (bring-up, calibration,
 *                            Iris twin, nominal and calibrated deployment, fine-tuning) on that SPICE die
 *                            at FIDELITY_FLOW_GEOMETRY (default 64-32-10), table mode (bench/spice-flow.ts);
 *                            its deployed_drive_err compares the drive the mapping assumed at the deployed
 *                            codes with the die's tables; its transient_spot_check re-runs FIDELITY_FLOW_SPOT
 *                            (default 1) test patterns on the same die in transient mode and compares spike by spike
 */
import { performance } from 'node:perf_hooks';
import { drainCurrent } from '../models/neuron/transfer-curve.ts';
import { DEFAULT_SAFE, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C, sky130NominalCurves } from '../models/chips/sky130-nominal.ts';
import { cardSha256 } from '../models/chips/spice/characterise-devices.ts';
import { loadDeviceData } from '../models/chips/spice/device-data.ts';
import { devicePointsNetlist, type DevicePoint } from '../models/chips/spice/device-netlists.ts';
import { createEngine, getVector, type EngineKind } from '../models/chips/spice/engine.ts';
import { spiceFlowFromEnv } from './spice-flow.ts';
import type { SpiceDriveError } from '../calibration/truth-score-spice.ts';

const POINTS = 20;
const round = (x: number, d = 4) => Number(x.toPrecision(d));

/** Evenly spread over the window (cell centres, so never on a 10 mV knot), membrane scrambled over the swing. */
export function fidelityPoints(window: readonly [number, number], n = POINTS): DevicePoint[] {
  const [lo, hi] = window;
  const { vRest, vThreshold } = NOMINAL_CIRCUIT;
  return Array.from({ length: n }, (_, k) => ({
    vg: lo + ((k + 0.5) / n) * (hi - lo) + 0.0037,
    v: vThreshold + ((((7 * k) % n) + 0.5) / n) * (vRest - vThreshold),
  })).map((p) => ({ vg: Math.min(hi, Math.max(lo, p.vg)), v: p.v }));
}

async function main(): Promise<void> {
  const kind = (process.env.FIDELITY_ENGINE ?? 'wasm') as EngineKind;
  if (kind !== 'wasm' && kind !== 'ngspice') throw new Error(`FIDELITY_ENGINE=${kind}: accepted wasm, ngspice`);
  const data = loadDeviceData();
  if (data.card.sha256 !== cardSha256()) throw new Error('spice/data/sky130-devices.json was made from another model card; run npm run characterise');
  const curves = sky130NominalCurves();
  const engine = await createEngine(kind);
  const t0 = performance.now();
  const out: Record<string, unknown> = {};
  let worst = 0;
  let worstEkv = 0;
  try {
    for (const polarity of ['nmos', 'pmos'] as const) {
      const pmos = polarity === 'pmos';
      const pts = fidelityPoints(DEFAULT_SAFE[polarity]);
      const netlist = devicePointsNetlist(pmos, 'card', NOMINAL_TEMPERATURE_C, NOMINAL_CIRCUIT.supply, pts);
      const res = await engine.run(netlist);
      let err = 0;
      let errEkv = 0;
      pts.forEach((p, k) => {
        const spice = getVector(res, `i(vm${k})`, netlist)[0];
        const curve = curves.current(polarity, p.vg, p.v);
        err = Math.max(err, Math.abs(curve - spice) / Math.abs(spice));
        const dev = pmos ? NOMINAL_PMOS : NOMINAL_NMOS;
        const vds = pmos ? NOMINAL_CIRCUIT.supply - p.v : p.v;
        const ekv = (pmos ? 1 : -1) * drainCurrent(dev, p.vg, NOMINAL_CIRCUIT.supply, NOMINAL_TEMPERATURE_C) * (1 + dev.lambda * vds);
        errEkv = Math.max(errEkv, Math.abs(ekv - spice) / Math.abs(spice));
      });
      out[`curve_max_rel_err_${polarity}`] = round(err);
      worst = Math.max(worst, err);
      worstEkv = Math.max(worstEkv, errEkv);
    }
  } finally {
    await engine.close();
  }
  const dies = await spiceDies(kind);
  const flow = await spiceFlowFromEnv(kind);
  console.log(
    JSON.stringify({
      curve_max_rel_err: round(worst),
      ...dies,
      ...(flow ? { spice_flow: flow } : {}),
      ...out,
      curve_points_per_device: POINTS,
      ekv_max_rel_err: round(worstEkv),
      engine: kind,
      data_engine: `${data.engine.kind} ${data.engine.version}`,
      data_card_sha256: data.card.sha256.slice(0, 16),
      seconds: round((performance.now() - t0) / 1000, 3),
    }),
  );
}

/** Calibrates the SPICE dies FIDELITY_SPICE_DIES names; {} when unset. */
async function spiceDies(engine: EngineKind): Promise<Record<string, unknown>> {
  const raw = process.env.FIDELITY_SPICE_DIES;
  if (!raw) return {};
  const seeds = raw.split(',').map((x) => Number(x.trim()));
  if (seeds.length < 2 || seeds.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new Error(`FIDELITY_SPICE_DIES=${raw}: give two or more non-negative integer seeds, comma-separated (e.g. 3,4,5,6,7)`);
  }
  const { SpiceChip } = await import('../models/chips/spice/spice-chip.ts');
  const { backendTarget } = await import('../calibration/backend-target.ts');
  const { calibrateChip, highestPrecharge } = await import('../calibration/calibrate-chip.ts');
  const { meanSensorReading } = await import('../calibration/sensor-reading.ts');
  const { spiceDriveError } = await import('../calibration/truth-score-spice.ts');
  const { drivenInputs } = await import('../calibration/probe-run.ts');
  const { capacitanceSlope, characteriseCapSlopes } = await import('../models/chips/spice/membrane-slope.ts');
  const capSource = process.env.FIDELITY_CAP_SLOPE ?? 'characterised';
  if (capSource !== 'characterised' && capSource !== 'die' && capSource !== '0')
    throw new Error(
      `FIDELITY_CAP_SLOPE=${capSource}: accepted characterised (the nominal array at the measured supply and temperature), die (the die's own tables), 0 (eq. (1)'s constant C)`,
    );
  const capSlopes: number[][] = [];
  const capSlopesDie: number[][] = [];
  const gate = process.env.FIDELITY_GATE_REVERSAL ?? '1';
  if (gate !== '0' && gate !== '1')
    throw new Error(`FIDELITY_GATE_REVERSAL=${gate}: accepted 0 (one E+ and one E- per die), 1 (each transistor's E at its gate)`);
  const gateReversal = gate === '1';
  const adaptiveRaw = process.env.FIDELITY_ADAPTIVE ?? '0';
  const adaptiveConfigs = Number(adaptiveRaw);
  if (!/^\d+$/.test(adaptiveRaw.trim()) || !Number.isInteger(adaptiveConfigs))
    throw new Error(
      `FIDELITY_ADAPTIVE=${adaptiveRaw}: give the adaptive round's weight configurations per layer, an integer >= 0 (0 = no adaptive round, 4 = what --adaptive asks for)`,
    );
  const partnersRaw = process.env.FIDELITY_ALL_PAIR_PARTNERS ?? '1';
  if (partnersRaw !== '0' && partnersRaw !== '1')
    throw new Error(`FIDELITY_ALL_PAIR_PARTNERS=${partnersRaw}: accepted 1 (PMOS pairs against every NMOS sweep code) or 0 (against the two references only)`);
  const allPairPartners = partnersRaw === '1';
  const blocks: number[] = [];
  const ePlus: number[] = [];
  const eMinus: number[] = [];
  const shape: number[][] = [];
  const ratio: number[] = [];
  const overFloor: number[] = [];
  const pnnTicks: number[] = [];
  const shifts: number[][] = [];
  const adaptiveKept: number[] = [];
  const tailShare: number[] = [];
  const restOverFloor: number[] = [];
  const drive: SpiceDriveError[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (const seed of seeds) {
    const chip = await SpiceChip.create({ seed, mode: 'table', engine });
    try {
      const sup = await meanSensorReading(() => chip.supply());
      const target = backendTarget(chip);
      // The membrane's capacitance slope per layer: the nominal array's at the measured supply and
      // temperature (what a lab can know), or this die's own tables (what only a mock can know).
      const vTop = highestPrecharge(NOMINAL_CIRCUIT.vRest, sup.supplyV);
      const dieSlope = chip.geometry.map((_, l) => {
        const m = chip.tableModel(l);
        return capacitanceSlope(m.capacitance, m.nmos.vd, { vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold, vTop });
      });
      const slope =
        capSource === 'die'
          ? dieSlope
          : capSource === 'characterised'
            ? await characteriseCapSlopes({ supply: sup.supplyV, temperatureC: sup.temperatureC, geometry: chip.geometry, vTop, engine })
            : chip.geometry.map(() => 0);
      capSlopes.push(slope.map((k) => round(k, 3)));
      capSlopesDie.push(dieSlope.map((k) => round(k, 3)));
      const res = await calibrateChip(target, {
        seed: 1,
        chipId: chip.chipId,
        temperatureC: sup.temperatureC,
        supplyV: sup.supplyV,
        gateReversal,
        adaptive: { configs: adaptiveConfigs },
        allPairPartners,
        ...(capSource === '0' ? {} : { capSlope: slope }),
      });
      adaptiveKept.push(res.probes.adaptive.kept);
      blocks.push(res.probes.blocks);
      tailShare.push(res.tail.share);
      restOverFloor.push(res.tail.rmseRestTicks / res.noise.pooledFloorTicks);
      drive.push(
        spiceDriveError(
          chip,
          res.profile,
          target.layers.map((_, l) => drivenInputs(target.layers, l)),
        ),
      );
      ePlus.push(res.globals.ePlus);
      eMinus.push(res.globals.eMinus);
      if (gateReversal) shape.push([round(res.globals.shapeN ?? 1, 3), round(res.globals.shapeP ?? 1, 3)]);
      ratio.push(res.rmse.ratio);
      pnnTicks.push(res.rmse.pnnTicks);
      overFloor.push(res.rmse.pnnTicks / res.noise.pooledFloorTicks);
      // The precharge steps the die allowed (a step too close to its supply is skipped).
      const used = new Set<number>();
      for (const f of res.fitters.pnn) for (const b of f.data.input.samples) if (b.restShiftVolts) used.add(b.restShiftVolts);
      shifts.push([...used].sort((a, b) => a - b).map((x) => round(x, 3)));
    } finally {
      await chip.close();
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const mean = ePlus.reduce((a, b) => a + b, 0) / ePlus.length;
  return {
    spice_e_plus_spread: round((Math.max(...ePlus) - Math.min(...ePlus)) / mean),
    spice_e_plus: ePlus.map((x) => round(x)),
    spice_e_minus: eMinus.map((x) => round(x)),
    ...(gateReversal ? { spice_shape_strength: shape } : {}),
    spice_rest_shifts_v: shifts,
    spice_pnn_ticks: pnnTicks.map((x) => round(x)),
    spice_ratio: ratio.map((x) => round(x)),
    spice_ratio_min: round(Math.min(...ratio)),
    spice_pnn_over_floor: overFloor.map((x) => round(x)),
    spice_pnn_over_floor_max: round(Math.max(...overFloor)),
    spice_drive_err_median: drive.map((d) => round(d.median, 3)),
    spice_drive_err_p95: drive.map((d) => round(d.p95, 3)),
    spice_drive_bias: drive.map((d) => [round(d.meanNmos, 3), round(d.meanPmos, 3)]),
    spice_tail_share: tailShare.map((x) => round(x, 3)),
    spice_rest_over_floor: restOverFloor.map((x) => round(x)),
    spice_dies: seeds,
    spice_gate_reversal: gateReversal,
    spice_adaptive_configs: adaptiveConfigs,
    spice_all_pair_partners: allPairPartners,
    spice_probe_blocks: blocks,
    spice_cap_slope_source: capSource,
    spice_cap_slope: capSlopes,
    spice_cap_slope_die: capSlopesDie,
    ...(adaptiveConfigs > 0 ? { spice_adaptive_kept: adaptiveKept } : {}),
    spice_geometry: '16-8-4',
    spice_seconds: round((performance.now() - t0) / 1000, 3),
    spice_cpu_s: round((cpu.user + cpu.system) / 1e6, 3),
  };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
