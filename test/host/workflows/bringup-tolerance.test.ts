import { describe, expect, it } from 'vitest';
import type { SynapseFlag } from '../../../host/workflows/bringup-diagnosis.ts';
import type { BringupRecord } from '../../../host/workflows/bringup-record.ts';
import { isolatedWeakSynapses } from '../../../host/workflows/bringup-tolerance.ts';

// 784-64-10: 101,632 synapses, so up to 10 weak ones are tolerated.
const LAYERS = [
  { inputs: 784, outputs: 64 },
  { inputs: 64, outputs: 10 },
];

/** A flag from its faults= token; `shape` as the re-check left it. */
function flag(token: string, shape?: SynapseFlag['shape']): SynapseFlag {
  const [kind, target] = token.split(':');
  const [layer, input, neuron, polarity] = target.split('.');
  return {
    layer: Number(layer),
    input: Number(input),
    neuron: Number(neuron),
    polarity: polarity as SynapseFlag['polarity'],
    kind: kind.replace('-synapse', '') as SynapseFlag['kind'],
    evidence: '',
    ...(shape ? { shape } : {}),
  };
}

function record(o: { bad?: SynapseFlag[]; dead?: string[]; failed?: string[]; stopped?: boolean }): BringupRecord {
  const failed = o.failed ?? ['synapses'];
  const synapses = o.bad ?? [];
  return {
    synapses,
    bad_synapses: synapses.map((s) => `${s.kind}-synapse:${s.layer}.${s.input}.${s.neuron}.${s.polarity}`),
    dead_neurons: o.dead ?? [],
    checks: ['link', 'protocol', 'memory', 'neurons', 'synapses'].map((step) => ({ step, status: failed.includes(step) ? 'fail' : 'pass' })),
    ...(o.stopped ? { stoppedEarly: { step: 'link', reason: 'no reply' } } : {}),
  } as unknown as BringupRecord;
}

const weak = (n: number, shape: SynapseFlag['shape'] = 'inconclusive') => Array.from({ length: n }, (_, k) => flag(`weak-synapse:0.${k}.5.pmos`, shape));

describe('isolatedWeakSynapses', () => {
  it('lets a few weak PMOS the shape re-check could not judge, and nothing else, go on', () => {
    expect(isolatedWeakSynapses(record({ bad: weak(1) }), LAYERS)).toBe(true);
    expect(isolatedWeakSynapses(record({ bad: weak(10) }), LAYERS)).toBe(true);
    // A bring-up without the re-check: its flags carry no shape.
    expect(isolatedWeakSynapses(record({ bad: weak(2, undefined) }), LAYERS)).toBe(true);
  });

  it('stops on a weak synapse the re-check measured as a current factor, or on a weak NMOS', () => {
    expect(isolatedWeakSynapses(record({ bad: weak(1, 'weak') }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: [...weak(1), flag('weak-synapse:0.9.5.pmos', 'weak')] }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: [flag('weak-synapse:0.3.4.nmos')] }), LAYERS)).toBe(false);
  });

  it('stops on more weak synapses than the fraction allows', () => {
    expect(isolatedWeakSynapses(record({ bad: weak(11) }), LAYERS)).toBe(false);
  });

  it('stops on any other finding', () => {
    expect(isolatedWeakSynapses(record({ bad: [...weak(1), flag('dead-synapse:0.3.4.nmos')] }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: [flag('shorted-synapse:1.2.3.pmos')] }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: weak(1), dead: ['0.5'], failed: ['neurons', 'synapses'] }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: weak(1), failed: ['memory', 'synapses'] }), LAYERS)).toBe(false);
    expect(isolatedWeakSynapses(record({ bad: weak(1), stopped: true }), LAYERS)).toBe(false);
  });

  it('does not apply to a bring-up that failed without flagging a synapse', () => {
    expect(isolatedWeakSynapses(record({ bad: [], failed: ['neurons'] }), LAYERS)).toBe(false);
  });

  it('tolerates one weak synapse even on a small die', () => {
    expect(isolatedWeakSynapses(record({ bad: weak(1) }), [{ inputs: 16, outputs: 8 }])).toBe(true);
    expect(isolatedWeakSynapses(record({ bad: weak(2) }), [{ inputs: 16, outputs: 8 }])).toBe(false);
  });
});
