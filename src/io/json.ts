/**
 * JSON as Python's json module writes it: config.json files saved by transformers hold bare
 * `Infinity`, `-Infinity` and `NaN` for float('inf') and float('nan') (Mamba2Config's
 * time_step_limit is (0.0, inf) by default), which JSON.parse refuses.
 */

/**
 * Parse JSON text that may hold bare Infinity, -Infinity or NaN outside strings (read as the
 * numbers they name); anything else must be strict JSON.
 */
export function parseJsonLenient(text: string): unknown {
  let out = '',
    i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      // copy a string literal as is
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (text.startsWith('Infinity', i)) {
      out += '1e999';
      i += 8;
    } // JSON.parse reads 1e999 as Infinity
    else if (text.startsWith('NaN', i)) {
      out += '"\\u0000NaN"';
      i += 3;
    } // a string only this parse can have made
    else {
      out += ch;
      i++;
    }
  }
  return JSON.parse(out, (_k, v: unknown) => (v === '\u0000NaN' ? NaN : v));
}

/**
 * JSON.stringify with non-finite numbers written the way Python's json writes them (Infinity,
 * -Infinity, NaN) instead of null, so transformers reads back the value that was saved.
 */
export function stringifyJson(value: unknown, indent = 2): string {
  const mark = (v: number) => `\u0000${v}\u0000`;
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? mark(v) : v), indent);
  return text.replace(/"\\u0000(-?Infinity|NaN)\\u0000"/g, '$1');
}
