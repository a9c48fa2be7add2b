/** `spikeloop ports`: serial ports on this machine, likely test boards marked. */
import type { CommandContext, OptionsSpec, ParsedOptions } from '../command.ts';
import { flag } from '../common-options.ts';
import { listPorts } from '../../link/port-list.ts';
import { renderTable } from '../../ui/table.ts';

export const name = 'ports';
export const summary = 'list serial ports and mark the ones that look like a spikeloop board';
export const description =
  'Reads /sys/class/tty (no udev needed). A port is a likely board when its USB id is a known\n' +
  'microcontroller (RP2040, STM32 VCP, Teensy, ESP32-S3, ...) or it is a USB CDC-ACM device.\n' +
  'Use the path as --device serial:PATH.';
export const examples = ['spikeloop ports', 'spikeloop ports --boards --json'];

export const options = {
  boards: flag('list only likely boards'),
} satisfies OptionsSpec;

export async function run(ctx: CommandContext<ParsedOptions<typeof options>>): Promise<Record<string, unknown>> {
  const result = await listPorts();
  const ports = ctx.options.boards ? result.ports.filter((p) => p.likelyBoard) : result.ports;
  if (result.note) ctx.warn(`note: ${result.note}`);
  if (ports.length === 0) {
    ctx.print(ctx.options.boards ? 'no likely boards found (run without --boards to see every port)' : 'no serial ports found');
  } else {
    ctx.print(
      renderTable(
        ports.map((p) => ({
          board: p.likelyBoard ? '*' : '',
          device: p.path,
          'usb id': p.vendorId ? `${p.vendorId}:${p.productId ?? '????'}` : '',
          driver: p.driver ?? '',
          description: [p.manufacturer, p.product].filter(Boolean).join(' ') || p.reason,
        })),
      ).trimEnd(),
    );
    if (ports.some((p) => p.likelyBoard)) ctx.print('* likely board: try  spikeloop info --device serial:<device>');
  }
  return { source: result.source, ports, ...(result.note ? { note: result.note } : {}) };
}
