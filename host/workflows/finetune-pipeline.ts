/**
 * The pipelined in-situ loop: the device measures batch k+1 while the host learns from batch k.
 *
 *   permits ──> pull batch k+1 ──> issue its measurement (RUN) ─┐
 *      ^                                                        v   concatMap (in batch order)
 *      └── released when the host STARTS learning from batch k <── measurement k arrives
 *
 * A measurement is issued when the host starts on the previous batch, so the device holds the
 * codes from before that batch's update: batch k+1 is measured one update behind the twin (the
 * one-batch lag, finetune.ts says how it is handled). With `pipelined: false` the permit is
 * released after the host's work instead: no lag, no overlap.
 *
 * Abort: no further batch is pulled; a measurement already issued is awaited and dropped (its
 * batch stays unprocessed). A failed measurement fails the pipeline after the batches before it.
 *
 * Timing per batch: host = the learn callback; device = issue to reply, exact only when the host
 * was already waiting for the reply (otherwise the reply sat unread while the host worked, and
 * the figure is left out); wall = from the previous batch's end to this batch's end.
 */

import { Subject, concatMap, defer, from, lastValueFrom, map, startWith, takeWhile, toArray } from 'rxjs';

export interface BatchTiming {
  hostMs: number;
  /** Issue-to-reply time, when measured exactly (see the file comment). */
  deviceMs?: number;
  wallMs: number;
}

export interface PipelineOptions<B, M> {
  batches: Iterator<B>;
  /** Starts the device measurement of a batch: `sent` once its request is on the link, then the result. */
  measure(batch: B): { sent: Promise<unknown>; result: Promise<M> };
  /** The host's work on a measured batch (gradient, update, upload). */
  learn(batch: B, measured: M): Promise<void> | void;
  pipelined: boolean;
  signal?: AbortSignal;
  onBatch?(t: BatchTiming): void;
}

type Issued<B, M> = {
  batch: B;
  issuedAt: number;
  sent: Promise<unknown>;
  result: Promise<{ ok: true; value: M; at: number } | { ok: false; error: unknown }>;
};

/** Lets the in-process mock board pick up a request just written (it shares this thread). */
async function yieldToDevice(): Promise<void> {
  for (let k = 0; k < 3; k++) await new Promise<void>((r) => setImmediate(r));
}

/** Runs every batch through measure -> learn; resolves to the timings of the batches learnt. */
export async function runPipeline<B, M>(o: PipelineOptions<B, M>): Promise<BatchTiming[]> {
  const permits = new Subject<void>();
  let lastEnd = performance.now();
  let lastSent: Promise<unknown> = Promise.resolve();
  const issued$ = permits.pipe(
    startWith(undefined),
    takeWhile(() => !o.signal?.aborted),
    map(() => o.batches.next()),
    takeWhile((r) => !r.done),
    map((r): Issued<B, M> => {
      const batch = r.value as B;
      const issuedAt = performance.now();
      const m = o.measure(batch);
      const result = m.result.then(
        (value) => ({ ok: true as const, value, at: performance.now() }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      const sent = m.sent.catch(() => {});
      lastSent = sent;
      return { batch, issuedAt, sent, result };
    }),
  );
  const learnt$ = issued$.pipe(
    // Waits for measurement k; measurement k+1 is already on its way (or not yet, when sequential).
    concatMap((item) => from(item.result).pipe(map((r) => ({ item, r })))),
    concatMap(({ item, r }) =>
      defer(async (): Promise<BatchTiming | undefined> => {
        if (o.signal?.aborted) {
          permits.complete();
          return undefined;
        }
        if (!r.ok) throw r.error;
        // A reply seen more than a millisecond after the host became free was not kept waiting.
        const deviceMs = r.at - lastEnd > 1 ? r.at - item.issuedAt : undefined;
        if (o.pipelined) {
          permits.next();
          // The next RUN must be on its way (and an in-process board started on it) before the host works.
          await lastSent;
          await yieldToDevice();
        }
        const h0 = performance.now();
        await o.learn(item.batch, r.value);
        const h1 = performance.now();
        if (!o.pipelined) permits.next();
        const t: BatchTiming = { hostMs: h1 - h0, wallMs: h1 - lastEnd, ...(deviceMs !== undefined ? { deviceMs } : {}) };
        lastEnd = h1;
        o.onBatch?.(t);
        return t;
      }),
    ),
  );
  const all = await lastValueFrom(learnt$.pipe(toArray()));
  return all.filter((t): t is BatchTiming => t !== undefined);
}
