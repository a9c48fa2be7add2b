/**
 * The seam between the chip models and a SPICE simulator: a netlist in, named real vectors out.
 *
 * Two engines: `wasm` (eecircuit-engine, ngspice compiled to WebAssembly with the sky130 models
 * bundled; always available) and `ngspice` (a system ngspice in batch mode, used when one is on
 * the PATH). Both run the same netlist text; `.include modelcard.skywater` resolves to the same
 * model card in both (the ngspice engine writes the bundled card next to its netlists).
 */

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { SpiceError } from './errors.ts';

export type EngineKind = 'wasm' | 'ngspice';
export const ENGINE_KINDS: readonly EngineKind[] = Object.freeze(['wasm', 'ngspice']);

/** Named vectors of one analysis (lower-case names: `time`, `v(out)`, `i(vm)`, `v(v-sweep)`). */
export interface SpiceVectors {
  names: string[];
  data: Float64Array[];
}

export interface SpiceEngine {
  readonly kind: EngineKind;
  /** Simulator identity for cache keys (package or program version). */
  readonly version: string;
  /** Runs one netlist; rejects with SpiceError (carrying the netlist) on any failure. */
  run(netlist: string): Promise<SpiceVectors>;
  close(): Promise<void>;
}

/** The vector called `name` (case-insensitive); SpiceError naming what is there when absent. */
export function getVector(result: SpiceVectors, name: string, netlist = ''): Float64Array {
  const key = name.toLowerCase();
  const k = result.names.indexOf(key);
  if (k < 0) {
    throw new SpiceError(`SPICE output lacks vector '${name}' (has: ${result.names.join(', ') || 'nothing'})`, netlist);
  }
  return result.data[k];
}

/** Absolute path of an executable `ngspice` on the PATH, or undefined. Never throws. */
export function findNgspice(envPath = process.env.PATH ?? ''): string | undefined {
  const names = process.platform === 'win32' ? ['ngspice.exe', 'ngspice_con.exe'] : ['ngspice'];
  for (const dir of envPath.split(delimiter)) {
    if (!dir) continue;
    for (const n of names) {
      const p = join(dir, n);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        /* not here */
      }
    }
  }
  return undefined;
}

/** The engines usable on this machine. */
export function availableEngines(): EngineKind[] {
  return findNgspice() ? ['wasm', 'ngspice'] : ['wasm'];
}

export interface EngineOptions {
  /** ngspice executable (default: found on the PATH). */
  ngspicePath?: string;
}

/** Starts an engine of the given kind in this thread. */
export async function createEngine(kind: EngineKind, opts: EngineOptions = {}): Promise<SpiceEngine> {
  if (kind === 'wasm') {
    const { WasmEngine } = await import('./wasm-engine.ts');
    return WasmEngine.start();
  }
  if (kind === 'ngspice') {
    const path = opts.ngspicePath ?? findNgspice();
    if (!path) {
      throw new Error("engine 'ngspice' needs an ngspice executable on the PATH (e.g. apt-get install ngspice); use engine=wasm otherwise");
    }
    const { NgspiceEngine } = await import('./ngspice-engine.ts');
    return NgspiceEngine.start(path);
  }
  throw new Error(`unknown SPICE engine '${String(kind)}'; accepted: ${ENGINE_KINDS.join(', ')}`);
}

/** An engine's identity, for cache keys (starts no simulator for ngspice: asks the binary). */
export async function spiceEngineVersion(engine: EngineKind, ngspicePath?: string): Promise<string> {
  if (engine === 'wasm') {
    const { eecircuitVersion } = await import('./sky130-models.ts');
    return `eecircuit-engine@${eecircuitVersion()}`;
  }
  const { NgspiceEngine } = await import('./ngspice-engine.ts');
  const e = await NgspiceEngine.start(ngspicePath ?? findNgspice()!);
  await e.close();
  return e.version;
}
