/** The one error type of the codec: every refusal names what went wrong and, where it can, the field. */

export type ProtocolErrorCode =
  | 'crc' // body CRC-32C mismatch: the frame is damaged
  | 'framing' // bad COBS, too short, length field mismatch, or garbage discarded before a frame
  | 'oversize' // more bytes than the receiver accepts before a delimiter
  | 'unknown-type' // good CRC, but no schema for (type, flags)
  | 'bad-payload' // good CRC, but the payload is not valid MessagePack or fails its schema
  | 'version' // good CRC, but a header version this side does not speak
  | 'schema'; // a message refused before sending (encodeFrame)

export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  /** Dotted path of the offending field inside the payload, e.g. `layers[0].rowPolarity`. */
  readonly field?: string;
  /** The offending value, when it is small enough to be useful. */
  readonly value?: unknown;

  constructor(code: ProtocolErrorCode, message: string, opts: { field?: string; value?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProtocolError';
    this.code = code;
    if (opts.field !== undefined) this.field = opts.field;
    if ('value' in opts) this.value = opts.value;
  }
}
