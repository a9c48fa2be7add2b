/**
 * Serves a MockBoard over any duplex byte stream (a serial port, a pty, an in-memory pair):
 * bytes in -> FrameDecoder -> board.handle -> frames out. Requests are handled one at a time
 * in arrival order (RUN awaits the backend); events are written as they happen.
 */
import type { Duplex } from 'node:stream';
import { FrameDecoder, type DecodeEvent, type DecoderStats } from '../decoder.ts';
import { encodeError } from '../frame.ts';
import { maxWireBytes } from '../limits.ts';
import { ErrorCode } from '../messages.ts';
import type { MockBoard } from './board.ts';

export interface ServeOptions {
  /** Requests waiting beyond this many are answered BUSY at once. Default 64. */
  maxQueue?: number;
  /** Send a LOG event when serving starts. Default true. */
  announce?: boolean;
}

export interface ServeStats extends DecoderStats {
  /** Frames handed to the board. */
  handled: number;
  /** Frames written to the stream (responses, errors, events). */
  framesOut: number;
  /** Requests answered BUSY because the queue was full. */
  busy: number;
  /** The stream's last error, if any (serving stops on it). */
  lastError?: Error;
}

export interface BoardServer {
  /** Stops reading, waits for the request in progress; leaves the stream open (its owner closes it). */
  close(): Promise<void>;
  readonly stats: ServeStats;
}

export function serveBoard(board: MockBoard, stream: Duplex, opts: ServeOptions = {}): BoardServer {
  const maxQueue = opts.maxQueue ?? 64;
  // a real board has a fixed receive buffer: frames beyond its maxPayload are dropped as oversize
  const decoder = new FrameDecoder({ maxFrameBytes: maxWireBytes(board.maxPayload) - 1, versions: [board.minProtocol, board.protocol] });
  const own = { handled: 0, framesOut: 0, busy: 0, lastError: undefined as Error | undefined };
  const queue: DecodeEvent[] = [];
  let running: Promise<void> | null = null;
  let closed = false;

  const write = async (frame: Uint8Array): Promise<void> => {
    if (closed && !running) return;
    if (stream.destroyed || stream.writableEnded) return;
    own.framesOut++;
    if (!stream.write(frame)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stream.off('drain', done);
          stream.off('close', done);
          resolve();
        };
        stream.on('drain', done);
        stream.on('close', done);
      });
    }
  };

  const pump = async (): Promise<void> => {
    while (queue.length > 0 && !closed) {
      const ev = queue.shift()!;
      own.handled++;
      const frames = await board.handle(ev);
      for (const f of frames) await write(f);
    }
  };

  const kick = () => {
    if (running) return;
    running = pump().finally(() => {
      running = null;
      if (queue.length > 0 && !closed) kick();
    });
  };

  const onData = (chunk: Buffer) => {
    if (closed) return;
    for (const ev of decoder.push(chunk)) {
      if (ev.kind === 'frame' && queue.length >= maxQueue) {
        own.busy++;
        board.counters.framesOk++;
        board.counters.refused++;
        void write(encodeError(ev.frame.seq, ErrorCode.BUSY, `device busy: ${queue.length} requests waiting; retry later`));
        continue;
      }
      queue.push(ev);
      kick(); // the first request starts at once, so it does not count against the queue
    }
  };
  const stop = () => {
    closed = true;
    queue.length = 0;
  };
  const onError = (e: Error) => {
    own.lastError = e;
    stop();
  };

  stream.on('data', onData);
  stream.on('error', onError);
  stream.on('end', stop);
  stream.on('close', stop);
  const unsubscribe = board.subscribe((f) => void write(f));

  if (opts.announce ?? true) {
    board.emitEvent('LOG', {
      level: 'info',
      text: `${board.firmware} ready: board ${board.boardId}, chip ${board.backend.chipId}, ${board.backend.geometry.length} layer(s), maxPayload ${board.maxPayload}`,
    });
  }

  return {
    async close() {
      stop();
      stream.off('data', onData);
      stream.off('end', stop);
      stream.off('close', stop);
      unsubscribe();
      if (running) await running;
      // keep a listener: an error after close must not crash the process
      stream.off('error', onError);
      stream.on('error', () => {});
    },
    get stats(): ServeStats {
      return { ...decoder.stats, ...own };
    },
  };
}
