/**
 * `spikeloop train --from-ann`: train a ReLU network, map it onto the spiking model and search the
 * PNN's current scale and operating point (models/ann/imc-search.ts), then report and save the
 * chosen network.
 */

import { TRAINING_SUBSET_KEY, trainingSubset } from '../../models/datasets/training-subset.ts';
import { ReluNet, trainReluNet } from '../../models/ann/relu-net.ts';
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { evaluateNetwork } from '../../models/training/evaluate.ts';
import { writeHtmlReport } from '../report/html-report.ts';
import { lineChart } from '../report/svg-plot.ts';
import type { RunDir } from '../runs/run-dir.ts';
import { createProgress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { formatPercent } from '../ui/format.ts';
import type { Preset } from '../../models/training/presets.ts';
import { IMC_SLACKS, imcSolver, searchImcMapping } from '../../models/ann/imc-search.ts';
import type { SpikingNetwork } from '../../models/network/network.ts';
import type { Dataset, DatasetPart } from '../../models/datasets/types.ts';
import { describeArch } from '../../models/network/arch.ts';
import type { TrainSummary, TrainWorkflowOptions } from './train-options.ts';

export async function annFlow(opts: TrainWorkflowOptions, preset: Preset, data: Dataset, run: RunDir, backend: string): Promise<TrainSummary> {
  const hidden = opts.layers ?? preset.layers;
  const ann = opts.arch
    ? new ReluNet({ arch: opts.arch, seed: opts.seed, rowSum: 1 })
    : new ReluNet({ sizes: [data.features, ...hidden, data.classes], seed: opts.seed, rowSum: 1 });
  const sizes = ann.sizes;
  // The ReLU net's own settings (preset.ann), not the spiking net's.
  const epochs = opts.epochs ?? preset.ann.epochs;
  const batchSize = opts.batchSize ?? preset.ann.batchSize;
  const lr = opts.lr ?? preset.ann.lr;
  const activeWeight = preset.ann.activeWeight ?? 0;
  const solver = imcSolver(opts.arch !== undefined);
  run.update({
    summary: {
      settings: {
        flow: 'ann-to-imc',
        sizes,
        ...(opts.arch ? { arch: opts.arch } : {}),
        epochs,
        batchSize,
        lr,
        activeWeight,
        seed: opts.seed,
        rowSum: 1,
        solver: solver.name,
      },
    },
  });
  opts.print(
    `ANN-to-IMC: ReLU network ${sizes.join('-')}${opts.arch ? ` (${describeArch(opts.arch)})` : ''} (weights of each neuron summing to 1${activeWeight > 0 ? `, negative pre-activations penalised x ${activeWeight}` : ''}), ${epochs} epochs of ${batchSize}, Adam lr ${lr}; mapped networks scored with ${solver.name}`,
  );
  const t0 = performance.now();
  let samples = 0;
  try {
    const bar = createProgress({ total: epochs, label: 'ann', unit: 'epochs', stream: opts.progress });
    const history = await trainReluNet(
      ann,
      { train: data.train, test: data.test },
      {
        epochs,
        batchSize,
        lr,
        seed: opts.seed,
        activeWeight,
        signal: opts.signal,
        onEpoch: (m) => {
          samples += data.train.n;
          run.metrics.append({ stage: 'ann', ...m });
          bar.update(m.epoch, { loss: m.train_loss, acc: m.train_acc, test: m.test_acc });
        },
      },
    );
    bar.finish();
    if (opts.signal?.aborted) throw new Error('interrupted');
    const annSeconds = (performance.now() - t0) / 1000;
    const annTest = ann.accuracy(data.test);
    const annTrain = ann.accuracy(data.train);
    const weights = ann.layerWeights();
    const score = solver.solver;
    let bar2: ReturnType<typeof createProgress> | undefined;
    const mapBar = createProgress({ total: IMC_SLACKS.length, label: 'map', unit: 'slacks', stream: opts.progress });
    const search = searchImcMapping(weights, data.train, score, {
      onMap: (p) => {
        mapBar.tick(1, { slack: p.slack, acc: p.ideal_select_acc });
        run.metrics.append({ stage: 'map', ...p });
      },
      onSearchStart: (points) => {
        mapBar.finish();
        bar2 = createProgress({ total: points, label: 'search', unit: 'points', stream: opts.progress });
      },
      onPoint: (p) => {
        bar2!.tick(1);
        run.metrics.append({ stage: 'search', ...p });
      },
    });
    bar2!.finish();
    const { mapped, nominalSearch, fullSearch } = search;
    // Four networks on the test part and the chosen one on the training part: minutes on a conv net, so a bar.
    const scoreBar = createProgress({ total: 4 * data.test.n + data.train.n, label: 'score', unit: 'samples', stream: opts.progress });
    const accuracy = (net: SpikingNetwork, part: DatasetPart) => evaluateNetwork(net, part, score, { onBatch: (n) => scoreBar.tick(n) }).acc;
    try {
      const idealTest = accuracy(mapped, data.test);
      const nominal = mapped.withModel({ model: 'pnn' });
      const pnnNominal = accuracy(nominal, data.test);
      nominal.dispose();
      const testAt = (p: { scale: number; ePlus: number; eMinus: number }) => {
        const net = mapped.withModel({ model: 'pnn', ePlus: p.ePlus, eMinus: p.eMinus, scaleFactor: p.scale });
        try {
          return accuracy(net, data.test);
        } finally {
          net.dispose();
        }
      };
      const bestNominal = { ...nominalSearch.best, test_acc: testAt(nominalSearch.best) };
      const bestAny = { ...fullSearch.best, test_acc: testAt(fullSearch.best) };
      const chosen = bestAny.acc > bestNominal.acc ? bestAny : bestNominal;
      const deployed = mapped.withModel({ model: 'pnn', ePlus: chosen.ePlus, eMinus: chosen.eMinus, scaleFactor: chosen.scale });
      const modelFile = run.file('network.bin');
      await saveNetwork(modelFile, deployed, {
        dataset: data.name,
        flow: 'ann-to-imc',
        seed: opts.seed,
        scale: chosen.scale,
        slack: search.slack,
        [TRAINING_SUBSET_KEY]: trainingSubset(opts.dataset, opts),
      });
      const trainMapped = accuracy(deployed, data.train);
      scoreBar.finish();
      deployed.dispose();
      const summary: TrainSummary = {
        test_acc: chosen.test_acc,
        train_acc: trainMapped,
        epochs: history.length,
        samples_per_s: annSeconds > 0 ? samples / annSeconds : 0,
        backend,
        flow: 'ann-to-imc',
        dataset: data.name,
        sizes,
        ann_test_acc: annTest,
        ann_train_acc: annTrain,
        mapped_ideal_test_acc: idealTest,
        mapped_pnn_nominal_test_acc: pnnNominal,
        mapped_pnn_scaled_test_acc: bestNominal.test_acc,
        mapped_pnn_best_test_acc: bestAny.test_acc,
        chosen: { scale: chosen.scale, ePlus: chosen.ePlus, eMinus: chosen.eMinus, slack: search.slack },
        network: modelFile,
        out: run.path,
      };
      const svg = lineChart({
        title: `${data.name}: ANN accuracy per epoch`,
        xLabel: 'epoch',
        yLabel: 'accuracy',
        series: [
          { name: 'train', x: history.map((m) => m.epoch), y: history.map((m) => m.train_acc) },
          { name: 'test', x: history.map((m) => m.epoch), y: history.map((m) => m.test_acc ?? NaN) },
        ],
      });
      await writeFileAtomic(run.file('learning-curve.svg'), svg);
      const rows = [
        { figure: 'ANN (ReLU) test accuracy', value: formatPercent(annTest) },
        { figure: 'mapped, ideal model', value: formatPercent(idealTest) },
        { figure: 'mapped, PNN (nominal ePlus/eMinus, scale 1)', value: formatPercent(pnnNominal) },
        { figure: `mapped, PNN, current scale ${bestNominal.scale}`, value: formatPercent(bestNominal.test_acc) },
        {
          figure: `mapped, PNN, scale ${bestAny.scale}, ePlus ${bestAny.ePlus.toFixed(2)}, eMinus ${bestAny.eMinus.toFixed(2)}`,
          value: formatPercent(bestAny.test_acc),
        },
      ];
      await writeHtmlReport(run.file('report.html'), {
        title: `spikeloop train --from-ann: ${data.name}`,
        summary: Object.fromEntries(rows.map((r) => [r.figure, r.value])),
        sections: [
          { title: 'ANN training', blocks: [{ kind: 'plot', svg }] },
          {
            title: 'Current-scale search (selection set: training data)',
            blocks: [{ kind: 'table', rows: [...nominalSearch.grid, ...fullSearch.grid].map((p) => ({ ...p })) }],
          },
        ],
      });
      opts.print('\n' + renderTable(rows, { title: `ANN-to-IMC: ${data.name} ${sizes.join('-')}` }));
      return summary;
    } finally {
      mapped.dispose();
    }
  } finally {
    ann.dispose();
  }
}
