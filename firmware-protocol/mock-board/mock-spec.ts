/**
 * What a `mock:` device address says, parsed once: the chip (kind and its options, validated by
 * the chip's own schemas), the board (limits it announces, extra RUN time) and the line in front
 * of it (rate, latency, byte errors). The same text serves `--device mock:...` and
 * `spikeloop mock-board --pty --device mock:...`.
 *
 *   mock:behavioral?seed=7&geometry=784-256-128-10&faults=dead-neuron:1.3   chip options
 *       &maxPayload=4096&runDelayMs=20&thread=1                              board options
 *       &baud=921600&latencyMs=1&byteErrorRate=1e-4&errorSeed=3               line options
 */
import { z } from 'zod';
import { parseChipOptions, type ChipSpec } from '../../models/chips/index.ts';
import type { LineOptions } from './line.ts';

export interface MockBoardSettings {
  maxPayload?: number;
  runDelayMs?: number;
  /** 1: the board and its chip run on a thread of their own (thread.ts); 0 (default): in the host's thread. */
  thread?: number;
}

export interface MockSpec {
  chip: ChipSpec;
  board: MockBoardSettings;
  line: LineOptions;
}

const whole = (lo: number, hi: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(lo, `must be >= ${lo}`).max(hi, `must be <= ${hi}`));

const fraction = z
  .string()
  .regex(/^(\d+(\.\d*)?|\.\d+)(e-?\d+)?$/i, 'expected a number such as 1e-4')
  .transform(Number)
  .pipe(z.number().min(0, 'must be >= 0').max(0.5, 'must be <= 0.5'));

/** One schema per option the board and the line take; every other option goes to the chip. */
export const MOCK_BOARD_OPTIONS = {
  maxPayload: whole(64, 65_535),
  /** Milliseconds added to every RUN (a slower board, for pipelining measurements). */
  runDelayMs: whole(0, 600_000),
  /** 1 = board and chip on their own thread, overlapping the host (in-process mock only). */
  thread: whole(0, 1),
} as const;

export const MOCK_LINE_OPTIONS = {
  baud: whole(300, 20_000_000),
  latencyMs: whole(0, 10_000),
  byteErrorRate: fraction,
  errorSeed: whole(0, 2 ** 32 - 1),
} as const;

const chipKind = /^[a-z][a-z0-9-]*$/;

export class MockSpecError extends Error {
  override name = 'MockSpecError';
}

/**
 * Validates a chip kind and its options (everything after `mock:`). Throws MockSpecError with
 * a message naming the option, its value and what is accepted.
 */
export function parseMockSpec(kind: string, params: readonly (readonly [string, string])[]): MockSpec {
  if (!chipKind.test(kind)) throw new MockSpecError(`chip kind '${kind}' is not a name; write mock:behavioral (or another chip kind, lower-case)`);
  const board: MockBoardSettings = {};
  const line: LineOptions = {};
  const chipOptions: Record<string, string> = {};
  for (const [k, v] of params) {
    const schema = Object.hasOwn(MOCK_BOARD_OPTIONS, k)
      ? MOCK_BOARD_OPTIONS[k as keyof typeof MOCK_BOARD_OPTIONS]
      : Object.hasOwn(MOCK_LINE_OPTIONS, k)
        ? MOCK_LINE_OPTIONS[k as keyof typeof MOCK_LINE_OPTIONS]
        : undefined;
    if (!schema) {
      chipOptions[k] = v;
      continue;
    }
    const r = schema.safeParse(v);
    if (!r.success) throw new MockSpecError(`option ${k}='${v}' ${r.error.issues[0]?.message ?? 'is invalid'}; give a valid ${k}`);
    if (k in MOCK_BOARD_OPTIONS) (board as Record<string, number>)[k] = r.data;
    else (line as Record<string, number>)[k] = r.data;
  }
  let chip: ChipSpec;
  try {
    chip = parseChipOptions(kind, chipOptions);
  } catch (e) {
    const msg = (e as Error).message;
    // The chip lists its own options; the board and the line take these too.
    throw new MockSpecError(
      /accepted options:/.test(msg)
        ? `${msg}, and for the board or line: ${[...Object.keys(MOCK_BOARD_OPTIONS), ...Object.keys(MOCK_LINE_OPTIONS)].join(', ')}`
        : msg,
    );
  }
  return { chip, board, line };
}

/** The query parameters that reproduce a spec (chip options first, as given). */
export function mockSpecParams(spec: MockSpec): [string, string][] {
  const out: [string, string][] = Object.entries(spec.chip.raw);
  for (const [k, v] of Object.entries({ ...spec.board, ...spec.line })) if (v !== undefined) out.push([k, String(v)]);
  return out;
}
