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
