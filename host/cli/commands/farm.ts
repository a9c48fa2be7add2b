/** `spikeloop farm`: the board farm (host/farm/README.md). */
export { name, summary, description, examples, options, parseArgv, run } from '../../farm/cli.ts';
