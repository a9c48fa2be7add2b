import { describe, expect, it } from 'vitest';
import { renderKeyValue, renderTable } from '../../../host/ui/table.ts';

const rows = [
  { epoch: 1, loss: 0.54321, acc: 0.8, note: 'warm-up' },
  { epoch: 10, loss: 0.0123, acc: 0.9132, note: null },
];

describe('renderTable', () => {
  it('aligns columns: numbers right with shared decimals, text left', () => {
    expect(renderTable(rows)).toBe(
      ['epoch    loss     acc  note', '-----  ------  ------  -------', '    1  0.5432  0.8000  warm-up', '   10  0.0123  0.9132  -', ''].join('\n'),
    );
  });

  it('honours column selection, titles, fixed decimals and custom formats', () => {
    const out = renderTable(rows, {
      columns: [
        { key: 'epoch', title: '#' },
        { key: 'acc', title: 'accuracy', decimals: 1 },
        { key: 'loss', format: (v) => `${(v as number) * 100}%`, align: 'right' },
      ],
    });
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe(' #  accuracy     loss');
    expect(lines[2]).toBe(' 1       0.8  54.321%');
    expect(lines[3]).toBe('10       0.9    1.23%');
  });

  it('markdown and box styles have equal-width rows', () => {
    const md = renderTable(rows, { style: 'markdown' }).trimEnd().split('\n');
    expect(md[1]).toBe('| ----: | -----: | -----: | ------- |');
    expect(new Set(md.map((l) => l.length)).size).toBe(1);
    const box = renderTable(rows, { style: 'box', title: 'Summary' }).trimEnd().split('\n');
    expect(box[0]).toBe('Summary');
    expect(new Set(box.slice(1).map((l) => l.length)).size).toBe(1);
  });

  it('handles NaN, infinities, booleans, objects and newlines', () => {
    const out = renderTable([
      { a: Number.NaN, b: true, c: { x: 1 }, d: 'two\nlines' },
      { a: Infinity, b: false, c: [1], d: '' },
    ]);
    expect(out).toContain('NaN');
    expect(out).toContain('inf');
    expect(out).toContain('yes');
    expect(out).toContain('{"x":1}');
    expect(out).toContain('two lines');
  });
});

describe('renderKeyValue', () => {
  it('aligns keys', () => {
    expect(renderKeyValue({ accuracy: 0.91321, device: 'mock:behavioral?seed=7', epochs: 10 })).toBe(
      ['accuracy  0.9132', 'device    mock:behavioral?seed=7', 'epochs    10', ''].join('\n'),
    );
  });
});
