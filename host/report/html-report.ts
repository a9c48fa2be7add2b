/**
 * Self-contained HTML run reports: one file with inline CSS and inline SVG plots, no
 * scripts, no external resources, so it opens anywhere and can be attached or archived
 * as is. The markup is also well-formed XML (XHTML syntax), so tools can parse it.
 */
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import { cellText as cell, tableCells, type Column } from '../ui/table.ts';
import { escapeXml } from './escape-xml.ts';

export type ReportBlock =
  /** Paragraphs; blank lines separate them. Plain text (escaped). */
  | { kind: 'text'; text: string }
  /** Preformatted text: a command line, a log excerpt, a config. */
  | { kind: 'code'; text: string }
  | { kind: 'table'; rows: readonly Readonly<Record<string, unknown>>[]; columns?: (string | Column)[]; caption?: string }
  /** An SVG document from svg-plot.ts (or any well-formed SVG). */
  | { kind: 'plot'; svg: string; caption?: string }
  | { kind: 'kv'; pairs: Readonly<Record<string, unknown>> | readonly (readonly [string, unknown])[]; caption?: string }
  /** A trusted, well-formed XHTML fragment inserted as is. */
  | { kind: 'html'; html: string };

export interface ReportSection {
  title: string;
  blocks: ReportBlock[];
}

export interface ReportSpec {
  title: string;
  subtitle?: string;
  /** Key figures shown at the top (accuracy, device, duration...). */
  summary?: Readonly<Record<string, unknown>> | readonly (readonly [string, unknown])[];
  sections: ReportSection[];
  /** Shown in the footer; default: now. */
  generated?: Date | string;
  footer?: string;
}

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.2em; margin: 1.8em 0 0.6em; padding-bottom: 0.2em; border-bottom: 1px solid #ddd; }
.subtitle { color: #555; margin: 0 0 1em; }
nav ol { margin: 0.4em 0 0; padding-left: 1.4em; columns: 2; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { background: none; font-weight: 500; color: #444; }
caption { caption-side: bottom; color: #666; font-size: 0.9em; padding-top: 4px; text-align: left; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; margin: 1em 0; }
.summary div { border: 1px solid #ddd; border-radius: 6px; padding: 6px 12px; min-width: 120px; }
.summary .k { display: block; font-size: 0.8em; color: #666; }
.summary .v { display: block; font-size: 1.15em; font-weight: 600; font-variant-numeric: tabular-nums; }
figure { margin: 0.8em 0 1.2em; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #666; font-size: 0.9em; }
pre { background: #f5f5f5; padding: 8px 10px; overflow-x: auto; font-size: 0.88em; }
footer { margin-top: 3em; color: #888; font-size: 0.85em; }
`;

type Pairs = Readonly<Record<string, unknown>> | readonly (readonly [string, unknown])[];

function entries(p: Pairs): [string, unknown][] {
  return Array.isArray(p) ? (p as [string, unknown][]) : Object.entries(p as Record<string, unknown>);
}

/** Strip an XML declaration or doctype so an SVG document can be inlined. */
function inlineSvg(svg: string): string {
  let s = svg.trimStart();
  for (;;) {
    if (s.startsWith('<?xml')) s = s.slice(s.indexOf('?>') + 2).trimStart();
    else if (s.startsWith('<!DOCTYPE') || s.startsWith('<!doctype')) s = s.slice(s.indexOf('>') + 1).trimStart();
    else break;
  }
  if (!s.startsWith('<svg')) throw new TypeError('html-report: a plot block needs an SVG document (it must start with <svg)');
  return s;
}

function block(b: ReportBlock): string {
  switch (b.kind) {
    case 'text':
      return b.text
        .split(/\n\s*\n/)
        .map((p) => p.trim())
        .filter(Boolean)
        .map((p) => `<p>${escapeXml(p)}</p>`)
        .join('\n');
    case 'code':
      return `<pre>${escapeXml(b.text)}</pre>`;
    case 'table': {
      const { titles, cells, align } = tableCells(b.rows, b.columns);
      const cls = (j: number) => (align[j] === 'right' ? ' class="num"' : '');
      const head = titles.map((t, j) => `<th${cls(j)}>${escapeXml(t)}</th>`).join('');
      const body = cells.map((r) => `<tr>${r.map((c, j) => `<td${cls(j)}>${escapeXml(c)}</td>`).join('')}</tr>`).join('\n');
      const cap = b.caption ? `<caption>${escapeXml(b.caption)}</caption>` : '';
      return `<table>${cap}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
    }
    case 'plot':
      return `<figure>${inlineSvg(b.svg)}${b.caption ? `<figcaption>${escapeXml(b.caption)}</figcaption>` : ''}</figure>`;
    case 'kv': {
      const rows = entries(b.pairs)
        .map(([k, v]) => `<tr><th scope="row">${escapeXml(k)}</th><td${typeof v === 'number' ? ' class="num"' : ''}>${escapeXml(cell(v))}</td></tr>`)
        .join('\n');
      return `<table class="kv">${b.caption ? `<caption>${escapeXml(b.caption)}</caption>` : ''}<tbody>\n${rows}\n</tbody></table>`;
    }
    case 'html':
      return b.html;
  }
}

/** The report as one HTML string. */
export function renderHtmlReport(spec: ReportSpec): string {
  const generated = spec.generated instanceof Date ? spec.generated.toISOString() : (spec.generated ?? new Date().toISOString());
  const out: string[] = [
    '<!DOCTYPE html>',
    '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
    '<head>',
    '<meta charset="utf-8"/>',
    '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
    '<meta name="generator" content="spikeloop"/>',
    `<title>${escapeXml(spec.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body><main>',
    `<h1>${escapeXml(spec.title)}</h1>`,
  ];
  if (spec.subtitle) out.push(`<p class="subtitle">${escapeXml(spec.subtitle)}</p>`);
  if (spec.summary) {
    const items = entries(spec.summary).map(([k, v]) => `<div><span class="k">${escapeXml(k)}</span><span class="v">${escapeXml(cell(v))}</span></div>`);
    out.push(`<section class="summary">${items.join('')}</section>`);
  }
  if (spec.sections.length > 2) {
    out.push(
      `<nav><strong>Contents</strong><ol>${spec.sections.map((s, i) => `<li><a href="#sec-${i + 1}">${escapeXml(s.title)}</a></li>`).join('')}</ol></nav>`,
    );
  }
  spec.sections.forEach((s, i) => {
    out.push(`<section id="sec-${i + 1}">`, `<h2>${escapeXml(s.title)}</h2>`);
    for (const b of s.blocks) out.push(block(b));
    out.push('</section>');
  });
  out.push(`<footer>${spec.footer ? `${escapeXml(spec.footer)} · ` : ''}generated ${escapeXml(generated)} by spikeloop</footer>`);
  out.push('</main></body>', '</html>', '');
  return out.join('\n');
}

/** Render and write atomically (a reader never sees half a report). */
export async function writeHtmlReport(path: string, spec: ReportSpec): Promise<void> {
  await writeFileAtomic(path, renderHtmlReport(spec));
}
