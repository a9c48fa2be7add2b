/**
 * Worker-thread entry: owns one SPICE engine and runs the netlists the pool sends, one at a time.
 *
 *   in:  { id, netlist }
 *   out: { id, started: true }                   (engine ready, simulation starting)
 *        { id, ok: true, names, data }          (vectors transferred, not copied)
 *        { id, ok: false, error: SpiceErrorData }   (any failure travels as a SpiceError)
 *
 * The engine is created on the first job (workerData: { engine, ngspicePath, timeoutMs }).
 */

import { parentPort, workerData } from 'node:worker_threads';
import { createEngine, type EngineKind, type SpiceEngine } from './engine.ts';
import { SpiceError } from './errors.ts';

interface Setup {
  engine: EngineKind;
  ngspicePath?: string;
}

const setup = workerData as Setup;
let engine: Promise<SpiceEngine> | undefined;

// The wasm engine echoes ngspice's stderr through console.error; the lines reach the caller with
// any SpiceError, so the echo is dropped here (this affects only this worker's console).
console.error = () => {};

parentPort?.on('message', async (msg: { id: number; netlist: string } | { close: true }) => {
  if ('close' in msg) {
    if (engine) await (await engine).close().catch(() => undefined);
    parentPort?.postMessage({ closed: true });
    return;
  }
  const { id, netlist } = msg;
  try {
    engine ??= createEngine(setup.engine, { ngspicePath: setup.ngspicePath });
    const ready = await engine;
    // The pool's time limit covers the simulation, not the engine's start-up.
    parentPort?.postMessage({ id, started: true });
    const res = await ready.run(netlist);
    parentPort?.postMessage(
      { id, ok: true, names: res.names, data: res.data },
      res.data.map((d) => d.buffer as ArrayBuffer),
    );
  } catch (e) {
    const err = e instanceof SpiceError ? e : new SpiceError(e instanceof Error ? e.message : String(e), netlist, [], setup.engine);
    parentPort?.postMessage({ id, ok: false, error: err.toJSON() });
  }
});
