/**
 * A noisy line: 1e-3 of the bytes corrupted and 1e-3 dropped, in both directions, during 1000
 * pipelined requests (PING, small WEIGHTS_WRITE, RUN). Every request must complete or fail
 * with a clear timeout after its retries, no reply may ever be matched to the wrong request,
 * and CRC verification must tell the truth about the device's weights.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { from, lastValueFrom, mergeMap, toArray, catchError, of, map } from 'rxjs';
import { MockBoard, serveBoard } from '../../../firmware-protocol/mock-board/index.ts';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { LinkTimeoutError } from '../../../host/link/errors.ts';
import { ToyBackend } from '../device/toy-backend.ts';
import { faultFilter, pipePair, transportOf } from './helpers.ts';
import { mulberry as rng } from '../../models/rng.ts';

const RATE = 1e-3;
const N = 1000;

describe('link under byte corruption and loss', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('completes or cleanly times out every request, never mismatching a reply', async () => {
    const backend = new ToyBackend([8, 6, 4]);
    const board = new MockBoard(backend, { maxPayload: 1024 });
    const [host, dev] = pipePair();
    const up = faultFilter(rng(101), RATE);
    const down = faultFilter(rng(202), RATE);
    host.mangle = up.filter;
    dev.mangle = down.filter;
    const server = serveBoard(board, dev, { announce: false });
    closers.push(() => server.close());
    const device = await ChipDevice.over(transportOf(host), {
      retries: 6,
      window: 8,
      timeouts: { HELLO: 100, PING: 100, WEIGHTS_WRITE: 100, RUN: 100, WEIGHTS_CRC: 100 },
    });
    closers.push(() => device.close());
    const link = device.link;

    // Layer 0's weights stay fixed during the storm, so RUN's layer-0 output is known in advance.
    const r = rng(7);
    const window = (pol: number) => board.codeWindow(pol);
    const l0 = device.info.layers[0]!;
    const l1 = device.info.layers[1]!;
    const fixed0 = new Uint16Array(l0.rowInput.length * l0.outputs).map((_, i) => {
      const [lo, hi] = window(l0.rowPolarity[Math.floor(i / l0.outputs)]!);
      return lo + Math.floor(r() * (hi - lo + 1));
    });
    await device.uploadWeights(0, fixed0);
    const ref = new ToyBackend([8, 6, 4]);
    ref.setGateVoltages(
      0,
      Float64Array.from(fixed0, (c) => (c * 1.8) / 4095),
    );

    const mirror1 = board.readWeights(1); // what the host believes layer 1 holds
    const total1 = mirror1.length;
    let failedWrites = 0;

    type Outcome = { kind: string; ok: boolean; mismatch?: string; error?: unknown };
    const job = (i: number) => {
      const kind = i % 3 === 0 ? 'PING' : i % 3 === 1 ? 'WRITE' : 'RUN';
      if (kind === 'PING') {
        const nonce = Math.floor(r() * 2 ** 32);
        const data = Uint8Array.from({ length: Math.floor(r() * 16) }, () => Math.floor(r() * 256));
        return link.request$('PING', { nonce, data }).pipe(
          map((rep): Outcome => {
            const same = rep.nonce === nonce && rep.data !== undefined && Buffer.compare(rep.data, data) === 0;
            return { kind, ok: true, mismatch: same ? undefined : `PING ${nonce} got ${rep.nonce}` };
          }),
        );
      }
      if (kind === 'WRITE') {
        // Slots overlap: the board applies writes in arrival order and the mirror follows the
        // order of acknowledgements, which agree (a retry re-applies the same codes).
        const count = 4 + Math.floor(r() * 13);
        const slot = (i * 17) % (total1 - 16);
        const codes = new Uint16Array(count).map((_, k) => {
          const [lo, hi] = window(l1.rowPolarity[Math.floor((slot + k) / l1.outputs)]!);
          return lo + Math.floor(r() * (hi - lo + 1));
        });
        return link.request$('WEIGHTS_WRITE', { layer: 1, offset: slot, codes }).pipe(
          map((rep): Outcome => {
            const same = rep.layer === 1 && rep.offset === slot && rep.count === count;
            if (same) mirror1.set(codes, slot);
            return { kind, ok: true, mismatch: same ? undefined : `WRITE @${slot}x${count} acked @${rep.offset}x${rep.count}` };
          }),
          catchError((e) => {
            failedWrites++;
            throw e;
          }),
        );
      }
      const batch = 1 + Math.floor(r() * 2);
      const inputs = new Uint16Array(batch * 8).map(() => (r() < 0.2 ? 0xffff : Math.floor(r() * 900)));
      return link.request$('RUN', { batch, inputs }).pipe(
        mergeMap(async (rep): Promise<Outcome> => {
          const want = (await ref.run(inputs, batch))[0]!;
          const same =
            rep.batch === batch &&
            Buffer.compare(Buffer.from(rep.layers[0]!.buffer, rep.layers[0]!.byteOffset, rep.layers[0]!.byteLength), Buffer.from(want.buffer)) === 0;
          return { kind, ok: true, mismatch: same ? undefined : `RUN batch ${batch}: layer-0 ticks differ` };
        }),
      );
    };

    const outcomes = await lastValueFrom(
      from(Array.from({ length: N }, (_, i) => i)).pipe(
        mergeMap((i) => job(i).pipe(catchError((error) => of<Outcome>({ kind: 'failed', ok: false, error }))), 16),
        toArray(),
      ),
    );

    expect(outcomes).toHaveLength(N);
    expect(outcomes.filter((o) => o.mismatch)).toEqual([]);
    const failures = outcomes.filter((o) => !o.ok);
    for (const f of failures) {
      expect(f.error).toBeInstanceOf(LinkTimeoutError);
      expect((f.error as Error).message).toMatch(/got no reply: \d+ attempts/);
    }
    expect(failures.length).toBeLessThan(N / 100);
    // the line really was noisy, and the link really worked for it
    expect(up.stats.corrupted + up.stats.dropped).toBeGreaterThan(20);
    expect(down.stats.corrupted + down.stats.dropped).toBeGreaterThan(20);
    const s = link.stats;
    expect(s.retries).toBeGreaterThan(20);
    expect(s.decodeErrors).toBeGreaterThan(0);
    expect(s.inFlight).toBe(0);

    // CRC verification tells the truth about layer 1, then a clean re-upload makes them equal.
    const verdict = await device.verifyWeights(1, mirror1);
    const equal = Buffer.compare(Buffer.from(board.readWeights(1).buffer), Buffer.from(mirror1.buffer)) === 0;
    expect(verdict.ok).toBe(equal);
    if (failedWrites === 0) expect(equal).toBe(true);
    if (!verdict.ok) await device.uploadWeights(1, mirror1);
    expect((await device.verifyWeights(1, mirror1)).ok).toBe(true);
    expect((await device.verifyWeights(0, fixed0)).ok).toBe(true);
    expect(Array.from(board.readWeights(1))).toEqual(Array.from(mirror1));
  });
});
