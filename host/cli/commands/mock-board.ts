/**
 * `spikeloop mock-board`: serve a mock board (chip backend + protocol dispatcher) on a
 * pseudo-terminal or an existing serial port, so the host side can be exercised over a real
 * tty. With --pty the first line of stdout is `{"pty": "<path the host opens>"}`.
 */
import { z } from 'zod';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { chipSeedOption, flag, geometryOption, intOption, intOptionWithDefault, mockDeviceOption } from '../common-options.ts';
import { openSerialTransport } from '../../link/transport.ts';
import { DEFAULT_BAUD, parseDeviceUri, type MockAddress } from '../../device/device-uri.ts';
import { buildProgressBar } from '../../ui/build-progress.ts';

export const name = 'mock-board';
export const summary = 'serve a mock board on a pseudo-terminal (--pty) or a serial port (--port PATH) until interrupted';
export const description =
  'The board answers the spikeloop protocol with a chip model behind it. --pty creates a\n' +
  'pseudo-terminal pair with socat and prints {"pty": "<host path>"} as the first line of stdout;\n' +
  'point the host at it with --device pty:<host path>. Stops on SIGINT/SIGTERM (and, with\n' +
  '--exit-with-parent, when the process that started it exits, so a crashed test leaves nothing behind).';
export const examples = [
  'spikeloop mock-board --pty --geometry 784-256-128-10',
  "spikeloop mock-board --pty --device 'mock:behavioral?seed=7&faults=dead-neuron:0.3&runDelayMs=20&baud=921600'",
  'spikeloop mock-board --port /dev/ttyUSB1 --chip ideal --seed 3',
];

export const options = {
  pty: flag('create a pseudo-terminal pair (needs socat) and serve one end'),
  port: {
    type: 'string',
    placeholder: 'PATH',
    description: 'serve an existing serial port instead',
    schema: z.string().min(1, 'expected a port path').optional(),
  },
  baud: intOptionWithDefault('baud rate for --port', 50, 20_000_000, DEFAULT_BAUD),
  chip: {
    type: 'string',
    placeholder: 'KIND',
    description: 'chip backend: behavioral (default), ideal, spice',
    schema: z
      .string()
      .regex(/^[a-z][a-z0-9-]*$/, 'expected a chip kind such as ideal')
      .optional()
      .transform((v) => v ?? 'behavioral'),
  },
  seed: chipSeedOption('chip seed (default: the backend default)'),
  geometry: geometryOption('layer sizes, inputs first (default: the backend default)'),
  maxPayload: intOption('largest payload the board accepts, bytes (default 16384)', 64, 65_535, 'BYTES'),
  device: mockDeviceOption,
  exitWithParent: flag('also stop when the parent process exits'),
} satisfies OptionsSpec;

export function check(o: ParsedOptions<typeof options>): string | undefined {
  if (o.pty === (o.port !== undefined)) return 'give exactly one of --pty and --port PATH';
  if (o.device !== undefined && (o.seed !== undefined || o.geometry !== undefined || o.maxPayload !== undefined || o.chip !== 'behavioral')) {
    return '--device mock:... already names the chip and the board: put seed=, geometry=, maxPayload= in it instead of --chip/--seed/--geometry/--max-payload';
  }
  return undefined;
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const { openPtyPair } = await import('../../../firmware-protocol/mock-board/index.ts');
  const { serveMockSpec } = await import('../../../firmware-protocol/mock-board/open.ts');

  // The flags are a shorthand for a mock: address; both go through the one parser.
  const q = new URLSearchParams();
  if (o.seed !== undefined) q.set('seed', String(o.seed));
  if (o.geometry !== undefined) q.set('geometry', o.geometry);
  if (o.maxPayload !== undefined) q.set('maxPayload', String(o.maxPayload));
  const uri = o.device ?? `mock:${o.chip}${q.size ? '?' + q.toString() : ''}`;
  const address = parseDeviceUri(uri) as MockAddress;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((e: Error) => ctx.warn(`cleanup: ${e.message}`));
  };

  try {
    let servedPath: string;
    let hostPath: string | undefined;
    if (o.pty) {
      const pair = await openPtyPair();
      cleanups.push(() => pair.close());
      servedPath = pair.devicePath;
      hostPath = pair.hostPath;
    } else {
      servedPath = o.port!;
    }
    const port = await openSerialTransport({ scheme: 'pty', uri: `pty:${servedPath}`, path: servedPath, baudRate: o.baud, baudGiven: true, rtscts: false });
    cleanups.push(() => port.close());
    const server = await serveMockSpec(address.spec, port.stream, { onProgress: buildProgressBar() });
    cleanups.push(() => server.close());
    const { board, backend } = server;
    const line = address.spec.line;

    // The contract with scripts and tests: this is the first line of stdout.
    ctx.stdout(JSON.stringify(hostPath ? { pty: hostPath } : { port: servedPath }));
    const geometry = [backend.geometry[0]!.inputs, ...backend.geometry.map((g) => g.outputs)].join('-');
    ctx.warn(
      `mock board (${address.chip}, chip ${backend.chipId}, ${geometry}, maxPayload ${board.maxPayload}` +
        (line.baud ? `, paced to ${line.baud} baud` : '') +
        (line.latencyMs ? `, ${line.latencyMs} ms latency` : '') +
        (line.byteErrorRate ? `, byte error rate ${line.byteErrorRate}` : '') +
        ') serving ' +
        (hostPath ? `a pty: connect with --device pty:${hostPath}` : servedPath) +
        '; Ctrl-C stops it',
    );

    let watch: ReturnType<typeof setInterval> | undefined;
    const reason = await new Promise<string>((resolve) => {
      if (ctx.signal.aborted) return resolve('signal');
      ctx.signal.addEventListener('abort', () => resolve(String((ctx.signal.reason as Error)?.message ?? 'signal')), { once: true });
      port.stream.once('close', () => resolve('the port closed'));
      if (o.exitWithParent) {
        // An orphan is re-parented: the parent pid changes. (Reading stdin to notice the parent's
        // death is not used: it made the board's serial reads stall under load.)
        const parent = process.ppid;
        watch = setInterval(() => process.ppid !== parent && resolve('the parent process exited'), 250);
      }
    });
    if (watch) clearInterval(watch);
    const stats = server.stats;
    await cleanup();
    ctx.print(`mock board stopped (${reason}): ${stats.handled} requests handled, ${stats.crcErrors} CRC errors`);
    return {
      stopped: reason,
      chip: backend.chipId,
      geometry,
      ...(hostPath ? { pty: hostPath } : { port: servedPath }),
      served: { handled: stats.handled, framesOut: stats.framesOut, framesOk: stats.framesOk, crcErrors: stats.crcErrors, framingErrors: stats.framingErrors },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
