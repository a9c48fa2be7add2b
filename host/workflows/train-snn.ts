/**
 * The SNN flow of `spikeloop train`: settings from flags and preset, one network trained and
 * evaluated (training solver, exact solver, and the ideal model's synapses on the PNN), its
 * learning and loss curves and report.
 */

import { TRAINING_SUBSET_KEY, trainingSubset } from '../../models/datasets/training-subset.ts';
import type { Dataset, DatasetPart } from '../../models/datasets/types.ts';
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import { initNetwork } from '../../models/network/init.ts';
import { archConfig, defaultConfig, type NetworkConfig } from '../../models/network/network.ts';
import { saveNetwork } from '../../models/network/serialize.ts';
import { createSolver, type SpikeSolver } from '../../models/network/solver.ts';
import { confusionMatrix, type ConfusionMatrix } from '../../models/training/confusion.ts';
import { evaluateNetwork } from '../../models/training/evaluate.ts';
import type { LossConfig } from '../../models/training/losses.ts';
import { trainNetwork, type EpochMetrics } from '../../models/training/trainer.ts';
import { writeHtmlReport, type ReportSection } from '../report/html-report.ts';
import { CONFUSION_FILE, writeConfusion } from './confusion-report.ts';
import { lineChart } from '../report/svg-plot.ts';
import type { RunDir } from '../runs/run-dir.ts';
import { chipNeuronLevels, chipTimeBase, type NeuronLevels } from '../../calibration/chip-mapping.ts';
import { createProgress } from '../ui/progress.ts';
import { renderTable } from '../ui/table.ts';
import { displayPath, formatNumber, formatPercent } from '../ui/format.ts';
import type { Preset } from '../../models/training/presets.ts';
import type { TrainSummary, TrainWorkflowOptions } from './train-options.ts';
import { networkSizes } from './train-chip.ts';
import { describeArch } from '../../models/network/arch.ts';

/** Everything one SNN training takes from flags and preset; the same for every CV fold. */
export interface SnnSetup extends Pick<Preset, 'epochs' | 'batchSize' | 'lr' | 'schedule' | 'averageDecay' | 'inputNoise' | 'weightDecay' | 'loss'> {
  sizes: number[];
  solver: SpikeSolver;
  config: NetworkConfig;
  /** Per layer, the chip's measured firing levels and delays (a profile's, PNN only), fixed in the twin. */
  neurons?: (NeuronLevels | undefined)[];
  /** Relative noise on the conductances during training (TrainOptions.weightNoise). */
  weightNoise: number;
  settings: Record<string, unknown>;
}

export function snnSetup(opts: TrainWorkflowOptions, preset: Preset, features: number, classes: number): SnnSetup {
  const { sizes, biasSpike, biasReplaces } = networkSizes(opts, preset, features, classes);
  const epochs = opts.epochs ?? preset.epochs;
  const batchSize = opts.batchSize ?? preset.batchSize;
  const lr = opts.lr ?? preset.lr;
  const schedule = opts.schedule ?? preset.schedule;
  const averageDecay = opts.averageDecay ?? preset.averageDecay;
  const inputNoise = opts.inputNoise ?? preset.inputNoise;
  const weightDecay = opts.weightDecay ?? preset.weightDecay;
  // Conductance noise stands for the chip's mapping error: by default only when training for a chip.
  const weightNoise = opts.weightNoise ?? (opts.chip ? preset.chipWeightNoise : 0);
  if (!(lr * weightDecay < 1))
    throw new RangeError(
      `--weight-decay ${weightDecay} with --lr ${lr}: every step multiplies the weights by 1 - lr * weight decay, which must stay above 0; use a weight decay below ${formatNumber(1 / lr)}`,
    );
  const loss: Partial<LossConfig> = {
    ...preset.loss,
    ...(opts.tauSoft !== undefined ? { tauSoft: opts.tauSoft } : {}),
    ...(opts.deadRate !== undefined ? { deadRate: opts.deadRate } : {}),
    ...(opts.windowWeight !== undefined ? { windowWeight: opts.windowWeight } : {}),
    ...(opts.silentScale !== undefined ? { silentScale: opts.silentScale } : {}),
    ...(opts.deadMembrane !== undefined ? { deadMembrane: opts.deadMembrane === 'model' ? 1 : 0 } : {}),
    ...(opts.deadMean !== undefined ? { deadMean: opts.deadMean === 'batch' ? 1 : 0 } : {}),
  };
  const solver = createSolver(opts.solver, { bins: opts.bins, eulerSteps: opts.eulerSteps });
  const chip = opts.chip;
  // For a chip: its windows, and (PNN) the reversal potentials its profile calibrated.
  const physics = chip && opts.model === 'pnn' && chip.ePlus !== undefined && chip.eMinus !== undefined ? { ePlus: chip.ePlus, eMinus: chip.eMinus } : {};
  const config = opts.arch
    ? archConfig(opts.arch, {
        model: opts.model,
        ...(opts.zeros ? { silentZeros: opts.zeros === 'silent' } : preset.silentZeros !== undefined ? { silentZeros: preset.silentZeros } : {}),
        ...(chip ? { ...chipTimeBase(chip), ...physics } : {}),
      })
    : defaultConfig(sizes, { model: opts.model, biasSpike, biasReplaces, ...(chip ? { ...chipTimeBase(chip), ...physics } : {}) });
  // A calibrated chip's neurons fire at their own levels: the twin trains with them (docs/MODEL.md §7).
  const neurons = chip?.profile && opts.model === 'pnn' ? chipNeuronLevels(chip.profile, config) : undefined;
  const hyper = { epochs, batchSize, lr, schedule, averageDecay, inputNoise, weightDecay, weightNoise, loss };
  const settings = {
    sizes,
    ...(opts.arch ? { arch: opts.arch } : {}),
    model: opts.model,
    solver: opts.solver,
    bins: opts.bins,
    eulerSteps: opts.eulerSteps,
    ...hyper,
    seed: opts.seed,
    config,
  };
  if (chip)
    opts.print(
      `for ${chip.chipId}: its hidden widths, its windows (horizons ${config.horizons.map((h) => formatNumber(h)).join(', ')} input windows)${'ePlus' in physics ? `, its calibrated ePlus and eMinus${neurons ? ", its neurons' firing levels and delays" : ''}` : ', nominal ePlus and eMinus (--profile gives calibrated ones)'}`,
    );
  opts.print(
    `network ${sizes.join('-')}${opts.arch ? ` (${describeArch(opts.arch)})` : ''} (${opts.model}, ePlus ${formatNumber(config.ePlus)}, eMinus ${formatNumber(config.eMinus)}), ${biasSpike === undefined ? '' : `reference input spike at t = ${biasSpike}${biasReplaces === undefined ? '' : ` in place of feature ${biasReplaces}`}, `}solver ${opts.solver}${solver.resolution ? ` (${solver.resolution} ${opts.solver === 'dstd' ? 'bins' : 'steps'})` : ''}, ${epochs} epochs of ${batchSize}, Adam lr ${lr} (${schedule})${averageDecay > 0 ? `, weights averaged (decay ${averageDecay})` : ''}${inputNoise > 0 ? `, input noise ${inputNoise}` : ''}${weightNoise > 0 ? `, conductance noise ${weightNoise}` : ''}${weightDecay > 0 ? `, weight decay ${weightDecay}` : ''}`,
  );
  return { sizes, ...hyper, solver, config, ...(neurons ? { neurons } : {}), settings };
}

/** Test images the exact solver evaluates for a network with conv layers. */
export const EXACT_CONV_TEST = 500;

function firstRows(p: DatasetPart, n: number): DatasetPart {
  if (p.n <= n) return p;
  return { ...p, name: `${p.name} (first ${n})`, n, x: p.x.subarray(0, n * p.features), y: p.y.subarray(0, n) };
}

/** One trained network's figures (the network itself is saved and disposed). */
export interface SnnResult {
  history: EpochMetrics[];
  testAcc: number;
  testAccExact: number;
  /** Test images the exact solver ran (all but for conv nets). */
  exactN: number;
  trainAcc: number;
  onPnn?: number;
  onPnnExact?: number;
  samplesPerS: number;
  /** Test part, exact solver (the physics a chip computes). */
  confusion: ConfusionMatrix;
}

/**
 * Initialise a fresh network, train it on `parts.train` (test metrics per epoch on `parts.test`),
 * save it to `modelFile` and evaluate it: the training solver and the exact one on the test part,
 * and for the ideal model the same synapses on the PNN.
 */
export async function trainOneSnn(
  opts: TrainWorkflowOptions,
  s: SnnSetup,
  parts: { train: DatasetPart; test: DatasetPart },
  run: RunDir,
  where: { label: string; modelFile: string; info: Record<string, unknown>; metrics?: Record<string, unknown> },
): Promise<SnnResult> {
  const { solver, epochs, batchSize } = s;
  // A conv net's calibration runs ~90 forward passes per layer: 64 images set its scales as well.
  const net = initNetwork(s.config, { x: parts.train.x, n: Math.min(s.config.arch ? 64 : 256, parts.train.n) }, solver, {
    seed: opts.seed,
    neurons: s.neurons,
  });
  try {
    const batches = Math.ceil(parts.train.n / batchSize);
    const bar = createProgress({ total: epochs * batches, label: where.label, unit: 'batches', stream: opts.progress });
    const history = await trainNetwork(net, parts, {
      epochs,
      batchSize,
      lr: s.lr,
      seed: opts.seed,
      solver,
      loss: s.loss,
      schedule: s.schedule,
      averageDecay: s.averageDecay,
      inputNoise: s.inputNoise,
      weightNoise: s.weightNoise,
      weightDecay: s.weightDecay,
      workers: opts.workers,
      signal: opts.signal,
      onBatch: (p) => bar.update(p.epoch * batches + p.batch, { epoch: p.epoch + 1, loss: p.loss, acc: p.acc }),
      onEpoch: (m) => {
        run.metrics.append({ ...where.metrics, ...m });
        bar.log(
          `${where.metrics ? `${where.label}, ` : ''}epoch ${m.epoch}/${epochs}: loss ${m.train_loss.toFixed(4)}, train ${formatPercent(m.train_acc)}, test ${formatPercent(m.test_acc)}${m.test_acc_raw === undefined ? '' : ` (averaged; ${formatPercent(m.test_acc_raw)} without)`}, ${m.samples_per_s.toFixed(0)} samples/s`,
        );
      },
    });
    bar.finish();
    if (opts.signal?.aborted) throw new Error('interrupted');
    await saveNetwork(where.modelFile, net, { ...where.info, seed: opts.seed, solver: opts.solver, bins: opts.bins });
    const trainAcc = evaluateNetwork(net, parts.train, solver, { tauSoft: s.loss.tauSoft }).acc;
    const testAcc = history.at(-1)?.test_acc ?? evaluateNetwork(net, parts.test, solver).acc;
    // The exact solver is the physics reference (what a chip computes): report its accuracy beside
    // the training solver's, so that a solver artefact cannot pass for accuracy.
    const exact = createSolver('exact');
    // The exact solver runs a conv layer as its unrolled dense layer (nIn x nOut per image): on a
    // conv net it is measured on the first EXACT_CONV_TEST test images only.
    const exactPart = s.config.arch ? firstRows(parts.test, EXACT_CONV_TEST) : parts.test;
    const exactEval = evaluateNetwork(net, exactPart, exact);
    const testAccExact = opts.solver === 'exact' ? testAcc : exactEval.acc;
    const confusion = confusionMatrix(exactPart.y, exactEval.predictions, parts.test.classes);
    let onPnn: number | undefined;
    let onPnnExact: number | undefined;
    if (opts.model === 'ideal') {
      // The same synapses (drive at rest held) on the PNN with the nominal reversal potentials.
      const pnn = net.withModel({ model: 'pnn' });
      onPnn = evaluateNetwork(pnn, parts.test, opts.solver === 'euler' ? createSolver('dstd', { bins: opts.bins }) : solver).acc;
      onPnnExact = evaluateNetwork(pnn, parts.test, exact).acc;
      pnn.dispose();
    }
    const trainSeconds = history.reduce((t, m) => t + m.seconds, 0);
    const trainSamples = history.reduce((t, m) => t + m.samples_per_s * m.seconds, 0);
    const samplesPerS = trainSeconds > 0 ? trainSamples / trainSeconds : 0;
    return { history, testAcc, testAccExact, exactN: exactPart.n, trainAcc, samplesPerS, confusion, ...(onPnn !== undefined ? { onPnn, onPnnExact } : {}) };
  } finally {
    net.dispose();
  }
}

export async function snnFlow(opts: TrainWorkflowOptions, preset: Preset, data: Dataset, run: RunDir, backend: string): Promise<TrainSummary> {
  const s = snnSetup(opts, preset, data.features, data.classes);
  run.update({ summary: { settings: s.settings } });
  const modelFile = run.file('network.bin');
  const r = await trainOneSnn(opts, s, data, run, {
    label: 'train',
    modelFile,
    info: {
      dataset: data.name,
      source: data.source,
      [TRAINING_SUBSET_KEY]: trainingSubset(opts.dataset, opts),
      ...(opts.chip ? { chip: opts.chip.chipId } : {}),
    },
  });
  const { history, testAcc, testAccExact, onPnn, onPnnExact } = r;
  const testAccRaw = history.at(-1)?.test_acc_raw;
  const summary: TrainSummary = {
    test_acc: testAcc,
    train_acc: r.trainAcc,
    epochs: history.length,
    samples_per_s: r.samplesPerS,
    backend,
    test_acc_exact: testAccExact,
    ...(r.exactN < data.test.n ? { test_acc_exact_n: r.exactN } : {}),
    dataset: data.name,
    model: opts.model,
    solver: opts.solver,
    sizes: s.sizes,
    best_test_acc: Math.max(...history.map((m) => m.test_acc ?? 0)),
    ...(testAccRaw !== undefined ? { test_acc_raw: testAccRaw } : {}),
    ...(onPnn !== undefined ? { test_acc_on_pnn: onPnn, test_acc_on_pnn_exact: onPnnExact } : {}),
    network: modelFile,
    out: run.path,
  };
  const confusion = await writeConfusion(run, r.confusion, data.classNames, 'test part, exact solver');
  summary.confusion = run.file(CONFUSION_FILE);
  await writePlots(run, history, data.name, opts, summary, [confusion.section]);
  opts.print(
    '\n' +
      renderTable(
        [
          { figure: `test accuracy (${opts.solver})`, value: formatPercent(testAcc) },
          ...(opts.solver !== 'exact'
            ? [
                {
                  figure: `test accuracy (exact solver, the physics reference${r.exactN < data.test.n ? `, first ${r.exactN} test images` : ''})`,
                  value: formatPercent(testAccExact),
                },
              ]
            : []),
          ...(testAccRaw !== undefined
            ? [{ figure: `test accuracy, optimiser's weights without the average (${opts.solver})`, value: formatPercent(testAccRaw) }]
            : []),
          { figure: 'train accuracy', value: formatPercent(r.trainAcc) },
          ...(onPnn !== undefined
            ? [
                { figure: `test accuracy, run on the PNN (${opts.solver === 'euler' ? 'dstd' : opts.solver})`, value: formatPercent(onPnn) },
                { figure: 'test accuracy, run on the PNN (exact solver)', value: formatPercent(onPnnExact) },
              ]
            : []),
          { figure: 'epochs', value: String(history.length) },
          { figure: 'throughput', value: `${summary.samples_per_s.toFixed(0)} samples/s (${backend})` },
        ],
        { title: `spikeloop train: ${data.name}, ${s.sizes.join('-')} ${opts.model}, ${opts.solver}` },
      ),
  );
  opts.print('\n' + confusion.table);
  opts.print(`network: ${displayPath(modelFile)}`);
  return summary;
}

async function writePlots(
  run: RunDir,
  history: EpochMetrics[],
  name: string,
  opts: TrainWorkflowOptions,
  summary: TrainSummary,
  extra: ReportSection[] = [],
): Promise<void> {
  const epochs = history.map((m) => m.epoch);
  const averaged = history.some((m) => m.test_acc_raw !== undefined);
  const acc = lineChart({
    title: `${name}: accuracy per epoch (${opts.model}, ${opts.solver})`,
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [
      { name: 'train (running)', x: epochs, y: history.map((m) => m.train_acc) },
      { name: averaged ? 'test (averaged weights)' : 'test', x: epochs, y: history.map((m) => m.test_acc ?? NaN) },
      ...(averaged ? [{ name: "test (optimiser's weights)", x: epochs, y: history.map((m) => m.test_acc_raw ?? NaN), dashed: true }] : []),
    ],
  });
  const loss = lineChart({
    title: `${name}: loss per epoch`,
    xLabel: 'epoch',
    yLabel: 'loss',
    series: [
      { name: 'total', x: epochs, y: history.map((m) => m.train_loss) },
      { name: 'cross-entropy', x: epochs, y: history.map((m) => m.train_terms.ce) },
      { name: 'window', x: epochs, y: history.map((m) => m.train_terms.window), dashed: true },
      { name: 'dead neurons', x: epochs, y: history.map((m) => m.train_terms.dead), dashed: true },
      { name: 'test cross-entropy', x: epochs, y: history.map((m) => m.test_loss ?? NaN) },
    ],
  });
  await writeFileAtomic(run.file('learning-curve.svg'), acc);
  await writeFileAtomic(run.file('loss-curve.svg'), loss);
  const sections: ReportSection[] = [
    {
      title: 'Learning curves',
      blocks: [
        { kind: 'plot', svg: acc },
        { kind: 'plot', svg: loss },
      ],
    },
    {
      title: 'Epochs',
      blocks: [
        {
          kind: 'table',
          rows: history.map((m) => ({
            epoch: m.epoch,
            loss: m.train_loss,
            train_acc: m.train_acc,
            test_acc: m.test_acc,
            ...(m.test_acc_raw !== undefined ? { test_acc_raw: m.test_acc_raw } : {}),
            silent: m.silent.map((s) => s.toFixed(2)).join(' / '),
            lr: m.lr,
            'samples/s': Math.round(m.samples_per_s),
          })),
        },
      ],
    },
  ];
  await writeHtmlReport(run.file('report.html'), {
    title: `spikeloop train: ${name}`,
    summary: {
      'test accuracy': formatPercent(summary.test_acc),
      ...(typeof summary.test_acc_exact === 'number' ? { 'test accuracy (exact solver)': formatPercent(summary.test_acc_exact) } : {}),
      'train accuracy': formatPercent(summary.train_acc),
      epochs: summary.epochs,
      backend: summary.backend,
    },
    sections: [...sections, ...extra],
  });
}
