import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync, writeJsonAtomic, writeJsonAtomicSync } from '../../../models/io/atomic-file.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spikeloop-atomic-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('creates a file with exactly the given bytes and leaves no temp file', async () => {
    const p = join(dir, 'a.bin');
    const data = Uint8Array.from([0, 1, 2, 255, 254]);
    await writeFileAtomic(p, data);
    expect([...readFileSync(p)]).toEqual([0, 1, 2, 255, 254]);
    expect(readdirSync(dir)).toEqual(['a.bin']);
  });

  it('replaces an existing file', async () => {
    const p = join(dir, 'a.txt');
    writeFileSync(p, 'old contents that are longer');
    await writeFileAtomic(p, 'new');
    expect(readFileSync(p, 'utf8')).toBe('new');
  });

  it('writes typed-array views with their own offset, not the whole buffer', async () => {
    const p = join(dir, 'v.bin');
    const backing = new Uint16Array([1, 2, 3, 4]);
    await writeFileAtomic(p, backing.subarray(1, 3));
    const got = readFileSync(p);
    expect(got.byteLength).toBe(4);
    expect(got.readUInt16LE(0)).toBe(2);
    expect(got.readUInt16LE(2)).toBe(3);
  });

  it('concatenates chunk streams (sync and async iterables)', async () => {
    const p = join(dir, 'c.txt');
    await writeFileAtomic(p, ['ab', Buffer.from('cd'), 'e']);
    expect(readFileSync(p, 'utf8')).toBe('abcde');
    async function* gen() {
      yield 'x';
      yield new Uint8Array([0x79]);
    }
    await writeFileAtomic(p, gen());
    expect(readFileSync(p, 'utf8')).toBe('xy');
  });

  it('a failure mid-write leaves the old file intact and removes the temp file', async () => {
    const p = join(dir, 'model.bin');
    writeFileSync(p, 'OLD');
    function* failing() {
      yield 'first half of the new file';
      throw new Error('disk on fire');
    }
    await expect(writeFileAtomic(p, failing())).rejects.toThrow('disk on fire');
    expect(readFileSync(p, 'utf8')).toBe('OLD');
    expect(readdirSync(dir)).toEqual(['model.bin']);
  });

  it('a failing rename (target is a directory) leaves no temp file', async () => {
    const p = join(dir, 'occupied');
    mkdirSync(p);
    writeFileSync(join(p, 'keep'), 'k');
    await expect(writeFileAtomic(p, 'x')).rejects.toThrow();
    expect(readdirSync(dir).sort()).toEqual(['occupied']);
    expect(readFileSync(join(p, 'keep'), 'utf8')).toBe('k');
  });

  it('rejects when the directory does not exist, creating nothing', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), 'x')).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('writeFileAtomicSync', () => {
  it('writes and replaces', () => {
    const p = join(dir, 's.txt');
    writeFileAtomicSync(p, 'one');
    writeFileAtomicSync(p, ['t', 'wo']);
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(readdirSync(dir)).toEqual(['s.txt']);
  });

  it('a failure mid-write leaves the old file intact', () => {
    const p = join(dir, 's.txt');
    writeFileSync(p, 'OLD');
    function* failing() {
      yield 'partial';
      throw new Error('boom');
    }
    expect(() => writeFileAtomicSync(p, failing())).toThrow('boom');
    expect(readFileSync(p, 'utf8')).toBe('OLD');
    expect(readdirSync(dir)).toEqual(['s.txt']);
  });
});

describe('writeJsonAtomic', () => {
  it('round-trips through JSON.parse and ends with a newline', async () => {
    const p = join(dir, 'r.json');
    const value = { a: 1, b: [true, null, 'x'], c: { d: -2.5 } };
    await writeJsonAtomic(p, value);
    const text = readFileSync(p, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(JSON.parse(text)).toEqual(value);
    writeJsonAtomicSync(p, [1, 2], { indent: 0 });
    expect(readFileSync(p, 'utf8')).toBe('[1,2]\n');
  });

  it('refuses a value that has no JSON form, keeping the old file', async () => {
    const p = join(dir, 'r.json');
    writeFileSync(p, '{}');
    await expect(writeJsonAtomic(p, undefined)).rejects.toThrow(/not JSON-serialisable/);
    expect(readFileSync(p, 'utf8')).toBe('{}');
  });
});
