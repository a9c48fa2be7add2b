/**
 * Chip backends by name: `createChip('ideal', { seed: '7', geometry: '16-8-4' })`.
 * Options arrive as strings (URI query parameters, CLI flags) and are validated here, once:
 * `parseChipOptions` checks them (device URIs call it while parsing, before anything opens) and
 * `buildChip` builds from what it returned. `seedSchema` and `geometrySchema` are the only
 * definitions of a seed and a geometry string.
 */

import { z } from 'zod';
import type { ChipBackend } from './chip-backend.ts';
import { checkSizes, MAX_SEED } from './chip-checks.ts';
import { IdealChip } from './ideal-chip.ts';
import { BehavioralChip } from './behavioral-chip.ts';
import { FaultSpecError, parseFaults, type ChipFault } from './faults.ts';

export * from './chip-backend.ts';
export { IdealChip } from './ideal-chip.ts';
export { BehavioralChip } from './behavioral-chip.ts';

/** A chip kind or option the caller got wrong; the message names the value and what is accepted. */
export class ChipOptionsError extends Error {
  override name = 'ChipOptionsError';
}

/** A chip seed as text: a whole number in 0..2^32-1 (what checkSeed accepts). */
export const seedSchema = z
  .string()
  .regex(/^\d{1,10}$/, 'expected a non-negative integer, e.g. seed=7')
  .transform(Number)
  .pipe(z.number().max(MAX_SEED, `must be <= ${MAX_SEED}`));

/** Layer widths as text, inputs first (784-256-128-10), checked by checkSizes. */
export const geometrySchema = z
  .string()
  .regex(/^\d+(-\d+)+$/, 'expected layer widths joined by dashes, inputs first, e.g. geometry=784-256-128-10')
  .transform((s) => s.split('-').map(Number))
  .superRefine((sizes, ctx) => {
    try {
      checkSizes(sizes);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });

/** `faults=` (grammar in faults.ts); indices are checked against the geometry when the chip is built. */
const faultsSchema = z.string().transform((spec, ctx) => {
  try {
    return { spec, faults: parseFaults(spec) };
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

/**
 * Progress of building a chip, for kinds whose build takes long (the SPICE chip characterises its
 * devices the first time: minutes). `cached`: this step was read from a cache, not computed.
 */
export interface ChipBuildProgress {
  stage: string;
  done: number;
  total: number;
  step?: string;
  cached?: boolean;
}

export interface ChipBuildHooks {
  onProgress?: (p: ChipBuildProgress) => void;
}

interface ChipKind {
  options: Record<string, z.ZodType>;
  create(options: Record<string, unknown>, hooks: ChipBuildHooks): Promise<ChipBackend>;
}

const KINDS: Record<string, ChipKind> = {
  ideal: {
    options: { seed: seedSchema, geometry: geometrySchema },
    async create(o) {
      return new IdealChip({ seed: o.seed as number | undefined, sizes: o.geometry as number[] | undefined });
    },
  },
  behavioral: {
    options: {
      seed: seedSchema,
      geometry: geometrySchema,
      faults: faultsSchema,
      physics: z.enum(
        ['sky130', 'ekv'],
        'expected physics=sky130 (SPICE-characterised sky130 curves, default) or physics=ekv (the model-form EKV fit of them)',
      ),
    },
    async create(o) {
      const f = o.faults as { spec: string; faults: ChipFault[] } | undefined;
      try {
        return new BehavioralChip({
          seed: o.seed as number | undefined,
          sizes: o.geometry as number[] | undefined,
          faults: f?.faults,
          physics: o.physics as 'sky130' | 'ekv' | undefined,
        });
      } catch (e) {
        if (e instanceof FaultSpecError) {
          throw new ChipOptionsError(`invalid option faults='${f?.spec}' for chip kind 'behavioral': ${e.message}`);
        }
        throw e;
      }
    },
  },
  spice: {
    options: {
      seed: seedSchema,
      geometry: geometrySchema,
      engine: z.enum(['wasm', 'ngspice'], 'expected engine=wasm (embedded) or engine=ngspice (system ngspice on the PATH)'),
      mode: z.enum(['transient', 'table'], 'expected mode=transient (full SPICE per neuron) or mode=table (SPICE-characterised tables)'),
      workers: z
        .string()
        .regex(/^\d{1,3}$/, 'expected a worker-thread count, e.g. workers=2 (0 = run in this thread)')
        .transform(Number),
    },
    async create(o, hooks) {
      // Loaded on demand: the SPICE engines are large and only this kind needs them.
      const { SpiceChip } = await import('./spice/spice-chip.ts');
      try {
        return await SpiceChip.create({
          seed: o.seed as number | undefined,
          sizes: o.geometry as number[] | undefined,
          engine: o.engine as 'wasm' | 'ngspice' | undefined,
          mode: o.mode as 'transient' | 'table' | undefined,
          workers: o.workers as number | undefined,
          onProgress:
            hooks.onProgress &&
            ((p) => {
              if (p.phase === 'characterise')
                hooks.onProgress?.({ stage: 'characterising the sky130 devices in SPICE', done: p.done, total: p.total, step: p.job, cached: p.cached });
            }),
        });
      } catch (e) {
        if (e instanceof RangeError) throw new ChipOptionsError(`chip kind 'spice': ${e.message}`);
        throw e;
      }
    },
  },
};

export const CHIP_KINDS: readonly string[] = Object.freeze(Object.keys(KINDS));

/** A chip kind with its options validated (`parseChipOptions`), ready for `buildChip`. */
export interface ChipSpec {
  kind: string;
  /** The options as given (for messages and to write the spec back as text). */
  raw: Readonly<Record<string, string>>;
  options: Readonly<Record<string, unknown>>;
}

/** Checks a chip kind and its text options; throws ChipOptionsError naming the bad one and what is accepted. */
export function parseChipOptions(kind: string, options: Record<string, string> = {}): ChipSpec {
  const spec = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
  if (!spec) {
    throw new ChipOptionsError(`unknown chip kind '${kind}'; accepted kinds: ${CHIP_KINDS.join(', ')}`);
  }
  const accepted = Object.keys(spec.options);
  const parsed: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options ?? {})) {
    const schema = Object.hasOwn(spec.options, name) ? spec.options[name] : undefined;
    if (!schema) {
      throw new ChipOptionsError(`unknown option '${name}' for chip kind '${kind}'; accepted options: ${accepted.join(', ')}`);
    }
    const r = schema.safeParse(value);
    if (!r.success) {
      const why = r.error.issues.map((i) => i.message).join('; ');
      throw new ChipOptionsError(`invalid option ${name}='${String(value)}' for chip kind '${kind}': ${why}`);
    }
    parsed[name] = r.data;
  }
  return { kind, raw: { ...options }, options: parsed };
}

/** Builds the chip a parsed spec describes. */
export function buildChip(spec: ChipSpec, hooks: ChipBuildHooks = {}): Promise<ChipBackend> {
  return KINDS[spec.kind]!.create({ ...spec.options }, hooks);
}

export async function createChip(kind: string, options: Record<string, string> = {}): Promise<ChipBackend> {
  return buildChip(parseChipOptions(kind, options));
}

/**
 * Which transistor physics a chip kind with these (text) options computes, in words: what a run
 * reports so its figures can be read against the right chip. Does not build the chip.
 */
export function describeChipPhysics(kind: string, options: Record<string, string> = {}): string {
  switch (kind) {
    case 'ideal':
      return 'ekv: the PNN model form, EKV fit of the sky130 card, no mismatch';
    case 'behavioral':
      return options.physics === 'ekv'
        ? 'ekv: the PNN model form (EKV fit of the sky130 card) with a drawn die'
        : 'sky130: SPICE-characterised card curves, PDK corner, temperature and Monte Carlo mismatch per die';
    case 'spice':
      return `sky130 SPICE: bundled BSIM4 card, ${options.mode === 'table' ? 'characterised tables' : 'full transients'}`;
    default:
      return `unknown (chip kind '${kind}')`;
  }
}
