import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderHtmlReport, writeHtmlReport, type ReportSpec } from '../../../host/report/html-report.ts';
import { histogram, lineChart } from '../../../host/report/svg-plot.ts';
import { byClass, byName, findAll, parseXml, textOf, type XmlElement } from './xml-check.ts';

const spec = (): ReportSpec => ({
  title: 'Run <train> & "finetune"',
  subtitle: 'fashion-mnist on mock:behavioral?seed=7&x=1',
  summary: { 'test accuracy': 0.91321, device: 'mock:behavioral', epochs: 10, silent: Infinity },
  generated: new Date('2024-06-01T12:00:00Z'),
  sections: [
    {
      title: 'Training',
      blocks: [
        { kind: 'text', text: 'First paragraph with <script>alert(1)</script>.\n\nSecond & last.' },
        { kind: 'plot', svg: '<?xml version="1.0"?>\n' + lineChart({ series: [{ name: 'loss', y: [3, 2, 1] }] }), caption: 'loss per epoch' },
        {
          kind: 'table',
          caption: 'per epoch',
          rows: [
            { epoch: 1, loss: 0.54321, acc: 0.8 },
            { epoch: 2, loss: 0.0123, acc: 0.91321 },
          ],
        },
      ],
    },
    {
      title: 'Device',
      blocks: [
        {
          kind: 'kv',
          pairs: [
            ['firmware', '1.2.0'],
            ['ticks/s', 1e6],
          ],
        },
        { kind: 'code', text: 'spikeloop train --device mock: <x>' },
      ],
    },
    {
      title: 'Errors',
      blocks: [
        { kind: 'plot', svg: histogram({ series: [{ name: 'err', values: [1, 2, 2, 3] }] }) },
        { kind: 'html', html: '<p class="raw">raw <b>ok</b></p>' },
      ],
    },
  ],
});

function cellsOf(table: XmlElement): string[][] {
  return findAll(table, byName('tr')).map((tr) => tr.children.filter((c): c is XmlElement => typeof c !== 'string').map(textOf));
}

describe('renderHtmlReport', () => {
  const html = renderHtmlReport(spec());
  const doc = parseXml(html);

  it('is a well-formed XHTML document with the title escaped', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(doc.name).toBe('html');
    expect(textOf(findAll(doc, byName('title'))[0]!)).toBe('Run <train> & "finetune"');
    expect(textOf(findAll(doc, byName('h1'))[0]!)).toBe('Run <train> & "finetune"');
    expect(html).not.toContain('<script>');
    expect(findAll(doc, byName('script')).length).toBe(0);
  });

  it('has one h2 per section and a table of contents linking to them', () => {
    const h2 = findAll(doc, byName('h2')).map(textOf);
    expect(h2).toEqual(['Training', 'Device', 'Errors']);
    const links = findAll(doc, byName('a')).map((a) => a.attrs.href);
    expect(links).toEqual(['#sec-1', '#sec-2', '#sec-3']);
    for (const id of ['sec-1', 'sec-2', 'sec-3']) expect(findAll(doc, (e) => e.attrs.id === id).length).toBe(1);
  });

  it('puts numbers in the right cells, formatted per column', () => {
    const table = findAll(doc, byName('table')).find((t) => findAll(t, byName('caption')).some((c) => textOf(c) === 'per epoch'))!;
    expect(cellsOf(table)).toEqual([
      ['epoch', 'loss', 'acc'],
      ['1', '0.5432', '0.8000'],
      ['2', '0.0123', '0.9132'],
    ]);
    expect(findAll(table, byClass('num')).length).toBe(9);
  });

  it('shows the summary and key/value pairs', () => {
    const summary = findAll(doc, byClass('summary'))[0]!;
    const pairs = findAll(summary, byName('div')).map((d) => [textOf(findAll(d, byClass('k'))[0]!), textOf(findAll(d, byClass('v'))[0]!)]);
    expect(pairs).toEqual([
      ['test accuracy', '0.9132'],
      ['device', 'mock:behavioral'],
      ['epochs', '10'],
      ['silent', 'inf'],
    ]);
    const kv = findAll(doc, byClass('kv'))[0]!;
    expect(cellsOf(kv)).toEqual([
      ['firmware', '1.2.0'],
      ['ticks/s', '1000000'],
    ]);
  });

  it('inlines plots as SVG elements inside figures (XML declaration removed)', () => {
    const figures = findAll(doc, byName('figure'));
    expect(figures.length).toBe(2);
    for (const f of figures) expect(findAll(f, byName('svg')).length).toBe(1);
    expect(html).not.toContain('<?xml');
    expect(textOf(findAll(figures[0]!, byName('figcaption'))[0]!)).toBe('loss per epoch');
  });

  it('keeps paragraphs, code and raw fragments', () => {
    expect(findAll(doc, byName('p')).map(textOf)).toContain('First paragraph with <script>alert(1)</script>.');
    expect(findAll(doc, byName('p')).map(textOf)).toContain('Second & last.');
    expect(textOf(findAll(doc, byName('pre'))[0]!)).toBe('spikeloop train --device mock: <x>');
    expect(findAll(doc, byClass('raw')).length).toBe(1);
    expect(textOf(findAll(doc, byName('footer'))[0]!)).toContain('2024-06-01T12:00:00.000Z');
  });

  it('refuses a plot block that is not SVG', () => {
    expect(() => renderHtmlReport({ title: 't', sections: [{ title: 's', blocks: [{ kind: 'plot', svg: '<png/>' }] }] })).toThrow(/needs an SVG document/);
  });
});

describe('writeHtmlReport', () => {
  it('writes the same document atomically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spikeloop-report-'));
    try {
      const p = join(dir, 'report.html');
      const s = spec();
      await writeHtmlReport(p, s);
      expect(readFileSync(p, 'utf8')).toBe(renderHtmlReport(s));
      expect(readdirSync(dir)).toEqual(['report.html']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
