/**
 * `loadDataset(spec, opts)`: the one entry point. Specs:
 *   iris | fashion-mnist | mnist | idx:DIR | cifar10:DIR
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { loadCifar10Dir } from './cifar.ts';
import { loadFashionMnist } from './fashion-mnist.ts';
import { loadIdxDir } from './idx.ts';
import { loadIris } from './iris.ts';
import { loadMnist } from './mnist.ts';
import { finishDataset } from './split.ts';
import { DatasetError, type Dataset, type LoadOptions } from './types.ts';

export const DATASET_SPECS = ['iris', 'fashion-mnist', 'mnist', 'idx:DIR', 'cifar10:DIR'] as const;

export type DatasetSpec = { kind: 'iris' | 'fashion-mnist' | 'mnist' } | { kind: 'idx' | 'cifar10'; dir: string };

const ALIASES: Record<string, 'iris' | 'fashion-mnist' | 'mnist'> = {
  iris: 'iris',
  'fashion-mnist': 'fashion-mnist',
  fashion_mnist: 'fashion-mnist',
  fashionmnist: 'fashion-mnist',
  fmnist: 'fashion-mnist',
  mnist: 'mnist',
};

export function parseDatasetSpec(spec: string): DatasetSpec {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new DatasetError(`dataset spec is empty; use one of ${DATASET_SPECS.join(', ')}`);
  }
  const s = spec.trim();
  const colon = s.indexOf(':');
  // A Windows drive letter ("C:\\data") is not a scheme; only known schemes are split off.
  const scheme = colon > 1 ? s.slice(0, colon).toLowerCase() : '';
  if (scheme === 'idx' || scheme === 'cifar10' || scheme === 'cifar-10') {
    const dir = s.slice(colon + 1);
    if (!dir)
      throw new DatasetError(`dataset spec "${spec}" has no directory; e.g. ${scheme === 'idx' ? 'idx:./data/mnist' : 'cifar10:./data/cifar-10-batches-bin'}`);
    return { kind: scheme === 'idx' ? 'idx' : 'cifar10', dir: resolve(dir) };
  }
  const kind = ALIASES[s.toLowerCase()];
  if (!kind) throw new DatasetError(`unknown dataset "${spec}"; use one of ${DATASET_SPECS.join(', ')}`);
  return { kind };
}

const optionsSchema = z.strictObject({
  limitTrain: z.number().int().nonnegative().optional(),
  limitTest: z.number().int().nonnegative().optional(),
  seed: z.number().int().optional(),
  cacheDir: z.string().min(1).optional(),
  cache: z.boolean().optional(),
  unseenTrain: z
    .strictObject({
      count: z.number().int().nonnegative(),
      seenSeed: z.number().int().optional(),
      seenLimit: z.number().int().nonnegative().optional(),
    })
    .optional(),
});

/** Load a data set in the common form (see types.ts); throws DatasetError with a fix on bad input. */
export async function loadDataset(spec: string, opts: LoadOptions = {}): Promise<Dataset> {
  const parsed = optionsSchema.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : '(options)');
    throw new DatasetError(`loadDataset option ${field}: ${issue.message}; valid options are limitTrain, limitTest, seed, unseenTrain, cacheDir, cache`);
  }
  const s = parseDatasetSpec(spec);
  let raw;
  switch (s.kind) {
    case 'iris':
      raw = loadIris();
      break;
    case 'mnist':
      raw = await loadMnist();
      break;
    case 'fashion-mnist':
      raw = await loadFashionMnist(parsed.data);
      break;
    case 'idx':
      raw = await loadIdxDir(s.dir);
      break;
    case 'cifar10':
      raw = await loadCifar10Dir(s.dir);
      break;
  }
  return finishDataset(raw, parsed.data);
}
