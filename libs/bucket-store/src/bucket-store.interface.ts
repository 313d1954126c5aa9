/**
 * The storage engine behind every budget. Implementations: MemoryBucketStore (one process)
 * and RedisBucketStore (shared by every gateway instance). Both must pass the contract suite
 * in `testing/bucket-store.contract.ts`.
 *
 * Units: the public surface speaks whole tokens and tokens/second; implementations keep
 * levels as integer milli-tokens so that refill arithmetic never drifts.
 */

/**
 * Every scope type. The order is part of the Redis batch script's encoding (a type is sent as
 * its 1-based place here), so new types go at the end.
 *
 * - `global` … `user`: budgets the operator sets (BUDGET_SCOPE_TYPES).
 * - `upstream`: the provider's token limit for one model, learned by the limit sync (id = the
 *   model name as clients send it). `upstream_requests`: the same model's request limit, in
 *   requests rather than tokens (charged through `fixedCharges`, one per request).
 */
export const SCOPE_TYPES = [
  'global',
  'team',
  'rolegroup',
  'role',
  'user',
  'upstream',
  'upstream_requests',
] as const;
export type ScopeType = (typeof SCOPE_TYPES)[number];

export const BUDGET_SCOPE_TYPES = ['global', 'team', 'rolegroup', 'role', 'user'] as const;
export type BudgetScopeType = (typeof BUDGET_SCOPE_TYPES)[number];

export const UPSTREAM_SCOPE_TYPES = ['upstream', 'upstream_requests'] as const;
export type UpstreamScopeType = (typeof UPSTREAM_SCOPE_TYPES)[number];

/** One bucket instance. For `global` the id is always `GLOBAL_SCOPE_ID`. */
export interface ScopeRef {
  readonly type: ScopeType;
  readonly id: string;
}

export const GLOBAL_SCOPE_ID = 'global';

export interface BucketPolicy {
  /** Maximum level, in tokens. */
  readonly capacity: number;
  /** Refill speed, in tokens per second (may be fractional, may be 0). */
  readonly refillPerSec: number;
}

export type PolicyPatch = Partial<BucketPolicy>;

/**
 * The default policy of each scope type, as a store is configured. Upstream types may be left
 * out: a model's upstream bucket only limits once the sync has set its policy, so their
 * default is `UNLIMITED_POLICY`.
 */
export type StoreDefaults = Readonly<Record<BudgetScopeType, BucketPolicy>> &
  Readonly<Partial<Record<UpstreamScopeType, BucketPolicy>>>;

/** A bucket as seen at one instant. */
export interface BucketSnapshot {
  readonly scope: ScopeRef;
  /** Current level in tokens (may be fractional; negative means debt). */
  readonly tokens: number;
  readonly capacity: number;
  readonly refillPerSec: number;
  /** Milliseconds until the bucket is full again (0 when full, null when it never refills). */
  readonly msUntilFull: number | null;
}

export interface ReserveRequest {
  /** Caller-chosen unique id; settle() refers to it. */
  readonly reservationId: string;
  /** Every scope the request is charged against; all or nothing. */
  readonly scopes: readonly ScopeRef[];
  /** Whole tokens to take from every scope (>= 0). */
  readonly tokens: number;
  /**
   * More scopes, each charged its own fixed amount instead of `tokens` (a request counter
   * charged 1 per request). Part of the same all-or-nothing reservation. Settlement leaves a
   * fixed charge in place unless it refunds in full (actual tokens 0): the request happened.
   * A scope must not appear twice across `scopes` and `fixedCharges` (RangeError).
   */
  readonly fixedCharges?: readonly FixedCharge[];
}

export interface FixedCharge {
  readonly scope: ScopeRef;
  /** Whole units to take (>= 0). */
  readonly amount: number;
}

export type ReserveResult = ReserveAdmitted | ReserveRejected;

export interface ReserveAdmitted {
  readonly admitted: true;
  readonly reservationId: string;
  /**
   * Every scope of the request after the charge, in request order, then the fixed-charge
   * scopes in their order (empty when uncounted).
   */
  readonly buckets: readonly BucketSnapshot[];
  /**
   * Set when the shared store was unreachable: `local` = charged to this instance's own
   * buckets, `open` = admitted without counting. Absent in normal operation.
   */
  readonly degraded?: DegradedMode;
}

export type DegradedMode = 'open' | 'local';

export interface ReserveRejected {
  readonly admitted: false;
  /**
   * `insufficient`: not enough tokens now, retry later.
   * `too_large`: the request exceeds a scope's capacity and can never pass.
   */
  readonly reason: 'insufficient' | 'too_large';
  /** The scope that decided the rejection (the one with the longest wait, or a too-large one). */
  readonly scope: ScopeRef;
  /** Milliseconds until every failing scope holds enough tokens; null when it never will. */
  readonly retryAfterMs: number | null;
  /** Every scope of the request, unchanged, in request order, then the fixed-charge scopes. */
  readonly buckets: readonly BucketSnapshot[];
}

export interface SettleResult {
  /** False when the reservation was unknown, already settled or expired: nothing changed. */
  readonly applied: boolean;
  /**
   * Tokens given back (positive) or charged extra (negative) to every token-charged scope
   * (fixed charges not included).
   */
  readonly refunded: number;
}

export interface BucketStore {
  /** `memory` or `redis`; shown by `GET /` and metrics. */
  readonly backend: string;

  /** Refill every scope, then take `tokens` from all of them, or from none. */
  reserve(request: ReserveRequest): Promise<ReserveResult>;

  /**
   * Close a reservation with the tokens actually used: every scope gets back
   * (reserved - actual), capped at its capacity, or is charged the extra (debt allowed).
   * Exactly once per reservation id; later calls change nothing.
   */
  settle(reservationId: string, actualTokens: number): Promise<SettleResult>;

  /** Current state of one bucket (a never-used bucket reads full). */
  getBucket(scope: ScopeRef): Promise<BucketSnapshot>;

  /** The effective policy: the per-id override if any, else the scope type's default. */
  getPolicy(scope: ScopeRef): Promise<BucketPolicy>;

  /**
   * Set (part of) a per-id override. The level is kept, clamped to a lowered capacity.
   * Returns the bucket after the change.
   */
  setPolicy(scope: ScopeRef, patch: PolicyPatch): Promise<BucketSnapshot>;

  /** The per-id override of one scope (only the fields set), or null when it has none. */
  getOverride(scope: ScopeRef): Promise<PolicyPatch | null>;

  /** Per-id overrides in `<type>:<id>` order, one page at a time (see ListPoliciesQuery). */
  listPolicies(query?: ListPoliciesQuery): Promise<PolicyPage>;

  /**
   * Remove a per-id override: the scope follows its type default again. Like setPolicy, the
   * level is kept, clamped to the default capacity. Changes nothing without an override.
   */
  deletePolicy(scope: ScopeRef): Promise<DeletePolicyResult>;

  /** Refill one bucket to its capacity now. Returns the bucket after. */
  resetBucket(scope: ScopeRef): Promise<BucketSnapshot>;

  /**
   * Lower the level of one bucket to `tokens` (refilled to now first) when it is higher; a
   * lower level is left as it is, so concurrent callers can only ever take away. May go below
   * zero (debt, floored like settlement debt). Returns the bucket after the change.
   */
  lowerLevel(scope: ScopeRef, tokens: number): Promise<BucketSnapshot>;

  /** Cheap liveness check of the backing engine. */
  ping(): Promise<void>;

  /** Release timers and connections. */
  close(): Promise<void>;
}

/** One per-id override as listed by the store. */
export interface PolicyOverride {
  readonly scope: ScopeRef;
  /** Only the fields an operator set; the others follow the type default. */
  readonly override: PolicyPatch;
  /** The effective policy: the override over the type default. */
  readonly policy: BucketPolicy;
}

export interface ListPoliciesQuery {
  /** Only overrides of these scope types (default: every type). */
  readonly types?: readonly ScopeType[];
  /** Start after this `<type>:<id>` (the previous page's `next`); exclusive. */
  readonly after?: string;
  /** Page size, 1 to MAX_POLICY_PAGE. Default 100. */
  readonly limit?: number;
}

export const MAX_POLICY_PAGE = 1000;
export const DEFAULT_POLICY_PAGE = 100;

export interface PolicyPage {
  readonly overrides: readonly PolicyOverride[];
  /** `<type>:<id>` to pass as `after` for the next page; null on the last one. */
  readonly next: string | null;
}

export interface DeletePolicyResult {
  /** False when the scope had no override (nothing changed). */
  readonly deleted: boolean;
  /** The bucket after the change. */
  readonly bucket: BucketSnapshot;
}

/** Injection token for the active store. */
export const BUCKET_STORE = Symbol('BUCKET_STORE');

/** Milliseconds since an arbitrary origin; injected so tests can drive time. */
export interface Clock {
  nowMs(): number;
}
