/**
 * The embedded engine: eecircuit-engine (ngspice compiled to WebAssembly, sky130 models in its
 * virtual file system). One simulator instance runs one netlist at a time, so runs are queued;
 * parallelism comes from one instance per worker thread (pool.ts).
 *
 * The package echoes every ngspice stderr line through console.error as well as collecting it;
 * the lines are collected here and attached to a SpiceError when the run fails, and the echo is
 * muted while a run is in flight (in a worker that only affects that worker).
 */

import { fatalLines, SpiceError } from './errors.ts';
import type { SpiceEngine, SpiceVectors } from './engine.ts';
import { eecircuitVersion } from './sky130-models.ts';

interface EecircuitResult {
  numPoints?: number;
  variableNames?: string[];
  dataType?: string;
  data?: { name: string; values: unknown[] }[];
}

interface EecircuitSimulation {
  start(): Promise<void>;
  setNetList(text: string): void;
  runSim(): Promise<EecircuitResult>;
  getError(): string[];
  getInfo(): string;
}

export class WasmEngine implements SpiceEngine {
  readonly kind = 'wasm' as const;
  readonly version: string;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly sim: EecircuitSimulation,
    private readonly timeoutMs: number,
  ) {
    this.version = `eecircuit-engine@${eecircuitVersion()}`;
  }

  /** `timeoutMs` bounds one run; a run that overstays leaves the instance unusable (closed). */
  static async start(timeoutMs = 30 * 60_000): Promise<WasmEngine> {
    const mod = (await import('eecircuit-engine')) as unknown as { Simulation: new () => EecircuitSimulation };
    const sim = new mod.Simulation();
    await muted(() => sim.start());
    return new WasmEngine(sim, timeoutMs);
  }

  run(netlist: string): Promise<SpiceVectors> {
    if (this.closed) return Promise.reject(new Error('the wasm SPICE engine is closed'));
    const job = this.queue.then(() => this.runNow(netlist));
    this.queue = job.catch(() => undefined);
    return job;
  }

  private async runNow(netlist: string): Promise<SpiceVectors> {
    if (this.closed) throw new Error('the wasm SPICE engine is closed');
    this.sim.setNetList(netlist);
    let timer: NodeJS.Timeout | undefined;
    const overstay = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The simulator cannot be interrupted from outside; this instance is done for.
        this.closed = true;
        reject(new SpiceError(`SPICE run did not finish within ${this.timeoutMs} ms`, netlist, [...this.sim.getError()], 'wasm'));
      }, this.timeoutMs);
      timer.unref?.();
    });
    let res: EecircuitResult;
    try {
      res = await muted(() => Promise.race([this.sim.runSim(), overstay]));
    } finally {
      clearTimeout(timer);
    }
    const messages = [...this.sim.getError()];
    const fatal = fatalLines(messages);
    if (fatal.length) throw new SpiceError(`SPICE run failed: ${fatal[0].trim()}`, netlist, messages, 'wasm');
    const names = res.variableNames ?? [];
    const points = res.numPoints ?? 0;
    if (!res.data || names.length === 0 || points < 1) {
      throw new SpiceError('SPICE run produced no data', netlist, messages, 'wasm');
    }
    if (res.dataType === 'complex') throw new SpiceError('SPICE run produced a complex plot; only tran and dc are supported', netlist, messages, 'wasm');
    return {
      names: res.data.map((d) => d.name.toLowerCase()),
      data: res.data.map((d) => Float64Array.from(d.values as number[])),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

let muteDepth = 0;
let savedConsoleError: typeof console.error | undefined;

/** Runs `fn` with console.error silenced (the engine's stderr echo); nested calls share one mute. */
async function muted<T>(fn: () => Promise<T>): Promise<T> {
  if (muteDepth++ === 0) {
    savedConsoleError = console.error;
    console.error = () => {};
  }
  try {
    return await fn();
  } finally {
    if (--muteDepth === 0 && savedConsoleError) {
      console.error = savedConsoleError;
      savedConsoleError = undefined;
    }
  }
}
