import type { BucketSnapshot } from '@tokenguard/bucket-store';
import { rateLimitHeaders, tightestBucket } from './rate-limit-headers';

const bucket = (
  id: string,
  tokens: number,
  capacity = 1000,
  refillPerSec = 10,
): BucketSnapshot => ({
  scope: { type: 'user', id },
  tokens,
  capacity,
  refillPerSec,
  msUntilFull: null,
});

describe('tightestBucket', () => {
  it('picks the bucket with the fewest tokens left', () => {
    expect(
      tightestBucket([bucket('a', 500), bucket('b', 20, 50), bucket('c', 900)])?.scope.id,
    ).toBe('b');
    expect(tightestBucket([])).toBeUndefined();
  });
});

describe('rateLimitHeaders', () => {
  it('reports limit, remaining and time until full', () => {
    expect(rateLimitHeaders(bucket('a', 400, 1000, 10))).toEqual({
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '400',
      'x-ratelimit-reset-tokens': '1m0s',
    });
  });

  it('adds a refund, capped at capacity', () => {
    expect(rateLimitHeaders(bucket('a', 400), 100)['x-ratelimit-remaining-tokens']).toBe('500');
    expect(rateLimitHeaders(bucket('a', 990), 100)).toMatchObject({
      'x-ratelimit-remaining-tokens': '1000',
      'x-ratelimit-reset-tokens': '0ms',
    });
  });

  it('never reports negative remaining tokens (debt) and floors fractions', () => {
    expect(rateLimitHeaders(bucket('a', -50))['x-ratelimit-remaining-tokens']).toBe('0');
    expect(rateLimitHeaders(bucket('a', 12.9))['x-ratelimit-remaining-tokens']).toBe('12');
  });

  it('omits the reset when the bucket never refills', () => {
    expect(rateLimitHeaders(bucket('a', 10, 100, 0))['x-ratelimit-reset-tokens']).toBeUndefined();
  });
});
