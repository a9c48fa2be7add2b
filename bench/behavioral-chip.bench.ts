/**
 * Behavioural chip speed at 784-256-128-10 with a trained-like weight state (most synapses near
 * off, a minority on in weak inversion, DAC-quantised), against the ideal chip on the same state.
 * BENCH_PHYSICS picks the behavioural die's transistors (sky130, the default, or ekv).
 * Prints ONE JSON line:
 *   build_s              constructing the chip (drawing every device)
 *   set_gates_s          uploading all three layers (rebuilds the normalised layers)
 *   s_per_sample         run() wall time per sample (batch BATCH, best of REPEATS)
 *   ideal_s_per_sample   the same for the ideal chip
 *   fired                fraction of neurons firing inside the window, per layer
 */
import { NMOS, type ChipBackend } from '../models/chips/chip-backend.ts';
import { BehavioralChip, type BehavioralPhysics } from '../models/chips/behavioral-chip.ts';
import { codeToVolts, voltsToCode } from '../wire/dac.ts';
import { IdealChip } from '../models/chips/ideal-chip.ts';
import { Rng } from '../models/datasets/rng.ts';
import { SILENT_TICK } from '../wire/ticks.ts';

const SIZES = [784, 256, 128, 10];
const BATCH = 32;
const REPEATS = 3;
/** Per layer: fraction of NMOS / PMOS synapses trained "on". */
const ON = [
  [0.12, 0.08],
  [0.2, 0.12],
  [0.3, 0.15],
];
const round = (x: number, d = 4) => Number(x.toPrecision(d));

function trainedLikeGates(chip: ChipBackend, rng: Rng): Float64Array[] {
  return chip.geometry.map((g, l) => {
    const v = new Float64Array(g.rowInput.length * g.outputs);
    for (let r = 0; r < g.rowInput.length; r++) {
      const nmos = g.rowPolarity[r] === NMOS;
      for (let i = 0; i < g.outputs; i++) {
        const on = rng.next() < ON[l][nmos ? 0 : 1];
        // sky130 card at mid-swing: "on" NMOS 0.42-0.52 V (2-30 nA), PMOS 1.35-1.22 V (0.1-3 nA); "off" below 10 pA.
        const volts = nmos ? (on ? rng.uniform(0.42, 0.52) : rng.uniform(0, 0.25)) : on ? rng.uniform(1.22, 1.35) : rng.uniform(1.55, 1.8);
        v[r * g.outputs + i] = codeToVolts(chip.dac, voltsToCode(chip.dac, volts));
      }
    }
    return v;
  });
}

/** Image-like inputs: about half the pixels dark (silent), the rest spread over the first window. */
function inputs(n: number, rng: Rng): Uint16Array {
  return Uint16Array.from({ length: n }, () => (rng.next() < 0.5 ? SILENT_TICK : Math.floor(rng.uniform(0, 1999))));
}

async function timePerSample(chip: ChipBackend, x: Uint16Array): Promise<{ s: number; out: Uint16Array[] }> {
  let best = Infinity;
  let out: Uint16Array[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const t = performance.now();
    out = await chip.run(x, BATCH);
    best = Math.min(best, (performance.now() - t) / 1000 / BATCH);
  }
  return { s: best, out };
}

async function main(): Promise<void> {
  let t = performance.now();
  const physics = (process.env.BENCH_PHYSICS ?? 'sky130') as BehavioralPhysics;
  const chip = new BehavioralChip({ seed: 7, sizes: SIZES, physics });
  const buildS = (performance.now() - t) / 1000;
  const rng = new Rng(1);
  const gates = trainedLikeGates(chip, rng);
  t = performance.now();
  gates.forEach((v, l) => chip.setGateVoltages(l, v));
  const setS = (performance.now() - t) / 1000;
  const x = inputs(BATCH * SIZES[0], rng);
  const b = await timePerSample(chip, x);
  const ideal = new IdealChip({ sizes: SIZES });
  gates.forEach((v, l) => ideal.setGateVoltages(l, v));
  const i = await timePerSample(ideal, x);
  const fired = b.out.map((o) => round(o.reduce((a, tk) => a + (tk !== SILENT_TICK ? 1 : 0), 0) / o.length, 3));
  console.log(
    JSON.stringify({
      ok: true,
      physics: chip.physics,
      geometry: SIZES.join('-'),
      batch: BATCH,
      build_s: round(buildS),
      set_gates_s: round(setS),
      s_per_sample: round(b.s),
      ideal_s_per_sample: round(i.s),
      fired,
    }),
  );
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: (e as Error).message }));
  process.exitCode = 1;
});
