/**
 * A SPICE run that failed (parse error, no convergence, aborted analysis, missing output) is
 * reported with the netlist it ran and the simulator's own messages, never as a silent result.
 */

export class SpiceError extends Error {
  override name = 'SpiceError';

  /** The one-line summary, without the simulator lines appended to `message`. */
  readonly summary: string;

  constructor(
    message: string,
    /** The netlist text the engine was given. */
    readonly netlist: string,
    /** The simulator's error and warning lines, as it printed them. */
    readonly messages: readonly string[] = [],
    /** Which engine ran it ('wasm' or 'ngspice'). */
    readonly engine = '',
  ) {
    super(SpiceError.describe(message, messages));
    this.summary = message;
  }

  private static describe(message: string, messages: readonly string[]): string {
    const shown = messages.filter((m) => m.trim() !== '').slice(0, 12);
    return shown.length ? `${message}\n  ngspice: ${shown.join('\n  ngspice: ')}` : message;
  }

  /** A plain object that survives structured cloning (worker threads). */
  toJSON(): SpiceErrorData {
    return { summary: this.summary, netlist: this.netlist, messages: [...this.messages], engine: this.engine };
  }

  static fromJSON(d: SpiceErrorData): SpiceError {
    return new SpiceError(d.summary, d.netlist, d.messages, d.engine);
  }
}

export interface SpiceErrorData {
  summary: string;
  netlist: string;
  messages: string[];
  engine: string;
}

/** Lines of simulator output that mean the run did not produce a trustworthy result. */
const FATAL = /\berror\b|aborted|timestep too small|interrupted|not parsed|iteration limit reached/i;

/** The fatal lines among a simulator's messages (empty when the run is trustworthy). */
export function fatalLines(lines: readonly string[]): string[] {
  return lines.filter((l) => FATAL.test(l));
}
