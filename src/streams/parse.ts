/**
 * Ticks from text, one line at a time: CSV with a header row (a time column `t`, `time` or `date`,
 * then numeric columns) or JSON Lines (one object per line with the same keys). A line that cannot
 * be read is a BadLine (its 1-based line number and what is wrong), never a silent zero.
 */

export type TickTime = number | string;

export interface Tick {
  /** 1-based line number in the input (the CSV header is line 1). */
  line: number;
  /** The time as given (echoed in the output). */
  t: TickTime;
  /** The time as a number for ordering: the value itself, or milliseconds since 1970 for a date. */
  at: number;
  /** Numeric columns by name; null for an empty field. */
  values: Record<string, number | null>;
}

export class BadLine extends Error {
  constructor(
    readonly line: number,
    readonly why: string,
  ) {
    super(`line ${line}: ${why}`);
  }
}

export const TIME_COLUMNS = ['t', 'time', 'date'] as const;
export type TickFormat = 'csv' | 'jsonl';

/** The time column among `names`: the first of t, time, date present, else null. */
export function timeColumn(names: readonly string[]): string | null {
  for (const c of TIME_COLUMNS) if (names.includes(c)) return c;
  return null;
}

/** A time field as (echo, order): a finite number, or a date string Date.parse reads. */
export function parseTime(raw: string): { t: TickTime; at: number } | null {
  const s = raw.trim();
  if (s === '') return null;
  const n = Number(s);
  if (Number.isFinite(n)) return { t: n, at: n };
  const d = Date.parse(s);
  return Number.isFinite(d) ? { t: s, at: d } : null;
}

function parseNumber(raw: string): number | null | undefined {
  const s = raw.trim();
  if (s === '' || s === 'NA' || s === 'NaN') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/** Split a CSV line (commas; fields may be wrapped in double quotes, "" inside is a quote). */
export function splitCsv(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= line.length) return null; // unterminated quote
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += line[i++];
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ',') return null;
      i++;
    } else {
      const j = line.indexOf(',', i);
      if (j < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, j));
      i = j + 1;
    }
  }
}

/**
 * A line-at-a-time tick reader. CSV: the first non-empty line is the header (an error, not a bad
 * line, when it has no time column). Blank lines are skipped; a trailing '\r' is dropped.
 */
export class TickParser {
  private header: string[] | null = null;
  private timeKey: string | null = null;
  private lineNo = 0;

  constructor(readonly format: TickFormat) {}

  /** Column names (CSV, after the header line) without the time column. */
  get columns(): string[] | null {
    return this.header ? this.header.filter((c) => c !== this.timeKey) : null;
  }

  /** Read one line: a tick, null (header, blank), or a BadLine thrown. A header without a time column throws a plain Error. */
  push(raw: string): Tick | null {
    const line = ++this.lineNo;
    const s = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (s.trim() === '') return null;
    return this.format === 'csv' ? this.csv(s, line) : this.jsonl(s, line);
  }

  private csv(s: string, line: number): Tick | null {
    if (!this.header) {
      const h = splitCsv(s)?.map((c) => c.trim());
      if (!h) throw new HeaderError(`line ${line}: the CSV header cannot be read`);
      const tc = timeColumn(h);
      if (!tc) throw new HeaderError(`the CSV header (${h.join(',')}) has no time column: name one t, time or date`);
      if (new Set(h).size !== h.length) throw new HeaderError(`the CSV header (${h.join(',')}) names a column twice`);
      this.header = h;
      this.timeKey = tc;
      return null;
    }
    const f = splitCsv(s);
    if (!f) throw new BadLine(line, 'unbalanced double quotes');
    if (f.length !== this.header.length) throw new BadLine(line, `${f.length} fields, the header has ${this.header.length}`);
    const values: Record<string, number | null> = {};
    let time: { t: TickTime; at: number } | null = null;
    for (let i = 0; i < f.length; i++) {
      const name = this.header[i];
      if (name === this.timeKey) {
        time = parseTime(f[i]);
        if (!time) throw new BadLine(line, `time '${f[i]}' is neither a number nor a date`);
        continue;
      }
      const v = parseNumber(f[i]);
      if (v === undefined) throw new BadLine(line, `column ${name}: '${f[i]}' is not a number`);
      values[name] = v;
    }
    return { line, t: (time as { t: TickTime }).t, at: (time as { at: number }).at, values };
  }

  private jsonl(s: string, line: number): Tick {
    let o: unknown;
    try {
      o = JSON.parse(s);
    } catch {
      throw new BadLine(line, 'not valid JSON');
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new BadLine(line, 'not a JSON object');
    const rec = o as Record<string, unknown>;
    const tk = timeColumn(Object.keys(rec));
    if (!tk) throw new BadLine(line, 'no time key (t, time or date)');
    const rt = rec[tk];
    const time = typeof rt === 'number' ? (Number.isFinite(rt) ? { t: rt, at: rt } : null) : typeof rt === 'string' ? parseTime(rt) : null;
    if (!time) throw new BadLine(line, `time ${JSON.stringify(rt)} is neither a number nor a date`);
    const values: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(rec)) {
      if (k === tk) continue;
      if (v === null) values[k] = null;
      else if (typeof v === 'number' && Number.isFinite(v)) values[k] = v;
      else throw new BadLine(line, `key ${k}: ${JSON.stringify(v)} is not a number`);
    }
    return { line, t: time.t, at: time.at, values };
  }
}

/** A CSV header that cannot serve (no time column): bad input for the whole stream. */
export class HeaderError extends Error {}

/** A whole CSV text as columns (time, and each numeric column), for training and the report; bad lines are errors. */
export function readCsvColumns(text: string, where: string): { time: TickTime[]; at: number[]; columns: Map<string, (number | null)[]> } {
  const p = new TickParser('csv');
  const time: TickTime[] = [],
    at: number[] = [];
  const columns = new Map<string, (number | null)[]>();
  for (const raw of text.split('\n')) {
    let tick: Tick | null;
    try {
      tick = p.push(raw);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    if (!tick) continue;
    time.push(tick.t);
    at.push(tick.at);
    for (const [k, v] of Object.entries(tick.values)) {
      let c = columns.get(k);
      if (!c) {
        c = [];
        columns.set(k, c);
      }
      c.push(v);
    }
  }
  if (!p.columns) throw new Error(`${where}: the file is empty (it needs a header row and rows of ticks)`);
  for (const c of p.columns) if (!columns.has(c)) columns.set(c, []);
  return { time, at, columns };
}
