#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so `npx spikeloop` and `npm start` need no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../host/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// Anything a command forgot to close must not keep the process alive (this timer does not itself).
setTimeout(() => process.exit(), 2000).unref();
