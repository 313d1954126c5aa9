import { invalidRequest } from './openai-error';

/**
 * The knobs that shape the mock's answers. Settable as startup defaults (options, env, CLI),
 * globally at run time (`POST /_mock/config`, `setBehaviour`) and per request (body field
 * `mock`, merged over the global values for that request only).
 */
export interface MockBehaviour {
  /** Wait before anything is written (headers included). */
  latencyMs: number;
  /** Wait between two SSE events of a stream. */
  chunkDelayMs: number;
  /** Reply length when the request sets neither `max_completion_tokens` nor `max_tokens`. */
  defaultCompletionTokens: number;
  /** Upper bound on the reply length whatever the request asks for; null = no bound. */
  completionTokens: number | null;
  /**
   * Chat completions: report this many prompt tokens instead of counting them; null = count.
   * For load tests whose prompts all differ, where counting would make the mock the bottleneck.
   */
  promptTokens: number | null;
  /** Answer with this HTTP status (an error) instead of a completion; null = off. */
  status: number | null;
  /** Overrides of the forced error's `type`, `code` and `message`. */
  errorType: string | null;
  errorCode: string | null;
  message: string | null;
  /**
   * Probability in [0, 1] that a request fails with `status` (500 if `status` is null).
   * null: fail always when `status` is set, never otherwise.
   */
  errorRate: number | null;
  /** `retry-after` / reset headers sent with a forced 429. */
  retryAfterMs: number;
  /** Stream: destroy the socket after this many SSE events (JSON: after half the body). */
  failMidStreamAfterChunks: number | null;
  /** Destroy the socket without answering (after `latencyMs`). */
  dropConnection: boolean;
  /** Leave `usage` out of JSON answers and the final usage event out of streams. */
  omitUsage: boolean;
  /** Per-minute limits reported in the `x-ratelimit-*` headers. */
  rateLimitRequests: number;
  rateLimitTokens: number;
  /** Answer 429 when a request does not fit under the limits (off: only report them). */
  enforceRateLimits: boolean;
}

export const DEFAULT_BEHAVIOUR: Readonly<MockBehaviour> = Object.freeze({
  latencyMs: 0,
  chunkDelayMs: 0,
  defaultCompletionTokens: 16,
  completionTokens: null,
  promptTokens: null,
  status: null,
  errorType: null,
  errorCode: null,
  message: null,
  errorRate: null,
  retryAfterMs: 1000,
  failMidStreamAfterChunks: null,
  dropConnection: false,
  omitUsage: false,
  rateLimitRequests: 10_000,
  rateLimitTokens: 10_000_000,
  enforceRateLimits: false,
});

type Kind =
  | 'ms' // integer >= 0
  | 'count' // integer >= 1
  | 'count?' // integer >= 1 or null
  | 'chunks?' // integer >= 0 or null
  | 'status?' // integer 400..599 or null
  | 'string?'
  | 'rate?' // number in [0, 1] or null
  | 'bool';

const KINDS: Readonly<Record<keyof MockBehaviour, Kind>> = {
  latencyMs: 'ms',
  chunkDelayMs: 'ms',
  defaultCompletionTokens: 'count',
  completionTokens: 'count?',
  promptTokens: 'count?',
  status: 'status?',
  errorType: 'string?',
  errorCode: 'string?',
  message: 'string?',
  errorRate: 'rate?',
  retryAfterMs: 'ms',
  failMidStreamAfterChunks: 'chunks?',
  dropConnection: 'bool',
  omitUsage: 'bool',
  rateLimitRequests: 'count',
  rateLimitTokens: 'count',
  enforceRateLimits: 'bool',
};

export const BEHAVIOUR_KEYS = Object.keys(KINDS) as readonly (keyof MockBehaviour)[];

export function isBehaviourKey(key: string): key is keyof MockBehaviour {
  return Object.prototype.hasOwnProperty.call(KINDS, key);
}

/**
 * Validates a partial set of knobs (from JSON, so `unknown`). Unknown keys are rejected so a
 * typo in a test does not silently test nothing. Throws a 400 in OpenAI's shape, with
 * `param` naming the offending field under `where` (e.g. `mock.latencyMs`).
 */
export function parseBehaviourPatch(input: unknown, where: string): Partial<MockBehaviour> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidRequest(`Invalid '${where}': expected an object of mock knobs.`, where);
  }
  const patch: Partial<Record<keyof MockBehaviour, unknown>> = {};
  for (const [key, value] of Object.entries(input)) {
    const param = `${where}.${key}`;
    if (!isBehaviourKey(key)) {
      throw invalidRequest(
        `Unknown mock knob '${key}'. Known knobs: ${BEHAVIOUR_KEYS.join(', ')}.`,
        param,
        'unknown_parameter',
      );
    }
    if (!isValid(KINDS[key], value)) {
      throw invalidRequest(`Invalid '${param}': expected ${describe(KINDS[key])}.`, param);
    }
    patch[key] = value;
  }
  return patch as Partial<MockBehaviour>;
}

function isValid(kind: Kind, value: unknown): boolean {
  if (value === null) return kind.endsWith('?');
  switch (kind) {
    case 'ms':
      return Number.isInteger(value) && (value as number) >= 0;
    case 'count':
    case 'count?':
      return Number.isInteger(value) && (value as number) >= 1;
    case 'chunks?':
      return Number.isInteger(value) && (value as number) >= 0;
    case 'status?':
      return Number.isInteger(value) && (value as number) >= 400 && (value as number) <= 599;
    case 'string?':
      return typeof value === 'string';
    case 'rate?':
      return typeof value === 'number' && value >= 0 && value <= 1;
    case 'bool':
      return typeof value === 'boolean';
  }
}

function describe(kind: Kind): string {
  const orNull = kind.endsWith('?') ? ' or null' : '';
  switch (kind) {
    case 'ms':
      return 'an integer >= 0';
    case 'count':
    case 'count?':
      return `an integer >= 1${orNull}`;
    case 'chunks?':
      return `an integer >= 0${orNull}`;
    case 'status?':
      return `an HTTP status 400-599${orNull}`;
    case 'string?':
      return `a string${orNull}`;
    case 'rate?':
      return `a number in [0, 1]${orNull}`;
    case 'bool':
      return 'a boolean';
  }
}

/** The kind of a knob, for parsers of text input (env, CLI). */
export function knobAcceptsNull(key: keyof MockBehaviour): boolean {
  return KINDS[key].endsWith('?');
}

export function knobIsText(key: keyof MockBehaviour): boolean {
  return KINDS[key] === 'string?';
}
