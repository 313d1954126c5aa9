import type { RateLimitHeader } from '@tokenguard/metrics';

/**
 * Reading the provider's rate-limit headers. OpenAI sends, on every answer:
 *
 *   x-ratelimit-limit-requests: 10000        x-ratelimit-limit-tokens: 2000000
 *   x-ratelimit-remaining-requests: 9999     x-ratelimit-remaining-tokens: 1999843
 *   x-ratelimit-reset-requests: 6ms          x-ratelimit-reset-tokens: 4ms
 *
 * and on a 429 also `retry-after` (seconds) and often `retry-after-ms`. Limits are per
 * minute. A value that does not parse is ignored (and reported through `onMalformed`): a
 * provider changing a format must never fail a request or leave a wrong limit behind.
 */

/** What one answer says; a field is absent when its header was absent or malformed. */
export interface ParsedRateLimits {
  readonly limitRequests?: number;
  readonly limitTokens?: number;
  readonly remainingRequests?: number;
  readonly remainingTokens?: number;
  /** Milliseconds until the request limit is full again. */
  readonly resetRequestsMs?: number;
  readonly resetTokensMs?: number;
  /** Milliseconds the provider asks a client to wait (429): `retry-after-ms`, else `retry-after`. */
  readonly retryAfterMs?: number;
}

type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

const MS_PER_UNIT: Readonly<Record<string, number>> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  µs: 0.001, // U+00B5, as Go prints it
  μs: 0.001, // U+03BC, the Greek letter
  ns: 0.000_001,
};
/** Units from the largest down: a duration names each at most once, in this order. */
const UNIT_ORDER = ['d', 'h', 'm', 's', 'ms', 'us', 'µs', 'μs', 'ns'];

/** One `<number><unit>` part; `ms` before `m` and `s` so that "20ms" is 20 milliseconds. */
const PART = /(\d+(?:\.\d+)?|\.\d+)(ms|us|µs|μs|ns|d|h|m|s)/y;

/**
 * Milliseconds of a reset duration: Go-style durations as OpenAI sends them ("6m0s", "20ms",
 * "1.5s", "1h2m3.5s", "0s", "1d2h", "500µs"), or a plain number of seconds ("60", "1.5") as
 * some compatible providers send. Undefined when it does not parse (negative, empty, a unit
 * repeated or out of order, anything left over).
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === '') return undefined;
  if (/^(\d+(\.\d+)?|\.\d+)$/.test(value)) return Number(value) * 1000;
  let at = 0;
  let ms = 0;
  let lastUnit = -1;
  while (at < value.length) {
    PART.lastIndex = at;
    const match = PART.exec(value);
    if (match === null) return undefined;
    const unit = UNIT_ORDER.indexOf(match[2]);
    if (unit <= lastUnit) return undefined;
    lastUnit = unit;
    ms += Number(match[1]) * MS_PER_UNIT[match[2]];
    at = PART.lastIndex;
  }
  return Number.isFinite(ms) ? ms : undefined;
}

/** A whole count of requests or tokens: digits only. */
export function parseCount(text: string): number | undefined {
  const value = text.trim();
  if (!/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * `retry-after`: seconds (a whole or decimal number), or an HTTP date, which is turned into
 * the wait from `nowMs`. Undefined when it does not parse.
 */
export function parseRetryAfter(text: string, nowMs: number): number | undefined {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  // An HTTP date names a weekday and a GMT time; Date.parse alone accepts far too much.
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) {
    return undefined;
  }
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** `retry-after-ms`: a non-negative number of milliseconds. */
function parseMilliseconds(text: string): number | undefined {
  const value = text.trim();
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : undefined;
}

/** Where a field comes from, and how it is read. */
const FIELDS: ReadonlyArray<{
  readonly header: RateLimitHeader;
  readonly field: keyof ParsedRateLimits;
  readonly parse: (text: string, nowMs: number) => number | undefined;
  /** A limit of 0 cannot size a bucket: it is treated as malformed. */
  readonly positive?: boolean;
}> = [
  {
    header: 'x-ratelimit-limit-requests',
    field: 'limitRequests',
    parse: parseCount,
    positive: true,
  },
  { header: 'x-ratelimit-limit-tokens', field: 'limitTokens', parse: parseCount, positive: true },
  { header: 'x-ratelimit-remaining-requests', field: 'remainingRequests', parse: parseCount },
  { header: 'x-ratelimit-remaining-tokens', field: 'remainingTokens', parse: parseCount },
  { header: 'x-ratelimit-reset-requests', field: 'resetRequestsMs', parse: parseDuration },
  { header: 'x-ratelimit-reset-tokens', field: 'resetTokensMs', parse: parseDuration },
  { header: 'retry-after-ms', field: 'retryAfterMs', parse: parseMilliseconds },
];

/**
 * The rate-limit figures of one answer's headers (lower-case names, as Node gives them), or
 * undefined when it carries none of the headers at all. A header sent twice, or a value that
 * does not parse, is left out and reported.
 */
export function parseRateLimitHeaders(
  headers: HeaderBag,
  onMalformed: (header: RateLimitHeader) => void = () => undefined,
  nowMs: number = Date.now(),
): ParsedRateLimits | undefined {
  const parsed: { -readonly [K in keyof ParsedRateLimits]: number } = {};
  let present = false;
  const read = (header: RateLimitHeader, parse: (text: string) => number | undefined) => {
    const raw = headers[header];
    if (raw === undefined) return undefined;
    present = true;
    const value = typeof raw === 'string' ? parse(raw) : undefined;
    if (value === undefined) onMalformed(header);
    return value;
  };
  for (const { header, field, parse, positive } of FIELDS) {
    const value = read(header, (text) => {
      const n = parse(text, nowMs);
      return positive === true && n === 0 ? undefined : n;
    });
    if (value !== undefined) parsed[field] = value;
  }
  // `retry-after-ms` is the more precise of the two when both are sent.
  const retryAfter = read('retry-after', (text) => parseRetryAfter(text, nowMs));
  if (parsed.retryAfterMs === undefined && retryAfter !== undefined) {
    parsed.retryAfterMs = retryAfter;
  }
  return present ? parsed : undefined;
}
