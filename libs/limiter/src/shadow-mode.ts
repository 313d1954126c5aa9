/**
 * LIMITER_MODE=shadow: every decision is made and reported, none refuses. Each charged
 * response says what enforcement would have done:
 *
 *   x-tokenguard-shadow: would-admit
 *   x-tokenguard-shadow: would-reject; scope=team; reason=insufficient
 *
 * `scope` is the scope type that refused (`store` for a store outage under
 * STORE_FAILURE_MODE=closed, `upstream` for a model's learned provider limit); `reason` is the
 * rejection reason of `tokenguard_rejections_total`.
 */
export const SHADOW_HEADER = 'x-tokenguard-shadow';

export const WOULD_ADMIT = 'would-admit';

export function wouldReject(rejection: { scopeType: string; reason: string }): string {
  return `would-reject; scope=${rejection.scopeType}; reason=${rejection.reason}`;
}
