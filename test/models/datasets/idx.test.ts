import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadIdxDir, parseIdx, readIdxFile } from '../../../models/datasets/idx.ts';
import { loadDataset } from '../../../models/datasets/load.ts';

/** An IDX encoder written from the format description (independent of the parser). */
function idx(typeCode: number, dims: number[], values: number[], size = 1): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = typeCode;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  const body = Buffer.alloc(values.length * size);
  values.forEach((v, i) => {
    if (typeCode === 0x08) body.writeUInt8(v, i);
    else if (typeCode === 0x09) body.writeInt8(v, i);
    else if (typeCode === 0x0b) body.writeInt16BE(v, 2 * i);
    else if (typeCode === 0x0c) body.writeInt32BE(v, 4 * i);
    else if (typeCode === 0x0d) body.writeFloatBE(v, 4 * i);
    else body.writeDoubleBE(v, 8 * i);
  });
  return Buffer.concat([header, body]);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'spikeloop-idx-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny 2x3-pixel set: train 6 images of 3 classes, test 3 images. */
function writeSet(d: string, opts: { gz?: boolean; testLabels?: number[]; trainLabelCount?: number; kaggle?: boolean } = {}) {
  const trainN = 6;
  const img = (n: number, off: number) => Array.from({ length: n * 6 }, (_, i) => (i * 37 + off) % 256);
  const files: Record<string, Buffer> = {
    'train-images-idx3-ubyte': idx(0x08, [trainN, 2, 3], img(trainN, 0)),
    'train-labels-idx1-ubyte': idx(0x08, [opts.trainLabelCount ?? trainN], [0, 1, 2, 0, 1, 2].slice(0, opts.trainLabelCount ?? trainN)),
    't10k-images-idx3-ubyte': idx(0x08, [3, 2, 3], img(3, 5)),
    't10k-labels-idx1-ubyte': idx(0x08, [3], opts.testLabels ?? [2, 1, 0]),
  };
  for (const [name, data] of Object.entries(files)) {
    const base = opts.kaggle ? name.replace('-idx', '.idx') : name;
    if (opts.gz) writeFileSync(join(d, `${base}.gz`), gzipSync(data));
    else writeFileSync(join(d, base), data);
  }
}

describe('parseIdx', () => {
  it('reads uint8 data and dims', () => {
    const a = parseIdx(idx(0x08, [2, 2], [1, 2, 3, 255]), 'f');
    expect(a.dtype).toBe('uint8');
    expect(a.dims).toEqual([2, 2]);
    expect([...a.data]).toEqual([1, 2, 3, 255]);
  });

  it('reads big-endian int8/int16/int32/float32/float64', () => {
    expect([...parseIdx(idx(0x09, [2], [-1, 127]), 'f').data]).toEqual([-1, 127]);
    expect([...parseIdx(idx(0x0b, [2], [-300, 258], 2), 'f').data]).toEqual([-300, 258]);
    expect([...parseIdx(idx(0x0c, [1], [-70000], 4), 'f').data]).toEqual([-70000]);
    expect([...parseIdx(idx(0x0d, [2], [1.5, -0.25], 4), 'f').data]).toEqual([1.5, -0.25]);
    expect([...parseIdx(idx(0x0e, [1], [Math.PI], 8), 'f').data]).toEqual([Math.PI]);
  });

  it('names the file and the problem for broken input', () => {
    const good = idx(0x08, [2, 2], [1, 2, 3, 4]);
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, 2), /bad\.idx: 2 bytes, too short/],
      [Buffer.from([1, 0, 8, 1, 0, 0, 0, 1, 0]), /bad\.idx: not an IDX file .*first bytes are 01 00 08 01/],
      [Buffer.from('<!DOCTYPE html><html>not found</html>'), /not an IDX file .*HTML/],
      [Buffer.concat([Buffer.from([0, 0, 0x0a, 1]), Buffer.alloc(4)]), /unknown IDX type code 0x0a/],
      [Buffer.from([0, 0, 8, 0]), /declares 0 dimensions/],
      [Buffer.from([0, 0, 8, 3, 0, 0, 0, 1]), /truncated: 3 dimensions need a 16-byte header/],
      [good.subarray(0, good.length - 1), /bad\.idx: truncated: dims \[2, 2\] of uint8 need 16 bytes but the file has 15/],
      [Buffer.concat([good, Buffer.from([0])]), /has trailing bytes/],
      [idx(0x08, [0, 5], []), /dimension 0 is 0/],
    ];
    for (const [bytes, re] of cases) expect(() => parseIdx(bytes, 'bad.idx')).toThrow(re);
  });

  it('readIdxFile gunzips by content and rejects a .gz that is not gzip', async () => {
    const p = join(dir, 'weird-name');
    writeFileSync(p, gzipSync(idx(0x08, [3], [7, 8, 9])));
    expect([...(await readIdxFile(p)).data]).toEqual([7, 8, 9]);
    const q = join(dir, 'x.gz');
    writeFileSync(q, idx(0x08, [1], [1]));
    await expect(readIdxFile(q)).rejects.toThrow(/x\.gz: named \.gz but is not gzip/);
    const r = join(dir, 'y.gz');
    writeFileSync(r, gzipSync(idx(0x08, [1], [1])).subarray(0, 12));
    await expect(readIdxFile(r)).rejects.toThrow(/y\.gz: gzip data is damaged/);
  });
});

describe('loadIdxDir / loadDataset("idx:DIR")', () => {
  it('loads a valid set (plain, gzipped, and Kaggle-style names)', async () => {
    for (const variant of [{}, { gz: true }, { kaggle: true }]) {
      const d = mkdtempSync(join(dir, 'set-'));
      writeSet(d, variant);
      const raw = await loadIdxDir(d);
      expect(raw.train.n).toBe(6);
      expect(raw.test.n).toBe(3);
      expect(raw.shape).toEqual([2, 3, 1]);
      expect(raw.classes).toBe(3);
      expect([...raw.test.y]).toEqual([2, 1, 0]);
      // pixel (image 1, row 1, col 2) = element 1*6 + 1*3 + 2 = 11 -> (11*37) % 256
      expect(raw.train.x[11]).toBe((11 * 37) % 256);
    }
  });

  it('loadDataset scales to [0, 1] and applies limits', async () => {
    writeSet(dir);
    const ds = await loadDataset(`idx:${dir}`, { limitTrain: 3 });
    expect(ds.train.n).toBe(3);
    expect([...ds.train.y].sort()).toEqual([0, 1, 2]);
    expect(ds.test.n).toBe(3);
    expect(ds.features).toBe(6);
    expect(ds.test.x[0]).toBeCloseTo(5 / 255, 7);
    expect(ds.source).toBe(`idx:${dir}`);
  });

  it('fails with a message naming the missing file', async () => {
    writeSet(dir);
    rmSync(join(dir, 't10k-labels-idx1-ubyte'));
    await expect(loadIdxDir(dir)).rejects.toThrow(/missing t10k-labels-idx1-ubyte \(or \.gz\); found/);
    await expect(loadIdxDir(join(dir, 'nope'))).rejects.toThrow(/not a directory/);
  });

  it('rejects images/labels count mismatch, swapped files and unknown test labels', async () => {
    const a = mkdtempSync(join(dir, 'a-'));
    writeSet(a, { trainLabelCount: 5 });
    await expect(loadIdxDir(a)).rejects.toThrow(/train-labels-idx1-ubyte: 5 labels but train-images-idx3-ubyte has 6 images/);

    const b = mkdtempSync(join(dir, 'b-'));
    writeSet(b, { testLabels: [0, 1, 9] });
    await expect(loadIdxDir(b)).rejects.toThrow(/t10k-labels-idx1-ubyte: label 9 at index 2 is outside the training labels 0..2/);

    const c = mkdtempSync(join(dir, 'c-'));
    writeSet(c);
    writeFileSync(join(c, 'train-images-idx3-ubyte'), idx(0x08, [6], [0, 1, 2, 0, 1, 2]));
    await expect(loadIdxDir(c)).rejects.toThrow(/train-images-idx3-ubyte: images need 3 dimensions .* is this a labels file\?/);
  });
});

describe('loadDataset spec and options', () => {
  it('rejects unknown specs and options with the valid choices', async () => {
    await expect(loadDataset('imagenet')).rejects.toThrow(/unknown dataset "imagenet"; use one of iris, fashion-mnist, mnist, idx:DIR, cifar10:DIR/);
    await expect(loadDataset('idx:')).rejects.toThrow(/has no directory/);
    await expect(loadDataset('iris', { limit_train: 3 } as never)).rejects.toThrow(/option limit_train/);
    await expect(loadDataset('iris', { limitTrain: -2 })).rejects.toThrow(/option limitTrain/);
  });
});
