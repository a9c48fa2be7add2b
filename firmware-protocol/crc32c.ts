/**
 * CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and xor-out 0xFFFFFFFF.
 * Check value: crc32c("123456789") = 0xE3069283. Slicing-by-4 tables: weight memories
 * of hundreds of kilobytes are checked on every upload.
 */

const POLY = 0x82f63b78;

const T = new Uint32Array(4 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  for (let s = 1; s < 4; s++) {
    const prev = T[(s - 1) * 256 + n]!;
    T[s * 256 + n] = ((prev >>> 8) ^ T[prev & 0xff]!) >>> 0;
  }
}

/**
 * CRC-32C of `data`. Incremental: `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`;
 * `crc` is a previous result (default 0, the CRC of nothing).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  const n = data.length;
  let i = 0;
  const n4 = n - (n % 4);
  for (; i < n4; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = T[768 + (c & 0xff)]! ^ T[512 + ((c >>> 8) & 0xff)]! ^ T[256 + ((c >>> 16) & 0xff)]! ^ T[c >>> 24]!;
  }
  for (; i < n; i++) c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The 256-entry byte table (entry n = CRC register after shifting byte n), for documentation and ports. */
export function crc32cTable(): Uint32Array {
  return T.slice(0, 256);
}
