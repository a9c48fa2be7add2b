/**
 * Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999). The encoding contains no
 * 0x00 byte, so 0x00 can delimit frames; overhead is at most one byte per 254.
 */
import { ProtocolError } from './errors.ts';

/** Upper bound of the encoded length of `n` bytes (exact except when n is a positive multiple of 254). */
export function cobsMaxEncodedLength(n: number): number {
  return n + Math.floor(n / 254) + 1;
}

/** Canonical COBS: a block of 254 data bytes that ends the input is not followed by an empty block. */
export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(cobsMaxEncodedLength(data.length));
  let codeAt = 0;
  let code = 1;
  let o = 1;
  const n = data.length;
  for (let i = 0; i < n; i++) {
    const b = data[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    } else {
      out[o++] = b;
      code++;
      if (code === 0xff && i + 1 < n) {
        out[codeAt] = code;
        codeAt = o++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out.slice(0, o);
}

/**
 * Decodes one COBS block sequence (without the 0x00 delimiter). Throws ProtocolError('framing')
 * on a zero byte or a block that runs past the end. Accepts the non-canonical trailing empty
 * block some encoders emit after a full 254-byte block (it decodes to nothing).
 */
export function cobsDecode(data: Uint8Array): Uint8Array {
  const n = data.length;
  if (n === 0) throw new ProtocolError('framing', 'COBS: empty input (the shortest encoding is one byte, 0x01)');
  const out = new Uint8Array(n);
  let o = 0;
  let i = 0;
  while (i < n) {
    const code = data[i]!;
    if (code === 0) throw new ProtocolError('framing', `COBS: zero code byte at offset ${i}`);
    const end = i + code;
    if (end > n) {
      throw new ProtocolError('framing', `COBS: block at offset ${i} (code ${code}) runs past the end of the ${n}-byte frame`);
    }
    for (let j = i + 1; j < end; j++) {
      const b = data[j]!;
      if (b === 0) throw new ProtocolError('framing', `COBS: zero data byte at offset ${j}`);
      out[o++] = b;
    }
    i = end;
    if (code < 0xff && i < n) out[o++] = 0;
  }
  return out.slice(0, o);
}
