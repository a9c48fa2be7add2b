/**
 * Typed failures of the link. Each says what happened and what to do about it, so a CLI can
 * print `err.message` as its one-line summary.
 */
import { ErrorCode, type ErrorCodeName } from '../../firmware-protocol/messages.ts';

export abstract class LinkError extends Error {
  /** Stable machine-readable kind, for --json output and tests. */
  abstract readonly kind: string;
}

/** How a request's attempts ended, when some were found lost before their timeout. */
export interface AttemptTally {
  timedOut: number;
  lost: number;
  /** Why the last lost attempt was judged lost. */
  lastLoss: string;
}

/** No reply within the per-attempt timeout (or every attempt found lost), after every retry. */
export class LinkTimeoutError extends LinkError {
  readonly kind = 'timeout';
  override name = 'LinkTimeoutError';
  constructor(
    readonly request: string,
    readonly attempts: number,
    readonly timeoutMs: number,
    readonly seqs: readonly number[],
    readonly tally?: AttemptTally,
  ) {
    const plural = (n: number) => `${n} attempt${n === 1 ? '' : 's'}`;
    const how =
      tally && tally.lost > 0
        ? `${plural(attempts)}: ${tally.timedOut} timed out, ${tally.lost} found lost (the last: ${tally.lastLoss})`
        : `${plural(attempts)} timed out after ${Math.round(timeoutMs)} ms each`;
    super(`${request} got no reply: ${how} (seq ${seqs.join(', ')}); check that the board is powered and running spikeloop firmware, and the baud rate`);
  }
}

/** The link closed (host close, unplug, stream error) while a request was pending or being made. */
export class LinkClosedError extends LinkError {
  readonly kind = 'closed';
  override name = 'LinkClosedError';
  constructor(
    readonly reason: string,
    readonly request?: string,
  ) {
    super(request ? `${request} failed: link closed (${reason})` : `link closed (${reason})`);
  }
}

/** The device answered, but with something the protocol does not allow (a firmware bug, or a different device). */
export class ProtocolViolationError extends LinkError {
  readonly kind = 'protocol';
  override name = 'ProtocolViolationError';
  constructor(
    readonly request: string,
    readonly detail: string,
  ) {
    super(`${request}: device reply violates the protocol: ${detail}; update the firmware or report it with \`spikeloop info --json\``);
  }
}

/** What the host should do for each ERROR code (PROTOCOL.md section 10, error table). */
export const ERROR_ADVICE: Record<ErrorCodeName, string> = {
  UNKNOWN_TYPE: 'do not retry; the device lacks this message: check its protocol and features with `spikeloop info`',
  BAD_PAYLOAD: 'host bug: the request did not match the schema or the geometry; do not retry the same bytes, report it',
  OUT_OF_RANGE: 'nothing was applied; recompute the values within the announced limits (`spikeloop info`: DAC, safe windows, sizes)',
  BAD_LAYER: 'no such layer (layers are numbered from 0); re-read HELLO with `spikeloop info` and fix the index',
  TOO_LARGE: 'nothing was executed; split the request to fit maxPayload / maxBatch from HELLO and retry',
  BUSY: 'the device input queue is full; nothing was executed: back off and retry with a fresh seq',
  UNSUPPORTED: 'an optional feature or test this device lacks; skip it (see features in `spikeloop info`)',
  VERSION: 'the device does not speak this frame version; say HELLO again to negotiate',
  HARDWARE_FAULT: 'the chip or board failed during the operation; check STATUS / SELF_TEST, retry once, then stop and report',
  INTERNAL: 'firmware bug; report the message, RESET the board, then retry once',
};

const codeNames = new Map<number, ErrorCodeName>((Object.entries(ErrorCode) as [ErrorCodeName, number][]).map(([k, v]) => [v, k]));

export function errorCodeName(code: number): ErrorCodeName | `CODE_${number}` {
  return codeNames.get(code) ?? `CODE_${code}`;
}

/** The device answered a request with an ERROR frame. */
export class DeviceError extends LinkError {
  readonly kind = 'device';
  override name = 'DeviceError';
  readonly codeName: string;
  readonly advice: string;
  constructor(
    readonly request: string,
    readonly code: number,
    readonly deviceMessage: string,
  ) {
    const codeName = errorCodeName(code);
    const advice = (ERROR_ADVICE as Record<string, string>)[codeName] ?? 'unknown error code; update spikeloop or check the firmware documentation';
    super(`${request} refused by device: ${codeName} (${code}): ${deviceMessage || 'no message'}; ${advice}`);
    this.codeName = codeName;
    this.advice = advice;
  }
}

/** Errors worth another attempt with a fresh seq, for idempotent requests. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof AttemptTimeout) return true;
  return err instanceof DeviceError && err.code === ErrorCode.BUSY;
}

/** One attempt's timeout (internal; the caller sees LinkTimeoutError after the last retry). */
export class AttemptTimeout extends Error {
  override name = 'AttemptTimeout';
  constructor(
    readonly seq: number,
    readonly timeoutMs: number,
    message = `no reply to seq ${seq} within ${timeoutMs} ms`,
  ) {
    super(message);
  }
}

/**
 * One attempt known lost before its timeout (internal, retried like a timeout): the device
 * answers in order, so a reply to a later request, a NAK or a damaged reply frame shows that
 * this request or its reply did not arrive.
 */
export class AttemptLost extends AttemptTimeout {
  override name = 'AttemptLost';
  constructor(seq: number, waitedMs: number, why: string) {
    super(seq, waitedMs, `seq ${seq} lost after ${Math.round(waitedMs)} ms: ${why}`);
  }
}
