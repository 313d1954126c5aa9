import type { RateLimitContext } from '@tokenguard/limiter';
import type { UpstreamResponse } from '@tokenguard/openai-proxy';

/** Tells settlement what the upstream call cost. */
export function recordUpstreamOutcome(
  rateLimit: RateLimitContext | undefined,
  upstream: UpstreamResponse,
): void {
  if (!rateLimit) return;
  if (upstream.status >= 300) rateLimit.recordRefund();
  else if (upstream.usage) rateLimit.recordUsage(upstream.usage.totalTokens);
  else rateLimit.recordUnmetered();
}
