/**
 * The per-neuron steps of a calibration fit run as pool tasks (models/parallel/pool.ts). Once the
 * families and globals are fixed the neurons of a layer are independent problems: each task
 * carries one neuron's state (LayerFitter.neuronState), the steps and the globals, and its result
 * is written back into the caller's fitter. Results are written back in a fixed order, whatever
 * order the tasks finished in, so the fit is the same for any worker count.
 *
 * A layer's dataset goes to the threads once, serialised into a SharedArrayBuffer that every task
 * of the layer names, the PNN and the ideal fit alike (a thread deserialises it the first time,
 * fit-task.ts). The family refits run on the pool too, one task per layer and polarity.
 */

import { randomUUID } from 'node:crypto';
import { serialize } from 'node:v8';
import type { TaskPool } from '../models/parallel/pool.ts';
import type { FamilyTaskInput, NeuronStep, NeuronTaskInput, NeuronTaskResult } from './fit-task.ts';
import type { CurveFamily } from './transfer-fit.ts';
import type { GlobalParams, LayerDataset, LayerFitter, PooledObservations } from './layer-fit.ts';

const TASK = new URL('./fit-task.ts', import.meta.url);

export interface NeuronJob {
  fitter: LayerFitter;
  neurons: readonly number[];
  steps: NeuronStep[];
  globals: GlobalParams;
}

export class FitPool {
  /** Per dataset, its serialised bytes: the PNN and the ideal fitters of a layer share one dataset (and these bytes). */
  private readonly shared = new WeakMap<LayerDataset, { id: string; data: SharedArrayBuffer }>();

  constructor(
    readonly pool: TaskPool,
    private readonly signal?: AbortSignal,
  ) {}

  private handle(f: LayerFitter): { key: string; data: SharedArrayBuffer } {
    let h = this.shared.get(f.data);
    if (!h) {
      // The raw samples are not needed once the dataset is built (and are the bulk of it).
      const bytes = serialize({ ...f.data, input: { ...f.data.input, samples: [] } });
      const data = new SharedArrayBuffer(bytes.length);
      new Uint8Array(data).set(bytes);
      h = { id: randomUUID(), data };
      this.shared.set(f.data, h);
    }
    return { key: `${h.id}:${f.state.ideal ? 'ideal' : 'pnn'}`, data: h.data };
  }

  /**
   * Runs every job's steps on each of its neurons and writes the neurons' states back into the
   * fitters; returns the task results per job, in the job's neuron order. The largest neurons go
   * first, so the last tasks to finish are short ones.
   */
  async run(jobs: readonly NeuronJob[], onDone?: (done: number, total: number) => void): Promise<NeuronTaskResult[][]> {
    const tasks: { job: number; q: number; cost: number }[] = [];
    jobs.forEach((job, k) => {
      job.neurons.forEach((i, q) => {
        const d = job.fitter.data.neurons[i];
        tasks.push({ job: k, q, cost: d.ent.j.length + d.pat.count.length });
      });
    });
    tasks.sort((a, b) => b.cost - a.cost || a.job - b.job || a.q - b.q);
    const inputs = tasks.map(({ job, q }): NeuronTaskInput => {
      const { fitter, neurons, steps, globals } = jobs[job];
      const { key, data } = this.handle(fitter);
      return {
        key,
        data,
        ideal: fitter.state.ideal,
        families: fitter.state.families,
        globals,
        steps,
        neurons: [fitter.neuronState(neurons[q])],
        poolIndex: [q],
      };
    });
    let done = 0;
    const results = await this.pool.runAll<NeuronTaskInput, NeuronTaskResult[]>(TASK, 'fitNeurons', inputs, {
      signal: this.signal,
      onDone: () => onDone?.(++done, tasks.length),
    });
    const out = jobs.map((job) => new Array<NeuronTaskResult>(job.neurons.length));
    tasks.forEach(({ job, q }, t) => {
      out[job][q] = results[t][0];
    });
    jobs.forEach((job, k) => {
      for (const r of out[k]) job.fitter.setNeuronState(r.state);
    });
    return out;
  }

  /**
   * LayerFitter.refitFamilies with its per-neuron parts on the pool: observations of `neurons`
   * (per fitter; default all), the families refitted here, then every neuron projected again.
   */
  async refitFamilies(fitters: readonly LayerFitter[], globals: GlobalParams, neurons?: readonly (readonly number[])[]): Promise<void> {
    const plans = fitters.map((f, k) => f.familyPlan(undefined, neurons?.[k]));
    const obs = await this.run(fitters.map((f, k) => ({ fitter: f, neurons: plans[k].pool, steps: [{ kind: 'observe', step: plans[k].step }], globals })));
    await this.fitFamilies(
      fitters,
      obs.map((o) => o.map((r) => r.observations ?? [])),
    );
    await this.run(fitters.map((f) => ({ fitter: f, neurons: allNeurons(f), steps: [{ kind: 'project' }], globals })));
  }

  /**
   * LayerFitter.fitFamilies of every fitter, each polarity's family a task of its own: the fits of
   * NMOS and PMOS families read disjoint observations (a polarity's synapses keep their order, so
   * the sums are the same), and they were the largest serial step of the fit on this thread.
   */
  private async fitFamilies(fitters: readonly LayerFitter[], observations: (readonly PooledObservations[])[][]): Promise<void> {
    const tasks = fitters.flatMap((_f, k) =>
      (['nmos', 'pmos'] as const).map((pol) => ({ k, pol, observations: observations[k]!.map((list) => list.filter((o) => o.pol === pol)) })),
    );
    const inputs = tasks.map(({ k, pol, observations: o }): FamilyTaskInput => {
      const f = fitters[k]!;
      const { key, data } = this.handle(f);
      return { key, data, ideal: f.state.ideal, families: f.state.families, pol, observations: o };
    });
    const fitted = await this.pool.runAll<FamilyTaskInput, CurveFamily>(TASK, 'fitFamily', inputs, { signal: this.signal });
    tasks.forEach(({ k, pol }, t) => {
      fitters[k]!.state.families[pol] = fitted[t]!;
    });
    // The rest of fitFamilies: the per-transistor shifts now live in the families.
    for (const f of fitters) for (const a of [f.state.dVthN, f.state.lnGainN, f.state.dVthP, f.state.lnGainP]) a.fill(0);
  }
}

export function allNeurons(f: LayerFitter): number[] {
  return Array.from({ length: f.data.input.geometry.outputs }, (_, i) => i);
}
