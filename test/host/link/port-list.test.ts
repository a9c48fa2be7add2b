import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listPorts, listPortsFromSysfs } from '../../../host/link/port-list.ts';

/** A miniature sysfs: the shapes Linux gives a CDC-ACM board, an FTDI bridge, 8250 UARTs and a console. */
function fakeSysfs(root: string): void {
  const dev = (p: string) => mkdirSync(join(root, p), { recursive: true });
  const file = (p: string, s: string) => writeFileSync(join(root, p), s + '\n');
  dev('class/tty');
  dev('bus/usb/drivers/cdc_acm');
  dev('bus/usb-serial/drivers/ftdi_sio');
  dev('bus/platform/drivers/serial8250');
  // RP2040 on USB: interface dir under the USB device dir
  const rp = 'devices/pci0000:00/usb1/1-2';
  dev(`${rp}/1-2:1.0/tty/ttyACM0`);
  file(`${rp}/idVendor`, '2E8A');
  file(`${rp}/idProduct`, '000a');
  file(`${rp}/manufacturer`, 'Raspberry Pi');
  file(`${rp}/product`, 'Pico');
  file(`${rp}/serial`, 'E66');
  symlinkSync(join(root, 'bus/usb/drivers/cdc_acm'), join(root, `${rp}/1-2:1.0/driver`));
  dev('class/tty/ttyACM0');
  symlinkSync(join(root, `${rp}/1-2:1.0`), join(root, 'class/tty/ttyACM0/device'));
  // FTDI bridge without manufacturer strings
  const ft = 'devices/pci0000:00/usb1/1-3';
  dev(`${ft}/1-3:1.0/ttyUSB0`);
  file(`${ft}/idVendor`, '0403');
  file(`${ft}/idProduct`, '6001');
  symlinkSync(join(root, 'bus/usb-serial/drivers/ftdi_sio'), join(root, `${ft}/1-3:1.0/ttyUSB0/driver`));
  dev('class/tty/ttyUSB0');
  symlinkSync(join(root, `${ft}/1-3:1.0/ttyUSB0`), join(root, 'class/tty/ttyUSB0/device'));
  // 8250 UARTs: ttyS0 real (type 4), ttyS1 phantom (type 0)
  dev('devices/platform/serial8250');
  for (const [n, t] of [
    ['ttyS0', '4'],
    ['ttyS1', '0'],
  ] as const) {
    dev(`class/tty/${n}`);
    file(`class/tty/${n}/type`, t);
    symlinkSync(join(root, 'devices/platform/serial8250'), join(root, `class/tty/${n}/device`));
  }
  symlinkSync(join(root, 'bus/platform/drivers/serial8250'), join(root, 'devices/platform/serial8250/driver'));
  // a virtual console (no device link) and a dangling device link
  dev('class/tty/tty0');
  dev('class/tty/ttyACM9');
  symlinkSync(join(root, 'devices/gone'), join(root, 'class/tty/ttyACM9/device'));
}

describe('listPortsFromSysfs', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'sysfs-'));
    fakeSysfs(root);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('lists real ports with USB ids and drivers, marks likely boards, skips consoles, phantoms and dangling links', () => {
    const ports = listPortsFromSysfs(root, '/dev');
    expect(ports.map((p) => p.path)).toEqual(['/dev/ttyACM0', '/dev/ttyS0', '/dev/ttyUSB0']);
    expect(ports[0]).toMatchObject({
      driver: 'cdc_acm',
      vendorId: '2e8a',
      productId: '000a',
      manufacturer: 'Raspberry Pi',
      product: 'Pico',
      serialNumber: 'E66',
      likelyBoard: true,
    });
    expect(ports[1]).toMatchObject({ driver: 'serial8250', likelyBoard: false, reason: 'on-board UART' });
    expect(ports[1]!.vendorId).toBeUndefined();
    expect(ports[2]).toMatchObject({ driver: 'ftdi_sio', vendorId: '0403', productId: '6001', likelyBoard: false });
    expect(ports[2]!.reason).toMatch(/FTDI.*possible board/);
  });

  it('returns an empty list (no throw) when sysfs is missing', async () => {
    expect(listPortsFromSysfs(join(root, 'nope'))).toEqual([]);
    const r = await listPorts({ sysRoot: join(root, 'nope') });
    expect(r).toMatchObject({ ports: [], source: 'none' });
    expect(r.note).toMatch(/not readable/);
  });

  it('does not crash on this machine', async () => {
    const r = await listPorts();
    expect(Array.isArray(r.ports)).toBe(true);
  });
});
