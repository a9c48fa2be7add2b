/**
 * Giving the event loop a turn inside long synchronous work (a training epoch, a calibration
 * fit), so that signal handlers run and an AbortSignal can fire while the work goes on.
 */

/** Resolves after one turn of the event loop (I/O and signal handlers included). */
export const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * A checkpoint to await between steps of a long computation: it yields to the event loop when
 * `everyMs` have passed since the last turn (so short steps cost nothing) and throws the
 * signal's reason once it is aborted.
 */
export function pauser(signal?: AbortSignal, everyMs = 50): () => Promise<void> {
  let last = performance.now();
  return async () => {
    signal?.throwIfAborted();
    if (performance.now() - last < everyMs) return;
    await yieldToEventLoop();
    last = performance.now();
    signal?.throwIfAborted();
  };
}
