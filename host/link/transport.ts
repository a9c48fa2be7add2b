/**
 * Opens the byte stream behind a device address, through a registry of openers by scheme:
 *   serial:PATH  and  pty:PATH  -> serialport's SerialPort (a pty is a tty, so the same code path)
 *   mock:KIND?...               -> the mock board's own opener (firmware-protocol/mock-board/open.ts):
 *                                  the board in process over an in-memory line, the same codec and
 *                                  bytes as over a wire, paced and noisy when the address says so.
 */
import type { Duplex } from 'node:stream';
import { SerialPortStream } from '@serialport/stream';
import { SerialPort } from 'serialport';
import type { ChipBuildHooks } from '../../models/chips/index.ts';
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

/** What opening any URI takes: the serial options, and for mock: URIs the chip build's progress. */
export interface TransportOpenOptions extends SerialOpenOptions, ChipBuildHooks {}

/** Turns an open failure into a message that says what to do. */
function explainOpenError(path: string, err: Error): string {
  const m = err.message;
  if (/ENOENT|No such file|cannot open.*not found/i.test(m))
    return `cannot open ${path}: no such port; run \`spikeloop ports\` to list ports, or check the cable`;
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
  const port: SerialPortStream = opts.binding ? new SerialPortStream({ ...settings, binding: opts.binding }) : new SerialPort(settings);
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(new TransportError(explainOpenError(address.path, err))) : resolve())));
  keepPollerInterest(port);
  // A pty is not rate-limited unless baud= says the board behind it is paced; a real serial line
  // carries 10 bits per byte (8N1).
  const bytesPerSecond = address.scheme === 'pty' && !address.baudGiven ? Infinity : address.baudRate / 10;
  return {
    description: address.uri,
    stream: port,
    bytesPerSecond,
    close: () => closeStream(port),
  };
}

export async function openMockTransport(address: MockAddress, hooks: ChipBuildHooks = {}): Promise<Transport> {
  // Loaded on demand: chip backends may pull in heavy engines that serial users never need.
  const { openMockBoard } = await import('../../firmware-protocol/mock-board/open.ts');
  const { openMockBoardThread } = await import('../../firmware-protocol/mock-board/thread.ts');
  let mock;
  try {
    mock = address.spec.board.thread ? await openMockBoardThread(address.spec, hooks) : await openMockBoard(address.spec, hooks);
  } catch (err) {
    throw new TransportError(`cannot open ${address.uri}: ${(err as Error).message}`);
  }
  return { description: address.uri, stream: mock.stream, bytesPerSecond: mock.bytesPerSecond, close: () => mock.close() };
}

type Opener = (address: DeviceAddress, opts: TransportOpenOptions) => Promise<Transport>;

/** One opener per scheme. */
const OPENERS: Record<DeviceAddress['scheme'], Opener> = {
  serial: (a, o) => openSerialTransport(a as SerialAddress, o),
  pty: (a, o) => openSerialTransport(a as SerialAddress, o),
  mock: (a, o) => openMockTransport(a as MockAddress, o),
};

/** Opens the stream behind a device URI (or a parsed address). */
export async function openTransport(uri: string | DeviceAddress, opts: TransportOpenOptions = {}): Promise<Transport> {
  const address = typeof uri === 'string' ? parseDeviceUri(uri) : uri;
  return OPENERS[address.scheme](address, opts);
}
