/**
 * The mock board on a thread of its own (`thread=1` in a `mock:` address): chip, board and line
 * are built and served there (serveMockSpec, as in process), and the host's end of the line
 * crosses over a MessagePort. The chip's work then runs beside the host's, as a real board's
 * does: host and device overlap, and a RUN's device time is time the host could use.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Duplex } from 'node:stream';
import type { ChipBuildHooks, ChipBuildProgress } from '../../models/chips/index.ts';
import { spawnThread } from '../../models/parallel/thread.ts';
import type { MockSpec } from './mock-spec.ts';
import { serveMockSpec } from './open.ts';
import { portStream } from './port-stream.ts';

export interface ThreadedMock {
  /** The host's end of the line. */
  stream: Duplex;
  bytesPerSecond: number;
  close(): Promise<void>;
}

type Control = { ready: true } | { failed: string } | { closed: true };
/** The chip's build progress, passed on to the host's hooks while the thread builds it. */
type Progress = { progress: ChipBuildProgress };

/** Builds the board of `spec` on a new thread; resolves once it serves (or rejects with why it could not be built). */
export async function openMockBoardThread(spec: MockSpec, hooks: ChipBuildHooks = {}): Promise<ThreadedMock> {
  const line = new MessageChannel();
  const control = new MessageChannel();
  const worker = spawnThread(new URL(import.meta.url), 'serveOnThread', { spec, line: line.port2, control: control.port2 }, [line.port2, control.port2]);
  const next = () =>
    new Promise<Control>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the mock board's thread stopped (exit code ${code})`));
      const onMessage = (m: Control | Progress) => {
        if ('progress' in m) {
          hooks.onProgress?.(m.progress);
          return;
        }
        worker.off('error', reject);
        worker.off('exit', onExit);
        control.port1.off('message', onMessage);
        resolve(m);
      };
      worker.once('error', reject);
      worker.once('exit', onExit);
      control.port1.on('message', onMessage);
    });
  const first = await next();
  if ('failed' in first) {
    await worker.terminate();
    throw new Error(first.failed);
  }
  const stream = portStream(line.port1);
  let closing: Promise<void> | undefined;
  return {
    stream,
    bytesPerSecond: spec.line.baud ? spec.line.baud / 10 : Infinity,
    close: () =>
      (closing ??= (async () => {
        stream.end();
        const done = next().catch(() => ({ closed: true }) as Control);
        control.port1.postMessage('close');
        await done;
        stream.destroy();
        control.port1.close();
        await worker.terminate();
      })()),
  };
}

/** The thread's side: serves the board on the line port until the host asks it to close. */
export async function serveOnThread(input: { spec: MockSpec; line: MessagePort; control: MessagePort }): Promise<void> {
  const { spec, control } = input;
  let served: Awaited<ReturnType<typeof serveMockSpec>>;
  const stream = portStream(input.line);
  try {
    served = await serveMockSpec(spec, stream, { onProgress: (progress) => control.postMessage({ progress } satisfies Progress) });
  } catch (err) {
    control.postMessage({ failed: (err as Error).message } satisfies Control);
    return;
  }
  control.once('message', async () => {
    await served.close();
    stream.destroy();
    control.postMessage({ closed: true } satisfies Control);
    control.close();
  });
  control.postMessage({ ready: true } satisfies Control);
}
