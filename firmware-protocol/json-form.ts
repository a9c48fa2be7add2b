/**
 * The JSON form of payloads used by the golden vectors: typed arrays become
 * `{"$u16": [..]}` / `{"$u8": [..]}`, everything else is plain JSON. Numbers are JSON numbers
 * (the shortest text that reads back as the same double).
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export function toJsonForm(v: unknown): JsonValue {
  if (v instanceof Uint16Array) return { $u16: Array.from(v) };
  if (v instanceof Uint8Array) return { $u8: Array.from(v) };
  if (ArrayBuffer.isView(v)) throw new TypeError(`no JSON form for ${v.constructor.name}`);
  if (Array.isArray(v)) return v.map(toJsonForm);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = toJsonForm(x);
    return o;
  }
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw new TypeError(`no JSON form for ${String(v)}`);
}

export function fromJsonForm(j: JsonValue): unknown {
  if (Array.isArray(j)) return j.map(fromJsonForm);
  if (j !== null && typeof j === 'object') {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === '$u16') return Uint16Array.from(j.$u16 as number[]);
    if (keys.length === 1 && keys[0] === '$u8') return Uint8Array.from(j.$u8 as number[]);
    const o: Record<string, unknown> = {};
    for (const k of keys) o[k] = fromJsonForm(j[k]!);
    return o;
  }
  return j;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new TypeError(`not a hex string: ${s.slice(0, 20)}...`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}
