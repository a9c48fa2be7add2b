/** `spikeloop info`: open a device, say HELLO, print what it announces. */
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { deviceOption, timeoutOption } from '../common-options.ts';
import { renderKeyValue, renderTable } from '../../ui/table.ts';
import { ChipDevice, type DeviceInfo } from '../../device/chip-device.ts';

export const name = 'info';
export const summary = 'show what a device announces in HELLO (chip, geometry, DAC, safe windows, limits)';
export const examples = ['spikeloop info', 'spikeloop info --device serial:/dev/ttyACM0', 'spikeloop info --device pty:/dev/pts/5 --json'];

export const options = {
  device: deviceOption,
  timeout: timeoutOption,
} satisfies OptionsSpec;

/** Whether a layer's rows are the reference dual-rail layout (row 2j NMOS, 2j+1 PMOS of input j). */
export function isDualRail(l: DeviceInfo['layers'][number]): boolean {
  if (l.rowInput.length !== 2 * l.inputs) return false;
  for (let j = 0; j < l.inputs; j++) {
    if (l.rowInput[2 * j] !== j || l.rowInput[2 * j + 1] !== j || l.rowPolarity[2 * j] !== 0 || l.rowPolarity[2 * j + 1] !== 1) return false;
  }
  return true;
}

export function describeInfo(info: DeviceInfo, uri: string): string {
  const si = (s: number) => (s >= 1e-3 ? `${(s * 1e3).toPrecision(3)} ms` : s >= 1e-6 ? `${(s * 1e6).toPrecision(3)} us` : `${(s * 1e9).toPrecision(3)} ns`);
  const head = renderKeyValue([
    ['device', uri],
    ['firmware', info.firmware],
    ['board', info.boardId],
    ['chip', info.chipId],
    ['protocol', `${info.protocol} (min ${info.minProtocol}; using ${info.negotiatedProtocol})`],
    ['geometry', [info.layers[0]!.inputs, ...info.layers.map((l) => l.outputs)].join('-')],
    ['DAC', `${info.dac.bits} bits, ${info.dac.vMin} .. ${info.dac.vMax} V`],
    ['safe NMOS', `${info.safe.nmos[0]} .. ${info.safe.nmos[1]} V`],
    ['safe PMOS', `${info.safe.pmos[0]} .. ${info.safe.pmos[1]} V`],
    ['tick', si(info.tickSeconds)],
    ['limits', `maxPayload ${info.maxPayload} B (${info.chunkCodes} codes/frame), maxBatch ${info.maxBatch} (${info.runBatch} samples/RUN)`],
    ['features', info.features.join(', ') || 'none'],
  ]);
  const layers = renderTable(
    info.layers.map((l, i) => {
      let pmos = 0;
      for (const p of l.rowPolarity) pmos += p;
      return {
        layer: i,
        inputs: l.inputs,
        outputs: l.outputs,
        rows: l.rowInput.length,
        NMOS: l.rowPolarity.length - pmos,
        PMOS: pmos,
        layout: isDualRail(l) ? 'dual-rail' : 'custom',
        horizon: `${l.horizonTicks} ticks (${si(l.horizonTicks * info.tickSeconds)})`,
      };
    }),
  );
  return `${head}\n${layers}`.trimEnd();
}

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const { device: uri, timeout } = ctx.options;
  const dev = await ChipDevice.open(uri, timeout ? { timeouts: { HELLO: timeout } } : {});
  try {
    const info = dev.info;
    ctx.print(describeInfo(info, uri));
    return { device: uri, hello: info, layout: info.layers.map((l) => (isDualRail(l) ? 'dual-rail' : 'custom')), link: dev.link.stats };
  } finally {
    await dev.close();
  }
}
