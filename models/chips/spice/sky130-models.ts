/**
 * The sky130 model card bundled in eecircuit-engine, for engines that need it as a file (system
 * ngspice). The package writes the card into its WebAssembly file system as `/modelcard.skywater`
 * from one string literal in its ES module; that literal is read here, so both engines simulate
 * with byte-identical models.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = 'eecircuit-engine';
const MARKER = 'writeFile("/modelcard.skywater", ';

/** The installed eecircuit-engine folder, found the way Node resolves packages (walking up). */
export function eecircuitPackageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'node_modules', PACKAGE);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error(`package '${PACKAGE}' is not installed (npm install ${PACKAGE})`);
    dir = up;
  }
}

let cachedVersion: string | undefined;

export function eecircuitVersion(): string {
  if (cachedVersion === undefined) {
    const pkg = JSON.parse(readFileSync(join(eecircuitPackageDir(), 'package.json'), 'utf8')) as { version?: unknown };
    cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  }
  return cachedVersion;
}

let cachedCard: string | undefined;

/** The text of `modelcard.skywater` exactly as the embedded engine sees it. */
export function sky130ModelCard(): string {
  if (cachedCard !== undefined) return cachedCard;
  const dir = eecircuitPackageDir();
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { module?: unknown };
  const file = join(dir, typeof pkg.module === 'string' ? pkg.module : 'dist/eecircuit-engine.mjs');
  const src = readFileSync(file, 'utf8');
  const at = src.indexOf(MARKER);
  if (at < 0) throw new Error(`${file} does not embed /modelcard.skywater where expected; unsupported ${PACKAGE} version ${eecircuitVersion()}`);
  const start = at + MARKER.length;
  if (src[start] !== '"') throw new Error(`${file}: the sky130 model card is not a plain string literal; unsupported ${PACKAGE} version`);
  let end = start + 1;
  while (end < src.length && src[end] !== '"') end += src[end] === '\\' ? 2 : 1;
  const card = JSON.parse(src.slice(start, end + 1)) as string;
  for (const dev of ['sky130_fd_pr__nfet_01v8', 'sky130_fd_pr__pfet_01v8']) {
    if (!new RegExp(`\\.subckt\\s+${dev}\\s`).test(card)) throw new Error(`the bundled sky130 model card lacks subcircuit ${dev}`);
  }
  cachedCard = card;
  return card;
}
