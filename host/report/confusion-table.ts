/**
 * A confusion matrix (models/training/confusion.ts) as an XHTML table for run reports: counts in
 * the cells, each cell shaded by its share of the true class's samples (the diagonal blue, the
 * errors orange), so the mixed-up pairs stand out without reading numbers. Rows are true classes,
 * columns predictions, then "no spike" and the class's recall.
 */
import type { ConfusionMatrix } from '../../models/training/confusion.ts';
import { classFigures } from '../../models/training/confusion.ts';
import { escapeXml } from './escape-xml.ts';

const CSS_CLASS = 'confusion';

/** Background for a share s in [0, 1] of a row: light to saturated, white text past half. */
function shade(s: number, diagonal: boolean): string {
  if (!(s > 0)) return '';
  // Square root: a 2 % confusion must still be visible beside a 90 % diagonal.
  const a = Math.min(1, Math.sqrt(s)).toFixed(3);
  const rgb = diagonal ? '0,114,178' : '213,94,0';
  return ` style="background: rgba(${rgb},${a});${s > 0.5 ? ' color: #fff;' : ''}"`;
}

export function confusionTableHtml(cm: ConfusionMatrix, classNames: readonly string[], caption?: string): string {
  if (classNames.length !== cm.classes) throw new RangeError(`confusion table: ${classNames.length} class names for ${cm.classes} classes`);
  const k = cm.classes;
  const figures = classFigures(cm);
  const head =
    '<tr><th>true \\ predicted</th>' +
    classNames.map((c) => `<th class="num">${escapeXml(c)}</th>`).join('') +
    '<th class="num">no spike</th><th class="num">recall</th></tr>';
  const rows = classNames.map((name, t) => {
    const support = figures[t]!.support;
    const cells: string[] = [];
    for (let p = 0; p <= k; p++) {
      const c = cm.counts[t * (k + 1) + p]!;
      cells.push(`<td class="num"${shade(support > 0 ? c / support : 0, p === t)}>${c}</td>`);
    }
    const recall = figures[t]!.recall;
    return `<tr><th scope="row">${escapeXml(name)}</th>${cells.join('')}<td class="num">${Number.isNaN(recall) ? '-' : `${(100 * recall).toFixed(1)} %`}</td></tr>`;
  });
  const cap = caption ? `<caption>${escapeXml(caption)}</caption>` : '';
  return `<table class="${CSS_CLASS}">${cap}<thead>${head}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody></table>`;
}
