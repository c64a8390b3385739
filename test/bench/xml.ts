/**
 * A small XML well-formedness checker for the chart test (no XML dependency): every tag is closed in
 * order, attributes are name="value" pairs without duplicates, text holds no raw '<' or bare '&'.
 * Returns the elements (name, attributes) in document order.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
}

export function parseXml(text: string): XmlElement[] {
  const stack: string[] = [],
    out: XmlElement[] = [];
  let i = 0,
    root = 0;
  const fail = (msg: string): never => {
    throw new Error(`XML: ${msg} at offset ${i}`);
  };
  const checkText = (t: string) => {
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(t)) fail(`bare '&' in ${JSON.stringify(t.slice(0, 40))}`);
  };
  if (text.startsWith('<?xml')) {
    i = text.indexOf('?>') + 2;
    if (i < 2) fail('unterminated declaration');
  }
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    checkText(chunk);
    if (stack.length === 0 && chunk.trim() !== '') fail('text outside the root element');
    if (lt < 0) break;
    i = lt;
    const gt = text.indexOf('>', i);
    if (gt < 0) fail('unterminated tag');
    const tag = text.slice(i + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      if (stack.pop() !== name) fail(`</${name}> closes another element`);
    } else {
      const selfClosing = tag.endsWith('/');
      const body = selfClosing ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w:.-]*)([\s\S]*)$/.exec(body);
      if (!m) fail(`bad tag <${tag.slice(0, 30)}>`);
      const [, name, rest] = m as RegExpExecArray;
      const attrs: Record<string, string> = {};
      const re = /\s+([A-Za-z_][\w:.-]*)="([^"<]*)"/y;
      let pos = 0;
      while (pos < rest.trimEnd().length) {
        re.lastIndex = pos;
        const a = re.exec(rest);
        if (!a) fail(`bad attributes in <${name}>: ${rest.slice(pos, pos + 30)}`);
        const [, key, value] = a as RegExpExecArray;
        if (key in attrs) fail(`duplicate attribute ${key} in <${name}>`);
        checkText(value);
        attrs[key] = value;
        pos = re.lastIndex;
      }
      if (stack.length === 0 && root++ > 0) fail('a second root element');
      out.push({ name, attrs });
      if (!selfClosing) stack.push(name);
    }
    i = gt + 1;
  }
  if (stack.length) fail(`unclosed <${stack.at(-1)}>`);
  return out;
}
