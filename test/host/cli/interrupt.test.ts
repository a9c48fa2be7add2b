/**
 * Ctrl-C and SIGTERM on the real CLI process: every long command stops promptly (also inside the
 * calibration fit, which is synchronous work between its yields), records "interrupted" where it
 * keeps a run folder, says how to continue, and exits 130.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from './spawn-cli.ts';

const CHIP = 'mock:behavioral?seed=5&geometry=16-8-4';
// RUNs that take 150 ms each: long enough to be caught in the middle of device work.
const SLOW_CHIP = `${CHIP}&runDelayMs=150`;
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-interrupt-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const record = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'record.json'), 'utf8')) as { status: string; error?: { message: string } };
// Generous: a stop within 1 s is the aim; this bound only catches a command that ran on to its end.
const PROMPT_MS = 5000;

describe('interrupting the CLI', () => {
  it('calibrate stops inside the fit on SIGINT: exit 130, record "interrupted", no profile', async () => {
    const out = path.join(dir, 'cal');
    const r = await spawnCli(['calibrate', '--device', CHIP, '--out', out], { when: /fit PNN/, signal: 'SIGINT' });
    expect(r.signalled, r.err).toBe(true);
    expect(r.code, r.err).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
    expect(record(out).status).toBe('interrupted');
    expect(fs.existsSync(path.join(out, 'profile.slp'))).toBe(false);
    expect(r.err).toMatch(/interrupted by SIGINT: .*record\.json records it \(status "interrupted"\); .*run the same command again/);
  }, 120_000);

  it('train stops on SIGTERM between batches: exit 130, record "interrupted"', async () => {
    const out = path.join(dir, 'train');
    const r = await spawnCli(['train', '--dataset', 'iris', '--out', out], { when: /epoch 1\/300/, signal: 'SIGTERM' });
    expect(r.signalled, r.err).toBe(true);
    expect(r.code, r.err).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
    expect(record(out).status).toBe('interrupted');
    expect(fs.existsSync(path.join(out, 'network.bin'))).toBe(false);
    expect(r.err).toMatch(/interrupted by SIGTERM: .*training cannot be continued: run it again/);
    // no flag the command lacks is suggested
    expect(r.err).not.toMatch(/--resume/);
  }, 120_000);

  it('bringup stops on SIGINT: exit 130, record "interrupted"', async () => {
    const out = path.join(dir, 'bringup');
    const r = await spawnCli(['bringup', '--device', SLOW_CHIP, '--out', out], { when: /run folder/, signal: 'SIGINT' });
    expect(r.signalled, r.err).toBe(true);
    expect(r.code, r.err + r.out).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
    expect(record(out).status).toBe('interrupted');
    expect(r.err + r.out).not.toMatch(/--resume/);
  }, 120_000);

  it('demo stops on SIGINT: exit 130, record "interrupted"', async () => {
    const out = path.join(dir, 'demo');
    const r = await spawnCli(['demo', '--device', CHIP, '--seed', '3', '--iris-epochs', '5', '--fashion-train', '0', '--out', out], {
      when: /fit PNN/,
      signal: 'SIGINT',
    });
    expect(r.signalled, r.err).toBe(true);
    expect(r.code, r.err + r.out).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
    expect(record(out).status).toBe('interrupted');
    expect(r.err).toMatch(/run it again \(add --seed 3/);
  }, 120_000);

  describe('with a network for the chip', () => {
    let model: string;
    beforeAll(async () => {
      // Trained for the chip from its HELLO (no calibration needed to deploy through nominal curves).
      const t = await spawnCli(['train', '--dataset', 'iris', '--device', CHIP, '--epochs', '5', '--out', path.join(dir, 'net')]);
      expect(t.code, t.err).toBe(0);
      model = path.join(dir, 'net', 'network.bin');
    }, 120_000);

    it('deploy stops on SIGINT while the device scores: exit 130', async () => {
      const r = await spawnCli(['deploy', '--device', SLOW_CHIP, '--model', model, '--dataset', 'iris'], { when: /uploaded layers/, signal: 'SIGINT' });
      expect(r.signalled, r.err).toBe(true);
      expect(r.code, r.err + r.out).toBe(130);
      expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
      expect(r.err).toMatch(/interrupted by SIGINT/);
    }, 120_000);

    it('finetune stops on SIGINT, records "interrupted" and names --resume, which continues it', async () => {
      const out = path.join(dir, 'ft');
      const r = await spawnCli(
        ['finetune', '--device', SLOW_CHIP, '--model', model, '--uncalibrated', '--dataset', 'iris', '--epochs', '3', '--batch-size', '8', '--out', out],
        {
          when: /finetune +\d+% [1-9]\d*\/\d+/,
          signal: 'SIGINT',
        },
      );
      expect(r.signalled, r.err).toBe(true);
      expect(r.code, r.err + r.out).toBe(130);
      expect(r.msAfterSignal).toBeLessThan(PROMPT_MS);
      expect(record(out).status).toBe('interrupted');
      const hint = /continue with (spikeloop finetune --resume \S+ --device \S+)/.exec(r.err);
      expect(hint, r.err).not.toBeNull();
      const again = await spawnCli(['finetune', '--resume', out, '--device', CHIP]);
      expect(again.code, again.err).toBe(0);
      expect(record(out).status).toBe('finished');
    }, 120_000);
  });
});
