/**
 * `spikeloop calibrate`: probe a chip, fit its PNN parameters and the ideal top-down model on the
 * same measurements, score both on held-out patterns, and leave a run folder with the chip profile
 * (profile.slp, written atomically), calibration.json (every figure), record.json, metrics.jsonl
 * and report.html (predicted-vs-measured scatter, per-neuron residuals, calibration curves).
 * `quick` refits only the global parameters of an existing profile (drift).
 */

import path from 'node:path';
import { calibrateChip, DEFAULT_ADAPTIVE, highestPrecharge, type CalibrateChipOptions, type CalibrationResult } from '../../calibration/calibrate-chip.ts';
import { meanSensorReading } from '../../calibration/sensor-reading.ts';
import { loadChipProfile, saveChipProfile, type ChipProfile } from '../../calibration/chip-profile.ts';
import { refitGlobals, type DriftRefitResult } from '../../calibration/drift-refit.ts';
import type { ProbeSizes } from '../../calibration/probe-plan.ts';
import type { ProbeTarget } from '../../calibration/probe-run.ts';
import type { NeuronResidual, ResidualSet } from '../../calibration/modelling-error.ts';
import { writeJsonAtomic } from '../../models/io/atomic-file.ts';
import type { ChipDevice } from '../device/chip-device.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { lineChart, scatterPlot } from '../report/svg-plot.ts';
import { openRunDir } from '../runs/run-dir.ts';
import { renderTable } from '../ui/table.ts';
import { chipLayer } from '../../calibration/chip-mapping.ts';
import type { LayerGeometry } from '../../models/chips/chip-backend.ts';
import { NOMINAL_CIRCUIT } from '../../models/chips/sky130-nominal.ts';

export const PROFILE_FILE = 'profile.slp';

export interface CalibrateWorkflowOptions {
  out: string;
  /** Refit only the global parameters of an existing profile. */
  quick?: boolean;
  /** The profile to start from (quick); default `<out>/profile.slp`. */
  profile?: string;
  /** Layers to calibrate (full mode; default all). */
  layers?: number[];
  seed?: number;
  sizes?: Partial<ProbeSizes>;
  /** Run the adaptive round (full mode; calibration/adaptive-patterns.ts, DEFAULT_ADAPTIVE). */
  adaptive?: boolean;
  /** Threads for the per-neuron fits (full mode; default 1, this thread); the profile is the same for any count. */
  workers?: number;
  /** How much fitting the full mode does (calibrateChip's options of the same names; default: all of it). */
  fit?: Pick<CalibrateChipOptions, 'polishMaxInputs' | 'restShiftVolts' | 'gateReversal' | 'allPairPartners'>;
  /**
   * The membrane capacitance's slope the fit carries (full mode): per layer, or 'spice' to characterise the nominal sky130
   * array at the measured supply and temperature (models/chips/spice/membrane-slope.ts); default none (constant C).
   */
  capSlope?: readonly number[] | 'spice';
  signal?: AbortSignal;
  print?: (line: string) => void;
  onProgress?: (stage: string, done: number, total: number) => void;
  /** Recorded in the run record. */
  deviceUri?: string;
}

export interface CalibrateSummary {
  rmse_pnn: number;
  rmse_ideal: number;
  ratio: number;
  rmse_pnn_ticks: number;
  rmse_ideal_ticks: number;
  /** Timer-quantisation + jitter floor, ticks (full mode). */
  floor_ticks?: number;
  /** The held-out set's floor with per-layer noise from the repeats (deeper layers carry their inputs' jitter). */
  floor_pooled_ticks?: number;
  profile: string;
  report: string;
  chip_id: string;
  mode: 'full' | 'quick';
  e_plus: number;
  e_minus: number;
  /** Whether the fit carried each transistor's E at its own gate (`--gate-reversal`). */
  gate_reversal?: boolean;
  /** Full calibrations: whether the PMOS pairs were also measured against the NMOS sweep codes other than the two references (`allPairPartners`). */
  all_pair_partners?: boolean;
  /** Per layer, the membrane capacitance's slope the fit carried (absent: constant C). */
  cap_slope?: number[];
  timer_offset_ticks: number;
  probes: number;
  seconds: number;
  /** Quick mode: the ideal model is not refitted; its figure is the profile's. */
  ideal_from_profile?: boolean;
  /** Full mode: share of the PNN's squared held-out error carried by its worst 1 % of pairs, and the RMSE of the rest (ticks). */
  tail_share?: number;
  rmse_pnn_rest_ticks?: number;
  /** Link traffic per progress stage (bytes moved until each of its blocks was read; fits move none): where the wire time goes. */
  link_by_stage: Record<string, StageTraffic>;
}

export interface StageTraffic {
  bytes_out: number;
  bytes_in: number;
  frames: number;
  /** Wall seconds between the stage's progress reports and the one before them. */
  s: number;
}

/**
 * Attributes the device's link traffic to progress stages: what moved since the last report goes
 * to the stage reporting (pipelined blocks run a few ahead, so a stage's first reads carry a little
 * of the next one's uploads).
 */
function stageTraffic(device: ChipDevice) {
  const by: Record<string, StageTraffic> = {};
  let last = device.link.stats;
  let lastT = performance.now();
  return {
    by,
    note(stage: string): void {
      const now = device.link.stats;
      const t = performance.now();
      const e = (by[stage] ??= { bytes_out: 0, bytes_in: 0, frames: 0, s: 0 });
      e.bytes_out += now.bytesOut - last.bytesOut;
      e.bytes_in += now.bytesIn - last.bytesIn;
      e.frames += now.framesOut - last.framesOut;
      e.s = Number((e.s + (t - lastT) / 1000).toFixed(3));
      last = now;
      lastT = t;
    },
  };
}

/** Adapts a ChipDevice to what calibration needs: uploads send only the codes that changed. */
export function deviceProbeTarget(device: ChipDevice, signal?: AbortSignal): ProbeTarget {
  const info = device.info;
  const last: (Uint16Array | undefined)[] = info.layers.map(() => undefined);
  return {
    layers: info.layers.map(chipLayer),
    dac: info.dac,
    safe: info.safe,
    tickSeconds: info.tickSeconds,
    // uploads and RUNs may be issued without awaiting: the device measures each RUN against the uploads before it
    pipelined: true,
    async upload(layer, codes) {
      const prev = last[layer];
      // what the device holds once this lands: an upload issued before it finishes starts from it
      last[layer] = codes.slice();
      try {
        if (prev) await device.uploadChanged(layer, prev, codes, { signal });
        else await device.uploadWeights(layer, codes, { signal });
      } catch (err) {
        last[layer] = undefined;
        throw err;
      }
    },
    run: (ticks, batch, layers) => device.run(ticks, batch, { signal, layers }),
    ...(info.features.includes('neuron-config')
      ? {
          neuronVoltages: (layer: number) => device.neuronVoltages(layer),
          setNeuronVoltages: (layer: number, vRest: number, vThreshold: number) => device.setNeuronVoltages(layer, vRest, vThreshold),
        }
      : {}),
  };
}

function scatterSection(title: string, sets: { name: string; r: ResidualSet }[], maxPoints = 4000): ReportSection {
  const blocks: ReportSection['blocks'] = [];
  for (const { name, r } of sets) {
    const stride = Math.max(1, Math.ceil(r.predicted.length / maxPoints));
    const layers = [...new Set(r.layer)].sort((a, b) => a - b);
    let s2 = 0;
    for (let k = 0; k < r.predicted.length; k++) s2 += (r.predicted[k] - r.measured[k]) ** 2;
    const rmse = Math.sqrt(s2 / Math.max(1, r.predicted.length));
    blocks.push({
      kind: 'plot',
      caption: `${name}: predicted against measured held-out spike times (ticks), ${r.predicted.length} spikes; every ${stride} plotted.`,
      svg: scatterPlot({
        title: `${name}: held-out spike times`,
        xLabel: 'measured (ticks)',
        yLabel: 'predicted (ticks)',
        annotation: `RMSE ${rmse.toFixed(3)} ticks`,
        groups: layers.map((l) => {
          const x: number[] = [];
          const y: number[] = [];
          for (let k = 0; k < r.predicted.length; k += stride) {
            if (r.layer[k] !== l) continue;
            x.push(r.measured[k]);
            y.push(r.predicted[k]);
          }
          return { name: `layer ${l}`, x, y };
        }),
      }),
    });
  }
  return { title, blocks };
}

function residualSection(pnn: NeuronResidual[], ideal?: NeuronResidual[]): ReportSection {
  const series = [{ name: 'PNN rmse', x: pnn.map((_, k) => k), y: pnn.map((n) => n.rmse) }];
  if (ideal) series.push({ name: 'ideal rmse', x: ideal.map((_, k) => k), y: ideal.map((n) => n.rmse) });
  series.push({ name: 'PNN bias', x: pnn.map((_, k) => k), y: pnn.map((n) => n.bias) });
  const byKey = new Map(ideal?.map((n) => [`${n.layer}.${n.neuron}`, n]) ?? []);
  return {
    title: 'Per-neuron residuals',
    blocks: [
      {
        kind: 'plot',
        caption: 'Held-out residual per neuron (ticks), neurons in layer order; bias = mean(predicted - measured).',
        svg: lineChart({ title: 'held-out residual per neuron', xLabel: 'neuron (layer order)', yLabel: 'ticks', series }),
      },
      {
        kind: 'table',
        caption: 'Per-neuron held-out residuals (ticks); the 40 worst PNN neurons.',
        rows: [...pnn]
          .sort((a, b) => b.rmse - a.rmse)
          .slice(0, 40)
          .map((n) => ({
            layer: n.layer,
            neuron: n.neuron,
            spikes: n.count,
            pnn_rmse: Number(n.rmse.toFixed(3)),
            pnn_bias: Number(n.bias.toFixed(3)),
            ideal_rmse: byKey.has(`${n.layer}.${n.neuron}`) ? Number(byKey.get(`${n.layer}.${n.neuron}`)!.rmse.toFixed(3)) : '',
          })),
      },
    ],
  };
}

function tailSection(res: CalibrationResult): ReportSection {
  const t = res.tail;
  return {
    title: 'Worst held-out patterns',
    blocks: [
      {
        kind: 'text',
        text:
          `The worst ${(t.fraction * 100).toFixed(0)} % of the held-out pairs (${t.samples.length}) carry ${(t.share * 100).toFixed(1)} % of the bottom-up PNN's squared error; ` +
          `the other pairs have an RMSE of ${t.rmseRestTicks.toFixed(3)} ticks (pooled floor ${res.noise.pooledFloorTicks.toFixed(3)}). ` +
          'A pattern whose membrane creeps up to threshold (excitation and inhibition nearly balanced, a late spike) moves by several ticks for a 0.1 % change of its threshold ' +
          'and by as much for 0.1 % of any conductance in it (tens of ticks for half a percent), so its prediction needs parameters finer than timing noise pins them; a large "ticks per 0.1 % threshold" marks such a pattern. ' +
          'A large error on an insensitive pattern points at the model or a fault instead.',
      },
      {
        kind: 'table',
        caption: 'Worst held-out pairs of the bottom-up PNN (ticks).',
        rows: t.samples.map((x) => ({
          layer: x.layer,
          neuron: x.neuron,
          pattern: x.pattern,
          inputs: x.inputs,
          measured: Number(x.measuredTicks.toFixed(1)),
          predicted: Number(x.predictedTicks.toFixed(2)),
          error: Number(x.errorTicks.toFixed(2)),
          ticks_per_0_1pct_threshold: Number(x.ticksPerPermilleThreshold.toFixed(2)),
        })),
      },
    ],
  };
}

function curveSection(res: CalibrationResult): ReportSection {
  const blocks: ReportSection['blocks'] = [];
  for (const l of [...new Set(res.curves.map((c) => c.layer))]) {
    for (const pol of ['nmos', 'pmos'] as const) {
      const pts = res.curves.filter((c) => c.layer === l && c.polarity === pol).sort((a, b) => a.volts - b.volts);
      if (!pts.length) continue;
      blocks.push({
        kind: 'plot',
        caption: `Layer ${l} ${pol.toUpperCase()}: median fitted conductance of the probed transistors at each probe code, the fitted family and the nominal sky130 curve (normalised g t0 / C, log scale).`,
        svg: lineChart({
          title: `layer ${l} ${pol.toUpperCase()} transfer curve`,
          xLabel: 'gate voltage (V)',
          yLabel: 'conductance (g t0 / C)',
          yLog: true,
          series: [
            { name: 'measured (median)', x: pts.map((p) => p.volts), y: pts.map((p) => p.measured), markers: true },
            { name: 'fitted family', x: pts.map((p) => p.volts), y: pts.map((p) => p.fitted), dashed: true },
            { name: 'nominal', x: pts.map((p) => p.volts), y: pts.map((p) => p.nominal), dashed: true },
          ],
        }),
      });
    }
  }
  return { title: 'Calibration curves', blocks };
}

function profileTable(p: ChipProfile): Record<string, unknown>[] {
  return p.layers.map((l, k) => {
    let ts = 0;
    let d = 0;
    for (let i = 0; i < l.outputs; i++) {
      ts += l.thresholdScale[i];
      d += l.delay[i];
    }
    return {
      layer: k,
      calibrated: l.calibrated,
      nmos_vth: Number(l.nmos.vth.toFixed(4)),
      nmos_n: Number(l.nmos.n.toFixed(3)),
      nmos_kp: Number(l.nmos.kp.toPrecision(3)),
      pmos_vth: Number(l.pmos.vth.toFixed(4)),
      pmos_n: Number(l.pmos.n.toFixed(3)),
      mean_threshold_scale: Number((ts / l.outputs).toFixed(4)),
      mean_delay_ticks: Number(((d / l.outputs) * (p.t0Seconds / p.secondsPerTick)).toFixed(3)),
    };
  });
}

/** Runs a calibration (full or quick) on an open device and writes the run folder. */
export async function runCalibrateWorkflow(device: ChipDevice, opts: CalibrateWorkflowOptions): Promise<CalibrateSummary> {
  const print = opts.print ?? (() => {});
  const started = performance.now();
  const info = device.info;
  const mode: CalibrateSummary['mode'] = opts.quick ? 'quick' : 'full';
  // Checked before the run folder is opened and the device is read.
  if (Array.isArray(opts.capSlope) && opts.capSlope.length !== info.layers.length)
    throw new RangeError(`--cap-slope gives ${opts.capSlope.length} slopes; the chip has ${info.layers.length} layers (one per layer, or spice)`);
  // Quick mode reads the profile before the run folder (possibly the same folder) is opened.
  const startProfile = opts.quick ? await loadChipProfile(opts.profile ?? path.join(opts.out, PROFILE_FILE), { chipId: info.chipId }) : undefined;
  const run = openRunDir({
    out: opts.out,
    resume: opts.quick && !opts.profile ? true : undefined,
    info: { command: 'calibrate', args: process.argv.slice(2), device: opts.deviceUri ?? device.uri },
    continueHint: `refit the profile recorded there with spikeloop calibrate --quick --out ${opts.out}`,
  });
  try {
    // The mean of several reads: the profile's supply places the card's PMOS curves (calibration/sensor-reading.ts).
    const status = await meanSensorReading(() => device.status());
    const target = deviceProbeTarget(device, opts.signal);
    const traffic = stageTraffic(device);
    const onProgress = (stage: string, done: number, total: number) => {
      traffic.note(stage);
      opts.onProgress?.(stage, done, total);
    };
    const profilePath = run.file(PROFILE_FILE);
    const reportPath = run.file('report.html');
    let summary: CalibrateSummary;
    // Where the results went, the same for both modes.
    const where = () => ({ profile: profilePath, report: reportPath, chip_id: info.chipId, mode });
    if (!opts.quick) {
      print(
        `spikeloop calibrate: ${info.chipId} (${[info.layers[0]!.inputs, ...info.layers.map((l) => l.outputs)].join('-')}), ${status.supplyV.toFixed(3)} V, ${status.temperatureC.toFixed(1)} C; run folder ${run.path}`,
      );
      const capSlope = opts.capSlope === 'spice' ? await characterisedSlopes(target.layers, status, opts) : opts.capSlope;
      const res = await calibrateChip(target, {
        chipId: info.chipId,
        boardId: info.boardId,
        firmware: info.firmware,
        temperatureC: status.temperatureC,
        supplyV: status.supplyV,
        layers: opts.layers,
        seed: opts.seed,
        sizes: opts.sizes,
        ...opts.fit,
        ...(capSlope ? { capSlope } : {}),
        ...(opts.adaptive ? { adaptive: DEFAULT_ADAPTIVE } : {}),
        workers: opts.workers,
        signal: opts.signal,
        onProgress,
      });
      await saveChipProfile(profilePath, res.profile);
      const seconds = (performance.now() - started) / 1000;
      summary = {
        rmse_pnn: res.rmse.pnnSeconds,
        rmse_ideal: res.rmse.idealSeconds,
        ratio: res.rmse.ratio,
        rmse_pnn_ticks: res.rmse.pnnTicks,
        rmse_ideal_ticks: res.rmse.idealTicks,
        floor_ticks: res.noise.floorTicks,
        floor_pooled_ticks: res.noise.pooledFloorTicks,
        ...where(),
        e_plus: res.globals.ePlus,
        e_minus: res.globals.eMinus,
        gate_reversal: opts.fit?.gateReversal ?? false,
        all_pair_partners: opts.fit?.allPairPartners ?? true,
        ...(capSlope ? { cap_slope: [...capSlope] } : {}),
        timer_offset_ticks: res.profile.global.timerOffsetTicks,
        probes: res.probes.fit + res.probes.heldOut,
        seconds,
        tail_share: res.tail.share,
        rmse_pnn_rest_ticks: res.tail.rmseRestTicks,
        link_by_stage: traffic.by,
      };
      await writeJsonAtomic(run.file('calibration.json'), {
        summary,
        globals: res.globals,
        noise: res.noise,
        tail: res.tail,
        codes: res.codes,
        probes: res.probes,
        seconds: res.seconds,
        perNeuron: res.perNeuron,
        curves: res.curves,
      });
      run.metrics.append({ stage: 'calibrate', ...summary });
      const rows = [
        { figure: 'held-out RMSE, bottom-up PNN', value: `${res.rmse.pnnTicks.toFixed(3)} ticks (${(res.rmse.pnnSeconds * 1e9).toFixed(3)} ns)` },
        { figure: 'held-out RMSE, ideal top-down', value: `${res.rmse.idealTicks.toFixed(3)} ticks (${(res.rmse.idealSeconds * 1e9).toFixed(3)} ns)` },
        { figure: 'ideal / PNN', value: res.rmse.ratio.toFixed(2) },
        {
          figure: 'floor sqrt(1/12 + jitter^2)',
          value: `${res.noise.floorTicks.toFixed(3)} ticks (jitter ${res.noise.jitterTicks.toFixed(3)} from ${res.noise.repeatPairs} repeated edges)`,
        },
        {
          figure: "floor per layer (repeats; deeper layers carry their inputs' jitter)",
          value: `${res.noise.perLayer.map((p) => `layer ${p.layer}: ${p.floorTicks.toFixed(3)}`).join(', ')}; pooled over the held-out set ${res.noise.pooledFloorTicks.toFixed(3)} ticks`,
        },
        {
          figure: `worst ${(res.tail.fraction * 100).toFixed(0)} % of held-out pairs (${res.tail.samples.length})`,
          value: `${(res.tail.share * 100).toFixed(1)} % of the squared error; RMSE of the rest ${res.tail.rmseRestTicks.toFixed(3)} ticks`,
        },
        { figure: 'E+, E-', value: `${res.globals.ePlus.toFixed(3)}, ${res.globals.eMinus.toFixed(3)}` },
        { figure: 'kick per volt (NMOS, PMOS)', value: `${res.globals.kickNmos.toExponential(3)}, ${res.globals.kickPmos.toExponential(3)}` },
        { figure: 'timer offset', value: `${res.profile.global.timerOffsetTicks.toFixed(3)} ticks` },
        {
          figure: 'probes (fit + held-out)',
          value:
            `${res.probes.fit} + ${res.probes.heldOut}, sweeps measured ${res.probes.sweepRepeats}x` +
            (res.probes.adaptive.candidates
              ? ` (adaptive: ${res.probes.adaptive.kept} of ${res.probes.adaptive.candidates} candidates, predicted to creep up to threshold, in the fit set)`
              : ''),
        },
        { figure: 'time (probing, fitting)', value: `${res.seconds.probing.toFixed(1)} s, ${res.seconds.fitting.toFixed(1)} s` },
      ];
      await writeHtmlReport(reportPath, {
        title: 'spikeloop calibrate',
        subtitle: `${info.chipId} on ${opts.deviceUri ?? device.uri}`,
        summary: Object.fromEntries(rows.map((r) => [r.figure, r.value])),
        sections: [
          {
            title: 'Fit',
            blocks: [
              {
                kind: 'text',
                text:
                  'Bottom-up PNN: eq. (1) of the design note with fitted E+, E-, kick per volt, per-neuron threshold scale and delay, and per-transistor transfer-curve mismatch; ' +
                  'ideal top-down: current-source synapses (no reversal potentials, no kick) fitted to the same probes. Both are scored on held-out patterns never used by the fit, ' +
                  'each layer driven by its measured inputs. Optimiser: Levenberg-Marquardt (per neuron, with the globals in an outer loop).',
              },
              { kind: 'table', rows: profileTable(res.profile), caption: 'Fitted per-layer parameters (delays exclude the timer offset).' },
              {
                kind: 'table',
                rows: res.codes.map((c) => ({ layer: c.layer, nmos_codes: c.nmos.join(' '), pmos_codes: c.pmos.join(' ') })),
                caption: 'Probe codes chosen from the scans.',
              },
            ],
          },
          scatterSection('Predicted against measured', [
            { name: 'bottom-up PNN', r: res.heldOut.pnn },
            { name: 'ideal top-down', r: res.heldOut.ideal },
          ]),
          residualSection(res.perNeuron.pnn, res.perNeuron.ideal),
          tailSection(res),
          curveSection(res),
        ],
      });
      print('\n' + renderTable(rows, { title: 'spikeloop calibrate' }));
    } else {
      const prof = startProfile!;
      print(`spikeloop calibrate --quick: ${info.chipId}, refitting the globals of the profile from ${prof.createdAt}`);
      const res: DriftRefitResult = await refitGlobals(target, prof, {
        temperatureC: status.temperatureC,
        supplyV: status.supplyV,
        seed: opts.seed,
        signal: opts.signal,
        onProgress,
      });
      await saveChipProfile(profilePath, res.profile);
      const seconds = (performance.now() - started) / 1000;
      const idealTicks = prof.fit.rmseIdealTicks;
      summary = {
        rmse_pnn: res.rmse.pnnSeconds,
        rmse_ideal: idealTicks * info.tickSeconds,
        ratio: idealTicks / res.rmse.pnnTicks,
        rmse_pnn_ticks: res.rmse.pnnTicks,
        rmse_ideal_ticks: idealTicks,
        ...where(),
        e_plus: res.globals.ePlus,
        e_minus: res.globals.eMinus,
        timer_offset_ticks: res.globals.timerOffsetTicks,
        probes: res.probes,
        seconds,
        ideal_from_profile: true,
        link_by_stage: traffic.by,
      };
      run.metrics.append({ stage: 'calibrate-quick', before_ticks: res.before.rmseTicks, ...summary });
      const rows = [
        { figure: 'held-out RMSE before refit', value: `${res.before.rmseTicks.toFixed(3)} ticks` },
        { figure: 'held-out RMSE after refit', value: `${res.rmse.pnnTicks.toFixed(3)} ticks` },
        {
          figure: 'E+, E-',
          value: `${prof.global.ePlus.toFixed(3)} -> ${res.globals.ePlus.toFixed(3)}, ${prof.global.eMinus.toFixed(3)} -> ${res.globals.eMinus.toFixed(3)}`,
        },
        { figure: 'timer offset', value: `${prof.global.timerOffsetTicks.toFixed(3)} -> ${res.globals.timerOffsetTicks.toFixed(3)} ticks` },
        { figure: 'probes', value: String(res.probes) },
        { figure: 'time', value: `${seconds.toFixed(1)} s` },
      ];
      await writeHtmlReport(reportPath, {
        title: 'spikeloop calibrate --quick',
        subtitle: `${info.chipId} on ${opts.deviceUri ?? device.uri}`,
        summary: Object.fromEntries(rows.map((r) => [r.figure, r.value])),
        sections: [
          scatterSection('Predicted against measured', [{ name: 'bottom-up PNN (refitted globals)', r: res.heldOut }]),
          residualSection(res.perNeuron),
        ],
      });
      print('\n' + renderTable(rows, { title: 'spikeloop calibrate --quick' }));
    }
    print(`profile: ${summary.profile}\nreport: ${summary.report}`);
    run.finish({ ...summary });
    return summary;
  } catch (err) {
    throw run.stopped(
      err,
      opts.signal,
      opts.quick
        ? 'the profile is as it was: run the same command again'
        : `nothing was fitted yet; run the same command again (the same --out ${opts.out} is taken when the run left no results, else choose a new one)`,
    );
  }
}

/** The nominal sky130 array's membrane slope per layer at the chip's measured supply and temperature (SPICE, cached). */
async function characterisedSlopes(
  layers: readonly LayerGeometry[],
  status: { supplyV: number; temperatureC: number },
  opts: CalibrateWorkflowOptions,
): Promise<number[]> {
  opts.print?.(
    `spikeloop calibrate: characterising the membrane's capacitance at ${status.supplyV.toFixed(3)} V, ${status.temperatureC.toFixed(1)} C (SPICE, cached)`,
  );
  const { characteriseCapSlopes } = await import('../../models/chips/spice/membrane-slope.ts');
  return characteriseCapSlopes({
    supply: status.supplyV,
    temperatureC: status.temperatureC,
    geometry: layers,
    vTop: highestPrecharge(NOMINAL_CIRCUIT.vRest, status.supplyV, opts.fit?.restShiftVolts),
  });
}
