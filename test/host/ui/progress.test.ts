import { describe, expect, it } from 'vitest';
import { Progress } from '../../../host/ui/progress.ts';

function fakeStream(isTTY: boolean, columns?: number) {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(''), write: (s: string) => chunks.push(s), isTTY, columns };
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** `n` steps of `ms` each. */
function steps(p: Progress, c: ReturnType<typeof clock>, n: number, ms: number): void {
  for (let i = 0; i < n; i++) {
    c.advance(ms);
    p.tick();
  }
}

describe('Progress in line mode (CI, files)', () => {
  it('prints one line per 10% and a summary, however many updates there are', () => {
    const s = fakeStream(false);
    const c = clock();
    const p = new Progress({ total: 10_000, label: 'train', stream: s, now: c.now });
    for (let i = 1; i <= 10_000; i++) {
      c.advance(1);
      p.tick(1, { loss: 1 / i });
    }
    p.finish({ acc: 0.91 });
    const lines = s.text().trimEnd().split('\n');
    expect(lines.length).toBe(11); // 10%, 20%, ..., 100% + summary
    expect(lines[0]).toMatch(/^train +10% 1000\/10000 1k it\/s ETA 9\.0s loss=0\.001$/);
    expect(lines[10]).toMatch(/^train done 10000\/10000 in 10s \(1k it\/s\) loss=1e-4 acc=0\.91$/);
    expect(s.text()).not.toContain('\r');
  });

  it('keeps the work rate across a pause (an evaluation between epochs) and counts recurring pauses in the ETA', () => {
    const c = clock();
    const p = new Progress({ total: 2000, stream: fakeStream(false), now: c.now });
    steps(p, c, 1000, 10); // 100 it/s for 10 s
    expect(p.rate).toBeCloseTo(100, 6);
    expect(p.eta).toBeCloseTo(10, 6);
    c.advance(20_000); // a 20 s pause, then one step
    p.tick();
    // Not 1 step per 20 s: the work rate, the pause left out.
    expect(p.rate).toBeCloseTo(100, 6);
    // 999 steps at 100/s, plus 20 s of pause per 1001 steps done, for the 999 to come.
    expect(p.eta).toBeCloseTo(999 / 100 + (999 * 20) / 1001, 6);
    steps(p, c, 1100, 10);
    expect(p.rate).toBeCloseTo(100, 6);
  });

  it('reads the work rate, not a diluted one, in the seconds after a pause shorter than the rate window', () => {
    const c = clock();
    const p = new Progress({ total: 4000, stream: fakeStream(false), now: c.now });
    steps(p, c, 1000, 10);
    c.advance(6000); // a 6 s test pass
    p.tick();
    steps(p, c, 200, 10);
    // The wall-clock window would hold 4 s of steps and the pause: 601 steps in 10 s.
    expect(p.rate).toBeCloseTo(100, 6);
    expect(p.eta).toBeCloseTo(2799 / 100 + (2799 * 6) / 1201, 6);
  });

  it('follows a real slowdown, which is no pause, and never calls the steps of a slow loop pauses', () => {
    const c = clock();
    const p = new Progress({ total: 10_000, stream: fakeStream(false), now: c.now });
    steps(p, c, 1000, 10);
    steps(p, c, 1000, 30); // another job took the cores: 3x slower
    expect(p.rate).toBeCloseTo(1000 / 30, 6);
    expect(p.eta).toBeCloseTo(8000 / (1000 / 30), 6);
    const slow = new Progress({ total: 100, stream: fakeStream(false), now: c.now });
    for (let i = 0; i < 10; i++) {
      c.advance(i % 2 === 0 ? 2000 : 5000); // irregular multi-second steps
      slow.tick();
    }
    expect(slow.rate).toBeCloseTo(2 / 7, 6);
    expect(slow.eta).toBeCloseTo(90 * 3.5, 6);
  });

  it('adds a line when nothing was printed for everySeconds (slow work, unknown total)', () => {
    const s = fakeStream(false);
    const c = clock();
    const p = new Progress({ stream: s, now: c.now, everySeconds: 30, unit: 'batches' });
    for (let i = 0; i < 100; i++) {
      c.advance(1000);
      p.tick();
    }
    const lines = s.text().trimEnd().split('\n');
    expect(lines.length).toBe(3); // at 30 s, 60 s, 90 s
    expect(lines[0]).toBe('30 batches 1 batches/s');
  });

  it('log() prints plain lines', () => {
    const s = fakeStream(false);
    const p = new Progress({ total: 2, stream: s, now: () => 0 });
    p.log('calibrated');
    expect(s.text()).toBe('calibrated\n');
  });
});

describe('Progress on a TTY', () => {
  it('redraws in place, throttled, with bar, percent, rate, ETA and fields', () => {
    const s = fakeStream(true, 200);
    const c = clock();
    const p = new Progress({ total: 100, label: 'ep 1', stream: s, now: c.now, barWidth: 10, minRedrawMs: 100 });
    for (let i = 0; i < 100; i++) {
      c.advance(10);
      p.tick(1, { loss: 0.5 });
    }
    // 100 updates 10 ms apart with a 100 ms throttle: about 10 redraws, not 100
    expect(s.chunks.length).toBeGreaterThanOrEqual(9);
    expect(s.chunks.length).toBeLessThanOrEqual(11);
    const last = s.chunks[s.chunks.length - 1]!;
    expect(last.startsWith('\r')).toBe(true);
    expect(last.endsWith('\x1b[K')).toBe(true);
    expect(last).toContain('100 it/s');
    expect(last).toContain('loss=0.5');
    expect(last).toMatch(/ep 1 █{10} 100% 100\/100/);
    // first draw at done = 1, then every 100 ms = every 10 units: 1, 11, 21, 31, 41, 51, ...
    const mid = s.chunks[5]!;
    expect(mid).toMatch(/█{5}░{5} {2}51% 51\/100 100 it\/s ETA 0\.49s loss=0\.5/);
    p.finish();
    expect(s.text().endsWith('\n')).toBe(true);
    p.finish(); // idempotent
    expect(s.text().split('\n').length).toBe(2);
  });

  it('log() clears the bar line, prints, and redraws the bar', () => {
    const s = fakeStream(true);
    const p = new Progress({ total: 4, stream: s, now: () => 0 });
    p.update(2);
    s.chunks.length = 0;
    p.log('hello');
    expect(s.chunks[0]).toBe('\r\x1b[Khello\n');
    expect(s.chunks[1]).toMatch(/^\r.* 50% 2\/4/);
  });

  it('never writes a line wider than the terminal', () => {
    const s = fakeStream(true, 40);
    const p = new Progress({ total: 10, label: 'a-very-long-label-for-this-run', stream: s, now: () => 0 });
    p.update(5, { loss: 0.25, accuracy: 0.5 });
    for (const ch of s.chunks) expect(ch.replace('\r', '').replace('\x1b[K', '').length).toBeLessThanOrEqual(39);
  });
});

describe('Progress validation', () => {
  it('rejects a negative or NaN total', () => {
    expect(() => new Progress({ total: -1 })).toThrow(/total/);
    expect(() => new Progress({ total: Number.NaN })).toThrow(/total/);
  });
  it('total 0 counts as complete; done beyond total shows 100%', () => {
    const s = fakeStream(false);
    const p = new Progress({ total: 0, stream: s, now: () => 0 });
    p.update(0);
    expect(s.text()).toContain('100%');
  });

  it('shows the wire time left and never gives an ETA below it', () => {
    const s = fakeStream(false);
    const c = clock();
    const p = new Progress({ total: 100, label: 'device', unit: 'samples', stream: s, now: c.now, wireSecondsPerUnit: 0.5 });
    expect(p.eta).toBe(50); // before any rate: the wire time alone
    steps(p, c, 10, 10); // 10 samples at 100 per second: the compute alone would say 0.9 s
    expect(p.wireLeft).toBe(45);
    expect(p.eta).toBe(45);
    p.update(100);
    expect(p.wireLeft).toBe(0);
    expect(() => new Progress({ total: 1, stream: s, wireSecondsPerUnit: -1 })).toThrow(/wireSecondsPerUnit/);
  });
});

describe('Progress without estimates', () => {
  it('shows the time elapsed instead of a rate and ETA, for work that ends in uneven bursts', () => {
    const s = fakeStream(false);
    const c = clock();
    const p = new Progress({ total: 4, label: 'build', unit: 'steps', stream: s, now: c.now, estimate: false });
    c.advance(70_000);
    p.update(1);
    c.advance(5);
    p.update(2);
    const lines = s.text().trimEnd().split('\n');
    expect(lines).toEqual(['build  25% 1/4 1m10s so far', 'build  50% 2/4 1m10s so far']);
    p.finish();
    expect(s.text().trimEnd().split('\n').at(-1)).toBe('build done 2/4 in 1m10s');
  });
});
