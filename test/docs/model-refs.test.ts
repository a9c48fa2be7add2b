/**
 * Every citation of the model document in the code and the READMEs names a section and an
 * equation that docs/MODEL.md has: `docs/MODEL.md §5.2`, `§9`, `eq. (4)`, `eqs. (2)-(3)`, `eq. 4`.
 * Sections are the document's numbered headings (`## 5. ...`, `### 5.2 ...`); equations are the
 * lines of its indented displays that end in `(N)`. The old design note's name must not come back.
 */

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MODEL = path.join(ROOT, 'docs', 'MODEL.md');
const SELF = fileURLToPath(import.meta.url);
const SKIP_DIRS = new Set(['node_modules', '.git', 'runs', '.cache']);
const EXTENSIONS = new Set(['.ts', '.md', '.js', '.mjs']);

interface ModelAnchors {
  sections: Set<string>;
  equations: Set<number>;
  /** Equation numbers displayed more than once. */
  duplicates: number[];
}

/** Section numbers and displayed equation numbers of the model document's text. */
function modelAnchors(text: string): ModelAnchors {
  const sections = new Set<string>();
  const equations = new Set<number>();
  const duplicates: number[] = [];
  for (const line of text.split('\n')) {
    const h = /^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s/.exec(line);
    if (h) sections.add(h[1]!);
    // A display: an indented line (a code block in Markdown) ending in its number.
    const e = /^ {4}\S.*\s\((\d+)\)\s*$/.exec(line);
    if (e) {
      const n = Number(e[1]);
      if (equations.has(n)) duplicates.push(n);
      equations.add(n);
    }
  }
  return { sections, equations, duplicates };
}

interface Citation {
  kind: 'section' | 'equation';
  target: string;
  at: string;
}

/** Every section (`§N`, `§N.M`, `§N-M`) and equation (`eq. (N)`, `eqs. (N)-(M)`, `eq. N`) cited in `text`. */
function citations(text: string, file: string): Citation[] {
  const out: Citation[] = [];
  const lines = text.split('\n');
  lines.forEach((line, k) => {
    const at = `${file}:${k + 1}`;
    for (const m of line.matchAll(/§\s*(\d+(?:\.\d+)*)(?:\s*-\s*(\d+(?:\.\d+)*))?/g)) {
      out.push({ kind: 'section', target: m[1]!, at });
      if (m[2]) out.push({ kind: 'section', target: m[2], at });
    }
    for (const m of line.matchAll(/\beqs?\.\s*\(?(\d+)\)?(?:\s*-\s*\(?(\d+)\)?)?/gi)) {
      out.push({ kind: 'equation', target: m[1]!, at });
      if (m[2]) out.push({ kind: 'equation', target: m[2], at });
    }
  });
  return out;
}

function sourceFiles(dir: string, acc: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) sourceFiles(path.join(dir, entry.name), acc);
    } else if (EXTENSIONS.has(path.extname(entry.name))) {
      acc.push(path.join(dir, entry.name));
    }
  }
  return acc;
}

/** Citations whose section or equation the anchors lack. */
function danglingCitations(cites: readonly Citation[], anchors: ModelAnchors): Citation[] {
  return cites.filter((c) => (c.kind === 'section' ? !anchors.sections.has(c.target) : !anchors.equations.has(Number(c.target))));
}

describe('docs/MODEL.md anchors', () => {
  const anchors = modelAnchors(fs.readFileSync(MODEL, 'utf8'));

  it('numbers every equation once and keeps (1)-(4), which the code has cited from the start', () => {
    expect(anchors.duplicates).toEqual([]);
    for (const n of [1, 2, 3, 4]) expect(anchors.equations.has(n), `eq. (${n})`).toBe(true);
    // Numbered without gaps, so a renumbering shows up here.
    const sorted = [...anchors.equations].sort((a, b) => a - b);
    expect(sorted).toEqual(sorted.map((_, k) => k + 1));
  });

  it('reads sections and equations the way the check below relies on', () => {
    const sample = ['## 3. Units', '### 3.1 Ticks', '', '    du/dt = A - G u                  (2)', '    no number here', 'eq. (7) in prose'].join('\n');
    const a = modelAnchors(sample);
    expect([...a.sections]).toEqual(['3', '3.1']);
    expect([...a.equations]).toEqual([2]);
    const cites = citations('see docs/MODEL.md §3.1 and §4, eqs. (2)-(3), eq. 7', 'x.ts');
    expect(cites.map((c) => `${c.kind} ${c.target}`)).toEqual(['section 3.1', 'section 4', 'equation 2', 'equation 3', 'equation 7']);
    expect(danglingCitations(cites, a).map((c) => c.target)).toEqual(['4', '3', '7']);
  });
});

describe('citations of the model document', () => {
  const anchors = modelAnchors(fs.readFileSync(MODEL, 'utf8'));
  const files = sourceFiles(ROOT).filter((f) => f !== SELF);
  const all = files.flatMap((f) => citations(fs.readFileSync(f, 'utf8'), path.relative(ROOT, f)));

  it('finds the citations in the code (the check below is not vacuous)', () => {
    expect(all.filter((c) => c.kind === 'section' && !c.at.startsWith('docs/')).length).toBeGreaterThan(20);
    expect(all.filter((c) => c.kind === 'equation' && !c.at.startsWith('docs/')).length).toBeGreaterThan(20);
  });

  it('every cited section and equation exists in docs/MODEL.md', () => {
    const bad = danglingCitations(all, anchors).map((c) => `${c.at}: ${c.kind === 'section' ? '§' : 'eq. '}${c.target}`);
    expect(bad).toEqual([]);
  });

  it('nothing cites the design note that is not in the repository', () => {
    const stale = files.filter((f) => fs.readFileSync(f, 'utf8').includes('PNN-MODEL')).map((f) => path.relative(ROOT, f));
    expect(stale).toEqual([]);
  });
});
