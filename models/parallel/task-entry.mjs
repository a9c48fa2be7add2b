// Entry of every pool thread: registers tsx (the project runs from its TypeScript sources and a new
// thread has no loader yet), then runs the named export of the task module each job names.
import { register } from 'tsx/esm/api';

register();

const modules = new Map();

export default async function runTask({ module, fn, input }) {
  let loaded = modules.get(module);
  if (!loaded) {
    loaded = import(module);
    modules.set(module, loaded);
  }
  const m = await loaded;
  if (typeof m[fn] !== 'function') throw new TypeError(`pool task ${fn} is not exported by ${module}`);
  return m[fn](input);
}
