/**
 * Atomic file replacement: readers see either the old file or the complete new one,
 * never a half-written file, even if the process dies mid-write.
 *
 * Recipe: write to a uniquely named temporary file in the SAME directory (rename is
 * only atomic within one file system), fsync it, rename it over the target, then
 * fsync the directory so the rename itself survives a power cut. On any error the
 * temporary file is removed and the target is left untouched.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Bytes to write: a string (UTF-8), one buffer, or a stream of chunks (written in order). */
export type AtomicData = string | ArrayBufferView | Iterable<ArrayBufferView | string> | AsyncIterable<ArrayBufferView | string>;

export interface AtomicWriteOptions {
  /** File mode of the new file (default 0o644, before umask). */
  mode?: number;
  /** fsync file and directory (default true). Off only for scratch files where speed matters more. */
  fsync?: boolean;
}

function tempPathFor(path: string): string {
  // Hidden, unique per process and call, recognisable if a crash ever leaves one behind.
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function toBytes(chunk: ArrayBufferView | string): Uint8Array {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

function isChunkSource(data: AtomicData): data is Iterable<ArrayBufferView | string> | AsyncIterable<ArrayBufferView | string> {
  return typeof data !== 'string' && !ArrayBuffer.isView(data);
}

/** Directory fsync makes the rename durable; some file systems refuse it, which is harmless. */
function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* not supported here (e.g. some network or Windows file systems) */
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Replace `path` atomically with `data`. The parent directory must exist.
 * Rejects (and leaves any existing file intact) if writing, syncing or renaming fails,
 * including when a chunk iterator throws part-way.
 */
export async function writeFileAtomic(path: string, data: AtomicData, options: AtomicWriteOptions = {}): Promise<void> {
  const sync = options.fsync ?? true;
  const tmp = tempPathFor(path);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  let closed = false;
  try {
    if (isChunkSource(data)) {
      for await (const chunk of data as AsyncIterable<ArrayBufferView | string>) {
        const bytes = toBytes(chunk);
        // handle.write may write fewer bytes than asked; loop until the chunk is out.
        let off = 0;
        while (off < bytes.byteLength) {
          const { bytesWritten } = await handle.write(bytes, off, bytes.byteLength - off);
          off += bytesWritten;
        }
      }
    } else {
      await handle.writeFile(toBytes(data));
    }
    if (sync) await handle.sync();
    await handle.close();
    closed = true;
    await rename(tmp, path);
  } catch (err) {
    if (!closed) await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (sync) fsyncDirSync(dirname(path));
}

/** Synchronous variant for exit paths and small files; same guarantees. */
export function writeFileAtomicSync(path: string, data: string | ArrayBufferView | Iterable<ArrayBufferView | string>, options: AtomicWriteOptions = {}): void {
  const sync = options.fsync ?? true;
  const tmp = tempPathFor(path);
  const fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644);
  let closed = false;
  try {
    const chunks: Iterable<ArrayBufferView | string> = typeof data === 'string' || ArrayBuffer.isView(data) ? [data] : data;
    for (const chunk of chunks) {
      const bytes = toBytes(chunk);
      let off = 0;
      while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
    }
    if (sync) fs.fsyncSync(fd);
    fs.closeSync(fd);
    closed = true;
    fs.renameSync(tmp, path);
  } catch (err) {
    if (!closed) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; the original error matters */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* temp file may not exist */
    }
    throw err;
  }
  if (sync) fsyncDirSync(dirname(path));
}

/** JSON with a trailing newline; 2-space indentation unless `indent` says otherwise. */
function jsonText(value: unknown, indent: number): string {
  const text = JSON.stringify(value, null, indent);
  if (text === undefined) throw new TypeError('writeJsonAtomic: value is not JSON-serialisable (undefined, a function or a symbol)');
  return text + '\n';
}

export async function writeJsonAtomic(path: string, value: unknown, options: AtomicWriteOptions & { indent?: number } = {}): Promise<void> {
  await writeFileAtomic(path, jsonText(value, options.indent ?? 2), options);
}

export function writeJsonAtomicSync(path: string, value: unknown, options: AtomicWriteOptions & { indent?: number } = {}): void {
  writeFileAtomicSync(path, jsonText(value, options.indent ?? 2), options);
}
