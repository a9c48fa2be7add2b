import { describe, expect, it } from 'vitest';
import { runPipeline } from '../../../host/workflows/finetune-pipeline.ts';

/** A fake device: each measurement resolves on a later turn; the log records the interleaving. */
function harness(n: number, opts: { pipelined: boolean; failAt?: number; abortAfter?: number }) {
  const log: string[] = [];
  const ac = new AbortController();
  let learnt = 0;
  const run = runPipeline<number, number>({
    batches: Array.from({ length: n }, (_, k) => k)[Symbol.iterator](),
    pipelined: opts.pipelined,
    signal: ac.signal,
    measure: (k) => {
      log.push(`run ${k}`);
      const result = new Promise<number>((resolve, reject) =>
        setTimeout(() => (k === opts.failAt ? reject(new Error(`device lost at ${k}`)) : resolve(10 * k)), 2),
      );
      return { sent: Promise.resolve(), result };
    },
    learn: async (k, m) => {
      log.push(`learn ${k}:${m}`);
      await new Promise((r) => setTimeout(r, 1));
      learnt++;
      if (learnt === opts.abortAfter) ac.abort();
      log.push(`done ${k}`);
    },
  });
  return { run, log };
}

describe('runPipeline', () => {
  it('pipelined: the next RUN is issued before the host learns from the last batch', async () => {
    const { run, log } = harness(4, { pipelined: true });
    const timings = await run;
    expect(timings).toHaveLength(4);
    expect(log).toEqual(['run 0', 'run 1', 'learn 0:0', 'done 0', 'run 2', 'learn 1:10', 'done 1', 'run 3', 'learn 2:20', 'done 2', 'learn 3:30', 'done 3']);
  });

  it('sequential: each RUN waits for the previous batch to be learnt', async () => {
    const { run, log } = harness(3, { pipelined: false });
    await run;
    expect(log).toEqual(['run 0', 'learn 0:0', 'done 0', 'run 1', 'learn 1:10', 'done 1', 'run 2', 'learn 2:20', 'done 2']);
  });

  it('abort: no batch is pulled after it, an issued measurement is dropped unlearnt', async () => {
    const { run, log } = harness(6, { pipelined: true, abortAfter: 2 });
    const timings = await run;
    expect(timings).toHaveLength(2);
    expect(log).toEqual(['run 0', 'run 1', 'learn 0:0', 'done 0', 'run 2', 'learn 1:10', 'done 1']);
  });

  it('a failed measurement fails the pipeline after the batches before it', async () => {
    const { run, log } = harness(5, { pipelined: true, failAt: 2 });
    await expect(run).rejects.toThrow(/device lost at 2/);
    expect(log.filter((l) => l.startsWith('done'))).toEqual(['done 0', 'done 1']);
  });

  it('reports host and wall time for every batch and device time only where it was measured exactly', async () => {
    const { run } = harness(3, { pipelined: false });
    const t = await run;
    for (const b of t) {
      expect(b.hostMs).toBeGreaterThanOrEqual(0);
      expect(b.wallMs).toBeGreaterThanOrEqual(b.hostMs);
      // Sequential: the host always waits for the device, so every device time is exact.
      expect(b.deviceMs).toBeDefined();
    }
  });
});
