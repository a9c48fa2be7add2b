/**
 * `npm run characterise [-- --engine wasm|ngspice --copies N --seed N --out FILE]`: simulates the
 * synapse transistors on the bundled sky130 card (corners, temperatures, Monte Carlo mismatch) and
 * writes data/sky130-devices.json. The embedded wasm engine is the default (always present); a
 * system ngspice gives the same currents. Progress goes to stderr, the written path to stdout.
 */

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { characteriseDevices, deviceDataText } from '../characterise-devices.ts';
import { DEVICE_DATA_PATH } from '../device-data.ts';
import { createEngine, ENGINE_KINDS } from '../engine.ts';

const flags = z.object({
  engine: z.enum(ENGINE_KINDS as unknown as ['wasm', 'ngspice']),
  copies: z.coerce.number().int().min(10).max(2000),
  seed: z.coerce
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 1),
  out: z.string().min(1),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      engine: { type: 'string', default: 'wasm' },
      copies: { type: 'string', default: '200' },
      seed: { type: 'string', default: '29' },
      out: { type: 'string', default: DEVICE_DATA_PATH },
    },
    strict: true,
  });
  const r = flags.safeParse(values);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`--${i.path.join('.')}: ${i.message} (got ${JSON.stringify((values as Record<string, unknown>)[String(i.path[0])])})`);
  }
  const o = r.data;
  const engine = await createEngine(o.engine);
  try {
    const t0 = Date.now();
    const data = await characteriseDevices(engine, { copies: o.copies, seed: o.seed, log: (l) => process.stderr.write(`${l}\n`) });
    writeFileSync(o.out, deviceDataText(data));
    process.stderr.write(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    process.stdout.write(`${o.out}\n`);
  } finally {
    await engine.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`characterise: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
