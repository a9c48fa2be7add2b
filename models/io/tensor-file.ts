/**
 * A single-file container for named numeric arrays (model weights, calibration tables,
 * cached data sets): a JSON header followed by little-endian binary blobs.
 *
 * Layout (all integers little-endian):
 *
 *   0   8 bytes  magic 89 53 4C 54 0D 0A 1A 0A  ("\x89SLT\r\n\x1a\n": catches text-mode mangling)
 *   8   u32      container format version (FORMAT_VERSION)
 *   12  u32      header length H in bytes (UTF-8 JSON)
 *   16  u32      CRC-32 of the header bytes
 *   20  u32      reserved, 0
 *   24  H bytes  header JSON, then spaces up to an 8-byte boundary = data start
 *   ... blobs, each starting on an 8-byte boundary relative to data start
 *
 * The header records, per array, dtype, shape, offset (from data start), byte length
 * and CRC-32, plus the total data length, so truncation, damage and foreign files are
 * all detected with a message that says which.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import { z } from 'zod';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-file.ts';

export const FORMAT_VERSION = 1;
export const MAGIC = Uint8Array.from([0x89, 0x53, 0x4c, 0x54, 0x0d, 0x0a, 0x1a, 0x0a]);
const PREAMBLE = 24;
const ALIGN = 8;

export type DType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type NumericArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

const CTORS = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;
const DTYPES = Object.keys(CTORS) as DType[];

/** User metadata stored in the header. `name` identifies the content; `version` is the content's own version. */
export interface TensorFileMeta {
  name: string;
  version?: string | number;
  [key: string]: unknown;
}

export type ArrayInput = NumericArray | { data: NumericArray; shape: readonly number[] };

export interface LoadedArrays {
  meta: TensorFileMeta;
  arrays: Record<string, NumericArray>;
  shapes: Record<string, number[]>;
  dtypes: Record<string, DType>;
}

export class TensorFileError extends Error {
  constructor(
    readonly source: string,
    problem: string,
  ) {
    super(`${source}: ${problem}`);
    this.name = 'TensorFileError';
  }
}

const entrySchema = z.strictObject({
  name: z.string().min(1),
  dtype: z.enum(DTYPES as [DType, ...DType[]]),
  shape: z.array(z.number().int().nonnegative()),
  offset: z.number().int().nonnegative(),
  byteLength: z.number().int().nonnegative(),
  crc32: z.number().int().nonnegative(),
});
const headerSchema = z.strictObject({
  format: z.literal('spikeloop-tensors'),
  meta: z.looseObject({ name: z.string(), version: z.union([z.string(), z.number()]).optional() }),
  arrays: z.array(entrySchema),
  dataBytes: z.number().int().nonnegative(),
});
type Header = z.infer<typeof headerSchema>;

function dtypeOf(a: unknown): DType | undefined {
  // Order matters: Buffer is a Uint8Array subclass; Uint8ClampedArray stores the same bytes.
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  return undefined;
}

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function assertLittleEndianHost(): void {
  // Blobs are written in host order; every platform Node ships for is little-endian.
  if (endianness() !== 'LE') throw new Error('tensor-file: big-endian hosts are not supported');
}

/**
 * Serialise to a list of chunks (no concatenation, so a large array is not copied).
 * Throws on a bad array name, an unsupported array type, a shape that does not match
 * the length, or metadata that is not JSON.
 */
export function encodeArrays(meta: TensorFileMeta, arrays: Record<string, ArrayInput>): Uint8Array[] {
  assertLittleEndianHost();
  if (typeof meta?.name !== 'string') throw new TypeError('saveArrays: meta.name must be a string naming the content');
  const entries: Header['arrays'] = [];
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, input] of Object.entries(arrays)) {
    if (name.length === 0) throw new TypeError('saveArrays: array names must be non-empty');
    const data = ArrayBuffer.isView(input) ? input : input?.data;
    const dtype = dtypeOf(data);
    if (!dtype || !data) {
      throw new TypeError(`saveArrays: array "${name}" is not a supported typed array; use one of ${DTYPES.map((d) => CTORS[d].name).join(', ')}`);
    }
    const shape = ArrayBuffer.isView(input) ? [data.length] : [...input.shape];
    if (!shape.every((d) => Number.isInteger(d) && d >= 0) || shape.reduce((p, d) => p * d, 1) !== data.length) {
      throw new TypeError(`saveArrays: array "${name}" has shape [${shape.join(', ')}] but ${data.length} elements`);
    }
    const bytes = bytesOf(data);
    entries.push({ name, dtype, shape, offset, byteLength: bytes.byteLength, crc32: crc32(bytes) });
    blobs.push(bytes);
    offset = align(offset + bytes.byteLength);
  }
  const header: Header = { format: 'spikeloop-tensors', meta, arrays: entries, dataBytes: offset };
  let json: string;
  try {
    json = JSON.stringify(header);
  } catch (err) {
    throw new TypeError(`saveArrays: meta is not JSON-serialisable (${(err as Error).message})`);
  }
  const headerBytes = Buffer.from(json, 'utf8');
  const dataStart = align(PREAMBLE + headerBytes.byteLength);
  const pre = new Uint8Array(dataStart).fill(0x20);
  pre.set(MAGIC, 0);
  const dv = new DataView(pre.buffer);
  dv.setUint32(8, FORMAT_VERSION, true);
  dv.setUint32(12, headerBytes.byteLength, true);
  dv.setUint32(16, crc32(headerBytes), true);
  dv.setUint32(20, 0, true);
  pre.set(headerBytes, PREAMBLE);

  const chunks: Uint8Array[] = [pre];
  let written = 0;
  for (const b of blobs) {
    chunks.push(b);
    written += b.byteLength;
    const pad = align(written) - written;
    if (pad) chunks.push(new Uint8Array(pad));
    written += pad;
  }
  return chunks;
}

function fail(source: string, problem: string): never {
  throw new TensorFileError(source, problem);
}

/**
 * Parse a container held in memory. `source` names the file in error messages.
 * Arrays are views into `bytes` when aligned (no copy), copies otherwise.
 */
export function decodeArrays(bytes: Uint8Array, source = '<buffer>'): LoadedArrays {
  assertLittleEndianHost();
  const recreate = 'the file is damaged; re-create it from its source (re-run the command that wrote it)';
  if (bytes.byteLength < PREAMBLE) {
    fail(source, `truncated: ${bytes.byteLength} bytes, shorter than the ${PREAMBLE}-byte preamble; ${recreate}`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) {
      fail(source, 'not a spikeloop tensor file (wrong magic bytes at the start); check the path points at a file saved by saveArrays');
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FORMAT_VERSION) {
    fail(
      source,
      version > FORMAT_VERSION
        ? `container format version ${version} is newer than this spikeloop reads (${FORMAT_VERSION}); upgrade spikeloop`
        : `unknown container format version ${version} (expected ${FORMAT_VERSION}); ${recreate}`,
    );
  }
  const headerLen = dv.getUint32(12, true);
  if (PREAMBLE + headerLen > bytes.byteLength) {
    fail(source, `truncated: header needs ${PREAMBLE + headerLen} bytes but the file has ${bytes.byteLength}; ${recreate}`);
  }
  const headerBytes = bytes.subarray(PREAMBLE, PREAMBLE + headerLen);
  if (crc32(headerBytes) !== dv.getUint32(16, true)) fail(source, `header CRC mismatch; ${recreate}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString('utf8'));
  } catch (err) {
    fail(source, `header is not valid JSON (${(err as Error).message}); ${recreate}`);
  }
  const parsed = headerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    fail(source, `header field "${issue.path.join('.') || '(root)'}" is invalid: ${issue.message}; ${recreate}`);
  }
  const header = parsed.data;
  const dataStart = align(PREAMBLE + headerLen);
  const expected = dataStart + header.dataBytes;
  if (bytes.byteLength < expected) {
    fail(
      source,
      `truncated: the header describes ${expected} bytes but the file has ${bytes.byteLength} (cut short by an interrupted copy or write?); ${recreate}`,
    );
  }
  if (bytes.byteLength > expected) {
    fail(source, `${bytes.byteLength - expected} unexpected bytes after the last array; ${recreate}`);
  }

  const out: LoadedArrays = { meta: header.meta as TensorFileMeta, arrays: {}, shapes: {}, dtypes: {} };
  let prevEnd = 0;
  for (const e of header.arrays) {
    if (Object.hasOwn(out.arrays, e.name)) fail(source, `array "${e.name}" appears twice in the header; ${recreate}`);
    const Ctor = CTORS[e.dtype];
    const count = e.shape.reduce((p, d) => p * d, 1);
    if (count * Ctor.BYTES_PER_ELEMENT !== e.byteLength) {
      fail(
        source,
        `array "${e.name}": shape [${e.shape.join(', ')}] of ${e.dtype} needs ${count * Ctor.BYTES_PER_ELEMENT} bytes but the header says ${e.byteLength}; ${recreate}`,
      );
    }
    if (e.offset % ALIGN !== 0 || e.offset < prevEnd || e.offset + e.byteLength > header.dataBytes) {
      fail(source, `array "${e.name}": offset ${e.offset} (+${e.byteLength} bytes) is misaligned, overlapping or outside the data section; ${recreate}`);
    }
    prevEnd = e.offset + e.byteLength;
    const blob = bytes.subarray(dataStart + e.offset, dataStart + e.offset + e.byteLength);
    if (crc32(blob) !== e.crc32) fail(source, `array "${e.name}": data CRC mismatch (bytes changed since saving); ${recreate}`);
    const view =
      blob.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? new Ctor(blob.buffer as ArrayBuffer, blob.byteOffset, count) : new Ctor(blob.slice().buffer, 0, count);
    out.arrays[e.name] = view;
    out.shapes[e.name] = [...e.shape];
    out.dtypes[e.name] = e.dtype;
  }
  return out;
}

/** Write arrays and metadata to `path` atomically (see atomic-file.ts). */
export async function saveArrays(path: string, meta: TensorFileMeta, arrays: Record<string, ArrayInput>): Promise<void> {
  await writeFileAtomic(path, encodeArrays(meta, arrays));
}

export function saveArraysSync(path: string, meta: TensorFileMeta, arrays: Record<string, ArrayInput>): void {
  writeFileAtomicSync(path, encodeArrays(meta, arrays));
}

/** Read and validate a container; throws TensorFileError naming the file and the problem. */
export async function loadArrays(path: string): Promise<LoadedArrays> {
  return decodeArrays(await readFile(path), path);
}

export function loadArraysSync(path: string): LoadedArrays {
  return decodeArrays(readFileSync(path), path);
}
