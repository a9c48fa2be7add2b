// Worker-thread bootstrap: registers tsx in this thread (an --import in execArgv does not reach a
// worker's own entry on every Node version), then loads the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
