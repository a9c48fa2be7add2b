/**
 * What `spikeloop train` and `deploy` show of a test confusion matrix: `confusion.json` in a run folder, a
 * per-class table on the terminal, and a report section with the shaded matrix.
 */
import { classFigures, confusionJson, type ConfusionMatrix } from '../../models/training/confusion.ts';
import { writeFileAtomic } from '../../models/io/atomic-file.ts';
import { confusionTableHtml } from '../report/confusion-table.ts';
import type { ReportSection } from '../report/html-report.ts';
import type { RunDir } from '../runs/run-dir.ts';
import { formatPercent } from '../ui/format.ts';
import { renderTable } from '../ui/table.ts';

export const CONFUSION_FILE = 'confusion.json';

/** One row per class: samples, recall, precision, silent samples, the class it is most taken for. */
export function classTableRows(cm: ConfusionMatrix, classNames: readonly string[]): Record<string, string | number>[] {
  return classFigures(cm).map((f, t) => ({
    class: classNames[t]!,
    n: f.support,
    recall: Number.isNaN(f.recall) ? '-' : formatPercent(f.recall),
    precision: Number.isNaN(f.precision) ? '-' : formatPercent(f.precision),
    'no spike': f.noSpike,
    'most taken for': f.confusedWith < 0 ? '-' : `${classNames[f.confusedWith]!} (${f.confusedCount}, ${formatPercent(f.confusedCount / f.support)})`,
  }));
}

/**
 * Writes `confusion.json` and returns the terminal table and the report section. `what` says which
 * samples and solver the matrix counts ("test part, exact solver").
 */
export async function writeConfusion(
  run: RunDir,
  cm: ConfusionMatrix,
  classNames: readonly string[],
  what: string,
): Promise<{ table: string; section: ReportSection }> {
  // One line per row of counts, so the file reads as the matrix it is.
  const text = JSON.stringify({ what, ...confusionJson(cm, classNames) }, null, 1).replace(
    /\[\s+([\d,\s]+?)\s+\]/g,
    (_, nums: string) => `[${nums.split(/,\s*/).join(', ')}]`,
  );
  await writeFileAtomic(run.file(CONFUSION_FILE), text + '\n');
  const rows = classTableRows(cm, classNames);
  return {
    table: renderTable(rows, { title: `per class (${what})` }),
    section: {
      title: 'Confusion matrix',
      blocks: [
        {
          kind: 'html',
          html: confusionTableHtml(
            cm,
            classNames,
            `${cm.n} samples, ${what}; rows: true class, columns: predicted class (earliest output spike); cells shaded by their share of the row`,
          ),
        },
        { kind: 'table', rows },
      ],
    },
  };
}
