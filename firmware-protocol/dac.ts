/** The DAC rules live with the chip description in models/; the protocol re-exports them. */
export * from '../models/chips/dac.ts';
