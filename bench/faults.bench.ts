/**
 * The link under byte errors: the in-process mock board (784-256-128-10, ideal chip) behind an
 * emulated line that changes bytes at a given rate in both directions (seeded), and a sequence
 * of mixed operations (RUN of one sample, WEIGHTS_WRITE of 256 codes anywhere in any layer, PING
 * with 64 bytes, STATUS), the same sequence on a clean line and at each rate. Each layer is
 * uploaded on a clean line first and three RUNs made there (so the link knows the board's RUN
 * time, as after any workflow's first RUNs); the noise starts with the operations.
 *
 * Prints ONE JSON line; per rate:
 *   misdirected           replies that answer another request (wrong nonce, wrong write echo, RUN
 *                         spike times that differ from a clean reference chip holding the same codes)
 *   weights_crc_mismatch  layers whose CRC differs at the end from the codes the host wrote
 *   failed_ops            operations that failed for good (after retries and splitting)
 *   throughput_vs_clean   operations per second relative to the clean line
 *   retries, timeouts, lost (attempts found lost before their timeout and sent again at once),
 *   split_writes, decode_errors, flipped_bytes, wall_s
 *
 *   npm run bench:faults                  100 operations per rate (about a minute)
 *   npm run bench:faults -- --ops 1000    the full figure (FAULTS_OPS=1000 does the same)
 *   --rates 1e-4,1e-3                     the rates (default 1e-4,1e-3)
 */
import { parseArgs } from 'node:util';
import { openMockBoard } from '../firmware-protocol/mock-board/open.ts';
import { parseMockSpec } from '../firmware-protocol/mock-board/mock-spec.ts';
import { ChipDevice } from '../host/device/chip-device.ts';
import { ProtocolViolationError } from '../host/link/errors.ts';
import { Rng } from '../models/datasets/rng.ts';

const GEOMETRY = '784-256-128-10';
const SEED = '7';

const { values } = parseArgs({
  options: { ops: { type: 'string' }, rates: { type: 'string' } },
});
const OPS = Number(values.ops ?? process.env.FAULTS_OPS ?? 100);
const RATES = (values.rates ?? '1e-4,1e-3').split(',').map(Number);
if (!(Number.isInteger(OPS) && OPS >= 1)) throw new RangeError(`--ops must be a whole number >= 1, got ${values.ops}`);
if (RATES.some((r) => !(r >= 0 && r <= 0.5))) throw new RangeError(`--rates must be numbers in 0..0.5, got ${values.rates}`);

type Op =
  | { kind: 'run'; inputs: Uint16Array }
  | { kind: 'write'; layer: number; offset: number; codes: Uint16Array }
  | { kind: 'ping'; data: Uint8Array }
  | { kind: 'status' };

const round = (x: number, d = 4) => Number(x.toPrecision(d));

async function measure(rate: number, ops: Op[], initial: Uint16Array[]) {
  const mock = await openMockBoard(
    parseMockSpec('ideal', [
      ['seed', SEED],
      ['geometry', GEOMETRY],
      ['byteErrorRate', '0'],
      ['errorSeed', '11'],
    ]),
  );
  const dev = await ChipDevice.over(
    { description: `mock:ideal (byte error rate ${rate})`, stream: mock.stream, bytesPerSecond: Infinity, close: () => mock.close() },
    { retries: 10, notice: () => {} },
  );
  const ref = await ChipDevice.open(`mock:ideal?seed=${SEED}&geometry=${GEOMETRY}`, { notice: () => {} });
  const mirror = initial.map((c) => c.slice());
  const info0 = dev.info.layers[0]!;
  for (const [l, c] of mirror.entries()) {
    await dev.uploadWeights(l, c);
    await ref.uploadWeights(l, c);
  }
  // A few clean RUNs, as any workflow's first ones: the link learns the board's RUN time, so a
  // lost RUN costs the adaptive timeout rather than the fixed 10 s.
  for (let k = 0; k < 3; k++) await dev.run(new Uint16Array(info0.inputs).fill(0xffff), 1);
  const s0 = dev.link.stats;
  mock.line!.setByteErrorRate(rate);
  let misdirected = 0;
  let failed = 0;
  const failures: string[] = [];
  const t0 = performance.now();
  for (const op of ops) {
    try {
      if (op.kind === 'run') {
        const [got, want] = await Promise.all([dev.run(op.inputs, 1), ref.run(op.inputs, 1)]);
        if (
          got.some(
            (g, l) =>
              Buffer.compare(Buffer.from(g.buffer, g.byteOffset, g.byteLength), Buffer.from(want[l]!.buffer, want[l]!.byteOffset, want[l]!.byteLength)) !== 0,
          )
        )
          misdirected++;
      } else if (op.kind === 'write') {
        const next = mirror[op.layer]!.slice();
        next.set(op.codes, op.offset);
        try {
          await dev.uploadChanged(op.layer, mirror[op.layer]!, next);
        } finally {
          // Landed or not, the host now means `next`; a failed write is repaired by a full upload below.
          await ref.uploadChanged(op.layer, mirror[op.layer]!, next);
          mirror[op.layer] = next;
        }
      } else if (op.kind === 'ping') {
        await dev.ping(op.data);
      } else {
        await dev.status();
      }
    } catch (err) {
      if (err instanceof ProtocolViolationError && /nonce|acknowledged|echoed/.test(err.message)) misdirected++;
      else {
        failed++;
        if (failures.length < 5) failures.push(`${op.kind}: ${(err as Error).message}`);
      }
      if (op.kind === 'write') {
        // The layer is unknown after a failed write: write all of it again before going on.
        await dev.uploadWeights(op.layer, mirror[op.layer]!).catch(() => {});
      }
    }
  }
  const wall = (performance.now() - t0) / 1000;
  mock.line!.setByteErrorRate(0);
  let crcMismatch = 0;
  for (const [l, c] of mirror.entries()) if (!(await dev.verifyWeights(l, c)).ok) crcMismatch++;
  const s1 = dev.link.stats;
  const line = mock.line!.stats;
  const out = {
    misdirected,
    weights_crc_mismatch: crcMismatch,
    failed_ops: failed,
    ops_per_s: round(ops.length / wall),
    wall_s: round(wall),
    retries: s1.retries - s0.retries,
    timeouts: s1.timeouts - s0.timeouts,
    lost: s1.lost - s0.lost,
    split_writes: dev.splitWrites,
    decode_errors: s1.decodeErrors - s0.decodeErrors,
    flipped_bytes: line.flippedToBoard + line.flippedToHost,
    ...(failures.length > 0 ? { failures } : {}),
  };
  await dev.close();
  await ref.close();
  return out;
}

async function main(): Promise<void> {
  // The operation sequence and initial codes, from one seed: every rate runs the same work.
  const probe = await ChipDevice.open(`mock:ideal?seed=${SEED}&geometry=${GEOMETRY}`, { notice: () => {} });
  const info = probe.info;
  const [n, p] = probe.safeCodeRanges;
  await probe.close();
  const rng = new Rng(2024);
  const safe = (layer: number, i: number) => {
    const l = info.layers[layer]!;
    const w = l.rowPolarity[Math.floor(i / l.outputs)] ? p : n;
    return w.lo + rng.int(w.hi - w.lo + 1);
  };
  const initial = info.layers.map((l, layer) => new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => safe(layer, i)));
  const nIn = info.layers[0]!.inputs;
  const ops: Op[] = [];
  for (let k = 0; k < OPS; k++) {
    const u = rng.next();
    if (u < 0.4) {
      // An image-like input: about a fifth of the inputs active.
      ops.push({ kind: 'run', inputs: new Uint16Array(nIn).map(() => (rng.next() < 0.2 ? rng.int(1000) : 0xffff)) });
    } else if (u < 0.7) {
      const layer = rng.int(info.layers.length);
      const size = initial[layer]!.length;
      const count = Math.min(256, size);
      const offset = rng.int(size - count + 1);
      ops.push({ kind: 'write', layer, offset, codes: new Uint16Array(count).map((_, i) => safe(layer, offset + i)) });
    } else if (u < 0.9) {
      ops.push({ kind: 'ping', data: new Uint8Array(64).map(() => rng.int(256)) });
    } else {
      ops.push({ kind: 'status' });
    }
  }
  await measure(0, ops.slice(0, 20), initial); // warm-up: the first operations also compile the code paths
  const clean = await measure(0, ops, initial);
  const noisy: Record<string, unknown> = {};
  for (const r of RATES) {
    const m = await measure(r, ops, initial);
    noisy[String(r)] = { ...m, throughput_vs_clean: round(m.ops_per_s / clean.ops_per_s, 3) };
  }
  console.log(
    JSON.stringify({
      bench: 'faults',
      geometry: GEOMETRY,
      chip: 'ideal',
      ops: OPS,
      mix: { run: 0.4, write_256_codes: 0.3, ping_64_bytes: 0.2, status: 0.1 },
      clean: {
        ops_per_s: clean.ops_per_s,
        wall_s: clean.wall_s,
        misdirected: clean.misdirected,
        weights_crc_mismatch: clean.weights_crc_mismatch,
        failed_ops: clean.failed_ops,
      },
      rates: noisy,
    }),
  );
}

main().catch((err: unknown) => {
  console.log(JSON.stringify({ bench: 'faults', ok: false, error: (err as Error).message }));
  process.exitCode = 1;
});
