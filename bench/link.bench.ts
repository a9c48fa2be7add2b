/**
 * Link benchmark over a real pseudo-terminal: a mock board (784-256-128-10, ideal chip) in a
 * child process, the host's serialport transport + LinkClient + ChipDevice in this one.
 * Prints ONE JSON line:
 *   upload_payload_mb_s  weight payload (2 bytes per code) per second for a 784x256 dual-rail layer
 *   wire_efficiency      payload bytes / all wire bytes (both directions) of that upload
 *   rtt_p50_ms/p99_ms    one-sample RUN round trip (host + pty + mock board + ideal chip)
 *   upload_s             seconds for that upload (median of the repeats)
 *   device               what HELLO announced
 */
import { ChipDevice } from '../host/device/chip-device.ts';
import { haveSocat, startChildBoard } from '../test/e2e/helpers.ts';

const GEOMETRY = '784-256-128-10';
const UPLOADS = 5;
const RTT_SAMPLES = 300;

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}
const round = (x: number, d = 4) => Number(x.toPrecision(d));

async function main(): Promise<void> {
  if (!haveSocat()) {
    console.log(JSON.stringify({ ok: false, error: 'socat is not installed (apt-get install socat); the benchmark needs a pseudo-terminal pair' }));
    process.exitCode = 1;
    return;
  }
  const board = await startChildBoard(['--geometry', GEOMETRY, '--seed', '7']);
  const dev = await ChipDevice.open(`pty:${board.hostPath}`);
  try {
    const info = dev.info;
    const l = info.layers[0]!;
    const [n, p] = dev.safeCodeRanges;
    let s = 12345;
    const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const codes = new Uint16Array(l.rowInput.length * l.outputs).map((_, i) => {
      const w = l.rowPolarity[Math.floor(i / l.outputs)] ? p : n;
      return w.lo + Math.floor(rnd() * (w.hi - w.lo + 1));
    });
    const payloadBytes = codes.length * 2;

    // warm-up (JIT, pty buffers), then timed uploads
    await dev.uploadWeights(0, codes);
    const times: number[] = [];
    let wireBytes = 0;
    for (let k = 0; k < UPLOADS; k++) {
      const before = dev.link.stats;
      const t0 = performance.now();
      await dev.uploadWeights(0, codes);
      times.push((performance.now() - t0) / 1000);
      const after = dev.link.stats;
      wireBytes = after.bytesOut - before.bytesOut + (after.bytesIn - before.bytesIn);
    }
    const verify = await dev.verifyWeights(0, codes);
    if (!verify.ok) throw new Error(`upload did not verify: ${verify.detail}`);
    times.sort((a, b) => a - b);
    const uploadS = times[Math.floor(times.length / 2)]!;

    const input = new Uint16Array(l.inputs).map(() => (rnd() < 0.5 ? 0xffff : Math.floor(rnd() * 2000)));
    for (let k = 0; k < 20; k++) await dev.run(input, 1);
    const rtt: number[] = [];
    for (let k = 0; k < RTT_SAMPLES; k++) {
      const t0 = performance.now();
      await dev.run(input, 1);
      rtt.push(performance.now() - t0);
    }
    rtt.sort((a, b) => a - b);

    const stats = dev.link.stats;
    console.log(
      JSON.stringify({
        upload_payload_mb_s: round(payloadBytes / uploadS / 1e6),
        wire_efficiency: round(payloadBytes / wireBytes, 5),
        rtt_p50_ms: round(quantile(rtt, 0.5)),
        rtt_p99_ms: round(quantile(rtt, 0.99)),
        upload_s: round(uploadS),
        upload_codes: codes.length,
        upload_frames: Math.ceil(codes.length / info.chunkCodes),
        rtt_samples: RTT_SAMPLES,
        link_errors: { timeouts: stats.timeouts, retries: stats.retries, decodeErrors: stats.decodeErrors },
        device: {
          uri: 'pty (child process mock-board)',
          firmware: info.firmware,
          chipId: info.chipId,
          geometry: GEOMETRY,
          maxPayload: info.maxPayload,
          maxBatch: info.maxBatch,
          chunkCodes: info.chunkCodes,
          protocol: info.negotiatedProtocol,
        },
      }),
    );
  } finally {
    await dev.close();
    await board.stop();
  }
}

await main();
