import { describe, expect, it } from 'vitest';
import { parseXml, pathCommands } from './xml-check.ts';

describe('the test XML checker itself', () => {
  it('accepts well-formed documents', () => {
    const r = parseXml('<?xml version="1.0"?><!DOCTYPE html><a x="1" y=\'&lt;2&gt;\'><!-- c --><b/>t &amp; &#65;&#x42;<![CDATA[<raw>]]></a>');
    expect(r.name).toBe('a');
    expect(r.attrs).toEqual({ x: '1', y: '<2>' });
    expect(r.children).toEqual([{ name: 'b', attrs: {}, children: [] }, 't & AB', '<raw>']);
  });
  it.each([
    ['<a><b></a></b>', /closes/],
    ['<a>', /unclosed/],
    ['<a x=1/>', /quoted/],
    ['<a x="1" x="2"/>', /duplicate/],
    ['<a>1 < 2</a>', /expected a name/],
    ['<a>AT&T</a>', /'&' without ';'|unknown entity/],
    ['<a>&nbsp;</a>', /unknown entity/],
    ['<a/><b/>', /after the root/],
    ['<a x="<"/>', /raw '<'/],
    ['<a><!-- x -- y --></a>', /'--' inside/],
    ['<a x="1"y="2"/>', /separated/],
    ['text', /root/],
  ])('rejects %s', (doc, re) => {
    expect(() => parseXml(doc)).toThrow(re);
  });
  it('splits path data', () => {
    expect(pathCommands('M1 2L3.5 -4v5M-1e-3 2')).toEqual([
      ['M', [1, 2]],
      ['L', [3.5, -4]],
      ['v', [5]],
      ['M', [-1e-3, 2]],
    ]);
  });
});
