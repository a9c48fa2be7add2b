/**
 * Builds and serves the mock board a `mock:` address describes (mock-spec.ts): the chip, the
 * board around it, the line in front of it. `openMockBoard` serves it in process over a duplex
 * pair and hands back the host's end; `serveMockSpec` serves it on a stream someone else opened
 * (the pty or serial port of `spikeloop mock-board`). Both paths build the same board.
 */
import type { Duplex } from 'node:stream';
import { buildChip, type ChipBuildHooks } from '../../models/chips/index.ts';
import type { ChipBackend } from '../../models/chips/chip-backend.ts';
import { MockBoard } from './board.ts';
import { duplexPair } from './duplex-pair.ts';
import { emulateLine, EmulatedLine, type LineStats } from './line.ts';
import type { MockSpec } from './mock-spec.ts';
import { serveBoard, type BoardServer, type ServeStats } from './serve.ts';

export interface ServedMock {
  board: MockBoard;
  backend: ChipBackend;
  /** Wire rate the line emulates in bytes per second (Infinity when not paced). */
  bytesPerSecond: number;
  /** The emulated line, when the spec asks for one (baud=, latencyMs= or byteErrorRate=). */
  line?: EmulatedLine;
  readonly stats: ServeStats & { line?: LineStats };
  /** Stops serving and releases the chip (the stream stays with its owner). */
  close(): Promise<void>;
}

export interface OpenedMock extends ServedMock {
  /** The host's end of the in-process line. */
  stream: Duplex;
}

/** Serves the board of `spec` on `stream` (the board's end of a pty, port or pair). */
export async function serveMockSpec(spec: MockSpec, stream: Duplex, hooks: ChipBuildHooks = {}): Promise<ServedMock> {
  const backend = await buildChip(spec.chip, hooks);
  let board: MockBoard;
  try {
    board = new MockBoard(backend, { ...spec.board });
  } catch (err) {
    await backend.close?.();
    throw new Error(`cannot build the mock board: ${(err as Error).message}`);
  }
  const line = emulateLine(stream, spec.line);
  const server: BoardServer = serveBoard(board, line);
  let closing: Promise<void> | undefined;
  return {
    board,
    backend,
    bytesPerSecond: spec.line.baud ? spec.line.baud / 10 : Infinity,
    ...(line instanceof EmulatedLine ? { line } : {}),
    get stats() {
      return { ...server.stats, ...(line instanceof EmulatedLine ? { line: line.stats } : {}) };
    },
    close: () =>
      (closing ??= (async () => {
        await server.close();
        if (line !== stream) line.destroy();
        await backend.close?.();
      })()),
  };
}

/** The board of `spec` in this process, behind an in-memory line; returns the host's end. */
export async function openMockBoard(spec: MockSpec, hooks: ChipBuildHooks = {}): Promise<OpenedMock> {
  const [host, device] = duplexPair();
  const served = await serveMockSpec(spec, device, hooks);
  return {
    board: served.board,
    backend: served.backend,
    bytesPerSecond: served.bytesPerSecond,
    ...(served.line ? { line: served.line } : {}),
    get stats() {
      return served.stats;
    },
    stream: host,
    close: async () => {
      host.end();
      host.destroy();
      await served.close();
    },
  };
}
