import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SeqAllocator, SeqExhaustedError } from '../../../host/link/seq-allocator.ts';

describe('SeqAllocator', () => {
  it('never hands out a seq that is in flight (model-based)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(fc.tuple(fc.constantFrom('alloc', 'release', 'abandon'), fc.nat()), { maxLength: 300 }),
        (start, ops) => {
          const a = new SeqAllocator({ start, quarantineMs: 1000, now: () => 0 });
          const held = new Set<number>();
          const quarantined = new Set<number>();
          for (const [op, k] of ops) {
            if (op === 'alloc') {
              const s = a.allocate();
              expect(s).toBeGreaterThanOrEqual(0);
              expect(s).toBeLessThanOrEqual(0xffff);
              expect(held.has(s)).toBe(false);
              expect(quarantined.has(s)).toBe(false);
              held.add(s);
            } else if (held.size > 0) {
              const s = [...held][k % held.size]!;
              held.delete(s);
              if (op === 'abandon') {
                a.abandon(s);
                quarantined.add(s);
              } else a.release(s);
            }
          }
          expect(a.inFlight).toBe(held.size);
          for (const q of quarantined) expect(a.isQuarantined(q)).toBe(true);
        },
      ),
    );
  });

  it('wraps around the u16 space', () => {
    const a = new SeqAllocator({ start: 0xfffe, quarantineMs: 0 });
    expect([a.allocate(), a.allocate(), a.allocate()]).toEqual([0xfffe, 0xffff, 0]);
  });

  it('keeps an abandoned seq out of use until its quarantine expires', () => {
    let t = 0;
    const a = new SeqAllocator({ start: 5, quarantineMs: 100, now: () => t });
    const s = a.allocate();
    a.abandon(s);
    expect(a.isQuarantined(s)).toBe(true);
    // exhaust everything else: the quarantined seq must not come back
    const got = new Set<number>();
    for (let i = 0; i < 0xffff; i++) got.add(a.allocate());
    expect(got.has(s)).toBe(false);
    expect(() => a.allocate()).toThrow(SeqExhaustedError);
    t = 100;
    expect(a.isQuarantined(s)).toBe(false);
    expect(a.allocate()).toBe(s);
  });

  it('reuses a released seq', () => {
    const a = new SeqAllocator({ start: 0, quarantineMs: 1e9 });
    for (let i = 0; i < 0x10000; i++) a.allocate();
    a.release(1234);
    expect(a.allocate()).toBe(1234);
  });
});
