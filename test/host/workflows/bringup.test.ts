import { describe, expect, it } from 'vitest';
import { ChipDevice } from '../../../host/device/chip-device.ts';
import { runBringup } from '../../../host/workflows/bringup.ts';
import type { BringupRecord } from '../../../host/workflows/bringup-record.ts';
import { duplexPair, MockBoard, serveBoard } from '../../../firmware-protocol/mock-board/index.ts';
import { createChip } from '../../../models/chips/index.ts';
import { parseFaults, formatFaults } from '../../../models/chips/faults.ts';
import { NMOS } from '../../../models/chips/chip-backend.ts';
import { decodeEdit } from '../../../firmware-protocol/weight-edit.ts';

/** A device on a board the test controls (to make it misbehave). */
async function deviceOn(board: MockBoard): Promise<ChipDevice> {
  const [host, dev] = duplexPair();
  const server = serveBoard(board, dev);
  return ChipDevice.over({
    description: 'test board',
    stream: host,
    bytesPerSecond: Infinity,
    close: async () => {
      host.destroy();
      await server.close();
    },
  });
}

async function boardFor(options: Record<string, string>): Promise<MockBoard> {
  return new MockBoard(await createChip('behavioral', options));
}

function handlers(board: MockBoard): Record<string, (m: never) => unknown> {
  return (board as unknown as { handlers: Record<string, (m: never) => unknown> }).handlers;
}

const bringup = (uri: string) => runBringup(() => ChipDevice.open(uri), { jitterRepeats: 8 });

/** Every finding, in the faults= grammar (weak synapses without their @F). */
function findings(rec: BringupRecord): string[] {
  return [...rec.dead_neurons, ...rec.bad_synapses].sort();
}

function planted(spec: string): string[] {
  return formatFaults(parseFaults(spec))
    .split(';')
    .map((t) => t.replace(/@.*$/, ''))
    .sort();
}

describe('bring-up on fault-free chips', () => {
  it.each([3, 4, 5, 6])('seed %i: every check passes, nothing is flagged', async (seed) => {
    const rec = await bringup(`mock:behavioral?seed=${seed}&geometry=32-16-8`);
    expect(rec.checks.map((c) => `${c.step}:${c.status}`)).toEqual([
      'link:pass',
      'protocol:pass',
      'memory:pass',
      'health:pass',
      'neurons:pass',
      'synapses:pass',
      'jitter:pass',
      'supply:pass',
    ]);
    expect(rec.ok).toBe(true);
    expect(findings(rec)).toEqual([]);
    // Timer floor plus 0.25 ns edge noise on a 1 ns tick: a fraction of a tick, never zero.
    expect(rec.jitter_ticks).toBeGreaterThan(0.05);
    expect(rec.jitter_ticks).toBeLessThan(1);
    // Every synapse of both polarities was judged.
    for (const d of rec.layers) {
      expect(d.unmeasured).toBe(0);
      expect(d.measuredNmos).toBe(d.inputs * d.outputs);
      expect(d.measuredPmos).toBe(d.inputs * d.outputs);
    }
  });

  it('three layers: relays reach every input of the deeper layers', async () => {
    const rec = await bringup('mock:behavioral?seed=8&geometry=24-16-12-6');
    expect(rec.ok).toBe(true);
    expect(rec.layers.map((d) => d.measuredNmos)).toEqual([24 * 16, 16 * 12, 12 * 6]);
  });
});

describe('bring-up diagnoses planted faults exactly', () => {
  const cases: [string, string][] = [
    // One of each kind, both polarities, in both layers.
    [
      'seed=3&geometry=32-16-8',
      'dead-neuron:0.5;stuck-neuron:1.2;dead-synapse:0.3.4.nmos;dead-synapse:1.6.1.pmos;shorted-synapse:0.7.8.nmos;' +
        'shorted-synapse:1.9.3.pmos;weak-synapse:0.10.11.nmos;weak-synapse:1.12.5.pmos',
    ],
    ['seed=4&geometry=32-16-8', 'shorted-synapse:0.1.2.pmos;dead-synapse:0.20.9.pmos;weak-synapse:1.3.4.nmos;stuck-neuron:0.14;dead-neuron:1.7'],
    // Three layers: faults behind two relays, and a neuron fault in a relay layer.
    [
      'seed=9&geometry=24-16-12-6',
      'weak-synapse:2.5.3.nmos;dead-synapse:2.7.1.nmos;shorted-synapse:2.2.4.nmos;dead-neuron:1.11;stuck-neuron:0.13;' +
        'weak-synapse:1.4.6.pmos@0.05;shorted-synapse:0.6.2.pmos',
    ],
  ];
  it.each(cases)('%s with %s', async (chip, faults) => {
    const rec = await bringup(`mock:behavioral?${chip}&faults=${faults}`);
    expect(findings(rec)).toEqual(planted(faults));
    expect(rec.ok).toBe(false);
    expect(rec.stoppedEarly).toBeUndefined();
    expect(rec.checks.find((c) => c.step === 'neurons')?.status).toBe(/neuron/.test(faults) ? 'fail' : 'pass');
    expect(rec.checks.find((c) => c.step === 'synapses')?.status).toBe('fail');
  });

  it('a shorted NMOS in a relay layer does not corrupt the next layer (the route is changed)', async () => {
    // Shorted 0.3 -> 0.9 fires neuron 9 of layer 0 whenever input 3 spikes: input 3 of layer 1 needs another route.
    const faults = 'shorted-synapse:0.3.9.nmos;weak-synapse:1.3.2.nmos';
    const rec = await bringup(`mock:behavioral?seed=5&geometry=32-16-8&faults=${faults}`);
    expect(findings(rec)).toEqual(planted(faults));
  });
});

describe('bring-up stops early only where going on could harm the chip', () => {
  it('a device that needs a newer protocol is refused before anything is written', async () => {
    const board = await boardFor({ seed: '3', geometry: '8-4' });
    const newer = board.hello();
    board.hello = () => ({ ...newer, protocol: 4, minProtocol: 3 });
    let writes = 0;
    const h = handlers(board);
    const write = h.WEIGHTS_WRITE;
    h.WEIGHTS_WRITE = (m) => (writes++, write(m));
    const rec = await runBringup(() => deviceOn(board));
    expect(rec.ok).toBe(false);
    expect(rec.stoppedEarly?.step).toBe('protocol');
    expect(rec.stoppedEarly?.reason).toMatch(/needs protocol 3 or newer.*update spikeloop/);
    expect(rec.checks.map((c) => `${c.step}:${c.status}`)).toEqual(['link:pass', 'protocol:fail']);
    expect(writes).toBe(0);
  });

  it('an abort stops the run with the abort reason (the caller records it as interrupted)', async () => {
    const ac = new AbortController();
    const run = runBringup(() => ChipDevice.open('mock:behavioral?seed=3&geometry=16-8'), {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.step === 'synapses') ac.abort(new Error('stopped by the user'));
      },
    });
    await expect(run).rejects.toThrow(/stopped by the user/);
  });

  it('no link: the link check fails with the reason', async () => {
    const rec = await runBringup(() => ChipDevice.open('serial:/dev/spikeloop-no-such-port'));
    expect(rec.ok).toBe(false);
    expect(rec.stoppedEarly?.step).toBe('link');
    expect(rec.checks[0]).toMatchObject({ step: 'link', status: 'fail' });
    expect(rec.checks[0].detail).toMatch(/no such port/);
  });

  it('a weight memory that does not read back stops before the chip is run', async () => {
    const board = await boardFor({ seed: '3', geometry: '8-4' });
    const h = handlers(board);
    const crc = h.WEIGHTS_CRC;
    h.WEIGHTS_CRC = (m) => ({ ...(crc(m) as object), crc: 0x1234 });
    let runs = 0;
    const run = h.RUN;
    h.RUN = (m) => (runs++, run(m));
    const dev = await deviceOn(board);
    try {
      const rec = await runBringup(dev);
      expect(rec.stoppedEarly?.step).toBe('memory');
      expect(rec.stoppedEarly?.reason).toMatch(/read-backs failed.*nothing is run/);
      expect(rec.memory.every((m) => !m.ok)).toBe(true);
      expect(runs).toBe(0);
    } finally {
      await dev.close();
    }
  });

  it('a failed supply self-test stops before the chip is run', async () => {
    const chip = await createChip('behavioral', { seed: '3', geometry: '8-4' });
    const board = new MockBoard(chip, { nominalSupplyV: 3.3 });
    let runs = 0;
    const h = handlers(board);
    const run = h.RUN;
    h.RUN = (m) => (runs++, run(m));
    const rec = await runBringup(() => deviceOn(board));
    expect(rec.stoppedEarly?.step).toBe('health');
    expect(rec.stoppedEarly?.reason).toMatch(/supply/);
    expect(runs).toBe(0);
  });
});

describe('gate-voltage safety', () => {
  it('full-scale and zero patterns use the safe window extremes, never the DAC extremes', async () => {
    const board = await boardFor({ seed: '3', geometry: '6-4' });
    const [nLo, nHi] = board.codeWindow(NMOS);
    const [pLo, pHi] = board.codeWindow(1);
    const seen = { nmos: [Infinity, -Infinity], pmos: [Infinity, -Infinity] };
    const h = handlers(board);
    const write = h.WEIGHTS_WRITE;
    const geometry = board.backend.geometry;
    const see = (layer: number, cell: number, c: number) => {
      const g = geometry[layer];
      const pol = g.rowPolarity[Math.floor(cell / g.outputs)] === NMOS ? 'nmos' : 'pmos';
      seen[pol] = [Math.min(seen[pol][0], c), Math.max(seen[pol][1], c)];
    };
    h.WEIGHTS_WRITE = (m: never) => {
      const msg = m as { layer: number; offset: number; codes: Uint16Array };
      msg.codes.forEach((c, k) => see(msg.layer, msg.offset + k, c));
      return write(m);
    };
    // full uploads of rows of one code, and of patterns in a few bits, go as WEIGHTS_EDIT
    const edit = h.WEIGHTS_EDIT;
    h.WEIGHTS_EDIT = (m: never) => {
      const msg = m as { layer: number; offset: number; data: Uint8Array };
      const d = decodeEdit(msg.data, msg.offset, board.readWeights(msg.layer), 'test');
      d.codes.forEach((c, k) => see(msg.layer, d.cells[k]!, c));
      return edit(m);
    };
    const rec = await runBringup(() => deviceOn(board), { jitterRepeats: 4 });
    expect(rec.ok).toBe(true);
    expect(board.counters.refused).toBe(0);
    expect(seen.nmos).toEqual([nLo, nHi]);
    expect(seen.pmos).toEqual([pLo, pHi]);
    expect([nHi, pLo]).not.toContain(board.backend.dac.bits === 10 ? 1023 : -1);
    expect(pLo).toBeGreaterThan(0);
    // The chip is left as it powers up: every synapse off.
    for (let l = 0; l < geometry.length; l++) {
      const w = board.readWeights(l);
      const g = geometry[l];
      w.forEach((c, k) => expect(c).toBe(g.rowPolarity[Math.floor(k / g.outputs)] === NMOS ? nLo : pHi));
    }
  });
});

describe('weak PMOS: a threshold-mismatch tail or a weak synapse (784-64-10 die 21, one natural PMOS 4.75 sigmas weak in threshold)', () => {
  const die = 'mock:behavioral?seed=21&geometry=784-64-10';

  it('with one pair of PMOS codes alone the tail is flagged weak', async () => {
    const rec = await runBringup(() => ChipDevice.open(die), { jitterRepeats: 8, shapeRecheck: false });
    expect(findings(rec)).toEqual(['weak-synapse:0.558.35.pmos']);
    expect(rec.codes?.p3).toBeUndefined();
  });

  it('the shape re-check clears the tail and still finds weak synapses planted on the same die, both polarities and layers', async () => {
    const faults = 'weak-synapse:0.100.10.pmos;weak-synapse:1.30.8.pmos;weak-synapse:0.200.7.nmos';
    const rec = await bringup(`${die}&faults=${faults}`);
    expect(findings(rec)).toEqual(planted(faults));
    // The screen (4 robust sigmas) passes a few natural devices to the re-check, the 5.3-sigma one among them.
    const tails = rec.layers.flatMap((d) => d.mismatchTails);
    expect(tails.length).toBeGreaterThanOrEqual(1);
    for (const t of tails) expect(t.unexplainedFactor).toBeGreaterThan(0.8);
    const worst = tails.find((t) => `${t.layer}.${t.input}.${t.neuron}.${t.polarity}` === '0.558.35.pmos');
    expect(worst?.z).toBeLessThan(-5.25);
    // The die draws it 4.75 PDK sigmas weak; the median slope at p2 reads it from the layer.
    expect(worst?.pdkSigmas).toBeGreaterThan(4);
    expect(worst?.pdkSigmas).toBeLessThan(6);
    const pmos = rec.synapses.filter((s) => s.polarity === 'pmos');
    expect(pmos.map((s) => s.shape)).toEqual(['weak', 'weak']);
    for (const s of pmos) expect(s.evidence).toMatch(/unexplained current factor 0\.[0-2]\d/);
    // The stronger PMOS code sits inside the safe window, below p2.
    expect(rec.codes?.p3).toBeLessThan(rec.codes!.p2);
    expect(rec.codes?.p3).toBeGreaterThanOrEqual(455); // 0.8 V, the strongest safe PMOS gate
    expect(rec.checks.find((c) => c.step === 'synapses')?.detail).toMatch(/threshold-mismatch tail by its shape \(.*0\.558\.35/);
  });
});
