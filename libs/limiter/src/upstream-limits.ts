import { HttpStatus } from '@nestjs/common';
import {
  type BucketSnapshot,
  type FixedCharge,
  isUpstreamScopeType,
  type ReserveRejected,
  type ReserveRequest,
  type ScopeRef,
  scopeKey,
} from '@tokenguard/bucket-store';
import { formatRateLimitDuration, OpenAIException } from '@tokenguard/common';
import type { RejectionReason, RejectionScope } from '@tokenguard/metrics';
import { rateLimitHeaders } from './rate-limit-headers';

/** What one request owes its model's upstream buckets (the provider's own limits). */
export interface UpstreamCharges {
  /** Charged the request's token estimate and settled like the budget scopes. */
  readonly scopes: readonly ScopeRef[];
  /** Charged a fixed amount whatever the tokens: one request. */
  readonly fixedCharges: readonly FixedCharge[];
}

/**
 * The provider limits learned per model (see @tokenguard/sync). `chargesFor` runs on every
 * charged request, so it answers from memory; undefined for a model never learned, a stale
 * one, or when upstream limits are not enforced.
 */
export interface UpstreamLimitSource {
  chargesFor(model: string): UpstreamCharges | undefined;
}

/** Injection token of the UpstreamLimitSource; optional (no limit sync: nothing added). */
export const UPSTREAM_LIMIT_SOURCE = Symbol('tokenguard:upstream-limit-source');

/** The reservation with the model's upstream buckets added, atomic with the other scopes. */
export function withUpstreamCharges(
  request: ReserveRequest,
  upstream: UpstreamCharges | undefined,
): ReserveRequest {
  if (upstream === undefined) return request;
  return {
    ...request,
    scopes: [...request.scopes, ...upstream.scopes],
    fixedCharges: upstream.fixedCharges,
  };
}

/** How a refusal is labelled: an upstream bucket's shortage is `upstream_rate_limit`. */
export function rejectionLabel(result: ReserveRejected): {
  readonly scopeType: RejectionScope;
  readonly reason: RejectionReason;
} {
  const type = result.scope.type;
  if (!isUpstreamScopeType(type)) return { scopeType: type, reason: result.reason };
  return {
    scopeType: 'upstream',
    reason: result.reason === 'insufficient' ? 'upstream_rate_limit' : result.reason,
  };
}

/**
 * The 429 for a request the provider would refuse: its model's learned limit is spent until
 * the bucket refills (or a provider 429 paused it). Shaped like the provider's own 429, so
 * the OpenAI SDKs wait `retry-after-ms` and retry. Undefined when the refusal is not that.
 */
export function upstreamRejection(
  result: ReserveRejected,
  requested: number,
): OpenAIException | undefined {
  const { scope } = result;
  if (result.reason !== 'insufficient' || !isUpstreamScopeType(scope.type)) return undefined;
  const bucket = result.buckets.find((b) => b.scope.type === scope.type && b.scope.id === scope.id);
  const requests = scope.type === 'upstream_requests';
  const headers: Record<string, string> = {
    ...(bucket ? (requests ? requestHeaders(bucket) : rateLimitHeaders(bucket)) : {}),
    'x-ratelimit-scope': scopeKey(scope),
  };
  let when = 'Please try again later.';
  if (result.retryAfterMs !== null) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
    headers['retry-after-ms'] = String(Math.ceil(result.retryAfterMs));
    when = `Please try again in ${headers['retry-after-ms']}ms.`;
  }
  const what = requests
    ? 'requests per minute'
    : `tokens per minute (${requested} requested, ${Math.max(0, Math.floor(bucket?.tokens ?? 0))} left)`;
  return new OpenAIException(HttpStatus.TOO_MANY_REQUESTS, {
    message: `The provider's rate limit for model ${scope.id} is reached: ${what}. ${when}`,
    type: requests ? 'requests' : 'tokens',
    code: 'upstream_rate_limit',
    headers,
  });
}

/** `x-ratelimit-*-requests` for a request-counting bucket. */
function requestHeaders(bucket: BucketSnapshot): Record<string, string> {
  const missing = bucket.capacity - bucket.tokens;
  const headers: Record<string, string> = {
    'x-ratelimit-limit-requests': String(Math.floor(bucket.capacity)),
    'x-ratelimit-remaining-requests': String(Math.max(0, Math.floor(bucket.tokens))),
  };
  if (bucket.refillPerSec > 0) {
    headers['x-ratelimit-reset-requests'] = formatRateLimitDuration(
      missing <= 0 ? 0 : (missing / bucket.refillPerSec) * 1000,
    );
  }
  return headers;
}
