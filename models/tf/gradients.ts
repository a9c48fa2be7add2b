/**
 * Registers tfjs-core's gradient functions.
 *
 * `@tensorflow/tfjs-core` ships its gradient configs only as ES module sources
 * (dist/register_all_gradients.js, extensionless imports in a CommonJS package), which Node cannot
 * load; the full `@tensorflow/tfjs` bundle normally registers them. We bundle those sources with
 * esbuild (installed with tsx) once per process and evaluate the result. tfjs keeps its engine and
 * its kernel and gradient registries in globals (and Tensor has a structural instanceof), so the
 * bundled copy of the ops registers into, and runs on, the same engine as everything else.
 */

import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import * as tf from '@tensorflow/tfjs-core';

let done = false;

interface EsbuildLike {
  buildSync(opts: Record<string, unknown>): { outputFiles: { text: string }[] };
}

/** Idempotent; throws with a clear message if the sources or esbuild are missing. */
export function registerGradients(): void {
  if (done) return;
  // Already registered (e.g. by @tensorflow/tfjs-node): nothing to do.
  if (tf.getGradient('Multiply') !== undefined) {
    done = true;
    return;
  }
  const require = createRequire(import.meta.url);
  let entry: string;
  let esbuild: EsbuildLike;
  try {
    entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    esbuild = require('esbuild') as EsbuildLike;
  } catch (e) {
    throw new Error(
      `cannot register tfjs gradients: ${(e as Error).message}. ` +
        'Install @tensorflow/tfjs-core and esbuild (it comes with tsx), or @tensorflow/tfjs-node.',
    );
  }
  const out = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    write: false,
    logLevel: 'silent',
    minify: true,
  });
  const wrapper = vm.runInThisContext(
    `(function (exports, require, module, __filename, __dirname) {${out.outputFiles[0].text}\n})`,
    { filename: 'tfjs-core-gradients.cjs' },
  ) as (e: object, r: NodeJS.Require, m: { exports: object }, f: string, d: string) => void;
  const mod = { exports: {} };
  wrapper(mod.exports, require, mod, entry, path.dirname(entry));
  if (tf.getGradient('Multiply') === undefined) {
    throw new Error('tfjs gradients did not register into this engine (two tfjs-core versions installed?)');
  }
  done = true;
}
