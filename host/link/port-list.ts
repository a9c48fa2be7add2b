/**
 * Serial port discovery from sysfs (/sys/class/tty), without serialport's SerialPort.list():
 * on Linux that spawns `udevadm`, and where udevadm is missing the spawn error is unhandled
 * and kills the process. Reading sysfs needs nothing installed; every read is guarded, so a
 * sysfs without some attribute (containers, unusual drivers) yields less detail, never a crash.
 * On other platforms serialport's list is used, guarded.
 */
import { readFileSync, readdirSync, readlinkSync, realpathSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface PortInfo {
  /** Device node, e.g. /dev/ttyACM0. */
  path: string;
  /** Kernel driver bound to the port (cdc_acm, ftdi_sio, cp210x, ch341, serial8250, ...). */
  driver?: string;
  /** USB vendor and product id, lower-case hex, 4 digits. */
  vendorId?: string;
  productId?: string;
  manufacturer?: string;
  product?: string;
  serialNumber?: string;
  /** True when this looks like a spikeloop test board (see KNOWN_BOARDS and the driver rule). */
  likelyBoard: boolean;
  /** Why it is (or is not) marked as a likely board. */
  reason: string;
}

/**
 * USB ids of microcontroller boards the reference firmware targets (native USB, CDC-ACM).
 * UART bridges (FTDI, CP210x, CH34x) are "possible": a board may sit behind one, so do
 * many other things.
 */
export const KNOWN_BOARDS: readonly { vendorId: string; productId?: string; name: string }[] = [
  { vendorId: '2e8a', name: 'Raspberry Pi RP2040/RP2350' },
  { vendorId: '0483', productId: '5740', name: 'STM32 virtual COM port' },
  { vendorId: '239a', name: 'Adafruit board' },
  { vendorId: '16c0', productId: '0483', name: 'Teensy (USB serial)' },
  { vendorId: '303a', name: 'Espressif ESP32-S2/S3/C3 native USB' },
  { vendorId: '1209', name: 'pid.codes open-hardware device' },
  { vendorId: '2341', name: 'Arduino' },
  { vendorId: '1366', name: 'SEGGER J-Link VCOM' },
  { vendorId: '0d28', productId: '0204', name: 'Arm DAPLink / mbed' },
];

export const UART_BRIDGES: readonly { vendorId: string; productId?: string; name: string }[] = [
  { vendorId: '0403', name: 'FTDI UART bridge' },
  { vendorId: '10c4', productId: 'ea60', name: 'Silicon Labs CP210x bridge' },
  { vendorId: '1a86', name: 'WCH CH34x bridge' },
  { vendorId: '067b', productId: '2303', name: 'Prolific PL2303 bridge' },
];

function readAttr(dir: string, name: string): string | undefined {
  try {
    const v = readFileSync(join(dir, name), 'utf8').trim();
    return v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

function safeRealpath(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** Walks up from a tty's device directory to the USB device that owns it (the one with idVendor). */
function findUsbDevice(deviceDir: string, sysRoot: string): string | undefined {
  let dir = deviceDir;
  for (let i = 0; i < 8 && dir.startsWith(sysRoot) && dir !== sysRoot; i++) {
    if (readAttr(dir, 'idVendor') !== undefined) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

function match(list: typeof KNOWN_BOARDS, vid?: string, pid?: string) {
  if (!vid) return undefined;
  return list.find((b) => b.vendorId === vid && (b.productId === undefined || b.productId === pid));
}

export function classifyPort(p: Omit<PortInfo, 'likelyBoard' | 'reason'>): { likelyBoard: boolean; reason: string } {
  const known = match(KNOWN_BOARDS, p.vendorId, p.productId);
  if (known) return { likelyBoard: true, reason: known.name };
  if (p.driver === 'cdc_acm') return { likelyBoard: true, reason: 'USB CDC-ACM device (native-USB microcontroller)' };
  const bridge = match(UART_BRIDGES, p.vendorId, p.productId);
  if (bridge) return { likelyBoard: false, reason: `${bridge.name}: possible board behind a UART bridge` };
  if (p.vendorId) return { likelyBoard: false, reason: 'USB serial device of unknown kind' };
  return { likelyBoard: false, reason: 'on-board UART' };
}

/**
 * Lists serial ports from a sysfs tree (`sysRoot` for tests). Virtual consoles and
 * legacy 8250 UARTs that report no hardware (`type` 0) are left out.
 */
export function listPortsFromSysfs(sysRoot = '/sys', devRoot = '/dev'): PortInfo[] {
  const classDir = join(sysRoot, 'class', 'tty');
  let names: string[];
  try {
    names = readdirSync(classDir);
  } catch {
    return [];
  }
  const sysReal = safeRealpath(sysRoot) ?? sysRoot;
  const out: PortInfo[] = [];
  for (const name of names.sort(naturalCompare)) {
    const ttyDir = join(classDir, name);
    // Only ttys backed by a device: virtual consoles, ptmx and ptys have no `device` link.
    const deviceDir = safeRealpath(join(ttyDir, 'device'));
    if (!deviceDir) continue;
    // 8250 UART slots exist whether or not a chip answers; type 0 (PORT_UNKNOWN) means none does.
    if (readAttr(ttyDir, 'type') === '0') continue;
    let driver: string | undefined;
    try {
      driver = basename(readlinkSync(join(deviceDir, 'driver')));
    } catch {
      driver = undefined;
    }
    const usb = findUsbDevice(deviceDir, sysReal);
    const base = {
      path: join(devRoot, name),
      driver,
      vendorId: usb ? readAttr(usb, 'idVendor')?.toLowerCase() : undefined,
      productId: usb ? readAttr(usb, 'idProduct')?.toLowerCase() : undefined,
      manufacturer: usb ? readAttr(usb, 'manufacturer') : undefined,
      product: usb ? readAttr(usb, 'product') : undefined,
      serialNumber: usb ? readAttr(usb, 'serial') : undefined,
    };
    out.push({ ...base, ...classifyPort(base) });
  }
  return out;
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export interface ListPortsResult {
  ports: PortInfo[];
  source: 'sysfs' | 'serialport' | 'none';
  /** Why the list may be incomplete, if it may be. */
  note?: string;
}

/** Lists serial ports on this machine, never throwing. */
export async function listPorts(opts: { sysRoot?: string; devRoot?: string } = {}): Promise<ListPortsResult> {
  const sysRoot = opts.sysRoot ?? '/sys';
  if (process.platform === 'linux' || opts.sysRoot !== undefined) {
    if (existsSync(join(sysRoot, 'class', 'tty'))) {
      return { ports: listPortsFromSysfs(sysRoot, opts.devRoot), source: 'sysfs' };
    }
    return { ports: [], source: 'none', note: `${join(sysRoot, 'class', 'tty')} is not readable; give the port path directly (serial:/dev/ttyACM0)` };
  }
  try {
    const { SerialPort } = await import('serialport');
    const list = await SerialPort.list();
    const ports = list.map((p) => {
      const base = {
        path: p.path,
        vendorId: p.vendorId?.toLowerCase(),
        productId: p.productId?.toLowerCase(),
        manufacturer: p.manufacturer,
        serialNumber: p.serialNumber,
      };
      return { ...base, ...classifyPort(base) };
    });
    return { ports, source: 'serialport' };
  } catch (err) {
    return { ports: [], source: 'none', note: `listing failed (${(err as Error).message}); give the port path directly` };
  }
}
