/** The demo's summary table and its HTML report (accuracy table, learning curves, the device's spike raster, links to the stage reports). */

import fs from 'node:fs';
import path from 'node:path';
import { type EpochMetrics } from '../../models/training/trainer.ts';
import { type DeviceInfo } from '../device/chip-device.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { lineChart, spikeRaster } from '../report/svg-plot.ts';
import { type CalibrateSummary } from './calibrate.ts';
import { formatPercent } from '../ui/format.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';
import { peakRssMb, type DemoDataset, type DemoNetworkResult, type DemoOptions, type DemoSummary } from './demo-options.ts';
/** A device accuracy, with how many of the n test samples had no output spike when any had none. */
export function deviceAccuracy(acc: number, noSpike: number, n: number): string {
  return `${formatPercent(acc)}${noSpike > 0 ? ` (${noSpike} of ${n} without an output spike)` : ''}`;
}

export function tableRows(
  results: DemoNetworkResult[],
  cal: CalibrateSummary,
  layers: number[],
  info: DeviceInfo,
  stages: DemoSummary['stages'],
  seconds: number,
  cpuTotal: number,
): { figure: string; value: string }[] {
  const rows: { figure: string; value: string }[] = [];
  for (const r of results) {
    const name = r.dataset === 'iris' ? 'Iris' : `Fashion-MNIST (${r.train_samples} train / ${r.test_samples} test)`;
    rows.push({ figure: `${name}: twin test accuracy`, value: `${formatPercent(r.twin_acc)} (${r.sizes.join('-')}, ${r.epochs} epochs)` });
    rows.push({ figure: `${name}: deployed, nominal curves`, value: deviceAccuracy(r.deployed_nominal_acc, r.deployed_nominal_no_spike, r.test_samples) });
    rows.push({ figure: `${name}: deployed, calibrated curves`, value: deviceAccuracy(r.deployed_acc, r.deployed_no_spike, r.test_samples) });
    rows.push({ figure: `${name}: after in-situ fine-tuning`, value: r.finetuned_acc === null ? 'not fine-tuned' : formatPercent(r.finetuned_acc) });
  }
  const skipped = info.layers.map((_, k) => k).filter((k) => !layers.includes(k));
  rows.push({
    figure: 'calibration: held-out RMSE PNN / ideal',
    value: `${cal.rmse_pnn_ticks.toFixed(3)} / ${cal.rmse_ideal_ticks.toFixed(3)} ticks (${(cal.rmse_pnn * 1e9).toFixed(2)} / ${(cal.rmse_ideal * 1e9).toFixed(2)} ns)`,
  });
  rows.push({
    figure: 'calibrated layers',
    value: `${layers.join(', ')}${skipped.length ? ` (layer ${skipped.join(', ')}: nominal curves)` : ''}`,
  });
  for (const s of stages) rows.push({ figure: `time: ${s.stage}`, value: `${s.seconds.toFixed(1)} s (CPU ${s.cpu_seconds.toFixed(1)} s)` });
  rows.push({ figure: 'time taken', value: `${seconds.toFixed(1)} s (CPU ${cpuTotal.toFixed(1)} s)` });
  rows.push({ figure: 'peak resident memory', value: `${peakRssMb()} MB` });
  return rows;
}

export interface ReportInput {
  opts: DemoOptions;
  info: DeviceInfo;
  rows: { figure: string; value: string }[];
  results: DemoNetworkResult[];
  cal: CalibrateSummary;
  layers: number[];
  stages: DemoSummary['stages'];
  histories: Map<DemoDataset, EpochMetrics[]>;
  raster?: { ticks: Uint16Array[]; title: string };
  finetuneDirs: Partial<Record<DemoDataset, string>>;
}

export async function writeReport(file: string, r: ReportInput): Promise<void> {
  const info = r.info;
  const h0 = info.layers[0]!.horizonTicks;
  const link = (rel: string, text: string) => `<a href="${rel}">${text}</a>`;
  const links = [
    link('bringup/report.html', 'bring-up report'),
    link('calibration/report.html', 'calibration report'),
    ...Object.keys(r.finetuneDirs).map((d) => link(`finetune-${d}/report.html`, `fine-tuning report (${d})`)),
  ];
  const sections: ReportSection[] = [
    {
      title: 'What this run did',
      blocks: [
        {
          kind: 'text',
          text:
            `Bring-up of ${info.chipId}, calibration of layers ${r.layers.join(', ')} ` +
            '(the other layers are mapped through nominal sky130 curves), twin training on the PNN model with the calibrated reversal potentials, ' +
            'deployment of every network through the nominal curves and through the calibrated ones, device test accuracy of both, and in-situ fine-tuning from the calibrated deployment.',
        },
        { kind: 'html', html: `<p>Stage reports: ${links.join(' · ')}</p>` },
        {
          kind: 'table',
          rows: r.stages.map((s) => ({
            stage: s.stage,
            seconds: Number(s.seconds.toFixed(2)),
            cpu_seconds: Number(s.cpu_seconds.toFixed(2)),
            result: s.result,
          })),
        },
      ],
    },
    {
      title: 'Accuracy',
      blocks: [
        {
          kind: 'table',
          rows: r.results.map((n) => ({
            dataset: n.dataset,
            network: n.sizes.join('-'),
            train: n.train_samples,
            test: n.test_samples,
            twin: formatPercent(n.twin_acc),
            'deployed (nominal)': deviceAccuracy(n.deployed_nominal_acc, n.deployed_nominal_no_spike, n.test_samples),
            'deployed (calibrated)': deviceAccuracy(n.deployed_acc, n.deployed_no_spike, n.test_samples),
            'fine-tuned': n.finetuned_acc === null ? '-' : formatPercent(n.finetuned_acc),
          })),
        },
      ],
    },
    {
      title: 'Twin training',
      blocks: [...r.histories.entries()].map(([d, h]) => ({
        kind: 'plot' as const,
        caption: `Learning curves of the twin (DSTD on the PNN model), ${d}.`,
        svg: lineChart({
          title: `${d}: accuracy per epoch`,
          xLabel: 'epoch',
          yLabel: 'accuracy',
          series: [
            { name: 'train', x: h.map((m) => m.epoch), y: h.map((m) => m.train_acc) },
            { name: 'test', x: h.map((m) => m.epoch), y: h.map((m) => m.test_acc ?? NaN) },
          ],
        }),
      })),
    },
  ];
  const ftBlocks: ReportSection['blocks'] = [];
  for (const [d, dir] of Object.entries(r.finetuneDirs)) {
    const svg = path.join(dir, 'learning-curve.svg');
    if (fs.existsSync(svg))
      ftBlocks.push({
        kind: 'plot',
        caption: `Device and twin test accuracy while fine-tuning ${d} on the chip (epoch 0 = the calibrated deployment).`,
        svg: fs.readFileSync(svg, 'utf8'),
      });
  }
  if (ftBlocks.length) sections.push({ title: 'In-situ fine-tuning', blocks: ftBlocks });
  if (r.raster) {
    sections.push({
      title: 'Spikes on the device',
      blocks: [
        {
          kind: 'plot',
          caption: `Spike raster: ${r.raster.title}, as the device measured it (time in layer-0 windows).`,
          svg: spikeRaster({
            title: `device spikes: ${r.raster.title}`,
            xLabel: 'time (layer-0 windows)',
            layers: r.raster.ticks.map((ticks, l) => {
              const n = info.layers[l]!.outputs;
              return {
                name: `layer ${l}`,
                times: Array.from(ticks.subarray(0, n), (t) => (t === SILENT_TICK ? Infinity : t / h0)),
                horizon: info.layers[l]!.horizonTicks / h0,
              };
            }),
          }),
        },
      ],
    });
  }
  await writeHtmlReport(file, {
    title: 'spikeloop demo',
    subtitle: `${info.chipId} on ${r.opts.device}, seed ${r.opts.seed}`,
    summary: Object.fromEntries(r.rows.map((x) => [x.figure, x.value])),
    sections,
  });
}
