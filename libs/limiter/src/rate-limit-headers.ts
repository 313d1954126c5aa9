import { formatRateLimitDuration } from '@tokenguard/common';
import type { BucketSnapshot } from '@tokenguard/bucket-store';

/**
 * The bucket with the fewest tokens left: the one a client should pace itself by. A request
 * counter (`upstream_requests`) counts requests, not tokens, so it is not compared.
 */
export function tightestBucket(buckets: readonly BucketSnapshot[]): BucketSnapshot | undefined {
  let tightest: BucketSnapshot | undefined;
  for (const bucket of buckets) {
    if (bucket.scope.type === 'upstream_requests') continue;
    if (tightest === undefined || bucket.tokens < tightest.tokens) tightest = bucket;
  }
  return tightest;
}

/**
 * OpenAI-compatible `x-ratelimit-*-tokens` headers for one bucket. `refunded` lets settlement
 * report the level after giving back an over-estimate without another store round trip.
 */
export function rateLimitHeaders(bucket: BucketSnapshot, refunded = 0): Record<string, string> {
  const tokens = Math.min(bucket.capacity, bucket.tokens + refunded);
  const missing = bucket.capacity - tokens;
  const msUntilFull =
    missing <= 0 ? 0 : bucket.refillPerSec > 0 ? (missing / bucket.refillPerSec) * 1000 : null;
  const headers: Record<string, string> = {
    'x-ratelimit-limit-tokens': String(Math.floor(bucket.capacity)),
    'x-ratelimit-remaining-tokens': String(Math.max(0, Math.floor(tokens))),
  };
  if (msUntilFull !== null)
    headers['x-ratelimit-reset-tokens'] = formatRateLimitDuration(msUntilFull);
  return headers;
}
