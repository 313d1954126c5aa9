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
  'admitted' | 'rejected' | 'invalid' | 'error' | 'degraded_open' | 'degraded_local' | 'unlimited';

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
  'reserve' | 'settle' | 'get_bucket' | 'get_policy' | 'set_policy' | 'ping';

export type DegradedModeLabel = 'open' | 'local';

export type SyncResult = 'ok' | 'error' | 'skipped';

export type StatusClass = '2xx' | '3xx' | '4xx' | '5xx';

/** `2xx` … `5xx`; informational codes never end a response, so they count as 2xx. */
export function statusClass(status: number): StatusClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}
