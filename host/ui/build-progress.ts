/**
 * A progress bar for building a device's chip, shown only when the build is slow: the SPICE chip
 * characterises its devices for minutes on first use and reads them from its cache afterwards, so
 * a bar appears when no step has ended for `afterMs`, and never for a build served from the cache.
 */
import type { ChipBuildProgress } from '../../models/chips/index.ts';
import { Progress, type ProgressStream } from './progress.ts';

export interface BuildProgressOptions {
  stream?: ProgressStream;
  /** Milliseconds of silence after which the bar appears (default 1000). */
  afterMs?: number;
}

/** A handler for `ChipBuildHooks.onProgress` that draws a bar once the build proves slow. */
export function buildProgressBar(opts: BuildProgressOptions = {}): (p: ChipBuildProgress) => void {
  const afterMs = opts.afterMs ?? 1000;
  let bar: Progress | undefined;
  let timer: NodeJS.Timeout | undefined;
  let last: ChipBuildProgress | undefined;
  const show = () => {
    if (!last || bar) return;
    bar = new Progress({ total: last.total, label: last.stage, unit: 'steps', stream: opts.stream, everySeconds: 15, estimate: false });
    // Said once, at once (a line-mode bar prints nothing until 10 % is done): why the wait, and that it happens once.
    bar.log(`${last.stage}: simulating, which takes minutes the first time; later runs read the results from the cache`);
    bar.update(last.done, last.step ? { last: last.step } : {});
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(show, afterMs);
    timer.unref();
  };
  return (p) => {
    last = p;
    if (p.done >= p.total) {
      clearTimeout(timer);
      bar?.update(p.done, p.step ? { last: p.step } : {});
      bar?.finish();
      bar = undefined;
      return;
    }
    if (bar) bar.update(p.done, p.step ? { last: p.step } : {});
    else arm();
  };
}
