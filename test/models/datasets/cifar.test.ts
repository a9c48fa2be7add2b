import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCifar10Dir, parseCifarBatch } from '../../../models/datasets/cifar.ts';
import { loadDataset } from '../../../models/datasets/load.ts';

/** A CIFAR-10 binary record: label then R, G, B planes; pixel value encodes (plane, row, col). */
function record(label: number, seed: number): Buffer {
  const b = Buffer.alloc(3073);
  b[0] = label;
  for (let c = 0; c < 3; c++) for (let r = 0; r < 32; r++) for (let k = 0; k < 32; k++) b[1 + c * 1024 + r * 32 + k] = (seed + c * 50 + r * 3 + k) % 256;
  return b;
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spikeloop-cifar-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeBatches(d: string, perBatch = 2) {
  for (let i = 1; i <= 5; i++)
    writeFileSync(join(d, `data_batch_${i}.bin`), Buffer.concat(Array.from({ length: perBatch }, (_, j) => record((i + j) % 10, i * 10 + j))));
  writeFileSync(join(d, 'test_batch.bin'), Buffer.concat([record(3, 99), record(9, 7)]));
}

describe('parseCifarBatch', () => {
  it('converts CHW planes to HWC rows', () => {
    const { x, y, n } = parseCifarBatch(Buffer.concat([record(4, 0), record(0, 1)]), 'b.bin');
    expect(n).toBe(2);
    expect([...y]).toEqual([4, 0]);
    // image 1, row 5, col 7, channel 2 (blue): HWC index (5*32+7)*3+2
    expect(x[3072 + (5 * 32 + 7) * 3 + 2]).toBe((1 + 2 * 50 + 5 * 3 + 7) % 256);
    expect(x[(0 * 32 + 1) * 3 + 0]).toBe(1); // image 0, red, row 0, col 1
  });

  it('rejects partial records, bad labels and empty files, naming the file', () => {
    expect(() => parseCifarBatch(record(1, 0).subarray(0, 3000), 'b.bin')).toThrow(/b\.bin: 3000 bytes is not a whole number of 3073-byte records/);
    expect(() => parseCifarBatch(Buffer.concat([record(1, 0), record(10, 0)]), 'b.bin')).toThrow(/b\.bin: record 1 has label 10, outside 0\.\.9/);
    expect(() => parseCifarBatch(new Uint8Array(0), 'b.bin')).toThrow(/empty file/);
    expect(() => parseCifarBatch(Buffer.from([0x80, 0x02, 0x7d]), 'b.bin')).toThrow(/Python pickle/);
  });
});

describe('loadCifar10Dir', () => {
  it('loads 5 train batches and the test batch, also from the tarball folder', async () => {
    const inner = join(dir, 'cifar-10-batches-bin');
    mkdirSync(inner);
    writeBatches(inner);
    writeFileSync(join(inner, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n');
    const raw = await loadCifar10Dir(dir);
    expect(raw.train.n).toBe(10);
    expect(raw.test.n).toBe(2);
    expect(raw.classNames).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
    expect(raw.shape).toEqual([32, 32, 3]);
    expect([...raw.train.y]).toEqual([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    const ds = await loadDataset(`cifar10:${dir}`, { limitTest: 1 });
    expect(ds.test.n).toBe(1);
    expect(ds.features).toBe(3072);
    expect(ds.test.x[0]).toBeCloseTo(((99 + 0) % 256) / 255, 6);
  });

  it('names a missing batch and recognises the pickle version', async () => {
    writeBatches(dir);
    rmSync(join(dir, 'data_batch_3.bin'));
    writeFileSync(join(dir, 'data_batch_3'), 'pickle');
    await expect(loadCifar10Dir(dir)).rejects.toThrow(/missing data_batch_3\.bin.*Python pickle version/);
  });

  it('rejects a meta file without 10 names', async () => {
    writeBatches(dir);
    writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\n');
    await expect(loadCifar10Dir(dir)).rejects.toThrow(/batches\.meta\.txt: expected 10 class names/);
  });
});
