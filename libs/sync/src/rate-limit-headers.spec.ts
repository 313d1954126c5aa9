import type { RateLimitHeader } from '@tokenguard/metrics';
import {
  parseCount,
  parseDuration,
  parseRateLimitHeaders,
  parseRetryAfter,
} from './rate-limit-headers';

describe('parseDuration', () => {
  it.each([
    // Every form OpenAI sends (Go's time.Duration text).
    ['0s', 0],
    ['1s', 1_000],
    ['1.5s', 1_500],
    ['20ms', 20], // the seed read this as twenty minutes
    ['6m0s', 360_000],
    ['6m', 360_000],
    ['1h2m3.5s', 3_723_500],
    ['1h0m0s', 3_600_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1d2h', 93_600_000],
    ['59.999s', 59_999],
    ['17.28s', 17_280],
    ['.5s', 500],
    ['500us', 0.5],
    ['500µs', 0.5],
    ['500μs', 0.5],
    ['1500ns', 0.0015],
    ['1m30.25s', 90_250],
    ['  6m0s  ', 360_000],
    // A plain number is seconds, as some compatible providers send.
    ['60', 60_000],
    ['0.25', 250],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each([
    '',
    '   ',
    's',
    'ms',
    '-1s',
    '1x',
    '1 s',
    '1s 2ms',
    '5s5s',
    '1s2m',
    '2ms1s',
    '1.s',
    '1..5s',
    'abc',
    '6m0sX',
    'Infinity',
    'NaN',
    '1e3s',
    '0x10s',
  ])('%j does not parse', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('parseCount', () => {
  it.each([
    ['0', 0],
    ['10000', 10_000],
    [' 2000000 ', 2_000_000],
  ])('%j is %d', (text, n) => {
    expect(parseCount(text)).toBe(n);
  });

  it.each(['', '-1', '1.5', '1e6', '10k', 'abc', '9999999999999999'])(
    '%j does not parse',
    (text) => {
      expect(parseCount(text)).toBeUndefined();
    },
  );
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');

  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2', now)).toBe(2_000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', now)).toBe(30_000);
    // A date in the past means now.
    expect(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', now)).toBe(0);
  });

  it.each(['', '-1', 'soon', '2025-01-01T12:00:30Z', '1s'])('%j does not parse', (text) => {
    expect(parseRetryAfter(text, now)).toBeUndefined();
  });
});

describe('parseRateLimitHeaders', () => {
  const openAIHeaders = {
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-limit-tokens': '2000000',
    'x-ratelimit-remaining-requests': '9999',
    'x-ratelimit-remaining-tokens': '1999843',
    'x-ratelimit-reset-requests': '6ms',
    'x-ratelimit-reset-tokens': '4m0s',
    'content-type': 'application/json',
  };

  function parse(headers: Record<string, string | string[] | undefined>) {
    const malformed: RateLimitHeader[] = [];
    const parsed = parseRateLimitHeaders(headers, (h) => malformed.push(h), 0);
    return { parsed, malformed };
  }

  it('reads the six headers of an OpenAI answer', () => {
    expect(parse(openAIHeaders)).toEqual({
      parsed: {
        limitRequests: 10_000,
        limitTokens: 2_000_000,
        remainingRequests: 9_999,
        remainingTokens: 1_999_843,
        resetRequestsMs: 6,
        resetTokensMs: 240_000,
      },
      malformed: [],
    });
  });

  it('says nothing about an answer without rate-limit headers', () => {
    expect(parse({ 'content-type': 'application/json' })).toEqual({
      parsed: undefined,
      malformed: [],
    });
  });

  it('reads an untouched quota as it is: remaining = limit, reset 0s', () => {
    // The seed derived a refill of 0 from this; the limit alone sizes the bucket.
    const { parsed } = parse({
      'x-ratelimit-limit-tokens': '30000',
      'x-ratelimit-remaining-tokens': '30000',
      'x-ratelimit-reset-tokens': '0s',
    });
    expect(parsed).toEqual({ limitTokens: 30_000, remainingTokens: 30_000, resetTokensMs: 0 });
  });

  it.each<[string, Record<string, string | string[]>, RateLimitHeader]>([
    ['a reset without a unit', { 'x-ratelimit-reset-tokens': '1x' }, 'x-ratelimit-reset-tokens'],
    ['a negative count', { 'x-ratelimit-remaining-tokens': '-5' }, 'x-ratelimit-remaining-tokens'],
    ['a fractional limit', { 'x-ratelimit-limit-tokens': '1.5' }, 'x-ratelimit-limit-tokens'],
    ['a zero limit', { 'x-ratelimit-limit-requests': '0' }, 'x-ratelimit-limit-requests'],
    ['a header sent twice', { 'x-ratelimit-limit-tokens': ['1', '2'] }, 'x-ratelimit-limit-tokens'],
    ['a text retry-after', { 'retry-after': 'later' }, 'retry-after'],
    ['a negative retry-after-ms', { 'retry-after-ms': '-10' }, 'retry-after-ms'],
  ])('ignores and reports %s, keeping the rest', (_label, bad, header) => {
    const { parsed, malformed } = parse({ ...openAIHeaders, ...bad });
    expect(malformed).toEqual([header]);
    expect(parsed).toMatchObject({ remainingRequests: 9_999 });
    expect(Object.values(parsed ?? {}).every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
  });

  it('reads the wait of a 429: retry-after-ms over retry-after', () => {
    expect(parse({ 'retry-after': '2', 'retry-after-ms': '1500' }).parsed).toEqual({
      retryAfterMs: 1_500,
    });
    expect(parse({ 'retry-after': '2' }).parsed).toEqual({ retryAfterMs: 2_000 });
    expect(parse({ 'retry-after': '2', 'retry-after-ms': 'x' })).toEqual({
      parsed: { retryAfterMs: 2_000 },
      malformed: ['retry-after-ms'],
    });
  });
});
