import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dualRailLayer } from '../../../models/chips/chip-backend.ts';
import { checkFaults, DEFAULT_WEAK_FRACTION, FaultSpecError, formatFaults, parseFaults, type ChipFault } from '../../../models/chips/faults.ts';

describe('faults grammar', () => {
  it('parses every form, with whitespace and empty tokens ignored', () => {
    const f = parseFaults(
      ' dead-neuron:0.5; stuck-neuron:1.3;dead-synapse:0.12.5.nmos;shorted-synapse:0.3.7.pmos;' + 'weak-synapse:2.1.0.nmos@0.25;weak-synapse:2.1.1.pmos;',
    );
    const strip = (x: ChipFault) => {
      const { token: _, ...rest } = x;
      return rest;
    };
    expect(f.map(strip)).toEqual([
      { kind: 'dead-neuron', layer: 0, neuron: 5 },
      { kind: 'stuck-neuron', layer: 1, neuron: 3 },
      { kind: 'dead-synapse', layer: 0, input: 12, output: 5, polarity: 'nmos', fraction: 1 },
      { kind: 'shorted-synapse', layer: 0, input: 3, output: 7, polarity: 'pmos', fraction: 1 },
      { kind: 'weak-synapse', layer: 2, input: 1, output: 0, polarity: 'nmos', fraction: 0.25 },
      { kind: 'weak-synapse', layer: 2, input: 1, output: 1, polarity: 'pmos', fraction: DEFAULT_WEAK_FRACTION },
    ]);
    expect(f[0].token).toBe('dead-neuron:0.5');
  });

  it('names the bad token and the accepted forms', () => {
    const cases: [string, RegExp][] = [
      ['dead-neuron:0', /fault 'dead-neuron:0': dead-neuron takes a neuron LAYER.INDEX, got '0'/],
      ['dead:0.1', /unknown fault kind 'dead'/],
      ['dead-neuron0.1', /missing ":"/],
      ['dead-synapse:0.1.2.xmos', /polarity 'xmos' must be nmos or pmos/],
      ['dead-synapse:0.1.2', /LAYER.INPUT.NEURON.POLARITY, got '0.1.2'/],
      ['weak-synapse:0.1.2.nmos@1.5', /fraction '1.5' must be a decimal number with 0 < F < 1/],
      ['weak-synapse:0.1.2.nmos@0', /fraction '0'/],
      ['weak-synapse:0.1.2.nmos@abc', /fraction 'abc'/],
      ['dead-synapse:0.1.2.nmos@0.5', /only weak-synapse takes a fraction/],
      ['stuck-neuron:a.1', /layer 'a' is not a whole number/],
      ['stuck-neuron:-1.1', /layer '-1'/],
      ['dead-neuron:0.1;stuck-neuron:0.1', /fault 'stuck-neuron:0.1': its target already has the fault 'dead-neuron:0.1'/],
      ['weak-synapse:0.1.2.nmos;dead-synapse:0.1.2.nmos', /already has the fault 'weak-synapse:0.1.2.nmos'/],
      [';;', /names no fault/],
    ];
    for (const [spec, re] of cases) {
      let err: unknown;
      try {
        parseFaults(spec);
      } catch (e) {
        err = e;
      }
      expect(err, spec).toBeInstanceOf(FaultSpecError);
      expect((err as Error).message, spec).toMatch(re);
      if (!/names no fault/.test(String(re))) expect((err as Error).message).toMatch(/accepted forms: dead-neuron:L.I, .*weak-synapse/);
    }
  });

  it('a synapse of one polarity and its twin of the other are different targets', () => {
    expect(parseFaults('dead-synapse:0.1.2.nmos;dead-synapse:0.1.2.pmos')).toHaveLength(2);
  });

  it('checks indices against a geometry', () => {
    const geometry = [dualRailLayer(4, 3), dualRailLayer(3, 2)];
    expect(() => checkFaults(parseFaults('dead-neuron:1.1;shorted-synapse:0.3.2.pmos'), geometry)).not.toThrow();
    expect(() => checkFaults(parseFaults('dead-neuron:2.0'), geometry)).toThrow(/fault 'dead-neuron:2.0': layer 2 does not exist; this chip has layers 0..1/);
    expect(() => checkFaults(parseFaults('stuck-neuron:1.2'), geometry)).toThrow(/neuron 2 does not exist; layer 1 has neurons 0..1/);
    expect(() => checkFaults(parseFaults('dead-synapse:0.4.0.nmos'), geometry)).toThrow(/input 4 does not exist; layer 0 has inputs 0..3/);
    expect(() => checkFaults(parseFaults('dead-synapse:1.0.2.nmos'), geometry)).toThrow(/neuron 2 does not exist/);
  });

  it('formatFaults and parseFaults round-trip (property)', () => {
    const neuron = fc.record({
      kind: fc.constantFrom('dead-neuron' as const, 'stuck-neuron' as const),
      layer: fc.nat(30),
      neuron: fc.nat(32767),
    });
    const synapse = fc.record({
      kind: fc.constantFrom('dead-synapse' as const, 'shorted-synapse' as const, 'weak-synapse' as const),
      layer: fc.nat(30),
      input: fc.nat(32767),
      output: fc.nat(32767),
      polarity: fc.constantFrom('nmos' as const, 'pmos' as const),
      fraction: fc.integer({ min: 1, max: 999 }).map((k) => k / 1000),
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(neuron, synapse), { minLength: 1, maxLength: 8 }), (list) => {
        // One fault per target, as the grammar demands.
        const seen = new Set<string>();
        const faults = list
          .map((f) => ('neuron' in f ? { ...f, token: '' } : { ...f, fraction: f.kind === 'weak-synapse' ? f.fraction : 1, token: '' }))
          .filter((f) => {
            const key = 'neuron' in f ? `n${f.layer}.${f.neuron}` : `s${f.layer}.${f.input}.${f.output}.${f.polarity}`;
            if (seen.has(key)) return false;
            seen.add(key);
            return true;
          }) as ChipFault[];
        const text = formatFaults(faults);
        const back = parseFaults(text).map((f) => ({ ...f, token: '' }));
        expect(back).toEqual(faults);
      }),
      { numRuns: 200 },
    );
  });
});
