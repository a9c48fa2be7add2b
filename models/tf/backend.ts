/**
 * TensorFlow.js backend selection, once per process.
 *
 * Order: `@tensorflow/tfjs-node` (native, optional: its install downloads libtensorflow) if it can
 * be imported, else `@tensorflow/tfjs-backend-wasm` (SIMD; its .wasm binaries are located next to
 * the package's own entry point, so this works from any working directory), else the plain
 * JavaScript `cpu` backend. Everything in models/ uses `@tensorflow/tfjs-core` only.
 *
 * `SPIKELOOP_TF_BACKEND=cpu|wasm|tensorflow` (or `initBackend({ prefer })`) forces a choice, e.g.
 * cpu in unit tests where the numbers, not the speed, matter.
 */

import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { registerGradients } from './gradients.ts';
import { installWasmKernels } from './wasm-kernels.ts';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface InitBackendOptions {
  /** Try this backend first (falls back along the usual order if it fails). */
  prefer?: BackendName;
  /** Report the chosen backend once: true logs with console.info, a function receives the line. */
  log?: boolean | ((line: string) => void);
}

let chosen: Promise<BackendName> | null = null;
let logged = false;

// A variable specifier keeps TypeScript from resolving a package that is usually not installed.
const TFJS_NODE = '@tensorflow/tfjs-node';

async function tryNode(): Promise<boolean> {
  try {
    await import(TFJS_NODE);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dist + path.sep);
    // The Emscripten module installs process handlers that rethrow from its minified source
    // (printing the whole line on every uncaught error); keep the process's own handling.
    const uncaught = process.listeners('uncaughtException');
    const rejected = process.listeners('unhandledRejection');
    try {
      const ok = await tf.setBackend('wasm');
      if (ok) installWasmKernels();
      return ok;
    } finally {
      for (const l of process.listeners('uncaughtException')) {
        if (!uncaught.includes(l)) process.removeListener('uncaughtException', l);
      }
      for (const l of process.listeners('unhandledRejection')) {
        if (!rejected.includes(l)) process.removeListener('unhandledRejection', l);
      }
    }
  } catch {
    return false;
  }
}

async function tryCpu(): Promise<boolean> {
  await import('@tensorflow/tfjs-backend-cpu');
  // We report the backend ourselves; silence tfjs's "install the node backend" notice.
  tf.env().set('PROD', true);
  return tf.setBackend('cpu');
}

const TRY: Record<BackendName, () => Promise<boolean>> = { tensorflow: tryNode, wasm: tryWasm, cpu: tryCpu };

/** Validates a backend name (from an option or SPIKELOOP_TF_BACKEND). */
export function parseBackendName(value: string): BackendName {
  if (value !== 'tensorflow' && value !== 'wasm' && value !== 'cpu') {
    throw new RangeError(`unknown tfjs backend '${value}' (SPIKELOOP_TF_BACKEND); accepted: tensorflow, wasm, cpu`);
  }
  return value;
}

function preferred(opts: InitBackendOptions): BackendName | undefined {
  const env = process.env.SPIKELOOP_TF_BACKEND;
  const want = opts.prefer ?? (env === undefined || env === '' ? undefined : env);
  return want === undefined ? undefined : parseBackendName(want);
}

async function choose(first: BackendName | undefined): Promise<BackendName> {
  const order: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
  if (first) order.unshift(first);
  for (const name of new Set(order)) {
    if (await TRY[name]()) {
      await tf.ready();
      registerGradients();
      return name;
    }
  }
  throw new Error('no TensorFlow.js backend could be initialised (tried tensorflow, wasm, cpu)');
}

/**
 * Initialises tfjs once and returns the backend's name. Later calls return the same choice (the
 * first call's `prefer` wins) and log at most once in the process.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<string> {
  if (!chosen) {
    const first = preferred(opts);
    chosen = choose(first);
    chosen.catch(() => {
      chosen = null;
    });
  }
  const name = await chosen;
  if (opts.log && !logged) {
    logged = true;
    const line = `tfjs backend: ${name}`;
    if (typeof opts.log === 'function') opts.log(line);
    else console.info(line);
  }
  return name;
}
