/**
 * The storage engine behind every budget. Implementations: MemoryBucketStore (one process)
 * and RedisBucketStore (shared by every gateway instance). Both must pass the contract suite
 * in `testing/bucket-store.contract.ts`.
 *
 * Units: the public surface speaks whole tokens and tokens/second; implementations keep
 * levels as integer milli-tokens so that refill arithmetic never drifts.
 */

export const SCOPE_TYPES = ['global', 'team', 'rolegroup', 'role', 'user'] as const;
export type ScopeType = (typeof SCOPE_TYPES)[number];

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
}

export type ReserveResult = ReserveAdmitted | ReserveRejected;

export interface ReserveAdmitted {
  readonly admitted: true;
  readonly reservationId: string;
  /** Every scope of the request after the charge, in request order (empty when uncounted). */
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
  /** Every scope of the request, unchanged, in request order. */
  readonly buckets: readonly BucketSnapshot[];
}

export interface SettleResult {
  /** False when the reservation was unknown, already settled or expired: nothing changed. */
  readonly applied: boolean;
  /** Tokens given back (positive) or charged extra (negative) to every scope. */
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

  /** Cheap liveness check of the backing engine. */
  ping(): Promise<void>;

  /** Release timers and connections. */
  close(): Promise<void>;
}

/** Injection token for the active store. */
export const BUCKET_STORE = Symbol('BUCKET_STORE');

/** Milliseconds since an arbitrary origin; injected so tests can drive time. */
export interface Clock {
  nowMs(): number;
}
