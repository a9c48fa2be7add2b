/**
 * What a network file records of the training samples it learnt from (its `info.train_data`): the data set
 * spec and the load's seed and limitTrain, which name the subset exactly (split.ts `partIndices`). A later
 * run on the same network (fine-tuning) uses it to choose validation samples the network never saw
 * (LoadOptions.unseenTrain), so its validation figures are not flattered by memorised images.
 */
import { z } from 'zod';
import { parseDatasetSpec } from './load.ts';
import type { UnseenTrainOptions } from './types.ts';

export const TRAINING_SUBSET_KEY = 'train_data';

export const trainingSubsetSchema = z.strictObject({
  dataset: z.string().min(1),
  seed: z.number().int().optional(),
  limit_train: z.number().int().nonnegative().optional(),
});
export type TrainingSubset = z.infer<typeof trainingSubsetSchema>;

/** The record for a load of `dataset` with these options. */
export function trainingSubset(dataset: string, opts: { seed?: number | undefined; limitTrain?: number | undefined }): TrainingSubset {
  return { dataset, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.limitTrain !== undefined ? { limit_train: opts.limitTrain } : {}) };
}

/** A network file's record, or undefined when it has none or one that does not parse (older files, other tools). */
export function readTrainingSubset(info: Record<string, unknown>): TrainingSubset | undefined {
  const r = trainingSubsetSchema.safeParse(info[TRAINING_SUBSET_KEY]);
  return r.success ? r.data : undefined;
}

function sameSpec(a: string, b: string): boolean {
  try {
    return JSON.stringify(parseDatasetSpec(a)) === JSON.stringify(parseDatasetSpec(b));
  } catch {
    return false;
  }
}

/**
 * The unseenTrain option that stays out of `seen`'s samples, when `seen` was drawn from the data set `dataset`
 * names; undefined otherwise (another data set, or no record).
 */
export function unseenOf(seen: TrainingSubset | undefined, dataset: string, count: number): UnseenTrainOptions | undefined {
  if (!seen || !sameSpec(seen.dataset, dataset)) return undefined;
  return { count, ...(seen.seed !== undefined ? { seenSeed: seen.seed } : {}), ...(seen.limit_train !== undefined ? { seenLimit: seen.limit_train } : {}) };
}
