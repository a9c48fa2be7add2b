import { describe, expect, it } from 'vitest';
import { confusionTableHtml } from '../../../host/report/confusion-table.ts';
import { confusionMatrix } from '../../../models/training/confusion.ts';
import { byName, findAll, parseXml, textOf } from './xml-check.ts';

describe('confusionTableHtml', () => {
  const cm = confusionMatrix([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, -1], 2);
  const html = confusionTableHtml(cm, ['T-shirt/top', 'a <b> & "c"'], '6 samples & more');
  const doc = parseXml(html);
  const rows = findAll(doc, byName('tr')).map((tr) => tr.children.filter((c) => typeof c !== 'string').map((c) => textOf(c as never)));

  it('is well-formed XHTML with escaped class names and caption', () => {
    expect(doc.name).toBe('table');
    expect(textOf(findAll(doc, byName('caption'))[0]!)).toBe('6 samples & more');
    expect(rows[0]).toEqual(['true \\ predicted', 'T-shirt/top', 'a <b> & "c"', 'no spike', 'recall']);
  });

  it('has one row per true class with its counts, silent samples and recall', () => {
    expect(rows.slice(1)).toEqual([
      ['T-shirt/top', '3', '1', '0', '75.0 %'],
      ['a <b> & "c"', '0', '1', '1', '50.0 %'],
    ]);
  });

  it('shades nonzero cells only: the diagonal blue, errors orange, darker for a larger share of the row', () => {
    const tds = findAll(doc, byName('td'));
    const style = (i: number) => tds[i]!.attrs.style ?? '';
    // Row 0: 3/4 right (blue, white text), 1/4 wrong (orange), 0 empty cells unshaded.
    expect(style(0)).toMatch(/rgba\(0,114,178,0\.866\).*color: #fff/);
    expect(style(1)).toMatch(/rgba\(213,94,0,0\.500\)/);
    expect(style(2)).toBe('');
    expect(style(4)).toBe('');
  });

  it('refuses a wrong number of class names', () => {
    expect(() => confusionTableHtml(cm, ['one'])).toThrow(/1 class names for 2 classes/);
  });
});
