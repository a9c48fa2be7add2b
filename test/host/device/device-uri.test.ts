import { describe, expect, it } from 'vitest';
import { DEFAULT_DEVICE_URI, DeviceUriError, formatDeviceUri, parseDeviceUri } from '../../../host/device/device-uri.ts';

describe('parseDeviceUri', () => {
  it('parses serial URIs with baud and flow control', () => {
    expect(parseDeviceUri('serial:/dev/ttyACM0?baud=115200&rtscts=true')).toEqual({
      scheme: 'serial',
      uri: 'serial:/dev/ttyACM0?baud=115200&rtscts=true',
      path: '/dev/ttyACM0',
      baudRate: 115200,
      baudGiven: true,
      rtscts: true,
    });
    expect(parseDeviceUri('serial:COM3')).toMatchObject({ path: 'COM3', baudRate: 921600, rtscts: false });
  });

  it('parses pty URIs', () => {
    expect(parseDeviceUri('pty:/dev/pts/7')).toMatchObject({ scheme: 'pty', path: '/dev/pts/7' });
  });

  it('splits mock options between chip backend and board', () => {
    const a = parseDeviceUri('mock:ideal?seed=7&geometry=784-256-128-10&maxPayload=4096');
    expect(a).toMatchObject({
      scheme: 'mock',
      uri: 'mock:ideal?seed=7&geometry=784-256-128-10&maxPayload=4096',
      chip: 'ideal',
      chipOptions: { seed: '7', geometry: '784-256-128-10' },
      board: { maxPayload: 4096 },
    });
    // Validated by the chip's own schemas while parsing: the typed values travel with the address.
    expect(a.scheme === 'mock' && a.spec.chip.options).toEqual({ seed: 7, geometry: [784, 256, 128, 10] });
  });

  it('the default URI is the embedded mock and parses', () => {
    expect(parseDeviceUri(DEFAULT_DEVICE_URI).scheme).toBe('mock');
  });

  const bad: [string, RegExp][] = [
    ['', /empty device URI/],
    ['/dev/ttyACM0', /missing scheme.*serial:\/dev\/ttyACM0/],
    ['usb:/dev/x', /unknown scheme 'usb'.*serial:, pty:, mock:/],
    ['serial:', /no port path/],
    ['serial:/dev/ttyACM0?baud=fast', /baud='fast' expected a whole number/],
    ['serial:/dev/ttyACM0?baud=0', /baud='0' must be >= 50/],
    ['serial:/dev/ttyACM0?bauds=9600', /unknown option 'bauds'.*allowed options for serial: baud, rtscts/],
    ['serial:/dev/ttyACM0?baud=1&baud=2', /option baud given twice/],
    ['serial:/dev/ttyACM0?rtscts=maybe', /rtscts='maybe' expected true or false/],
    ['mock:Ideal', /chip kind 'Ideal' is not a name/],
    ['mock:ideal?seed=-1', /seed='-1'/],
    ['mock:ideal?geometry=784x10', /geometry='784x10'.*layer widths joined by dashes/],
    ['mock:ideal?geometry=784-0', /size 1 = 0/],
    ['mock:ideal?seed=4294967296', /seed='4294967296'.*must be <= 4294967295/],
    ['mock:ideal?seed=123456789012345', /seed='123456789012345'/],
    [
      'mock:ideal?colour=blue',
      /unknown option 'colour' for chip kind 'ideal'.*seed, geometry.*maxPayload, runDelayMs, thread, baud, latencyMs, byteErrorRate, errorSeed/,
    ],
    ['mock:warp', /unknown chip kind 'warp'/],
    ['mock:ideal?baud=fast', /baud='fast' expected a whole number/],
    ['mock:ideal?byteErrorRate=2', /byteErrorRate='2' must be <= 0.5/],
    ['mock:ideal?byteErrorRate=lots', /byteErrorRate='lots' expected a number/],
    ['mock:ideal?maxPayload=10', /maxPayload='10' must be >= 64/],
  ];
  it.each(bad)('rejects %j with a message naming the problem', (uri, re) => {
    expect(() => parseDeviceUri(uri)).toThrow(DeviceUriError);
    expect(() => parseDeviceUri(uri)).toThrow(re);
  });

  it('formats back to an equivalent URI', () => {
    for (const uri of ['serial:/dev/ttyUSB0?baud=115200', 'pty:/dev/pts/3', 'mock:ideal?seed=7&geometry=16-8-4&maxPayload=1024']) {
      const a = parseDeviceUri(uri);
      expect(parseDeviceUri(formatDeviceUri(a))).toEqual({ ...a, uri: formatDeviceUri(a) });
    }
  });
});

describe('mock line options', () => {
  it('go to the line, are typed, and format back', () => {
    const a = parseDeviceUri('mock:ideal?seed=1&baud=921600&latencyMs=2&byteErrorRate=1e-3&errorSeed=9');
    expect(a.scheme === 'mock' && a.spec.line).toEqual({ baud: 921600, latencyMs: 2, byteErrorRate: 1e-3, errorSeed: 9 });
    expect(a.scheme === 'mock' && a.chipOptions).toEqual({ seed: '1' });
    expect(parseDeviceUri(formatDeviceUri(a))).toEqual({ ...a, uri: formatDeviceUri(a) });
  });

  it('a pty address remembers whether baud= was given (a paced mock behind it)', () => {
    expect(parseDeviceUri('pty:/dev/pts/3')).toMatchObject({ baudGiven: false });
    expect(parseDeviceUri('pty:/dev/pts/3?baud=115200')).toMatchObject({ baudGiven: true, baudRate: 115200 });
  });
});

describe('mock board option runDelayMs', () => {
  it('goes to the board, not the chip, and is validated', () => {
    const a = parseDeviceUri('mock:behavioral?seed=7&runDelayMs=250');
    expect(a).toMatchObject({ scheme: 'mock', chipOptions: { seed: '7' }, board: { runDelayMs: 250 } });
    expect(() => parseDeviceUri('mock:ideal?runDelayMs=-5')).toThrow(/runDelayMs='-5' expected a whole number/);
    expect(() => parseDeviceUri('mock:ideal?runDelayMs=700000')).toThrow(/runDelayMs='700000' must be <= 600000/);
  });
});
