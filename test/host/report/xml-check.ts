/**
 * A small, regexp-free XML well-formedness checker and tree builder for tests. It
 * follows the XML 1.0 rules that matter for generated SVG/XHTML: one root element,
 * matching and properly nested tags, quoted unique attributes, no raw '<' or stray '&'
 * in text or attribute values, valid entity references, and legal comments/CDATA.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: (XmlElement | string)[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function isNameStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === ':' || c > '\u00bf';
}
function isNameChar(c: string): boolean {
  return isNameStart(c) || (c >= '0' && c <= '9') || c === '-' || c === '.';
}
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

export class XmlError extends Error {}

export function parseXml(text: string): XmlElement {
  let i = 0;
  const fail = (msg: string): never => {
    let line = 1;
    for (let k = 0; k < i && k < text.length; k++) if (text[k] === '\n') line++;
    throw new XmlError(`${msg} (line ${line}, offset ${i}): ${JSON.stringify(text.slice(i, i + 40))}`);
  };
  const startsWith = (s: string) => text.startsWith(s, i);
  const readName = (): string => {
    if (i >= text.length || !isNameStart(text[i]!)) fail('expected a name');
    const s = i;
    while (i < text.length && isNameChar(text[i]!)) i++;
    return text.slice(s, i);
  };
  const decode = (raw: string, where: string): string => {
    let out = '';
    for (let k = 0; k < raw.length; k++) {
      const c = raw[k]!;
      if (c === '<') fail(`raw '<' in ${where}`);
      if (c !== '&') {
        out += c;
        continue;
      }
      const semi = raw.indexOf(';', k);
      if (semi < 0) fail(`'&' without ';' in ${where}`);
      const ref = raw.slice(k + 1, semi);
      if (ref.startsWith('#x')) {
        const hex = ref.slice(2);
        if (hex.length === 0 || ![...hex].every((h) => '0123456789abcdefABCDEF'.includes(h))) fail(`bad reference &${ref}; in ${where}`);
        out += String.fromCodePoint(parseInt(hex, 16));
      } else if (ref.startsWith('#')) {
        const dec = ref.slice(1);
        if (dec.length === 0 || ![...dec].every((h) => h >= '0' && h <= '9')) fail(`bad reference &${ref}; in ${where}`);
        out += String.fromCodePoint(parseInt(dec, 10));
      } else if (ref in ENTITIES) {
        out += ENTITIES[ref];
      } else {
        fail(`unknown entity &${ref}; in ${where}`);
      }
      k = semi;
    }
    return out;
  };
  const skipMisc = (): void => {
    for (;;) {
      while (isSpace(text[i])) i++;
      if (startsWith('<!--')) {
        const end = text.indexOf('-->', i + 4);
        if (end < 0) fail('unterminated comment');
        if (text.slice(i + 4, end).includes('--')) fail("'--' inside a comment");
        i = end + 3;
      } else if (startsWith('<?')) {
        const end = text.indexOf('?>', i + 2);
        if (end < 0) fail('unterminated processing instruction');
        i = end + 2;
      } else return;
    }
  };

  skipMisc();
  if (startsWith('<!DOCTYPE')) {
    const end = text.indexOf('>', i);
    if (end < 0) fail('unterminated DOCTYPE');
    if (text.slice(i, end).includes('[')) fail('internal DTD subsets are not supported');
    i = end + 1;
    skipMisc();
  }
  if (!startsWith('<')) fail('expected the root element');

  const parseElement = (): XmlElement => {
    i++; // '<'
    const name = readName();
    const el: XmlElement = { name, attrs: {}, children: [] };
    for (;;) {
      const hadSpace = isSpace(text[i]);
      while (isSpace(text[i])) i++;
      if (startsWith('/>')) {
        i += 2;
        return el;
      }
      if (text[i] === '>') {
        i++;
        break;
      }
      if (!hadSpace) fail('attributes must be separated by whitespace');
      const an = readName();
      while (isSpace(text[i])) i++;
      if (text[i] !== '=') fail(`attribute ${an} without '='`);
      i++;
      while (isSpace(text[i])) i++;
      const q = text[i];
      if (q !== '"' && q !== "'") fail(`attribute ${an} value must be quoted`);
      const end = text.indexOf(q!, i + 1);
      if (end < 0) fail(`unterminated value of attribute ${an}`);
      if (Object.hasOwn(el.attrs, an)) fail(`duplicate attribute ${an}`);
      el.attrs[an] = decode(text.slice(i + 1, end), `attribute ${an}`);
      i = end + 1;
    }
    for (;;) {
      if (i >= text.length) fail(`unclosed <${name}>`);
      if (startsWith('</')) {
        i += 2;
        const close = readName();
        if (close !== name) fail(`</${close}> closes <${name}>`);
        while (isSpace(text[i])) i++;
        if (text[i] !== '>') fail('malformed closing tag');
        i++;
        return el;
      }
      if (startsWith('<!--')) {
        skipMisc();
        continue;
      }
      if (startsWith('<![CDATA[')) {
        const end = text.indexOf(']]>', i);
        if (end < 0) fail('unterminated CDATA');
        el.children.push(text.slice(i + 9, end));
        i = end + 3;
        continue;
      }
      if (startsWith('<?')) {
        skipMisc();
        continue;
      }
      if (text[i] === '<') {
        el.children.push(parseElement());
        continue;
      }
      let end = text.indexOf('<', i);
      if (end < 0) end = text.length;
      const raw = text.slice(i, end);
      if (raw.includes(']]>')) fail("']]>' in text");
      el.children.push(decode(raw, `text of <${name}>`));
      i = end;
    }
  };

  const root = parseElement();
  skipMisc();
  if (i !== text.length) fail('content after the root element');
  return root;
}

/** All elements (depth-first) matching a predicate. */
export function findAll(root: XmlElement, pred: (e: XmlElement) => boolean): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (pred(e)) out.push(e);
    for (const c of e.children) if (typeof c !== 'string') walk(c);
  };
  walk(root);
  return out;
}

export const byName = (name: string) => (e: XmlElement) => e.name === name;
export const byClass = (cls: string) => (e: XmlElement) => (e.attrs.class ?? '').split(' ').includes(cls);

/** Concatenated text content. */
export function textOf(e: XmlElement): string {
  return e.children.map((c) => (typeof c === 'string' ? c : textOf(c))).join('');
}

/** Numbers of an SVG path's "M x y L x y v h" data, as [command, args] pairs. */
export function pathCommands(d: string): [string, number[]][] {
  const out: [string, number[]][] = [];
  let num = '';
  const flush = () => {
    if (num !== '') {
      out[out.length - 1]![1].push(Number(num));
      num = '';
    }
  };
  for (const c of d) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z' && c !== 'e')) {
      flush();
      out.push([c, []]);
    } else if (c === ' ' || c === ',') flush();
    else if (c === '-' && num !== '' && !num.endsWith('e')) {
      flush();
      num = '-';
    } else num += c;
  }
  flush();
  return out;
}
