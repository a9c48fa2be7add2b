/** `spikeloop bringup`: check a board and its chip step by step and diagnose dead or faulty parts. */
import path from 'node:path';
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { CommandFailedError } from '../command.ts';
import { deviceOption, intOptionWithDefault, timeoutOption, stringOption } from '../common-options.ts';
import { ChipDevice } from '../../device/chip-device.ts';
import { DEFAULT_TIMEOUTS } from '../../link/link-client.ts';
import { openRunDir } from '../../runs/run-dir.ts';
import { createProgress, type Progress } from '../../ui/progress.ts';
import { renderTable } from '../../ui/table.ts';
import { runBringup } from '../../workflows/bringup.ts';
import type { BringupRecord, StepId } from '../../workflows/bringup-record.ts';
import { writeBringupJson, writeBringupReport } from '../../workflows/bringup-report.ts';
import { displayPath } from '../../ui/format.ts';

export const name = 'bringup';
export const summary = 'bring a board and chip up: link, protocol, weight memory, neurons, synapses, jitter, supply';
export const description =
  'Runs, in order: link and HELLO, protocol version, weight-memory write and CRC read-back (low, full-scale = the ' +
  'safe window extremes, checkerboard, random), every neuron under a strong known input (dead and stuck neurons), ' +
  "every synapse alone (dead, weak and shorted synapses, as outliers against the chip's own spread), repeatability " +
  'of identical runs (timer jitter), supply and temperature. It stops early only where going on could harm the chip. ' +
  'Writes a run folder with record.json, bringup.json and report.html; exits 1 with a summary when anything fails. ' +
  'Findings use the faults= grammar of the behavioural mock (dead-neuron:L.I, weak-synapse:L.J.I.nmos, ...).';
export const examples = [
  'spikeloop bringup',
  'spikeloop bringup --device serial:/dev/ttyACM0 --out runs/board-17',
  "spikeloop bringup --device 'mock:behavioral?seed=3&faults=dead-neuron:0.5;weak-synapse:1.2.3.pmos' --json",
];

export const options = {
  device: deviceOption,
  out: stringOption('run folder (default runs/bringup-<date-time>); must be empty or missing', 'DIR'),
  seed: intOptionWithDefault('seed of the random weight-memory pattern', 0, 2 ** 31 - 1, 1),
  jitterRuns: intOptionWithDefault('identical runs for the jitter check', 2, 1000, 32),
  maxJitter: intOptionWithDefault('largest acceptable rms timer jitter, in ticks', 1, 1000, 2, 'TICKS'),
  timeout: { ...timeoutOption, description: 'per-request timeout in milliseconds for every request (default: per request type, RUN 10 s)' },
} satisfies OptionsSpec;

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const o = ctx.options;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  const out = o.out ?? path.join('runs', `bringup-${stamp}`);
  const runDir = openRunDir({ out, info: { command: 'bringup', args: process.argv.slice(2), device: o.device } });
  ctx.print(`spikeloop bringup: device ${o.device}, run folder ${runDir.path}`);

  let bar: Progress | undefined;
  let barStep: StepId | undefined;
  const onProgress = (p: { step: StepId; label: string; done: number; total: number }) => {
    if (p.step !== barStep) {
      bar?.finish();
      bar =
        p.total > 1 ? createProgress({ total: p.total, label: p.step, unit: p.step === 'synapses' || p.step === 'jitter' ? 'samples' : 'steps' }) : undefined;
      barStep = p.step;
    }
    bar?.update(p.done);
  };
  const log = (line: string) => {
    bar?.finish();
    bar = undefined;
    barStep = undefined;
    ctx.print(line);
  };

  let rec: BringupRecord;
  try {
    const timeouts = o.timeout ? Object.fromEntries(Object.keys(DEFAULT_TIMEOUTS).map((k) => [k, o.timeout])) : undefined;
    rec = await runBringup(() => ChipDevice.open(o.device, { timeouts }), {
      signal: ctx.signal,
      onProgress,
      log,
      seed: o.seed,
      jitterRepeats: o.jitterRuns,
      maxJitterTicks: o.maxJitter,
    });
  } catch (err) {
    bar?.finish();
    throw runDir.stopped(err, ctx.signal, 'run bring-up again (with a new --out, or the same once its folder is deleted)');
  }
  bar?.finish();
  const jsonPath = runDir.file('bringup.json');
  const reportPath = runDir.file('report.html');
  writeBringupJson(jsonPath, rec);
  await writeBringupReport(reportPath, rec);

  ctx.print(
    '\n' +
      renderTable(
        rec.checks.map((c) => ({ step: c.title, result: c.status.toUpperCase(), seconds: Number(c.seconds.toFixed(2)) })),
        { title: `bring-up of ${rec.device.chipId ?? o.device}` },
      ),
  );
  const findings = [...rec.dead_neurons, ...rec.bad_synapses];
  if (findings.length) ctx.print(`findings: ${findings.join(', ')}`);
  ctx.print(`report: ${displayPath(reportPath)}`);

  const result = {
    ok: rec.ok,
    device: o.device,
    chip_id: rec.device.chipId ?? null,
    stopped_early: rec.stoppedEarly ?? null,
    checks: Object.fromEntries(rec.checks.map((c) => [c.step, c.status])),
    run_dir: runDir.path,
    report: reportPath,
    seconds: Number(rec.seconds.toFixed(2)),
    dead_neurons: rec.dead_neurons,
    bad_synapses: rec.bad_synapses,
    jitter_ticks: rec.jitter_ticks,
  };
  runDir.finish(result);
  if (!rec.ok) {
    const failed = rec.checks.filter((c) => c.status === 'fail').map((c) => `${c.title}: ${c.detail}`);
    const why = rec.stoppedEarly ? `stopped at ${rec.stoppedEarly.step}: ${rec.stoppedEarly.reason}` : failed.join('; ');
    throw new CommandFailedError(`bring-up failed: ${why}`, result);
  }
  return result;
}
