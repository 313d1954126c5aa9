import type { RouteLabel, SettlementLabel } from '@tokenguard/common';
import type { BudgetScopeType } from '@tokenguard/config';

/*
 * Every label value the gateway's metrics can carry comes from one of these small fixed sets,
 * so the number of series stays bounded whatever the traffic. Identities (user, team, role
 * ids), request ids and free text never become label values.
 */

export type { RouteLabel, SettlementLabel };

export const CHARGED_ROUTES: readonly RouteLabel[] = [
  'chat.completions',
  'completions',
  'embeddings',
  'responses',
];

/** What the gateway decided about a request (`http_requests_total{outcome}`). */
export type HttpOutcome =
  | 'admitted'
  | 'rejected'
  | 'invalid'
  | 'error'
  | 'degraded_open'
  | 'degraded_local'
  | 'unlimited'
  // LIMITER_MODE=shadow: a budget said no, the request went through uncounted.
  | 'shadow_rejected';

export type RejectionReason =
  'insufficient' | 'too_large' | 'store_unavailable' | 'upstream_rate_limit';

/**
 * The scope a rejection is attributed to: a bucket's scope type, `store` when the budget store
 * was unreachable (STORE_FAILURE_MODE=closed), `upstream` when the provider answered 429.
 */
export type RejectionScope = BudgetScopeType | 'store' | 'upstream';

export type UpstreamErrorKind =
  'timeout' | 'connection' | 'server_error' | 'circuit_open' | 'stream_error' | 'stream_idle';

export type CircuitStateLabel = 'closed' | 'half_open' | 'open';

export type StoreOperation =
  | 'reserve'
  | 'settle'
  | 'get_bucket'
  | 'get_policy'
  | 'set_policy'
  | 'ping'
  | 'get_override'
  | 'list_policies'
  | 'delete_policy'
  | 'reset_bucket'
  | 'lower_level';

/** Changes made through the admin API or the policy file (`admin_changes_total{action}`). */
export const ADMIN_ACTIONS = [
  'budget_set',
  'refill_rate_set',
  'budget_deleted',
  'bucket_reset',
  'policy_file_applied',
  'key_created',
  'key_revoked',
  'key_expiry_set',
] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

export type DegradedModeLabel = 'open' | 'local';

export type SyncResult = 'ok' | 'error' | 'skipped';

/** The provider's rate-limit headers the limit sync reads (`sync_malformed_headers_total{header}`). */
export const RATE_LIMIT_HEADERS = [
  'x-ratelimit-limit-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-requests',
  'x-ratelimit-reset-tokens',
  'retry-after',
  'retry-after-ms',
] as const;
export type RateLimitHeader = (typeof RATE_LIMIT_HEADERS)[number];

export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';

/** `2xx` … `5xx`; informational codes never end a response, so they count as 2xx. */
export function statusClass(status: number): StatusClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}
