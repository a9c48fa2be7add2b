/**
 * Device addresses (`--device URI`): where the bytes of a board come from.
 *
 *   serial:/dev/ttyACM0?baud=921600   a board on a serial port (USB CDC-ACM or a UART bridge)
 *   pty:/dev/pts/7                     a mock board already serving a pseudo-terminal
 *   mock:ideal?seed=7&geometry=16-8-4  the embedded mock board, in process, over the same codec
 *                                      (board and line options: maxPayload, runDelayMs, baud,
 *                                      latencyMs, byteErrorRate, errorSeed; the rest go to the chip:
 *                                      firmware-protocol/mock-board/mock-spec.ts)
 *
 * One schema per scheme; parsing is strict: an unknown scheme, option or malformed value fails
 * with a message that names it and says how to fix it, before anything is opened. The result is
 * the typed address every opener takes (host/link/transport.ts).
 */
import { z } from 'zod';
import { MockSpecError, mockSpecParams, parseMockSpec, type MockSpec } from '../../firmware-protocol/mock-board/mock-spec.ts';

/** What every command talks to when no --device is given: the embedded mock, so a laptop needs no board. */
export const DEFAULT_DEVICE_URI = 'mock:behavioral?seed=7';

/** USB CDC-ACM ignores the rate, but a UART bridge does not; 921600 is what the reference firmware uses. */
export const DEFAULT_BAUD = 921_600;

export interface SerialAddress {
  scheme: 'serial' | 'pty';
  uri: string;
  path: string;
  baudRate: number;
  /** baud= was written: on a pty (a mock board paced to that rate) the host plans for it. */
  baudGiven: boolean;
  /** Hardware flow control (RTS/CTS). */
  rtscts: boolean;
}

export interface MockAddress {
  scheme: 'mock';
  uri: string;
  /** Chip backend kind handed to createChip (ideal, behavioral, spice, ...). */
  chip: string;
  /** Options for the chip backend (seed, geometry, ...), as strings; the backend validates them. */
  chipOptions: Record<string, string>;
  /** Options for the mock board itself (limits it announces). */
  board: MockSpec['board'];
  /** The chip, board and line, validated. */
  spec: MockSpec;
}

export type DeviceAddress = SerialAddress | MockAddress;

export class DeviceUriError extends Error {
  override name = 'DeviceUriError';
}

const SCHEMES = ['serial', 'pty', 'mock'] as const;

const intIn = (lo: number, hi: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(lo, `must be >= ${lo}`).max(hi, `must be <= ${hi}`));

const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', 'on', 'off'], 'expected true or false')
  .transform((v) => v === '1' || v === 'true' || v === 'yes' || v === 'on');

/** serial: and pty: options. */
const serialOptionSchemas = {
  baud: intIn(50, 20_000_000),
  rtscts: bool,
} as const;

function fail(uri: string, what: string, fix: string): never {
  throw new DeviceUriError(`bad device URI '${uri}': ${what}; ${fix}`);
}

function parseOption<S extends z.ZodType>(uri: string, key: string, raw: string, schema: S): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const why = r.error.issues[0]?.message ?? 'invalid';
    fail(uri, `option ${key}='${raw}' ${why}`, `give a valid ${key}`);
  }
  return r.data;
}

function splitQuery(uri: string, rest: string): { path: string; params: [string, string][] } {
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const params: [string, string][] = [];
  if (q >= 0) {
    const seen = new Set<string>();
    for (const [k, v] of new URLSearchParams(rest.slice(q + 1))) {
      if (k === '') fail(uri, 'empty option name in the query', 'write options as key=value joined by &');
      if (seen.has(k)) fail(uri, `option ${k} given twice`, 'give each option once');
      seen.add(k);
      params.push([k, v]);
    }
  }
  return { path, params };
}

/** Parses and validates a device URI. Throws DeviceUriError naming the bad part and the fix. */
export function parseDeviceUri(uri: string): DeviceAddress {
  if (typeof uri !== 'string' || uri.trim() === '') {
    throw new DeviceUriError(`empty device URI; give one such as ${DEFAULT_DEVICE_URI} or serial:/dev/ttyACM0`);
  }
  const colon = uri.indexOf(':');
  const scheme = colon > 0 ? uri.slice(0, colon) : '';
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    if (uri.startsWith('/') || /^COM\d+$/i.test(uri)) {
      fail(uri, 'missing scheme', `write serial:${uri} for a board, or pty:${uri} for a mock board on a pseudo-terminal`);
    }
    fail(uri, `unknown scheme '${scheme || uri}'`, `use one of ${SCHEMES.map((s) => s + ':').join(', ')}`);
  }
  const { path, params } = splitQuery(uri, uri.slice(colon + 1));

  if (scheme === 'serial' || scheme === 'pty') {
    if (path === '') fail(uri, 'no port path', `write ${scheme}:/dev/ttyACM0 (see \`spikeloop ports\`)`);
    let baudRate = DEFAULT_BAUD;
    let baudGiven = false;
    let rtscts = false;
    for (const [k, v] of params) {
      if (k === 'baud') {
        baudRate = parseOption(uri, k, v, serialOptionSchemas.baud);
        baudGiven = true;
      } else if (k === 'rtscts') rtscts = parseOption(uri, k, v, serialOptionSchemas.rtscts);
      else fail(uri, `unknown option '${k}'`, `allowed options for ${scheme}: ${Object.keys(serialOptionSchemas).join(', ')}`);
    }
    return { scheme, uri, path, baudRate, baudGiven, rtscts };
  }

  try {
    const spec = parseMockSpec(path, params);
    return { scheme: 'mock', uri, chip: spec.chip.kind, chipOptions: { ...spec.chip.raw }, board: spec.board, spec };
  } catch (e) {
    // The mock's and the chip's own messages name the option, the value and what is accepted.
    if (e instanceof MockSpecError || (e as Error).name === 'ChipOptionsError') throw new DeviceUriError(`bad device URI '${uri}': ${(e as Error).message}`);
    throw e;
  }
}

/** A URI that reproduces an address (normalised spelling). */
export function formatDeviceUri(a: DeviceAddress): string {
  if (a.scheme === 'mock') {
    const s = new URLSearchParams(mockSpecParams(a.spec)).toString();
    return `mock:${a.chip}${s ? '?' + s : ''}`;
  }
  const q = new URLSearchParams();
  if (a.baudGiven || a.baudRate !== DEFAULT_BAUD) q.set('baud', String(a.baudRate));
  if (a.rtscts) q.set('rtscts', 'true');
  const s = q.toString();
  return `${a.scheme}:${a.path}${s ? '?' + s : ''}`;
}
