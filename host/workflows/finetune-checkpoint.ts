/**
 * Checkpoints of an in-situ fine-tuning run, resumable after Ctrl-C, a crash or a lost device.
 *
 * A checkpoint is a generation of two files plus a commit record:
 *
 *   checkpoint-<g>.network.bin  the twin's conductances (models/network/serialize.ts)
 *   checkpoint-<g>.state.bin    Adam's moments (float64), the device codes, and in the header the
 *                               cursor, settings and per-epoch history (models/io/tensor-file.ts)
 *   checkpoint.json             { generation, ... }: written atomically after both files, so it
 *                               names either the previous complete generation or the new one
 *
 * Older generations are removed after the commit. The cursor is the next batch to process
 * (epoch, batch within the epoch); the epoch's batch order is a pure function of (seed, epoch),
 * so the cursor is the whole state of the shuffling. `runCodes` are the codes the device must hold
 * when that batch is measured (with pipelining, the codes before the last update: see finetune.ts);
 * `codes` are the codes of the saved conductances.
 *
 * `best` (runs with a validation split) is the state with the best validation accuracy so far: its epoch,
 * accuracy, the twin's variables (float32, `best.w<i>`) and the codes (`best.codes<l>`), so a resumed run
 * still ends on it. A checkpoint written before `best` existed loads without it (its run keeps the last
 * epoch, as it did); one whose settings ask for a validation split but that lacks `best` is refused.
 * `val.deployed` (runs with a validation split and `settings.keepAlpha`) is which validation samples the
 * deployment classified correctly, the reference every later epoch is compared with (finetune-keep.ts).
 */

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadArrays, saveArrays, type ArrayInput } from '../../models/io/tensor-file.ts';
import { writeJsonAtomic } from '../../models/io/atomic-file.ts';
import { loadNetwork, saveNetwork } from '../../models/network/serialize.ts';
import type { SpikingNetwork } from '../../models/network/network.ts';
import type { AdamState } from '../../models/training/in-loop.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';
const STATE_NAME = 'spikeloop-finetune-state';
const VERSION = 1;

export const finetuneSettingsSchema = z.strictObject({
  /** The network file the run started from. */
  model: z.string(),
  dataset: z.string(),
  limitTrain: z.number().int().positive().nullable(),
  limitTest: z.number().int().positive().nullable(),
  seed: z.number().int().nonnegative(),
  batchSize: z.number().int().positive(),
  lr: z.number().positive(),
  bins: z.number().int().positive(),
  epochs: z.number().int().nonnegative(),
  profile: z.string().nullable(),
  pipelined: z.boolean(),
  /** Validation samples (absent in older checkpoints: 0, no split). */
  val: z.number().int().nonnegative().optional(),
  /**
   * Present when the validation samples lie outside the network's training subset (the load with this seed and
   * limitTrain; models/datasets/training-subset.ts) and outside the run's training part; absent: carved from it.
   */
  valUnseen: z.strictObject({ seenSeed: z.number().int().optional(), seenLimit: z.number().int().nonnegative().optional() }).optional(),
  /**
   * Significance level of the keep rule (finetune-keep.ts); absent in checkpoints written before the rule: such a
   * run keeps choosing as it began, the strictly best validation accuracy.
   */
  keepAlpha: z.number().gt(0).max(1).optional(),
  /** Loss settings (models/training/losses.ts LossConfig). */
  loss: z.record(z.string(), z.number()),
});
export type FinetuneSettings = z.infer<typeof finetuneSettingsSchema>;

export const epochRecordSchema = z.looseObject({
  epoch: z.number().int().nonnegative(),
  device_acc: z.number(),
  twin_acc: z.number(),
});
export type EpochRecord = z.infer<typeof epochRecordSchema>;

const stateMetaSchema = z.strictObject({
  name: z.literal(STATE_NAME),
  version: z.literal(VERSION),
  chipId: z.string(),
  cursor: z.strictObject({ epoch: z.number().int().nonnegative(), batch: z.number().int().nonnegative() }),
  adamStep: z.number().int().nonnegative(),
  variables: z.number().int().positive(),
  layers: z.number().int().positive(),
  settings: finetuneSettingsSchema,
  history: z.array(epochRecordSchema),
  /** Batches applied so far (over all sessions). */
  steps: z.number().int().nonnegative(),
  best: z.strictObject({ epoch: z.number().int().nonnegative(), valAcc: z.number().min(0).max(1) }).optional(),
  /** Whether the state file holds the deployment's validation correctness (`val.deployed`). */
  valDeployed: z.boolean().optional(),
});

const commitSchema = z.strictObject({ generation: z.number().int().positive(), network: z.string(), state: z.string(), savedAt: z.string() });

export interface Checkpoint {
  chipId: string;
  cursor: { epoch: number; batch: number };
  settings: FinetuneSettings;
  history: EpochRecord[];
  steps: number;
  adam: AdamState;
  /** Codes of the saved conductances, per layer. */
  codes: Uint16Array[];
  /** Codes the device must hold when the batch at the cursor is measured, per layer. */
  runCodes: Uint16Array[];
  best?: BestState;
  /** Which validation samples the deployment classified correctly (1) or not (0): the keep rule's reference. */
  valDeployed?: Uint8Array;
}

/** The state with the best validation accuracy: the twin's variables and the codes they map to. */
export interface BestState {
  epoch: number;
  valAcc: number;
  /** The network's trainable variables, in trainableVariables() order. */
  weights: Float32Array[];
  codes: Uint16Array[];
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** The committed generation in `dir`, or 0 when there is none. */
function committed(dir: string): z.infer<typeof commitSchema> | undefined {
  const p = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(p)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${p} is not valid JSON (${(e as Error).message}); the run cannot be resumed from it`);
  }
  const r = commitSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new CheckpointError(`${p}: field "${i.path.join('.')}" ${i.message}; the run cannot be resumed from it`);
  }
  return r.data;
}

export function hasCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, CHECKPOINT_FILE));
}

/** Writes a new generation and commits it atomically; removes older generations. */
export async function saveCheckpoint(dir: string, net: SpikingNetwork, c: Checkpoint): Promise<void> {
  // Past every generation on disk, committed or not (a damaged commit record does not block saving).
  let g = 1;
  for (const f of fs.readdirSync(dir)) {
    const m = /^checkpoint-(\d+)\.(network|state)\.bin$/.exec(f);
    if (m) g = Math.max(g, Number(m[1]) + 1);
  }
  const network = `checkpoint-${g}.network.bin`;
  const state = `checkpoint-${g}.state.bin`;
  await saveNetwork(path.join(dir, network), net, { checkpoint: g, chipId: c.chipId });
  const arrays: Record<string, ArrayInput> = {};
  c.adam.m.forEach((a, i) => (arrays[`adam.m${i}`] = a));
  c.adam.v.forEach((a, i) => (arrays[`adam.v${i}`] = a));
  c.codes.forEach((a, l) => (arrays[`codes${l}`] = a));
  c.runCodes.forEach((a, l) => (arrays[`runCodes${l}`] = a));
  c.best?.weights.forEach((a, i) => (arrays[`best.w${i}`] = a));
  c.best?.codes.forEach((a, l) => (arrays[`best.codes${l}`] = a));
  if (c.valDeployed) arrays['val.deployed'] = c.valDeployed;
  const meta: z.infer<typeof stateMetaSchema> = {
    name: STATE_NAME,
    version: VERSION,
    chipId: c.chipId,
    cursor: { ...c.cursor },
    adamStep: c.adam.step,
    variables: c.adam.m.length,
    layers: c.codes.length,
    settings: c.settings,
    history: c.history,
    steps: c.steps,
    ...(c.best ? { best: { epoch: c.best.epoch, valAcc: c.best.valAcc } } : {}),
    ...(c.valDeployed ? { valDeployed: true } : {}),
  };
  await saveArrays(path.join(dir, state), meta, arrays);
  await writeJsonAtomic(path.join(dir, CHECKPOINT_FILE), { generation: g, network, state, savedAt: new Date().toISOString() });
  for (const f of fs.readdirSync(dir)) {
    const m = /^checkpoint-(\d+)\.(network|state)\.bin$/.exec(f);
    if (m && Number(m[1]) !== g) fs.rmSync(path.join(dir, f), { force: true });
  }
}

/** Loads the committed checkpoint of `dir` (throws CheckpointError naming the problem). */
export async function loadCheckpoint(dir: string): Promise<{ net: SpikingNetwork; checkpoint: Checkpoint }> {
  const c = committed(dir);
  if (!c) throw new CheckpointError(`${dir} holds no ${CHECKPOINT_FILE}: nothing to resume (start a new run with --out)`);
  const file = await loadArrays(path.join(dir, c.state)).catch((e: Error) => {
    throw new CheckpointError(`checkpoint state ${c.state} in ${dir} cannot be read: ${e.message}`);
  });
  const r = stateMetaSchema.safeParse(file.meta);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new CheckpointError(`checkpoint state ${c.state}: header field "${i.path.join('.')}" ${i.message}`);
  }
  const meta = r.data;
  const get = <T>(name: string, ctor: new (...a: never[]) => T): T => {
    const a = file.arrays[name];
    if (!(a instanceof ctor)) throw new CheckpointError(`checkpoint state ${c.state} lacks array ${name}`);
    return a;
  };
  const copy64 = (name: string) => Float64Array.from(get(name, Float64Array));
  const copy16 = (name: string) => Uint16Array.from(get(name, Uint16Array));
  const copy32 = (name: string) => Float32Array.from(get(name, Float32Array));
  let valDeployed: Uint8Array | undefined;
  if (meta.valDeployed) {
    valDeployed = Uint8Array.from(get('val.deployed', Uint8Array));
    if (valDeployed.length !== meta.settings.val)
      throw new CheckpointError(
        `checkpoint state ${c.state}: val.deployed holds ${valDeployed.length} samples, the run's validation split ${meta.settings.val}`,
      );
  }
  if ((meta.settings.val ?? 0) > 0 && !meta.best)
    throw new CheckpointError(
      `checkpoint state ${c.state} in ${dir}: the run holds out ${meta.settings.val} validation samples but the checkpoint has no best state; it was not written by this version: start a new run`,
    );
  const adam: AdamState = {
    step: meta.adamStep,
    m: Array.from({ length: meta.variables }, (_, i) => copy64(`adam.m${i}`)),
    v: Array.from({ length: meta.variables }, (_, i) => copy64(`adam.v${i}`)),
  };
  const { net } = await loadNetwork(path.join(dir, c.network)).catch((e: Error) => {
    throw new CheckpointError(`checkpoint network ${c.network} in ${dir} cannot be read: ${e.message}`);
  });
  const vars = net.trainableVariables();
  if (vars.length !== adam.m.length || vars.some((v, i) => v.size !== adam.m[i]!.length)) {
    net.dispose();
    throw new CheckpointError(`checkpoint ${c.generation} in ${dir}: the optimiser state does not match the network`);
  }
  let best: BestState | undefined;
  try {
    best = meta.best && {
      ...meta.best,
      weights: vars.map((v, i) => {
        const w = copy32(`best.w${i}`);
        if (w.length !== v.size)
          throw new CheckpointError(`checkpoint state ${c.state}: best.w${i} holds ${w.length} values, the network's variable ${v.size}`);
        return w;
      }),
      codes: Array.from({ length: meta.layers }, (_, l) => copy16(`best.codes${l}`)),
    };
  } catch (e) {
    net.dispose();
    throw e;
  }
  return {
    net,
    checkpoint: {
      chipId: meta.chipId,
      cursor: meta.cursor,
      settings: meta.settings,
      history: meta.history,
      steps: meta.steps,
      adam,
      codes: Array.from({ length: meta.layers }, (_, l) => copy16(`codes${l}`)),
      runCodes: Array.from({ length: meta.layers }, (_, l) => copy16(`runCodes${l}`)),
      ...(best ? { best } : {}),
      ...(valDeployed ? { valDeployed } : {}),
    },
  };
}
