import { threadId } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { checkWorkers, TaskPool } from '../../../models/parallel/pool.ts';

const TASK = new URL('./square-task.ts', import.meta.url);

describe('TaskPool', () => {
  const pools: TaskPool[] = [];
  afterAll(async () => {
    for (const p of pools) await p.close();
  });

  it('runs inline with one worker and on threads with two, giving the same results in input order', async () => {
    const inline = new TaskPool(1);
    const threaded = new TaskPool(2);
    pools.push(inline, threaded);
    const inputs = Array.from({ length: 12 }, (_, k) => k - 3);
    const a = await inline.runAll<number, { y: number; thread: number }>(TASK, 'square', inputs);
    const b = await threaded.runAll<number, { y: number; thread: number }>(TASK, 'square', inputs);
    expect(a.map((r) => r.y)).toEqual(inputs.map((x) => x * x));
    expect(b.map((r) => r.y)).toEqual(a.map((r) => r.y));
    expect(new Set(a.map((r) => r.thread))).toEqual(new Set([threadId]));
    expect(b.every((r) => r.thread !== threadId)).toBe(true);
  });

  it('lets tasks write into shared memory the caller reads', async () => {
    const pool = new TaskPool(2);
    pools.push(pool);
    const buffer = new SharedArrayBuffer(8 * 4);
    await pool.runAll(
      TASK,
      'sumShared',
      [0, 1, 2, 3].map((index) => ({ buffer, index, value: index + 0.5 })),
    );
    expect(Array.from(new Float64Array(buffer))).toEqual([0.5, 1.5, 2.5, 3.5]);
  });

  for (const workers of [1, 2]) {
    it(`stops a long runAll with the caller's abort reason (${workers} worker(s)), one listener on the caller's signal`, async () => {
      const pool = new TaskPool(workers);
      pools.push(pool);
      const ac = new AbortController();
      let listeners = 0;
      const add = ac.signal.addEventListener.bind(ac.signal);
      ac.signal.addEventListener = ((...a: Parameters<typeof add>) => {
        listeners++;
        return add(...a);
      }) as typeof add;
      const reason = new Error('stopped by the test');
      let done = 0;
      const run = pool.runAll(TASK, 'spin', new Array(40).fill(20), {
        signal: ac.signal,
        onDone: () => {
          if (++done === 2) ac.abort(reason);
        },
      });
      await expect(run).rejects.toBe(reason);
      expect(done).toBeLessThan(40);
      expect(listeners).toBeLessThanOrEqual(1);
    });
  }

  it('names a missing export', async () => {
    const pool = new TaskPool(1);
    await expect(pool.run(TASK, 'cube', 2)).rejects.toThrow(/cube is not exported/);
  });

  it('refuses a bad worker count with the fix', () => {
    expect(() => checkWorkers(0)).toThrow(/--workers N/);
    expect(() => checkWorkers(1.5)).toThrow(/got 1.5/);
  });
});
