import { describe, expect, it } from 'vitest';
import { columnDecimals, formatDuration, formatFields, formatNumber, formatRate, visibleWidth } from '../../../host/ui/format.ts';

describe('formatNumber', () => {
  it.each([
    [0, '0'],
    [60000, '60000'],
    [-3, '-3'],
    [0.5, '0.5'],
    [0.123456, '0.1235'],
    [123.456, '123.5'],
    [1.23456e-5, '1.235e-5'],
    [1e-5, '1e-5'],
    [2.5e9, '2500000000'],
    [2.53e10 + 0.5, '2.53e10'],
    [Number.NaN, 'NaN'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
    [9999.99, '1e4'],
  ])('%s -> %s', (v, s) => {
    expect(formatNumber(v)).toBe(s);
  });
});

describe('columnDecimals', () => {
  it('gives the largest value 4 significant digits', () => {
    expect(columnDecimals([0.5432, 0.0123])).toBe(4);
    expect(columnDecimals([123.456, 1.5])).toBe(1);
    expect(columnDecimals([1, 2, 3])).toBe(0);
    expect(columnDecimals([1e-6, 2e-6])).toBeUndefined();
    expect(columnDecimals([0.5, Number.NaN])).toBe(4);
  });
});

describe('formatDuration / formatRate / fields', () => {
  it('formats durations', () => {
    expect(formatDuration(0.345)).toBe('0.34s');
    expect(formatDuration(4.24)).toBe('4.2s');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(185)).toBe('3m05s');
    expect(formatDuration(7620)).toBe('2h07m');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3d04h');
    expect(formatDuration(Number.NaN)).toBe('--');
  });
  it('formats rates with SI prefixes', () => {
    expect(formatRate(950)).toBe('950 it/s');
    expect(formatRate(2.5)).toBe('2.5 it/s');
    expect(formatRate(12345, 'samples')).toBe('12.3k samples/s');
    expect(formatRate(100000)).toBe('100k it/s');
    expect(formatRate(999999)).toBe('1M it/s');
    expect(formatRate(999.9)).toBe('1k it/s');
    expect(formatRate(0)).toBe('-- it/s');
  });
  it('formats fields and skips undefined', () => {
    expect(formatFields({ loss: 0.123456, acc: 0.9, phase: 'eval', skip: undefined })).toBe('loss=0.1235 acc=0.9 phase=eval');
  });
  it('ignores ANSI colour codes in widths', () => {
    expect(visibleWidth('\x1b[31mred\x1b[0m')).toBe(3);
  });
});
