/**
 * Opens the byte stream behind a device URI:
 *   serial:PATH  and  pty:PATH  -> serialport's SerialPort (a pty is a tty, so the same code path)
 *   mock:KIND?...               -> createChip + MockBoard + serveBoard over an in-process duplex pair:
 *                                  the same codec and the same bytes as over a wire.
 */
import type { Duplex } from 'node:stream';
import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import { parseDeviceUri, type DeviceAddress, type MockAddress, type SerialAddress } from '../device/device-uri.ts';
import type { Transport } from './link-client.ts';

export class TransportError extends Error {
  override name = 'TransportError';
}

/** A serialport binding (the native one by default; serialport's MockBinding in tests). */
export type SerialBinding = ConstructorParameters<typeof SerialPortStream>[0]['binding'];

export interface SerialOpenOptions {
  /** A serialport binding other than the native one (MockBinding in tests). */
  binding?: SerialBinding;
}

/** Turns an open failure into a message that says what to do. */
function explainOpenError(path: string, err: Error): string {
  const m = err.message;
  if (/ENOENT|No such file|cannot open.*not found/i.test(m)) return `cannot open ${path}: no such port; run \`spikeloop ports\` to list ports, or check the cable`;
  if (/EACCES|Permission denied/i.test(m)) return `cannot open ${path}: permission denied; add your user to the dialout (or uucp) group and log in again`;
  if (/ENOTTY|Inappropriate ioctl/i.test(m)) return `cannot open ${path}: not a serial port (not a tty); run \`spikeloop ports\` to list ports`;
  if (/EBUSY|locked|Resource busy/i.test(m)) return `cannot open ${path}: port in use by another program (a serial monitor, ModemManager?); close it and retry`;
  return `cannot open ${path}: ${m}`;
}

function closeStream(stream: Duplex & { isOpen?: boolean; close?: (cb: (err?: Error | null) => void) => void }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    if (typeof stream.close === 'function' && stream.isOpen) {
      stream.close(() => resolve());
    } else {
      stream.destroy();
      resolve();
    }
  });
}

/**
 * Works around a lost-wakeup in @serialport/bindings-cpp (13.0.0) on Linux and macOS: its Poller
 * restarts the fd watch with only the event just asked for (`uv_poll_start(handle, events)`),
 * dropping the other. A write blocked on a full tty (waiting for "writable") loses its watch as
 * soon as the reader asks for "readable"; if the device then has nothing to send, the write never
 * resumes and the link deadlocks. Under load this happened within seconds on a pty. Here every
 * poll asks for every event that still has a waiter.
 */
export function keepPollerInterest(port: SerialPortStream): void {
  type PollerLike = { poll(flag?: number): void; listenerCount(e: string): number };
  const poller = (port as unknown as { port?: { poller?: PollerLike } }).port?.poller;
  if (!poller || typeof poller.poll !== 'function' || typeof poller.listenerCount !== 'function') return;
  const poll = poller.poll.bind(poller);
  const READABLE = 0b01;
  const WRITABLE = 0b10;
  poller.poll = (flag = 0) => {
    let f = flag;
    if (poller.listenerCount('readable') > 0) f |= READABLE;
    if (poller.listenerCount('writable') > 0) f |= WRITABLE;
    poll(f);
  };
}

export async function openSerialTransport(address: SerialAddress, opts: SerialOpenOptions = {}): Promise<Transport> {
  const settings = { path: address.path, baudRate: address.baudRate, rtscts: address.rtscts, autoOpen: false as const };
  const port: SerialPortStream = opts.binding
    ? new SerialPortStream({ ...settings, binding: opts.binding })
    : new SerialPort(settings);
  await new Promise<void>((resolve, reject) =>
    port.open((err) => (err ? reject(new TransportError(explainOpenError(address.path, err))) : resolve())),
  );
  keepPollerInterest(port);
  // A pty (mock board) is not rate-limited; a real serial line carries 10 bits per byte (8N1).
  const bytesPerSecond = address.scheme === 'pty' ? Infinity : address.baudRate / 10;
  return {
    description: address.uri,
    stream: port,
    bytesPerSecond,
    close: () => closeStream(port),
  };
}

export async function openMockTransport(address: MockAddress): Promise<Transport> {
  // Loaded on demand: chip backends may pull in heavy engines that serial users never need.
  const { createChip } = await import('../../models/chips/index.ts');
  const { MockBoard, serveBoard, duplexPair } = await import('../../firmware-protocol/mock-board/index.ts');
  const backend = await createChip(address.chip, address.chipOptions);
  let board: InstanceType<typeof MockBoard>;
  try {
    board = new MockBoard(backend, { ...address.board });
  } catch (err) {
    await backend.close?.();
    throw new TransportError(`cannot build the mock board for ${address.uri}: ${(err as Error).message}`);
  }
  const [host, device] = duplexPair();
  const server = serveBoard(board, device);
  let closing: Promise<void> | undefined;
  return {
    description: address.uri,
    stream: host,
    bytesPerSecond: Infinity,
    close: () =>
      (closing ??= (async () => {
        host.end();
        host.destroy();
        await server.close();
        await backend.close?.();
      })()),
  };
}

/** Opens the stream behind a device URI (or a parsed address). */
export async function openTransport(uri: string | DeviceAddress, opts: SerialOpenOptions = {}): Promise<Transport> {
  const address = typeof uri === 'string' ? parseDeviceUri(uri) : uri;
  if (address.scheme === 'mock') return openMockTransport(address);
  return openSerialTransport(address, opts);
}
