/**
 * A dedicated worker thread running one long-lived job (a mock board's chip, say), as opposed to
 * the pool's short tasks: `spawnThread` runs the named export of a module on a new thread with
 * `input` (transferables moved, e.g. a MessagePort to talk over).
 */

import { type MessagePort, Worker } from 'node:worker_threads';

const ENTRY = new URL('./thread-entry.mjs', import.meta.url);

export function spawnThread(module: URL, fn: string, input: unknown, transfer: (ArrayBuffer | MessagePort)[] = []): Worker {
  return new Worker(ENTRY, { workerData: { module: module.href, fn, input }, transferList: transfer });
}
