import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChipDevice, type DeviceInfo } from '../../../host/device/chip-device.ts';
import { initBackend } from '../../../models/tf/backend.ts';

/** The twin on the CPU backend (here and in the CLI processes a test starts), and a fresh temporary folder. */
export async function cpuTwinDir(prefix: string): Promise<string> {
  process.env.SPIKELOOP_TF_BACKEND = 'cpu';
  await initBackend({ prefer: 'cpu' });
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** What a device announces at HELLO (the device is opened and closed). */
export async function helloOf(uri: string): Promise<DeviceInfo> {
  const dev = await ChipDevice.open(uri);
  try {
    return dev.info;
  } finally {
    await dev.close();
  }
}
