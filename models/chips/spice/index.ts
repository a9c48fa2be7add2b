/**
 * The SPICE chip model: `SpiceChip` (also reachable as `createChip('spice', ...)` from
 * models/chips/index.ts) and the pieces it is built from, for tests, benchmarks and tools.
 */

export { SpiceChip, DEFAULT_SPICE_SIZES, SPICE_MODES, type SpiceChipOptions, type SpiceMode, type SpiceProgress } from './spice-chip.ts';
export { SpiceError } from './errors.ts';
export { availableEngines, createEngine, findNgspice, getVector, ENGINE_KINDS, type EngineKind, type SpiceEngine, type SpiceVectors } from './engine.ts';
export { SpicePool, type PoolOptions } from './pool.ts';
export { neuronNetlist, type NeuronNetlistSpec } from './netlist.ts';
export { firstRisingCrossing, spikeTimeOf } from './transient.ts';
export { DEFAULT_DESIGN, sigmaVth, type RcSpikeDesign } from './design.ts';
export { drawMismatch, type LayerMismatch } from './mismatch.ts';
export { tableLayerForward, type TableLayerModel } from './table-neuron.ts';
export { parseRawFile } from './raw-file.ts';
