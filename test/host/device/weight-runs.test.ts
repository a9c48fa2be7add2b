import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { changedRuns, fullRuns } from '../../../host/device/weight-runs.ts';

describe('changedRuns', () => {
  it('finds separate runs and merges small gaps', () => {
    const prev = new Uint16Array(100);
    const next = prev.slice();
    next[3] = 1;
    next[4] = 1;
    next[10] = 1; // gap of 5 unchanged: merged with mergeGap 16
    next[60] = 1; // far away: own run
    expect(changedRuns(prev, next, 1000)).toEqual([
      { offset: 3, count: 8 },
      { offset: 60, count: 1 },
    ]);
    expect(changedRuns(prev, next, 1000, 2)).toEqual([
      { offset: 3, count: 2 },
      { offset: 10, count: 1 },
      { offset: 60, count: 1 },
    ]);
  });

  it('returns nothing when nothing changed', () => {
    expect(changedRuns(new Uint16Array(10), new Uint16Array(10), 4)).toEqual([]);
  });

  it('covers every change, stays sorted and disjoint, respects maxRun, and applying the runs reproduces next', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 400 })
          .chain((n) => fc.tuple(fc.uint16Array({ minLength: n, maxLength: n, max: 3 }), fc.uint16Array({ minLength: n, maxLength: n, max: 3 }))),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 0, max: 20 }),
        ([prev, next], maxRun, gap) => {
          const runs = changedRuns(prev, next, maxRun, gap);
          const device = prev.slice();
          let end = -1;
          for (const r of runs) {
            expect(r.count).toBeGreaterThan(0);
            expect(r.count).toBeLessThanOrEqual(maxRun);
            expect(r.offset).toBeGreaterThanOrEqual(end + 1);
            end = r.offset + r.count - 1;
            // a run starts and ends on a changed code: never re-sends useless edges
            expect(prev[r.offset]).not.toBe(next[r.offset]);
            expect(prev[end]).not.toBe(next[end]);
            device.set(next.subarray(r.offset, r.offset + r.count), r.offset);
          }
          expect(Array.from(device)).toEqual(Array.from(next));
        },
      ),
    );
  });

  it('refuses arrays of different lengths', () => {
    expect(() => changedRuns(new Uint16Array(3), new Uint16Array(4), 8)).toThrow(/same layer/);
  });
});

describe('fullRuns', () => {
  it('tiles [0, total) with chunks of at most maxRun', () => {
    expect(fullRuns(10, 4)).toEqual([
      { offset: 0, count: 4 },
      { offset: 4, count: 4 },
      { offset: 8, count: 2 },
    ]);
    expect(fullRuns(0, 4)).toEqual([]);
  });
});
