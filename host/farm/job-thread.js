// Entry of the thread a farm job runs in: registers tsx (the project runs from its TypeScript
// sources) and starts job-thread.ts. Plain JavaScript because a new thread has no loader yet.
import { register } from 'tsx/esm/api';

register();
await import('./job-thread.ts');
