// Entry of a dedicated thread (spawnThread in thread.ts): registers tsx like the pool's threads,
// then runs the named export of the module workerData names with workerData.input.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();

const m = await import(workerData.module);
if (typeof m[workerData.fn] !== 'function') throw new TypeError(`thread function ${workerData.fn} is not exported by ${workerData.module}`);
await m[workerData.fn](workerData.input);
