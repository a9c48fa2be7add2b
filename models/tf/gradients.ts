/**
 * Registers TensorFlow.js's gradient functions.
 *
 * `@tensorflow/tfjs-core` alone registers kernels but no gradients: its gradient configs ship
 * only as ES-module sources that Node cannot load, and the official `@tensorflow/tfjs` package
 * is what registers them (its CommonJS bundle). tfjs keeps the kernel and gradient registries
 * in globals, so loading it once registers the gradients for every backend, wasm included.
 */

import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';

let done = false;

/** Idempotent; throws with a clear message if the package is missing or did not register. */
export function registerGradients(): void {
  if (done) return;
  // Already registered (e.g. by @tensorflow/tfjs-node): nothing to do.
  if (tf.getGradient('Multiply') === undefined) {
    const require = createRequire(import.meta.url);
    try {
      require('@tensorflow/tfjs');
    } catch (e) {
      throw new Error(`cannot register tfjs gradients: ${(e as Error).message}. Run \`npm ci\` (it installs @tensorflow/tfjs).`);
    }
    if (tf.getGradient('Multiply') === undefined) {
      throw new Error('tfjs gradients did not register into this engine (two @tensorflow/tfjs-core versions installed? run `npm ls @tensorflow/tfjs-core`)');
    }
  }
  done = true;
}
