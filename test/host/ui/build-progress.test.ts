import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildProgressBar } from '../../../host/ui/build-progress.ts';

function lineStream() {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(''), write: (s: string) => chunks.push(s), isTTY: false };
}

const stage = 'characterising the sky130 devices in SPICE';

describe('the chip build bar', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('shows nothing for a build the cache serves at once', () => {
    const s = lineStream();
    const onProgress = buildProgressBar({ stream: s, afterMs: 1000 });
    onProgress({ stage, done: 0, total: 3 });
    for (let k = 1; k <= 3; k++) {
      vi.advanceTimersByTime(5);
      onProgress({ stage, done: k, total: 3, step: `job${k}`, cached: true });
    }
    vi.advanceTimersByTime(5000);
    expect(s.text()).toBe('');
  });

  it('appears once a step takes longer than afterMs, follows the steps, and ends with a summary', () => {
    const s = lineStream();
    const onProgress = buildProgressBar({ stream: s, afterMs: 1000 });
    onProgress({ stage, done: 0, total: 4 });
    vi.advanceTimersByTime(999);
    expect(s.text()).toBe('');
    vi.advanceTimersByTime(2);
    // Shown while the first step is still simulating: its label says why the wait, and that it happens once.
    expect(s.text()).toContain(stage);
    expect(s.text()).toContain('later runs read the results from the cache');
    for (let k = 1; k <= 4; k++) {
      vi.advanceTimersByTime(30_000);
      onProgress({ stage, done: k, total: 4, step: `job${k}`, cached: false });
    }
    const lines = s.text().trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/done 4\/4/);
    expect(lines.at(-1)).toContain('last=job4');
    // Nothing more after the end, however long the process lives.
    const before = s.text();
    vi.advanceTimersByTime(60_000);
    expect(s.text()).toBe(before);
  });
});
