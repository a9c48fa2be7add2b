/**
 * The chip profile: everything calibration learned about one die, in one versioned file.
 *
 * On disk it is one tensor file (models/io/tensor-file.ts): the JSON header carries the scalar
 * fields (validated with `profileHeaderSchema`), the per-synapse and per-neuron arrays travel as
 * float64 blobs with their own CRCs. One file, written atomically, so an interrupted calibration
 * leaves either the previous profile or the complete new one.
 *
 * Units: `delay` and `thresholdScale` are normalised (delay in the twin's time unit t0 = layer 0's
 * window, `t0Seconds`); `timerOffsetTicks` in board ticks; gate-curve parameters in SI. The fitted
 * reversal potentials live in `global` and, consistently, in every layer's circuit lambdas (so
 * `reversalPotentials(layer.circuit)` gives them back and the MosfetParams' lambda equals the
 * circuit's), which is what weight-mapping needs to turn I0 into a conductance.
 */

import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { decodeArrays, encodeArrays, TensorFileError, type NumericArray } from '../models/io/tensor-file.ts';
import { writeFileAtomic } from '../models/io/atomic-file.ts';
import type { LayerGeometry } from '../models/chips/chip-backend.ts';
import { gateVoltagesToLayer } from '../models/chips/gate-to-layer.ts';
import { NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../models/chips/sky130-nominal.ts';
import type { MosfetParams } from '../models/neuron/transfer-curve.ts';
import type { NeuronCircuit } from '../models/neuron/units.ts';
import type { ReversalCurve } from './reversal-curve.ts';
import type { LayerCurves } from './weight-mapping.ts';
import { MAX_CAP_SLOPE } from '../models/solvers/sloped-membrane.ts';

/**
 * 2: layers may carry their E+ / E- against gate voltage (`reversal`); 3: that curve may carry the gates its scalars are
 * anchored at (`anchorN` / `anchorP`: the fit carried each transistor's E at its own gate, reversal-curve.ts); 4: and the
 * fitted strength of the card's shape (`strengthN` / `strengthP`, absent = 1); 5: a layer may carry the membrane
 * capacitance's slope its fit assumed (`capSlope`). Versions 1-4 still load; a reader of an older version refuses a newer
 * file as newer instead of misreading it.
 */
export const PROFILE_SCHEMA_VERSION = 5;
/** Schema versions this spikeloop reads. */
const READABLE_VERSIONS: readonly number[] = [1, 2, 3, 4, 5];
/** The tensor-file content name of a profile. */
export const PROFILE_CONTENT_NAME = 'spikeloop-chip-profile';

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const positive = z.number().positive().refine(Number.isFinite, 'must be finite');

const mosfetSchema = z.strictObject({
  polarity: z.enum(['nmos', 'pmos']),
  vth: finite,
  kp: positive,
  w: positive,
  l: positive,
  n: positive,
  lambda: z.number().nonnegative().refine(Number.isFinite, 'must be finite'),
});

const circuitSchema = z.strictObject({
  capacitance: positive,
  vRest: finite,
  vThreshold: finite,
  supply: positive,
  lambdaN: z.number().nonnegative().refine(Number.isFinite, 'must be finite'),
  lambdaP: z.number().nonnegative().refine(Number.isFinite, 'must be finite'),
});

const fitQualitySchema = z.strictObject({
  rmsePnnSeconds: z.number().nonnegative(),
  rmsePnnTicks: z.number().nonnegative(),
  rmseIdealSeconds: z.number().nonnegative(),
  rmseIdealTicks: z.number().nonnegative(),
  /** Probe samples used in the fit and held out for scoring. */
  nProbes: z.number().int().nonnegative(),
  nHeldOut: z.number().int().nonnegative(),
  /** Timer-quantisation + jitter floor the RMSE is judged against, ticks (if estimated). */
  floorTicks: z.number().nonnegative().optional(),
});

const layerHeaderSchema = z.strictObject({
  inputs: z.number().int().positive(),
  outputs: z.number().int().positive(),
  rows: z.number().int().positive(),
  horizonTicks: z.number().int().positive(),
  /** false: the layer was not probed (e.g. `--layers`); its arrays are nominal placeholders. */
  calibrated: z.boolean(),
  nmos: mosfetSchema,
  pmos: mosfetSchema,
  circuit: circuitSchema,
  /** E+ (NMOS) and E- (PMOS) in units of u on a gate-voltage grid (calibration/reversal-curve.ts); absent = the circuit's scalars. */
  reversal: z
    .strictObject({
      vStart: finite,
      vStep: positive,
      ePlus: z.array(z.number().gt(1).refine(Number.isFinite, 'must be finite')).min(2),
      eMinus: z.array(z.number().lt(0).refine(Number.isFinite, 'must be finite')).min(2),
      /** The card's conductance shape beyond the probed gates over the fitted family's (reversal-curve.ts); absent = 1. */
      gFactorN: z.array(positive).min(2).optional(),
      gFactorP: z.array(positive).min(2).optional(),
      /** The gates (volts) the scalars are E at when the fit carried E per transistor at its gate; absent = the scalar model. */
      anchorN: finite.optional(),
      anchorP: finite.optional(),
      /** With the anchors: the power the card's E(Vg) shape is taken to (the fitted strength k); absent = 1. */
      strengthN: z.number().nonnegative().refine(Number.isFinite, 'must be finite').optional(),
      strengthP: z.number().nonnegative().refine(Number.isFinite, 'must be finite').optional(),
    })
    .optional(),
  /**
   * The membrane capacitance's slope per unit of u the fit assumed, C(u) = C(0) (1 + capSlope u) (docs/MODEL.md §2,
   * "Capacitance slope"); its E+ / E- are then the transistors' own. Absent = eq. (1)'s constant C.
   */
  capSlope: z.number().gt(-MAX_CAP_SLOPE).lt(MAX_CAP_SLOPE).optional(),
});

/** The JSON part of a profile (arrays excluded). */
export const profileHeaderSchema = z.strictObject({
  schemaVersion: z.number().int().positive(),
  chipId: z.string().min(1),
  boardId: z.string(),
  firmware: z.string(),
  createdAt: z.iso.datetime(),
  temperatureC: finite,
  supplyV: positive.optional(),
  secondsPerTick: positive,
  /** The twin's time unit: layer 0's window, seconds. */
  t0Seconds: positive,
  global: z.strictObject({
    ePlus: z.number().gt(1).refine(Number.isFinite, 'must be finite'),
    eMinus: z.number().lt(0).refine(Number.isFinite, 'must be finite'),
    timerOffsetTicks: finite,
    /**
     * Capacitive kick of a synapse switching on, in u per volt of gate swing (gate-drain overlap
     * charge over C times swing): NMOS inputs add -kickNmos * Vg, PMOS inputs +kickPmos * (VDD - Vg).
     */
    kickNmos: z.number().nonnegative().refine(Number.isFinite, 'must be finite'),
    kickPmos: z.number().nonnegative().refine(Number.isFinite, 'must be finite'),
  }),
  layers: z.array(layerHeaderSchema).min(1),
  fit: fitQualitySchema,
  /** Free-form notes (probe counts, optimiser, mode). */
  notes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});

export type ProfileHeader = z.infer<typeof profileHeaderSchema>;
export type FitQuality = z.infer<typeof fitQualitySchema>;

export interface ChipProfileLayer {
  inputs: number;
  outputs: number;
  /** Synapse rows (2 x inputs on a dual-rail array). */
  rows: number;
  horizonTicks: number;
  calibrated: boolean;
  /** The fitted transfer-curve family of each polarity (per-chip vth, kp, n; lambda from ePlus/eMinus). */
  nmos: MosfetParams;
  pmos: MosfetParams;
  circuit: NeuronCircuit;
  /** Per-transistor threshold shift (V, on |Vth|) and current factor around the family, rows x outputs. */
  dVth: Float64Array;
  gain: Float64Array;
  /** Per neuron: firing level (1 = nominal) and output delay (units of t0). */
  thresholdScale: Float64Array;
  delay: Float64Array;
  /** E+ / E- against gate voltage (schema 2, calibrated layers); absent = the circuit's scalars. */
  reversal?: ReversalCurve;
  /** The membrane capacitance's slope per unit of u its fit assumed (schema 5); absent = constant C. */
  capSlope?: number;
}

export interface ChipProfile extends Omit<ProfileHeader, 'layers'> {
  layers: ChipProfileLayer[];
}

/** Why a profile was refused; `reason` lets callers branch without parsing the message. */
export class ChipProfileError extends Error {
  override name = 'ChipProfileError';
  constructor(
    readonly path: string,
    readonly reason: 'damaged' | 'newer-schema' | 'wrong-chip' | 'invalid',
    problem: string,
  ) {
    super(`${path}: ${problem}`);
  }
}

const ARRAY_FIELDS = ['dVth', 'gain', 'thresholdScale', 'delay'] as const;

function arrayLength(layer: { rows: number; outputs: number }, field: (typeof ARRAY_FIELDS)[number]): number {
  return field === 'dVth' || field === 'gain' ? layer.rows * layer.outputs : layer.outputs;
}

/** Checks a profile in memory: header schema, array lengths and values. Returns a list of problems. */
export function profileProblems(p: ChipProfile): string[] {
  const problems: string[] = [];
  const { layers, ...rest } = p;
  const header = profileHeaderSchema.safeParse({ ...rest, layers: layers.map(layerHeader) });
  if (!header.success) {
    for (const issue of header.error.issues.slice(0, 3)) {
      problems.push(`field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
    }
  }
  layers.forEach((l, i) => {
    for (const f of ARRAY_FIELDS) {
      const a = l[f];
      const n = arrayLength(l, f);
      if (!(a instanceof Float64Array) || a.length !== n) {
        problems.push(`layers.${i}.${f}: expected a Float64Array of ${n} values`);
        continue;
      }
      const ok = f === 'dVth' ? Number.isFinite : f === 'delay' ? (x: number) => Number.isFinite(x) : (x: number) => Number.isFinite(x) && x > 0;
      for (let k = 0; k < a.length; k++) {
        if (!ok(a[k])) {
          problems.push(`layers.${i}.${f}[${k}] = ${a[k]} is out of range`);
          break;
        }
      }
    }
  });
  return problems;
}

function layerHeader(l: ChipProfileLayer): ProfileHeader['layers'][number] {
  return {
    inputs: l.inputs,
    outputs: l.outputs,
    rows: l.rows,
    horizonTicks: l.horizonTicks,
    calibrated: l.calibrated,
    nmos: { ...l.nmos },
    pmos: { ...l.pmos },
    circuit: { ...l.circuit },
    ...(l.capSlope !== undefined ? { capSlope: l.capSlope } : {}),
    ...(l.reversal
      ? {
          reversal: {
            vStart: l.reversal.vStart,
            vStep: l.reversal.vStep,
            ePlus: Array.from(l.reversal.ePlus),
            eMinus: Array.from(l.reversal.eMinus),
            ...(l.reversal.gFactorN ? { gFactorN: Array.from(l.reversal.gFactorN) } : {}),
            ...(l.reversal.gFactorP ? { gFactorP: Array.from(l.reversal.gFactorP) } : {}),
            ...(l.reversal.anchorN !== undefined ? { anchorN: l.reversal.anchorN } : {}),
            ...(l.reversal.anchorP !== undefined ? { anchorP: l.reversal.anchorP } : {}),
            ...(l.reversal.strengthN !== undefined ? { strengthN: l.reversal.strengthN } : {}),
            ...(l.reversal.strengthP !== undefined ? { strengthP: l.reversal.strengthP } : {}),
          },
        }
      : {}),
  };
}

/** Serialises a profile (chunks of one tensor file). Throws on an invalid profile. */
export function encodeChipProfile(p: ChipProfile): Uint8Array[] {
  const problems = profileProblems(p);
  if (problems.length) throw new RangeError(`refusing to save an invalid chip profile: ${problems.join('; ')}`);
  const { layers, ...rest } = p;
  const header: ProfileHeader = { ...rest, layers: layers.map(layerHeader) };
  const arrays: Record<string, NumericArray> = {};
  layers.forEach((l, i) => {
    for (const f of ARRAY_FIELDS) arrays[`layer${i}.${f}`] = l[f];
  });
  return encodeArrays({ name: PROFILE_CONTENT_NAME, version: p.schemaVersion, profile: header }, arrays);
}

/** Writes a profile atomically (temporary file, fsync, rename). */
export async function saveChipProfile(path: string, profile: ChipProfile): Promise<void> {
  await writeFileAtomic(path, encodeChipProfile(profile));
}

export interface LoadProfileOptions {
  /** Refuse a profile of another chip. */
  chipId?: string;
}

/** Parses a profile held in memory; `source` names it in messages. */
export function decodeChipProfile(bytes: Uint8Array, source: string, opts: LoadProfileOptions = {}): ChipProfile {
  const redo = 'run `spikeloop calibrate` again to re-create it';
  let loaded;
  try {
    loaded = decodeArrays(bytes, source);
  } catch (e) {
    if (e instanceof TensorFileError) throw new ChipProfileError(source, 'damaged', `damaged profile (${e.message.slice(source.length + 2)}); ${redo}`);
    throw e;
  }
  const meta = loaded.meta;
  if (meta.name !== PROFILE_CONTENT_NAME) {
    throw new ChipProfileError(source, 'invalid', `not a chip profile (it holds "${meta.name}"); pass the profile.slp a calibration run wrote`);
  }
  const raw = (meta as { profile?: unknown }).profile;
  const version = (raw as { schemaVersion?: unknown } | undefined)?.schemaVersion;
  if (typeof version === 'number' && version > PROFILE_SCHEMA_VERSION) {
    throw new ChipProfileError(
      source,
      'newer-schema',
      `profile schema version ${version} is newer than this spikeloop reads (${PROFILE_SCHEMA_VERSION}); upgrade spikeloop or re-calibrate with this version`,
    );
  }
  const parsed = profileHeaderSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ChipProfileError(source, 'damaged', `profile field "${issue.path.join('.') || '(root)'}" is invalid (${issue.message}); ${redo}`);
  }
  const h = parsed.data;
  if (!READABLE_VERSIONS.includes(h.schemaVersion)) {
    throw new ChipProfileError(
      source,
      'invalid',
      `unknown profile schema version ${h.schemaVersion} (this spikeloop reads ${PROFILE_SCHEMA_VERSION}); ${redo}`,
    );
  }
  if (opts.chipId !== undefined) checkProfileChip(h, source, opts.chipId);
  const layers: ChipProfileLayer[] = h.layers.map((lh, i) => {
    const arr = {} as Record<(typeof ARRAY_FIELDS)[number], Float64Array>;
    for (const f of ARRAY_FIELDS) {
      const a = loaded.arrays[`layer${i}.${f}`];
      const n = arrayLength(lh, f);
      if (!(a instanceof Float64Array) || a.length !== n) {
        throw new ChipProfileError(source, 'damaged', `array layer${i}.${f} is missing or has the wrong size (expected ${n} float64 values); ${redo}`);
      }
      arr[f] = Float64Array.from(a);
    }
    const { reversal, ...rest } = lh;
    return {
      ...rest,
      nmos: lh.nmos as MosfetParams,
      pmos: lh.pmos as MosfetParams,
      ...arr,
      ...(reversal
        ? {
            reversal: {
              vStart: reversal.vStart,
              vStep: reversal.vStep,
              ePlus: Float64Array.from(reversal.ePlus),
              eMinus: Float64Array.from(reversal.eMinus),
              ...(reversal.gFactorN ? { gFactorN: Float64Array.from(reversal.gFactorN) } : {}),
              ...(reversal.gFactorP ? { gFactorP: Float64Array.from(reversal.gFactorP) } : {}),
              ...(reversal.anchorN !== undefined ? { anchorN: reversal.anchorN } : {}),
              ...(reversal.anchorP !== undefined ? { anchorP: reversal.anchorP } : {}),
              ...(reversal.strengthN !== undefined ? { strengthN: reversal.strengthN } : {}),
              ...(reversal.strengthP !== undefined ? { strengthP: reversal.strengthP } : {}),
            },
          }
        : {}),
    };
  });
  const profile: ChipProfile = { ...h, layers };
  const problems = profileProblems(profile);
  if (problems.length) throw new ChipProfileError(source, 'damaged', `${problems.join('; ')}; ${redo}`);
  return profile;
}

/** Refuses a profile measured on another chip than the device's (`chipId` from its HELLO). */
export function checkProfileChip(profile: { chipId: string }, source: string, chipId: string): void {
  if (profile.chipId === chipId) return;
  throw new ChipProfileError(
    source,
    'wrong-chip',
    `profile belongs to chip "${profile.chipId}", but the device is chip "${chipId}"; calibrate this chip (spikeloop calibrate --device ...) or pass its own profile`,
  );
}

/** Reads and validates a profile; refuses damage, a newer schema and (with `chipId`) another chip. */
export async function loadChipProfile(path: string, opts: LoadProfileOptions = {}): Promise<ChipProfile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ChipProfileError(path, 'invalid', `cannot read the profile (${(e as Error).message}); check the path`);
  }
  return decodeChipProfile(bytes, path, opts);
}

function checkLayerIndex(profile: ChipProfile, layer: number): ChipProfileLayer {
  const l = profile.layers[layer];
  if (!Number.isInteger(layer) || !l) {
    throw new RangeError(`layer ${layer} is not in the profile (it has ${profile.layers.length} layers)`);
  }
  return l;
}

/** The transfer curves of one layer, as calibration/weight-mapping.ts's mapLayer takes them. */
export function profileLayerCurves(profile: ChipProfile, layer: number): LayerCurves {
  const l = checkLayerIndex(profile, layer);
  return {
    nmos: { ...l.nmos },
    pmos: { ...l.pmos },
    circuit: { ...l.circuit },
    temperatureC: profile.temperatureC,
    dVth: Float64Array.from(l.dVth),
    gain: Float64Array.from(l.gain),
    ...(l.reversal ? { reversal: l.reversal } : {}),
  };
}

export interface TwinPhysics {
  ePlus: number;
  eMinus: number;
  /** Board timer offset, in units of t0 (reported tick = floor((t + offset) * ticksPerUnit)). */
  timerOffset: number;
  layers: { thresholdScale: Float64Array; delay: Float64Array; calibrated: boolean }[];
}

/** The parameters a calibrated twin needs besides conductances (normalised units). */
export function profileTwinPhysics(profile: ChipProfile): TwinPhysics {
  const perUnit = profile.t0Seconds / profile.secondsPerTick;
  return {
    ePlus: profile.global.ePlus,
    eMinus: profile.global.eMinus,
    timerOffset: profile.global.timerOffsetTicks / perUnit,
    layers: profile.layers.map((l) => ({
      thresholdScale: Float64Array.from(l.thresholdScale),
      delay: Float64Array.from(l.delay),
      calibrated: l.calibrated,
    })),
  };
}

/** Circuit lambdas that reproduce reversal potentials (inverse of units.ts reversalPotentials). */
export function lambdasFor(ePlus: number, eMinus: number, c: Pick<NeuronCircuit, 'vRest' | 'vThreshold' | 'supply'>): { lambdaN: number; lambdaP: number } {
  const dv = c.vRest - c.vThreshold;
  // ePlus = (vRest + 1/lambdaN)/dv ; eMinus = (vRest - VDD - 1/lambdaP)/dv
  const lambdaN = 1 / (ePlus * dv - c.vRest);
  const lambdaP = 1 / (c.vRest - c.supply - eMinus * dv);
  if (!(lambdaN > 0 && lambdaP > 0)) {
    throw new RangeError(`ePlus ${ePlus} / eMinus ${eMinus} imply non-positive channel-length modulation for this circuit`);
  }
  return { lambdaN, lambdaP };
}

/** The smallest Early voltage (1 / lambda) a fit may give a synapse transistor, volts (sky130 short devices are near 2-3 V). */
export const MIN_EARLY_VOLTS = 0.25;

/**
 * Bounds on fitted reversal potentials that keep every circuit's channel-length modulation positive
 * and at most 1 / MIN_EARLY_VOLTS: E+ at least (vRest + V_E,min) / swing and E- at most
 * (vRest - VDD - V_E,min) / swing on every layer. Without them a poorly informed fit can run to
 * values no transistor has (and lambdasFor would refuse the profile).
 */
export function reversalBounds(circuits: readonly Pick<NeuronCircuit, 'vRest' | 'vThreshold' | 'supply'>[]): { ePlusMin: number; eMinusMax: number } {
  let ePlusMin = -Infinity;
  let eMinusMax = Infinity;
  for (const c of circuits) {
    const dv = c.vRest - c.vThreshold;
    ePlusMin = Math.max(ePlusMin, (c.vRest + MIN_EARLY_VOLTS) / dv);
    eMinusMax = Math.min(eMinusMax, (c.vRest - c.supply - MIN_EARLY_VOLTS) / dv);
  }
  return { ePlusMin, eMinusMax };
}

export interface NominalProfileOptions {
  chipId: string;
  boardId?: string;
  firmware?: string;
  secondsPerTick: number;
  /** Per layer: inputs, outputs, synapse rows and window in ticks (as HELLO announces them). */
  layers: readonly { inputs: number; outputs: number; rows: number; horizonTicks: number }[];
  temperatureC?: number;
  nmos?: MosfetParams;
  pmos?: MosfetParams;
  circuit?: NeuronCircuit;
}

/** The notes key under which a calibration records a layer's probe codes of one polarity. */
export function probeCodesKey(layer: number, polarity: 'nmos' | 'pmos'): string {
  return `layer${layer}.${polarity}Codes`;
}

/** The probe codes a calibration recorded for a layer and polarity (empty when the profile has none). */
export function profileProbeCodes(profile: ChipProfile, layer: number, polarity: 'nmos' | 'pmos'): number[] {
  const raw = profile.notes?.[probeCodesKey(layer, polarity)];
  return typeof raw === 'string' && raw ? raw.split(',').map(Number) : [];
}

/**
 * A profile holding the nominal design values (no mismatch, every layer uncalibrated): the
 * starting point of a calibration and the placeholder for layers it skips.
 */
export function nominalChipProfile(o: NominalProfileOptions): ChipProfile {
  const circuit = { ...(o.circuit ?? NOMINAL_CIRCUIT) };
  const nmos = { ...(o.nmos ?? NOMINAL_NMOS), lambda: circuit.lambdaN };
  const pmos = { ...(o.pmos ?? NOMINAL_PMOS), lambda: circuit.lambdaP };
  const dv = circuit.vRest - circuit.vThreshold;
  const ePlus = (circuit.vRest + 1 / circuit.lambdaN) / dv;
  const eMinus = (circuit.vRest - circuit.supply - 1 / circuit.lambdaP) / dv;
  return {
    schemaVersion: PROFILE_SCHEMA_VERSION,
    chipId: o.chipId,
    boardId: o.boardId ?? '',
    firmware: o.firmware ?? '',
    createdAt: new Date().toISOString(),
    temperatureC: o.temperatureC ?? NOMINAL_TEMPERATURE_C,
    secondsPerTick: o.secondsPerTick,
    t0Seconds: o.secondsPerTick * o.layers[0].horizonTicks,
    global: { ePlus, eMinus, timerOffsetTicks: 0, kickNmos: 0, kickPmos: 0 },
    layers: o.layers.map((l) => ({
      inputs: l.inputs,
      outputs: l.outputs,
      rows: l.rows,
      horizonTicks: l.horizonTicks,
      calibrated: false,
      nmos: { ...nmos },
      pmos: { ...pmos },
      circuit: { ...circuit },
      dVth: new Float64Array(l.rows * l.outputs),
      gain: new Float64Array(l.rows * l.outputs).fill(1),
      thresholdScale: new Float64Array(l.outputs).fill(1),
      delay: new Float64Array(l.outputs),
    })),
    fit: { rmsePnnSeconds: 0, rmsePnnTicks: 0, rmseIdealSeconds: 0, rmseIdealTicks: 0, nProbes: 0, nHeldOut: 0 },
  };
}

/**
 * The conductances (normalised gE, gI: inputs x outputs) the profile predicts for one layer at the
 * given gate voltages (rows x outputs, volts): the calibrated twin's view of a programmed array.
 */
export function profileLayerConductances(
  profile: ChipProfile,
  layer: number,
  gateVolts: Float64Array,
  geometry: LayerGeometry,
): { gE: Float64Array; gI: Float64Array } {
  const l = checkLayerIndex(profile, layer);
  if (geometry.outputs !== l.outputs || geometry.rowInput.length !== l.rows) {
    throw new RangeError(
      `layer ${layer}: the geometry (${geometry.rowInput.length} rows x ${geometry.outputs}) does not match the profile (${l.rows} x ${l.outputs})`,
    );
  }
  const m = gateVoltagesToLayer(geometry, gateVolts, {
    nmos: l.nmos,
    pmos: l.pmos,
    circuit: l.circuit,
    temperatureC: profile.temperatureC,
    t0: profile.t0Seconds,
    horizon: l.horizonTicks / profile.layers[0].horizonTicks,
    dVth: l.dVth,
    gain: l.gain,
  });
  return { gE: m.gE, gI: m.gI };
}

/**
 * The switch-on kick of every input (u jump, inputs x outputs) at the given gate voltages (rows x
 * outputs): NMOS rows add -kickNmos * Vg, PMOS rows +kickPmos * (VDD - Vg), as the fit modelled it.
 * Feed it to PnnLayer.kick for a calibrated twin.
 */
export function profileLayerKicks(profile: ChipProfile, layer: number, gateVolts: Float64Array, geometry: LayerGeometry): Float64Array {
  const l = checkLayerIndex(profile, layer);
  const n = geometry.outputs;
  if (gateVolts.length !== geometry.rowInput.length * n) throw new RangeError(`gate voltages have length ${gateVolts.length}, expected rows*outputs`);
  const kick = new Float64Array(geometry.inputs * n);
  const { kickNmos, kickPmos } = profile.global;
  for (let r = 0; r < geometry.rowInput.length; r++) {
    const nmos = geometry.rowPolarity[r] === 0;
    const row = geometry.rowInput[r] * n;
    for (let i = 0; i < n; i++) {
      const v = gateVolts[r * n + i];
      kick[row + i] += nmos ? -kickNmos * v : kickPmos * (l.circuit.supply - v);
    }
  }
  return kick;
}
