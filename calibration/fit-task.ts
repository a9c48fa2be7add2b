/**
 * The pool task of a calibration fit (fit-pool.ts): a list of neurons of one layer, each put
 * through the same steps (projected fit, polish, robust score, commit of its curves, observations
 * for a family refit) at the layer's families and the globals the task carries.
 *
 * A neuron's fit reads only its own state (NeuronState), the layer's data, families and the
 * globals, so a task's result is the same on any thread and in any order: what makes the profile
 * identical for every worker count. Each thread keeps one LayerFitter per layer dataset (built
 * from the serialised dataset the first time it sees it); the fitter's other neurons are stale
 * there and never read. The PNN and the ideal fitter of a layer share one dataset (read only).
 *
 * `fitFamily`: one polarity's family refit of a layer (LayerFitter.fitFamilies on its observations).
 */

import { deserialize } from 'node:v8';
import { LayerFitter, type GlobalParams, type LayerDataset, type NeuronState, type PooledObservations } from './layer-fit.ts';
import type { CurveFamily } from './transfer-fit.ts';

export type NeuronStep =
  | { kind: 'fit'; iterations: number }
  | { kind: 'polish'; iterations: number }
  /** The down-weighted residuals the polish minimises (the globals fit's score). */
  | { kind: 'score' }
  /** Infer and commit the neuron's transistor curves at its theta and delay. */
  | { kind: 'project' }
  /** Its observations for a family refit (its place in the refit's pool in `poolIndex`). */
  | { kind: 'observe'; step: number };

export interface NeuronTaskInput {
  /** Names the dataset (and the model: PNN or ideal) for the thread's cache. */
  key: string;
  /** The layer dataset, v8-serialised (samples stripped), shared by every task of the layer. */
  data: SharedArrayBuffer;
  ideal: boolean;
  families: { nmos: CurveFamily; pmos: CurveFamily };
  globals: GlobalParams;
  steps: NeuronStep[];
  neurons: NeuronState[];
  /** Per neuron, its place in a family refit's pool (for `observe`). */
  poolIndex?: number[];
}

export interface NeuronTaskResult {
  state: NeuronState;
  /** Residuals of the last `fit` or `score` step. */
  residuals?: Float64Array;
  observations?: PooledObservations[];
}

/** A family refit of one polarity of a layer (fit-pool.ts): LayerFitter.fitFamilies on that polarity's observations. */
export interface FamilyTaskInput {
  key: string;
  data: SharedArrayBuffer;
  ideal: boolean;
  families: { nmos: CurveFamily; pmos: CurveFamily };
  pol: 'nmos' | 'pmos';
  /** Per neuron of the refit's pool, its observations of this polarity. */
  observations: PooledObservations[][];
}

/** Fitters of this thread by key; a calibration's keys are few, old ones are dropped. */
const fitters = new Map<string, LayerFitter>();
const KEEP = 16;

function fitterFor(t: Pick<NeuronTaskInput, 'key' | 'data' | 'ideal' | 'families'>): LayerFitter {
  let f = fitters.get(t.key);
  if (!f) {
    // A layer's PNN and ideal fitters share their dataset (the key's part before the colon): deserialised once.
    const dataset = t.key.slice(0, t.key.lastIndexOf(':'));
    const twin = [...fitters.entries()].find(([k]) => k.slice(0, k.lastIndexOf(':')) === dataset)?.[1];
    const data = twin ? twin.data : (deserialize(new Uint8Array(t.data)) as LayerDataset);
    f = new LayerFitter(data, t.ideal, t.families);
    fitters.set(t.key, f);
    while (fitters.size > KEEP) fitters.delete(fitters.keys().next().value as string);
  }
  return f;
}

export function fitNeurons(t: NeuronTaskInput): NeuronTaskResult[] {
  const f = fitterFor(t);
  f.state.families.nmos = { ...t.families.nmos };
  f.state.families.pmos = { ...t.families.pmos };
  return t.neurons.map((n, q) => {
    f.setNeuronState(n);
    const out: NeuronTaskResult = { state: n };
    for (const s of t.steps) {
      switch (s.kind) {
        case 'fit':
          out.residuals = f.fitNeuron(n.i, t.globals, s.iterations);
          break;
        case 'polish':
          f.polishNeuron(n.i, t.globals, s.iterations);
          break;
        case 'score':
          out.residuals = Float64Array.from(f.residualsFixed(n.i, t.globals, 0, 'fit', true));
          break;
        case 'project':
          f.projectNeuron(n.i, t.globals);
          break;
        case 'observe':
          out.observations = f.familyObservations(n.i, t.globals, t.poolIndex?.[q] ?? 0, s.step);
          break;
      }
    }
    out.state = f.neuronState(n.i);
    return out;
  });
}

/** The family of `pol` fitted to its observations, starting from the families the task carries. */
export function fitFamily(t: FamilyTaskInput): CurveFamily {
  const f = fitterFor(t);
  f.state.families.nmos = { ...t.families.nmos };
  f.state.families.pmos = { ...t.families.pmos };
  f.fitFamilies(t.observations);
  return f.state.families[t.pol];
}
