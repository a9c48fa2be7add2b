/**
 * What the host accepts from a HELLO reply: a protocol version it speaks, and a description
 * of the chip that is consistent with itself (layer sizes chain, row tables fit, DAC and
 * safe windows make sense, limits leave room for a frame). Everything else the host does
 * (chunking, safety checks, reply validation) trusts these numbers, so they are checked once here.
 */
import { PROTOCOL_VERSION, type HelloResponse } from '../../firmware-protocol/messages.ts';

/** Oldest protocol this host still speaks. */
export const HOST_MIN_PROTOCOL = 1;

export class VersionMismatchError extends Error {
  override name = 'VersionMismatchError';
  constructor(
    message: string,
    readonly deviceProtocol: number,
    readonly deviceMinProtocol: number,
  ) {
    super(message);
  }
}

/**
 * The protocol version both sides speak, or VersionMismatchError. A device newer than the host
 * is fine as long as it still speaks the host's version (its minProtocol <= ours).
 */
export function negotiateProtocol(deviceProtocol: number, deviceMinProtocol: number, firmware = 'the firmware', hostProtocol = PROTOCOL_VERSION): number {
  if (deviceMinProtocol > hostProtocol) {
    throw new VersionMismatchError(
      `${firmware} needs protocol ${deviceMinProtocol} or newer, but this spikeloop speaks protocol ${hostProtocol}; ` +
        'update spikeloop (npm install spikeloop@latest)',
      deviceProtocol,
      deviceMinProtocol,
    );
  }
  if (deviceProtocol < HOST_MIN_PROTOCOL) {
    throw new VersionMismatchError(
      `${firmware} speaks protocol ${deviceProtocol}, older than the oldest this spikeloop speaks (${HOST_MIN_PROTOCOL}); update the board firmware`,
      deviceProtocol,
      deviceMinProtocol,
    );
  }
  return Math.min(deviceProtocol, hostProtocol);
}

const isInt = (v: unknown, lo = 0, hi = Number.MAX_SAFE_INTEGER): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Problems with a HELLO reply, as readable sentences; empty when it is consistent. */
export function helloProblems(h: HelloResponse): string[] {
  const p: string[] = [];
  if (!isInt(h.protocol, 0, 255)) p.push(`protocol ${h.protocol} is not a u8`);
  if (!isInt(h.minProtocol, 0, 255) || h.minProtocol > h.protocol) p.push(`minProtocol ${h.minProtocol} must be <= protocol ${h.protocol}`);
  if (!Array.isArray(h.layers) || h.layers.length === 0) {
    p.push('the device announces no layers');
  } else {
    h.layers.forEach((l, i) => {
      const at = `layer ${i}`;
      if (!isInt(l.inputs, 1, 0xffff)) p.push(`${at}: inputs ${l.inputs} must be 1..65535`);
      if (!isInt(l.outputs, 1, 0xffff)) p.push(`${at}: outputs ${l.outputs} must be 1..65535`);
      if (!(l.rowInput instanceof Uint16Array) || !(l.rowPolarity instanceof Uint8Array)) {
        p.push(`${at}: rowInput/rowPolarity are not u16/u8 arrays`);
        return;
      }
      if (l.rowInput.length === 0 || l.rowInput.length !== l.rowPolarity.length) {
        p.push(`${at}: ${l.rowInput.length} rowInput entries but ${l.rowPolarity.length} rowPolarity entries (need the same, > 0)`);
      }
      const badIn = l.rowInput.findIndex((j) => j >= l.inputs);
      if (badIn >= 0) p.push(`${at}: row ${badIn} is driven by input ${l.rowInput[badIn]}, but the layer has ${l.inputs} inputs`);
      const badPol = l.rowPolarity.findIndex((q) => q > 1);
      if (badPol >= 0) p.push(`${at}: row ${badPol} has polarity ${l.rowPolarity[badPol]} (0 = NMOS, 1 = PMOS)`);
      if (!isInt(l.horizonTicks, 1, 0xfffe)) p.push(`${at}: horizonTicks ${l.horizonTicks} must be 1..65534`);
      if (i > 0 && l.inputs !== h.layers[i - 1].outputs) {
        p.push(`${at} has ${l.inputs} inputs but layer ${i - 1} has ${h.layers[i - 1].outputs} outputs`);
      }
    });
  }
  const d = h.dac;
  if (!d || !isInt(d.bits, 1, 16) || !isNum(d.vMin) || !isNum(d.vMax) || !(d.vMin < d.vMax)) {
    p.push(`dac ${JSON.stringify(d)} must have bits 1..16 and vMin < vMax`);
  }
  for (const pol of ['nmos', 'pmos'] as const) {
    const w = h.safe?.[pol];
    if (!Array.isArray(w) || w.length !== 2 || !isNum(w[0]) || !isNum(w[1]) || w[0] > w[1]) {
      p.push(`safe.${pol} ${JSON.stringify(w)} must be [low, high] volts with low <= high`);
    }
  }
  if (!isNum(h.tickSeconds) || h.tickSeconds <= 0) p.push(`tickSeconds ${h.tickSeconds} must be > 0`);
  if (!isInt(h.maxPayload, 64, 0xffff)) p.push(`maxPayload ${h.maxPayload} must be 64..65535 bytes`);
  if (!isInt(h.maxBatch, 1, 0xffff)) p.push(`maxBatch ${h.maxBatch} must be 1..65535`);
  if (!Array.isArray(h.features) || h.features.some((f) => typeof f !== 'string')) p.push('features must be a list of names');
  return p;
}
