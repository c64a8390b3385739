/**
 * Server-sent events as the OpenAI streaming API sends them (`data: {json}\n\n`, `data: [DONE]`,
 * `: keep-alive` comments), parsed incrementally: the network cuts the byte stream anywhere, in the
 * middle of a line or of a UTF-8 character, and one read may hold many events.
 */

/** One event: its `data` lines joined with '\n' (the `event:`/`id:` fields are not used by the API). */
export interface SseEvent {
  data: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private buf = '';
  private data: string[] = [];
  /** Comment lines seen (keep-alives). */
  comments = 0;

  /** Feed bytes (or text) as they arrive; returns the events they complete. */
  push(chunk: Uint8Array | string): SseEvent[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: SseEvent[] = [];
    for (;;) {
      const nl = this.buf.search(/\r\n|\r|\n/);
      // a lone '\r' at the end may be the first half of '\r\n': wait for the next read
      if (nl < 0 || (this.buf[nl] === '\r' && nl === this.buf.length - 1)) break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith('\r\n', nl) ? 2 : 1));
      this.line(line, out);
    }
    return out;
  }

  /** The end of the stream: an event not closed by a blank line is dropped, as the SSE standard says. */
  end(): SseEvent[] {
    this.buf += this.decoder.decode();
    this.data = [];
    return [];
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ data: this.data.join('\n') });
      this.data = [];
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
  }
}
