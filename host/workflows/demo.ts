/**
 * The main job on a fresh chip, end to end: board check, twin training, deployment through the
 * chip's transfer curves, and accuracy measured on the device beside the twin's. Everything it
 * produces lands in one run folder (record, metrics, model, plots, an HTML report).
 */

import path from 'node:path';
import { loadDataset } from '../../models/datasets/load.ts';
import { initNetwork } from '../../models/network/init.ts';
import { defaultConfig } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { createSolver } from '../../models/network/solver.ts';
import { trainNetwork, type EpochMetrics } from '../../models/training/trainer.ts';
import { initBackend } from '../../models/tf/backend.ts';
import { ChipDevice } from '../device/chip-device.ts';
import { writeHtmlReport } from '../report/html-report.ts';
import { lineChart, spikeRaster } from '../report/svg-plot.ts';
import { openRunDir } from '../runs/run-dir.ts';
import { createProgress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { deployNetwork, deviceHorizons, evaluateOnDevice } from './deploy.ts';
import { presetFor } from './train.ts';
import { SILENT_TICK } from '../../models/chips/chip-backend.ts';

export interface DemoOptions {
  device: string;
  out: string;
  seed: number;
  epochs: number;
  signal?: AbortSignal;
  print(line: string): void;
}

export interface DemoSummary {
  device: string;
  chip_id: string;
  backend: string;
  self_test_ok: boolean;
  weights_verified: boolean;
  twin_acc: number;
  realised_twin_acc: number;
  deployed_acc: number;
  clipped_synapses: number;
  seconds: number;
  report: string;
}

/** Hidden layers of the network a demo trains: the chip's own, so it deploys without reshaping. */
function hiddenSizes(device: ChipDevice): number[] {
  return device.info.layers.slice(0, -1).map((l) => l.outputs);
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const started = performance.now();
  const stageTimes: { stage: string; seconds: number; result: string }[] = [];
  const stage = async <T>(name: string, work: () => Promise<T>, describe: (r: T) => string): Promise<T> => {
    opts.print(`\n== ${name}`);
    const t = performance.now();
    const r = await work();
    const seconds = (performance.now() - t) / 1000;
    const result = describe(r);
    stageTimes.push({ stage: name, seconds, result });
    opts.print(`   ${result} (${seconds.toFixed(1)} s)`);
    return r;
  };

  const run = openRunDir({ out: opts.out, info: { command: 'demo', args: process.argv.slice(2), device: opts.device } });
  const backend = await initBackend();
  run.update({ versions: { tfjs_backend: backend } });
  opts.print(`spikeloop demo: device ${opts.device}, twin backend ${backend}, run folder ${run.path}`);
  const device = await ChipDevice.open(opts.device);
  try {
    const info = device.info;
    const geometry = [info.layers[0]!.inputs, ...info.layers.map((l) => l.outputs)].join('-');

    // 1. Board check: the link, the self-tests and the weight memory.
    const selfTest = await stage(
      'board check',
      async () => {
        const results = await device.selfTest();
        const status = await device.status();
        return { results, status };
      },
      (r) =>
        `${info.chipId} (${geometry}), firmware ${info.firmware}; self-test ${r.results.filter((t) => t.ok).length}/${r.results.length} passed; ` +
        `supply ${r.status.supplyV.toFixed(3)} V, ${r.status.temperatureC.toFixed(1)} C`,
    );
    const selfTestOk = selfTest.results.every((t) => t.ok);
    if (!selfTestOk) {
      const failed = selfTest.results.filter((t) => !t.ok).map((t) => `${t.name}: ${t.detail}`);
      throw new Error(`the board failed its self-test (${failed.join('; ')}); run \`spikeloop info\` and check the board`);
    }

    // 2. Train the twin on Iris with the chip's own time windows and the PNN model.
    const data = await loadDataset('iris', { seed: opts.seed });
    const sizes = [data.features, ...hiddenSizes(device), data.classes];
    // Inputs take the first half of layer 0's window (one twin time unit), the layers the rest.
    // Grids start at 0 (shiftGrids off): a shifted grid moves inputs that arrive before the
    // layer's window to its start, which the chip does not do, and the twin must match the chip.
    const config = defaultConfig(sizes, { model: 'pnn', inputWindow: 1, horizons: deviceHorizons(info, info.layers[0]!.horizonTicks / 2), shiftGrids: false });
    const solver = createSolver('dstd', { bins: 16 });
    const preset = presetFor('iris');
    const net = initNetwork(config, { x: data.train.x, n: data.train.n }, solver, { seed: opts.seed });
    let history: EpochMetrics[] = [];
    try {
      history = await stage(
        `twin training (Iris ${sizes.join('-')}, PNN, DSTD M=16)`,
        async () => {
          const bar = createProgress({ total: opts.epochs, label: 'train', unit: 'epochs' });
          const h = await trainNetwork(net, { train: data.train, test: data.test }, {
            epochs: opts.epochs,
            batchSize: preset.batchSize,
            lr: preset.lr,
            seed: opts.seed,
            solver,
            schedule: preset.schedule,
            loss: preset.loss,
            signal: opts.signal,
            onEpoch: (m) => {
              run.metrics.append({ stage: 'train', ...m });
              bar.update(m.epoch, { loss: m.train_loss, acc: m.train_acc, test: m.test_acc });
            },
          });
          bar.finish();
          return h;
        },
        (h) => `train ${pct(h.at(-1)?.train_acc)}, test ${pct(h.at(-1)?.test_acc)} after ${h.length} epochs`,
      );
      await saveNetwork(run.file('iris-network.bin'), net, { dataset: 'iris', seed: opts.seed });
      const twinAcc = history.at(-1)?.test_acc ?? 0;

      // 3. Deploy through the nominal transfer curves and measure on the device.
      const deployment = await stage(
        'deploy',
        () => deployNetwork(device, net, { signal: opts.signal }),
        (d) =>
          `${d.layers.length} layers uploaded in ${d.layers.reduce((s, l) => s + l.frames, 0)} frames, CRC verified; ` +
          `${d.layers.reduce((s, l) => s + l.clipped, 0)} synapses clipped to the safe range`,
      );
      const exact = createSolver('exact');
      const realisedPred = deployment.realised.predict(data.test.x, data.test.n, exact);
      let realisedCorrect = 0;
      for (let s = 0; s < data.test.n; s++) if (realisedPred[s] === data.test.y[s]) realisedCorrect++;
      const realisedAcc = realisedCorrect / data.test.n;
      deployment.realised.dispose();
      const onDevice = await stage(
        'measure on the device',
        async () => {
          const bar = createProgress({ total: data.test.n, label: 'device', unit: 'samples' });
          const e = await evaluateOnDevice(device, net, data.test.x, data.test.y, data.test.n, {
            signal: opts.signal,
            onProgress: (done) => bar.update(done),
          });
          bar.finish();
          return e;
        },
        (e) => `device test accuracy ${pct(e.accuracy)} (twin on the realised weights: ${pct(realisedAcc)})`,
      );
      run.metrics.append({ stage: 'deploy', twin_acc: twinAcc, realised_twin_acc: realisedAcc, deployed_acc: onDevice.accuracy });

      // 4. Summary table and report.
      const seconds = (performance.now() - started) / 1000;
      const rows = [
        { figure: 'twin test accuracy (Iris)', value: pct(twinAcc) },
        { figure: 'twin on realised weights', value: pct(realisedAcc) },
        { figure: 'device test accuracy', value: pct(onDevice.accuracy) },
        // The mapping used the nominal sky130 curves: a chip's own mismatch shows up as the gap
        // between the two rows above.
        { figure: 'transfer curves', value: 'nominal sky130 (uncalibrated)' },
        { figure: 'self-test', value: selfTestOk ? 'passed' : 'FAILED' },
        { figure: 'time taken', value: `${seconds.toFixed(1)} s` },
      ];
      const reportPath = run.file('report.html');
      const h0 = info.layers[0]!.horizonTicks;
      await writeHtmlReport(reportPath, {
        title: 'spikeloop demo',
        subtitle: `${info.chipId} on ${opts.device}`,
        summary: Object.fromEntries(rows.map((r) => [r.figure, r.value])),
        sections: [
          {
            title: 'Stages',
            blocks: [{ kind: 'table', rows: stageTimes.map((s) => ({ ...s, seconds: Number(s.seconds.toFixed(2)) })) }],
          },
          {
            title: 'Twin training',
            blocks: [
              {
                kind: 'plot',
                caption: 'Learning curves of the twin (DSTD on the PNN model).',
                svg: lineChart({
                  title: 'Iris: accuracy per epoch',
                  xLabel: 'epoch',
                  yLabel: 'accuracy',
                  series: [
                    { name: 'train', x: history.map((m) => m.epoch), y: history.map((m) => m.train_acc) },
                    { name: 'test', x: history.map((m) => m.epoch), y: history.map((m) => m.test_acc ?? NaN) },
                  ],
                }),
              },
            ],
          },
          {
            title: 'On the device',
            blocks: [
              { kind: 'table', rows: deployment.layers.map((l) => ({ layer: l.layer, codes: l.codes.length, frames: l.frames, clipped: l.clipped, verified: l.verified })) },
              {
                kind: 'plot',
                caption: 'Spike raster of the first test sample as the device measured it (time in layer-0 windows).',
                svg: spikeRaster({
                  title: 'device spikes, first test sample',
                  xLabel: 'time (layer-0 windows)',
                  layers: onDevice.sampleTicks.map((ticks, l) => {
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
          },
        ],
      });
      opts.print('\n' + renderTable(rows, { title: 'spikeloop demo' }));
      opts.print(`report: ${displayPath(reportPath)}`);
      const summary: DemoSummary = {
        device: opts.device,
        chip_id: info.chipId,
        backend,
        self_test_ok: selfTestOk,
        weights_verified: deployment.layers.every((l) => l.verified),
        twin_acc: twinAcc,
        realised_twin_acc: realisedAcc,
        deployed_acc: onDevice.accuracy,
        clipped_synapses: deployment.layers.reduce((s, l) => s + l.clipped, 0),
        seconds,
        report: reportPath,
      };
      run.finish({ ...summary });
      return summary;
    } finally {
      net.dispose();
    }
  } catch (err) {
    run.fail(err, opts.signal?.aborted ? 'interrupted' : 'failed');
    throw err;
  } finally {
    await device.close();
  }
}

/** Relative to the working directory when inside it, absolute otherwise. */
function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(p);
}

function pct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : `${(100 * x).toFixed(2)} %`;
}
