import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameDecoder } from '../../firmware-protocol/decoder.ts';
import { encodeFrame } from '../../firmware-protocol/frame.ts';
import { fromHex, fromJsonForm, toHex, type JsonValue } from '../../firmware-protocol/json-form.ts';
import { ErrorCode, MsgType, type MsgTypeName } from '../../firmware-protocol/messages.ts';
import { MockBoard } from '../../firmware-protocol/mock-board/board.ts';
import { ToyChip } from './helpers/toy-chip.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'firmware-protocol', 'vectors');
const load = <T>(f: string): T => JSON.parse(readFileSync(join(dir, f), 'utf8')) as T;

interface Vector {
  name: string;
  type: MsgTypeName;
  type_code: number;
  direction: string;
  version: number;
  flags: number;
  seq: number;
  message: JsonValue;
  frame_hex: string;
}
interface Damaged {
  name: string;
  frame_hex: string;
  max_frame_bytes?: number;
  events: ({ kind: 'error'; error: string; header: object | null } | { kind: 'frame'; type: MsgTypeName; seq: number })[];
  device_answer: { seq: number; code: keyof typeof ErrorCode } | null;
}

const goodFiles = ['requests.json', 'responses.json', 'events.json', 'errors.json'];
const good = goodFiles.flatMap((f) => load<Vector[]>(f).map((v) => [`${f}: ${v.name}`, v] as const));

describe('golden vectors on disk', () => {
  it('cover every type in every direction it has', () => {
    expect(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual([...goodFiles, 'damaged.json'].sort());
    const seen = new Set(good.map(([, v]) => `${v.direction}:${v.type}`));
    for (const name of [
      'HELLO',
      'PING',
      'RESET',
      'WEIGHTS_WRITE',
      'WEIGHTS_CRC',
      'NEURON_CONFIG',
      'WEIGHTS_PATCH',
      'RUN',
      'RUN_PACKED',
      'SELF_TEST',
      'STATUS',
    ]) {
      expect(seen).toContain(`request:${name}`);
      expect(seen).toContain(`response:${name}`);
    }
    for (const name of ['LOG', 'ALERT', 'PROGRESS']) expect(seen).toContain(`event:${name}`);
    expect(seen).toContain('error:ERROR');
    for (const [, v] of good) expect(v.type_code).toBe(MsgType[v.type]);
  });

  it.each(good)('%s decodes to its message', (_n, v) => {
    const evs = new FrameDecoder().push(fromHex(v.frame_hex));
    expect(evs).toHaveLength(1);
    const ev = evs[0]!;
    if (ev.kind !== 'frame') throw ev.error;
    expect(ev.frame).toEqual({ version: v.version, type: v.type_code, flags: v.flags, seq: v.seq, message: fromJsonForm(v.message) });
  });

  it.each(good)('%s encodes to its frame bytes', (_n, v) => {
    expect(toHex(encodeFrame(v.type_code, v.flags, v.seq, fromJsonForm(v.message), { version: v.version }))).toBe(v.frame_hex);
  });

  const damaged = load<Damaged[]>('damaged.json').map((d) => [d.name, d] as const);

  it('include every kind of damage the spec names', () => {
    const kinds = new Set(damaged.flatMap(([, d]) => d.events.filter((e) => e.kind === 'error').map((e) => (e as { error: string }).error)));
    expect([...kinds].sort()).toEqual(['bad-payload', 'crc', 'framing', 'oversize', 'unknown-type', 'version']);
  });

  it.each(damaged)('damaged: %s produces the listed events', (_n, d) => {
    const evs = new FrameDecoder(d.max_frame_bytes ? { maxFrameBytes: d.max_frame_bytes } : {}).push(fromHex(d.frame_hex));
    expect(
      evs.map((e) =>
        e.kind === 'error'
          ? { kind: 'error', error: e.error.code, header: e.header ?? null }
          : { kind: 'frame', type: Object.entries(MsgType).find(([, c]) => c === e.frame.type)![0], seq: e.frame.seq },
      ),
    ).toEqual(d.events);
  });

  it.each(damaged)('damaged: %s gets the listed answer from a device', async (_n, d) => {
    const board = new MockBoard(new ToyChip());
    const evs = new FrameDecoder(d.max_frame_bytes ? { maxFrameBytes: d.max_frame_bytes } : {}).push(fromHex(d.frame_hex));
    const errorsOut: { seq: number; code: number }[] = [];
    for (const ev of evs) {
      if (ev.kind !== 'error') continue;
      for (const f of await board.handle(ev)) {
        const back = new FrameDecoder().push(f)[0]!;
        if (back.kind === 'frame') errorsOut.push({ seq: back.frame.seq, code: (back.frame.message as { code: number }).code });
      }
    }
    expect(errorsOut).toEqual(d.device_answer ? [{ seq: d.device_answer.seq, code: ErrorCode[d.device_answer.code] }] : []);
  });
});
