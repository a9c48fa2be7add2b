// A task module for the pool's tests.
import { threadId } from 'node:worker_threads';

export function square(x: number): { y: number; thread: number } {
  return { y: x * x, thread: threadId };
}

export function sumShared(input: { buffer: SharedArrayBuffer; index: number; value: number }): number {
  const view = new Float64Array(input.buffer);
  view[input.index] = input.value;
  return input.index;
}

/** Busy for `ms` milliseconds (a task long enough to be caught by an abort). */
export function spin(ms: number): number {
  const end = performance.now() + ms;
  let k = 0;
  while (performance.now() < end) k++;
  return k;
}
