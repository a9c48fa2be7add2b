/**
 * Which codes to send when only some weights changed (in-situ training): runs of changed
 * codes, neighbouring runs merged when the unchanged gap between them costs fewer bytes
 * than a new frame would, then cut to the device's chunk size.
 */

/** A span [offset, offset + count) of weight memory. */
export interface CodeRun {
  offset: number;
  count: number;
}

/**
 * Runs covering every index where prev and next differ. Gaps of at most `mergeGap`
 * unchanged codes inside a run are re-sent (cheaper than a frame header); no run exceeds
 * `maxRun` codes.
 */
export function changedRuns(prev: Uint16Array, next: Uint16Array, maxRun: number, mergeGap = 16): CodeRun[] {
  if (prev.length !== next.length) throw new RangeError(`prev has ${prev.length} codes, next ${next.length}; they must be the same layer`);
  if (!Number.isInteger(maxRun) || maxRun < 1) throw new RangeError(`maxRun must be a whole number >= 1, got ${maxRun}`);
  const runs: CodeRun[] = [];
  const n = next.length;
  let i = 0;
  while (i < n) {
    if (prev[i] === next[i]) {
      i++;
      continue;
    }
    const start = i;
    let lastChanged = i;
    i++;
    while (i < n && i - start < maxRun) {
      if (prev[i] !== next[i]) lastChanged = i;
      else if (i - lastChanged > mergeGap) break;
      i++;
    }
    runs.push({ offset: start, count: lastChanged - start + 1 });
    i = lastChanged + 1;
  }
  return runs;
}

/** Contiguous chunks of at most `maxRun` codes covering [0, total). */
export function fullRuns(total: number, maxRun: number): CodeRun[] {
  if (!Number.isInteger(maxRun) || maxRun < 1) throw new RangeError(`maxRun must be a whole number >= 1, got ${maxRun}`);
  const runs: CodeRun[] = [];
  for (let off = 0; off < total; off += maxRun) runs.push({ offset: off, count: Math.min(maxRun, total - off) });
  return runs;
}
