/**
 * The OpenAI wire format the server speaks: request schemas (fastify validates them), the error
 * shape, the limits, stop strings matched across token boundaries, and log probabilities.
 */

/** Limits on what one request may ask for (answered with a 400 or 413 beyond them). */
export const LIMITS = {
  /** Bytes of a JSON request body (room for a 100k-token prompt of English text). */
  bodyBytes: 2 << 20,
  /** Bytes of a state file sent to PUT /v1/sessions/{id}/state. */
  stateBytes: 64 << 20,
  /** New tokens one request may prefill. */
  promptTokens: 131_072,
  maxTokens: 4096,
  n: 8,
  stop: 4,
  topLogprobs: 20,
  /** `logprobs` of the completions endpoint (top alternatives per token). */
  completionLogprobs: 5,
} as const;

/** An error sent as OpenAI sends them: {"error": {"message", "type", "param", "code"}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', param, code);
export const notFound = (message: string, param: string | null, code: string) =>
  new ApiError(404, message, 'invalid_request_error', param, code);

const stop = {
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: LIMITS.stop },
    { type: 'null' },
  ],
};
const streamOptions = {
  anyOf: [{ type: 'object', properties: { include_usage: { type: 'boolean' } } }, { type: 'null' }],
};
/** Fields both endpoints share; unknown fields are accepted and ignored, as OpenAI clients send extras. */
const common = {
  model: { type: 'string', minLength: 1 },
  max_tokens: { anyOf: [{ type: 'integer', minimum: 1, maximum: LIMITS.maxTokens }, { type: 'null' }] },
  temperature: { anyOf: [{ type: 'number', minimum: 0, maximum: 2 }, { type: 'null' }] },
  top_p: { anyOf: [{ type: 'number', exclusiveMinimum: 0, maximum: 1 }, { type: 'null' }] },
  n: { anyOf: [{ type: 'integer', minimum: 1, maximum: LIMITS.n }, { type: 'null' }] },
  seed: { anyOf: [{ type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, { type: 'null' }] },
  stream: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
  stream_options: streamOptions,
  stop,
  previous_response_id: { anyOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'null' }] },
  session_id: { anyOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'null' }] },
};

export const completionSchema = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    ...common,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'integer', minimum: 0 }, maxItems: LIMITS.promptTokens },
        { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 },
      ],
    },
    logprobs: { anyOf: [{ type: 'integer', minimum: 0, maximum: LIMITS.completionLogprobs }, { type: 'null' }] },
  },
} as const;

export const chatSchema = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...common,
    max_completion_tokens: common.max_tokens,
    messages: {
      type: 'array',
      maxItems: 1024,
      items: {
        type: 'object',
        required: ['role', 'content'],
        properties: {
          role: { type: 'string', enum: ['system', 'developer', 'user', 'assistant'] },
          content: {
            anyOf: [
              { type: 'string' },
              {
                type: 'array',
                items: { type: 'object', required: ['type', 'text'], properties: { type: { const: 'text' }, text: { type: 'string' } } },
              },
            ],
          },
        },
      },
    },
    logprobs: { anyOf: [{ type: 'boolean' }, { type: 'null' }] },
    top_logprobs: { anyOf: [{ type: 'integer', minimum: 0, maximum: LIMITS.topLogprobs }, { type: 'null' }] },
  },
} as const;

export const sessionCreateSchema = {
  anyOf: [
    {
      type: 'object',
      properties: { previous_response_id: { anyOf: [{ type: 'string', minLength: 1, maxLength: 128 }, { type: 'null' }] } },
    },
    { type: 'null' },
  ],
} as const;

/** Fields both endpoints read, typed after validation. */
export interface CommonBody {
  model: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  seed?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  stop?: string | string[] | null;
  previous_response_id?: string | null;
  session_id?: string | null;
}
export interface CompletionBody extends CommonBody {
  prompt: string | number[] | string[];
  logprobs?: number | null;
}
export interface ChatBody extends CommonBody {
  max_completion_tokens?: number | null;
  messages: { role: string; content: string | { type: 'text'; text: string }[] }[];
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

/**
 * Stop strings matched across token (and chunk) boundaries: text that could still begin a stop
 * string is held back until it cannot, and nothing from the first stop string on is ever sent.
 */
export class StopMatcher {
  private held = '';
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Text that is now safe to send, given the next decoded piece. */
  push(piece: string): string {
    if (this.stopped) return '';
    const text = this.held + piece;
    let cut = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.held = '';
      return text.slice(0, cut);
    }
    let keep = 0; // the longest tail of `text` that is a proper prefix of some stop string
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, text.length); k > keep; k--)
        if (text.endsWith(s.slice(0, k))) {
          keep = k;
          break;
        }
    this.held = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /** The end of the stream: whatever was held back (it never became a stop string). */
  flush(): string {
    const t = this.stopped ? '' : this.held;
    this.held = '';
    return t;
  }
}

/** log softmax of the chosen token and the `top` most likely alternatives (ties: lower id first). */
export function tokenLogprobs(logits: Float32Array, chosen: number, top: number): { logprob: number; top: [number, number][] } {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += Math.exp(logits[i] - m);
  const lse = m + Math.log(z);
  const best: [number, number][] = [];
  if (top > 0) {
    const idx = Array.from({ length: logits.length }, (_, i) => i);
    idx.sort((a, b) => logits[b] - logits[a] || a - b);
    for (const i of idx.slice(0, top)) best.push([i, logits[i] - lse]);
  }
  return { logprob: logits[chosen] - lse, top: best };
}
