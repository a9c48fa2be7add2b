import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cli } from './run-cli.ts';
import { BIN } from '../../e2e/helpers.ts';

describe('spikeloop CLI', () => {
  it('lists commands', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/info\s+show what a device announces/);
    expect(r.out).toMatch(/mock-board/);
    expect(r.out).toMatch(/ports/);
  });

  it('rejects an unknown command with exit 2 and a suggestion', async () => {
    const r = await cli('infos');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown command 'infos'; did you mean 'info'\?/);
  });

  const usage: [string[], RegExp][] = [
    [['info', '--devcie', 'mock:ideal'], /unknown flag --devcie for 'info'; did you mean --device\?/],
    [
      ['info', '--device', 'usb:/dev/x'],
      /invalid --device 'usb:\/dev\/x': bad device URI 'usb:\/dev\/x': unknown scheme 'usb'; use one of serial:, pty:, mock:/,
    ],
    [['info', '--device'], /flag --device needs a value: --device URI/],
    [['info', '--timeout', 'soon'], /invalid --timeout 'soon': expected a whole number; expected per-request timeout in milliseconds/],
    [['info', '--timeout', '1'], /invalid --timeout '1': must be >= 10/],
    [['info', 'extra'], /unexpected argument 'extra' for 'info'/],
    [['ports', '--boards=yes'], /flag --boards takes no value/],
    // A mock's chip options are checked with the address, before anything opens.
    [['info', '--device', 'mock:nosuchchip'], /unknown chip kind 'nosuchchip'/],
    [['mock-board'], /give exactly one of --pty and --port PATH/],
    [['mock-board', '--pty', '--geometry', '784x10'], /invalid --geometry '784x10': expected layer widths joined by dashes/],
    [['mock-board', '--pty', '--device', 'mock:ideal', '--seed', '3'], /--device mock:\.\.\. already names the chip and the board/],
    [['mock-board', '--pty', '--device', 'serial:/dev/ttyS0'], /is not a mock: address/],
    [['mock-board', '--pty', '--device', 'mock:ideal?baud=fast'], /baud='fast' expected a whole number/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--quick', '--adaptive'], /--adaptive goes with a full calibration/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--quick', '--sweep-repeats', '2'], /--sweep-repeats goes with a full calibration/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--quick', '--gate-reversal'], /--gate-reversal goes with a full calibration/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--quick', '--cap-slope', 'spice'], /--cap-slope goes with a full calibration/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--quick', '--reference-pairs-only'], /--reference-pairs-only goes with a full calibration/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--cap-slope', '0.9'], /invalid --cap-slope '0\.9': each slope must lie within/],
    [['calibrate', '--device', 'mock:ideal', '--out', 'x', '--sweep-repeats', '0'], /invalid --sweep-repeats '0': must be >= 1/],
    // A negative value reaches the flag's check instead of reading as a missing value.
    [['train', '--dataset', 'iris', '--epochs', '-3', '--out', 'x'], /invalid --epochs '-3': must be >= 1 \(a positive whole number\)/],
    [['train', '--dataset', 'iris', '--lr', '-1', '--out', 'x'], /invalid --lr '-1': expected a positive number like 0\.01/],
    [
      ['train', '--dataset', 'iris', '--profile', 'p.slp', '--device', 'mock:ideal', '--out', 'x'],
      /--profile and --device both name the chip to train for; give one/,
    ],
    [['train', '--dataset', 'iris', '--profile', 'p.slp', '--from-ann', '--out', 'x'], /--from-ann maps a ReLU network onto windows of its own/],
  ];
  it.each(usage)('exits 2 on %j naming the flag, the value and the fix', async (argv, re) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(re);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });

  it('with --json, a usage error still ends stdout with one JSON object', async () => {
    const r = await cli('info', '--device', 'nope', '--json');
    expect(r.code).toBe(2);
    expect(JSON.parse(r.last)).toMatchObject({ ok: false, command: 'info', kind: 'usage' });
    expect(JSON.parse(r.last).error).toMatch(/--device 'nope'/);
  });

  it('info --json prints the HELLO as the last line, human text on stderr', async () => {
    const r = await cli('info', '--device', 'mock:ideal?seed=3&geometry=6-4-2', '--json');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.last);
    expect(j).toMatchObject({ ok: true, command: 'info', device: 'mock:ideal?seed=3&geometry=6-4-2', layout: ['dual-rail', 'dual-rail'] });
    expect(j.hello.layers[0].rowInput).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(r.err).toMatch(/geometry\s+6-4-2/);
  });

  it('a runtime failure exits 1 with a one-line summary (and JSON with --json)', async () => {
    const r = await cli('info', '--device', 'serial:/dev/ttyNOPE99', '--json');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.last)).toMatchObject({ ok: false, command: 'info' });
    const s = await cli('info', '--device', 'serial:/dev/ttyNOPE99');
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/cannot open \/dev\/ttyNOPE99: no such port; run `spikeloop ports`/);
  });

  it('ports --json ends with the port list', async () => {
    const r = await cli('ports', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.last);
    expect(j.ok).toBe(true);
    expect(Array.isArray(j.ports)).toBe(true);
  });

  it('prints per-command help', async () => {
    const r = await cli('mock-board', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--geometry A-B-C/);
    expect(r.out).toMatch(/--json/);
  });

  it('runs as an executable through bin/spikeloop.js (tsx, no build)', () => {
    const p = spawnSync(process.execPath, [BIN, 'info', '--device', 'mock:ideal?geometry=4-2', '--json'], { encoding: 'utf8', timeout: 60_000 });
    expect(p.status).toBe(0);
    const last = p.stdout.trim().split('\n').at(-1)!;
    expect(JSON.parse(last)).toMatchObject({ ok: true, command: 'info' });
    const bad = spawnSync(process.execPath, [BIN, 'info', '--bogus'], { encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown flag --bogus/);
  });
});
