import { describe, expect, it } from 'vitest';
import { escapeXml } from '../../../host/report/escape-xml.ts';
import { parseXml, textOf } from './xml-check.ts';

describe('escapeXml', () => {
  it('escapes the five special characters and round-trips through an XML parser, in text and attributes', () => {
    const s = `a < b & c > "d" 'e'`;
    expect(escapeXml(s)).toBe('a &lt; b &amp; c &gt; &quot;d&quot; &apos;e&apos;');
    const doc = parseXml(`<p title="${escapeXml(s)}">${escapeXml(s)}</p>`);
    expect(doc.attrs.title).toBe(s);
    expect(textOf(doc)).toBe(s);
  });

  it('blanks control characters XML 1.0 forbids, keeps tab, newline and carriage return', () => {
    expect(escapeXml('a\u0000b\u0007c\u001fd')).toBe('a b c d');
    expect(escapeXml('a\tb\nc\rd')).toBe('a\tb\nc\rd');
    expect(escapeXml('µs \u2212 ✓')).toBe('µs \u2212 ✓');
  });
});
