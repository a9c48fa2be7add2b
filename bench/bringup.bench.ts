/**
 * Bring-up's weak-synapse verdicts over many dies: on each behavioural sky130 die (default
 * 784-64-10, the `npm start` chip) bring-up runs without and with the shape re-check of weak-PMOS
 * candidates (`shapeRecheck`, host/workflows/bringup-recheck.ts), first fault-free (every flag is a
 * false positive), then with weak synapses planted at seeded random places (found / missed / extra).
 *
 * Prints ONE JSON line: the seeds; per mode (`single_pair` = without the re-check, `shape` = with it)
 * false_positive_dies, false_flags, planted found per polarity, extra flags on the faulted dies; the
 * mismatch tails the re-check cleared (with their unexplained current factor and PDK sigmas) and the
 * planted weak PMOS it judged (their factors); CPU seconds and link bytes per bring-up (with the wire
 * seconds those bytes take at 921,600 baud), mean over the dies, for both modes.
 *
 *   npm run bench:bringup                       25 dies, seeds drawn at random (printed)
 *   npm run bench:bringup -- --seeds 21,40,52,58 --geometry 784-64-10
 *   --dies N      how many random seeds (default 25)
 *   --faults K    weak synapses planted per faulted die, alternating PMOS / NMOS over both layers (default 4; 0: none)
 *   --healthy-only / --faulted-only
 *   --shape-only  only with the re-check (half the time; no single_pair figures)
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ChipDevice, closedLinkTotals } from '../host/device/chip-device.ts';
import { runBringup } from '../host/workflows/bringup.ts';
import type { BringupRecord } from '../host/workflows/bringup-record.ts';
import { Rng } from '../models/datasets/rng.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    dies: { type: 'string' },
    geometry: { type: 'string' },
    faults: { type: 'string' },
    'healthy-only': { type: 'boolean' },
    'faulted-only': { type: 'boolean' },
    'shape-only': { type: 'boolean' },
  },
});
const GEOMETRY = values.geometry ?? '784-64-10';
const sizes = GEOMETRY.split('-').map(Number);
if (sizes.length < 2 || sizes.some((n) => !(Number.isInteger(n) && n >= 2)))
  throw new RangeError(`--geometry must be widths like 784-64-10, got '${GEOMETRY}'`);
const DIES = Number(values.dies ?? 25);
if (!(Number.isInteger(DIES) && DIES >= 1)) throw new RangeError(`--dies must be a whole number >= 1, got ${values.dies}`);
const FAULTS = Number(values.faults ?? 4);
if (!(Number.isInteger(FAULTS) && FAULTS >= 0)) throw new RangeError(`--faults must be a whole number >= 0, got ${values.faults}`);
const seeds = values.seeds
  ? values.seeds.split(',').map((s) => {
      const n = Number(s);
      if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`--seeds must be whole numbers >= 0, got '${s}'`);
      return n;
    })
  : Array.from({ length: DIES }, () => randomInt(1, 2 ** 31 - 1));
const BAUD = 921_600;

/** Weak synapses at seeded random places, alternating PMOS / NMOS, layer by layer in turn (default factor 0.1). */
function plant(seed: number): string[] {
  const r = new Rng(seed ^ 0x5eed);
  const out: string[] = [];
  const used = new Set<string>();
  for (let k = 0; out.length < FAULTS; k++) {
    const l = k % (sizes.length - 1);
    const j = Math.floor(r.next() * sizes[l]);
    const i = Math.floor(r.next() * sizes[l + 1]);
    const pol = Math.floor(k / (sizes.length - 1)) % 2 === 0 ? 'pmos' : 'nmos';
    const t = `weak-synapse:${l}.${j}.${i}.${pol}`;
    if (used.has(`${l}.${j}.${i}`)) continue;
    used.add(`${l}.${j}.${i}`);
    out.push(t);
  }
  return out;
}

interface Run {
  rec: BringupRecord;
  cpu: number;
  bytes: number;
}

async function bringup(seed: number, faults: string[], shapeRecheck: boolean): Promise<Run> {
  const uri = `mock:behavioral?seed=${seed}&geometry=${GEOMETRY}${faults.length ? `&faults=${faults.join(';')}` : ''}`;
  const t0 = closedLinkTotals();
  const c0 = process.cpuUsage();
  const rec = await runBringup(() => ChipDevice.open(uri), { jitterRepeats: 8, shapeRecheck });
  const c = process.cpuUsage(c0);
  const t1 = closedLinkTotals();
  return { rec, cpu: (c.user + c.system) / 1e6, bytes: t1.bytesOut - t0.bytesOut + t1.bytesIn - t0.bytesIn };
}

const found = (rec: BringupRecord) => new Set(rec.bad_synapses);
const round = (x: number, d = 3) => Number(x.toFixed(d));

const allModes = { single_pair: false, shape: true } as const;
type Mode = keyof typeof allModes;
const modes: Partial<Record<Mode, boolean>> = values['shape-only'] ? { shape: true } : allModes;
const stats = Object.fromEntries(
  Object.keys(modes).map((m) => [
    m,
    {
      false_positive_dies: [] as number[],
      false_flags: [] as string[],
      planted_pmos: 0,
      found_pmos: 0,
      planted_nmos: 0,
      found_nmos: 0,
      missed: [] as string[],
      extra_on_faulted: [] as string[],
      cpu: [] as number[],
      bytes: [] as number[],
    },
  ]),
) as Record<
  Mode,
  {
    false_positive_dies: number[];
    false_flags: string[];
    planted_pmos: number;
    found_pmos: number;
    planted_nmos: number;
    found_nmos: number;
    missed: string[];
    extra_on_faulted: string[];
    cpu: number[];
    bytes: number[];
  }
>;
const healthyBytes: Record<Mode, Map<number, number>> = { single_pair: new Map(), shape: new Map() };
const tails: { seed: number; die: 'healthy' | 'faulted'; synapse: string; z: number; factor: number; pdk_sigmas: number; planted: boolean }[] = [];
const plantedJudged: { seed: number; synapse: string; evidence: string }[] = [];

const started = performance.now();
for (const seed of seeds) {
  for (const [mode, recheck] of Object.entries(modes) as [Mode, boolean][]) {
    const s = stats[mode];
    if (!values['faulted-only']) {
      const h = await bringup(seed, [], recheck);
      s.cpu.push(h.cpu);
      s.bytes.push(h.bytes);
      healthyBytes[mode].set(seed, h.bytes);
      if (h.rec.bad_synapses.length || h.rec.dead_neurons.length) {
        s.false_positive_dies.push(seed);
        s.false_flags.push(...[...h.rec.bad_synapses, ...h.rec.dead_neurons].map((f) => `${seed}:${f}`));
      }
      if (recheck)
        for (const d of h.rec.layers)
          for (const t of d.mismatchTails)
            tails.push({
              seed,
              die: 'healthy',
              synapse: `${t.layer}.${t.input}.${t.neuron}.pmos`,
              z: round(t.z, 2),
              factor: t.unexplainedFactor,
              pdk_sigmas: t.pdkSigmas,
              planted: false,
            });
    }
    if (FAULTS > 0 && !values['healthy-only']) {
      const faults = plant(seed);
      const f = await bringup(seed, faults, recheck);
      const got = found(f.rec);
      for (const t of faults) {
        const pol = t.endsWith('pmos') ? 'pmos' : 'nmos';
        s[`planted_${pol}`]++;
        if (got.has(t)) s[`found_${pol}`]++;
        else s.missed.push(`${seed}:${t}`);
        if (recheck && pol === 'pmos') {
          const [, l, j, i] = t.match(/(\d+)\.(\d+)\.(\d+)/)!.map(Number);
          const flag = f.rec.synapses.find((x) => x.layer === l && x.input === j && x.neuron === i && x.polarity === 'pmos');
          if (flag) plantedJudged.push({ seed, synapse: t, evidence: flag.evidence.replace(/^.*?; at PMOS/, 'at PMOS') });
        }
      }
      for (const x of got) if (!faults.includes(x)) s.extra_on_faulted.push(`${seed}:${x}`);
      if (recheck)
        for (const d of f.rec.layers)
          for (const t of d.mismatchTails) {
            const name = `weak-synapse:${t.layer}.${t.input}.${t.neuron}.pmos`;
            tails.push({
              seed,
              die: 'faulted',
              synapse: `${t.layer}.${t.input}.${t.neuron}.pmos`,
              z: round(t.z, 2),
              factor: t.unexplainedFactor,
              pdk_sigmas: t.pdkSigmas,
              planted: faults.includes(name),
            });
          }
    }
  }
}

const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN);
console.log(
  JSON.stringify({
    geometry: GEOMETRY,
    dies: seeds.length,
    seeds,
    faults_per_die: FAULTS,
    ...Object.fromEntries(
      (Object.keys(modes) as Mode[]).map((m) => {
        const s = stats[m];
        return [
          m,
          {
            false_positive_dies: s.false_positive_dies.length,
            false_flags: s.false_flags,
            found_pmos: `${s.found_pmos}/${s.planted_pmos}`,
            found_nmos: `${s.found_nmos}/${s.planted_nmos}`,
            missed: s.missed,
            extra_on_faulted: s.extra_on_faulted,
            healthy_cpu_s_mean: round(mean(s.cpu), 2),
            healthy_cpu_s_max: round(Math.max(...s.cpu), 2),
            healthy_bytes_mean: Math.round(mean(s.bytes)),
            healthy_bytes_max: Math.max(...s.bytes),
            healthy_wire_s_max_at_921600: round((Math.max(...s.bytes) * 10) / BAUD, 2),
          },
        ];
      }),
    ),
    recheck_extra: (values['shape-only'] ? [] : seeds)
      .map((seed) => ({ seed, bytes: (healthyBytes.shape.get(seed) ?? 0) - (healthyBytes.single_pair.get(seed) ?? 0) }))
      .filter((x) => x.bytes !== 0)
      .map((x) => ({ ...x, wire_s_at_921600: round((x.bytes * 10) / BAUD, 2) })),
    tails,
    planted_pmos_judged: plantedJudged,
    wall_s: round((performance.now() - started) / 1000, 1),
  }),
);
