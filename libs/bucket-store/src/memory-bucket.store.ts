import { performance } from 'node:perf_hooks';
import {
  BucketLevel,
  BucketLimits,
  BucketView,
  applyDelta,
  decideReserve,
  fromMilli,
  fullAt,
  lowerTo,
  msUntil,
  refill,
  toMilli,
} from './bucket-math';
import { DuplicateReservationError } from './bucket-store.errors';
import { ShardedMap } from './sharded-map';
import {
  BucketPolicy,
  BucketSnapshot,
  BucketStore,
  Clock,
  DeletePolicyResult,
  GLOBAL_SCOPE_ID,
  ListPoliciesQuery,
  PolicyPage,
  PolicyPatch,
  ReserveRequest,
  ReserveResult,
  SCOPE_TYPES,
  ScopeRef,
  ScopeType,
  SettleResult,
  StoreDefaults,
} from './bucket-store.interface';
import {
  assertFixedCharges,
  assertLevel,
  assertPolicy,
  assertPolicyPatch,
  assertReservationId,
  assertScopeRef,
  assertWholeTokens,
  fixedTwice,
  resolveDefaults,
  scopeKey,
} from './bucket-store.validation';
import { pageOfMembers, policyListing, policyMember, scopeOfMember } from './policy-listing';

const GLOBAL: ScopeRef = Object.freeze({ type: 'global', id: GLOBAL_SCOPE_ID });

export interface MemoryBucketStoreOptions {
  /** Policy of every scope instance without an override (upstream types may be left out). */
  readonly defaults: StoreDefaults;
  /** Defaults to a monotonic clock (`performance.timeOrigin + performance.now()`). */
  readonly clock?: Clock;
  /** How long an unsettled reservation can still be settled. Default 10 minutes. */
  readonly reservationTtlMs?: number;
  /** Period of the background sweep. Default 100 ms; 0 disables the timer (call sweep()). */
  readonly sweepIntervalMs?: number;
  /**
   * Most buckets (and, separately, reservations) one sweep looks at. Default 10 000. A timer
   * tick also stops after about 1 ms of work, whichever comes first.
   */
  readonly sweepBatchSize?: number;
}

export interface MemoryBucketStoreStats {
  /** Buckets held in memory (not full, or full but not swept yet). */
  readonly buckets: number;
  /** Open reservations, expired ones not swept yet included. */
  readonly reservations: number;
  /** Scope instances with a policy override. */
  readonly overrides: number;
}

export interface SweepReport {
  readonly examined: number;
  readonly evictedBuckets: number;
  readonly expiredReservations: number;
  /** True when this sweep reached the end of the bucket map; the next one starts over. */
  readonly passComplete: boolean;
}

const DEFAULT_RESERVATION_TTL_MS = 10 * 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 100;
const DEFAULT_SWEEP_BATCH_SIZE = 10_000;
// Per-tick time budget. Looking at a bucket that stays costs about 0.1 µs; deleting one about
// 0.35 µs (measured over a million), so a tick of mass evictions stops on time, not on count.
const SWEEP_TICK_BUDGET_MS = 1;

const NOT_APPLIED: SettleResult = Object.freeze({ applied: false, refunded: 0 });

const monotonicClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
};

interface ResolvedPolicy {
  readonly policy: BucketPolicy;
  readonly limits: BucketLimits;
}

/** Mutable and updated in place, so a busy bucket does not churn the old generation. */
interface StoredBucket {
  readonly key: string;
  level: number;
  updatedAt: number;
  /** When the bucket reads full again; the sweep drops it from then on. */
  fullAt: number;
}

interface Override {
  /** Only the fields an operator set, so the rest keeps following the type default. */
  readonly patch: PolicyPatch;
  readonly resolved: ResolvedPolicy;
}

interface Reservation {
  readonly scopes: readonly ScopeRef[];
  readonly keys: readonly string[];
  readonly tokens: number;
  /** Per scope, its fixed charge, or null when it was charged `tokens`; null when none is fixed. */
  readonly fixed: readonly (number | null)[] | null;
  readonly expiresAt: number;
}

interface Charge {
  readonly scope: ScopeRef;
  readonly key: string;
  readonly resolved: ResolvedPolicy;
  readonly state: BucketLevel;
  /** Units of a fixed charge; null when the scope is charged the request's tokens. */
  readonly fixed: number | null;
}

function resolve(policy: BucketPolicy): ResolvedPolicy {
  const frozen = Object.freeze({ capacity: policy.capacity, refillPerSec: policy.refillPerSec });
  return {
    policy: frozen,
    limits: { capacity: toMilli(policy.capacity), rate: policy.refillPerSec },
  };
}

function assertOption(name: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/**
 * BucketStore for a single process: the whole reserve runs synchronously, so no other
 * call can interleave with it.
 *
 * A bucket at capacity is the same as an absent one, so full buckets are deleted, either
 * right when a write fills them or by the sweep once they have refilled. Memory therefore
 * follows the number of recently active scopes, not every id ever seen. Buckets that never
 * refill (rate 0) and are not full hold real state and stay.
 *
 * The sweep is incremental: each timer tick looks at a bounded batch, within about 1 ms, and
 * resumes where the previous tick stopped. Buckets live in a sharded map so that growing or
 * shrinking never rehashes a million entries at once. A million buckets therefore cost many
 * short ticks and never one long pause.
 */
export class MemoryBucketStore implements BucketStore {
  readonly backend = 'memory';

  private readonly defaults: Readonly<Record<ScopeType, ResolvedPolicy>>;
  private readonly clock: Clock;
  private readonly reservationTtlMs: number;
  private readonly sweepBatchSize: number;
  private readonly buckets = new ShardedMap<StoredBucket>();
  private readonly overrides = new Map<string, Override>();
  // Insertion order is expiry order (constant TTL, monotonic clock), so expired
  // reservations are always at the front.
  private readonly reservations = new Map<string, Reservation>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MemoryBucketStoreOptions) {
    const defaults = {} as Record<ScopeType, ResolvedPolicy>;
    const configured = resolveDefaults(options.defaults);
    for (const type of SCOPE_TYPES) {
      const policy = configured[type];
      assertPolicy(policy, `defaults.${type}`);
      defaults[type] = resolve(policy);
    }
    this.defaults = defaults;
    this.clock = options.clock ?? monotonicClock;
    this.reservationTtlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    assertOption('reservationTtlMs', this.reservationTtlMs, 1);
    this.sweepBatchSize = options.sweepBatchSize ?? DEFAULT_SWEEP_BATCH_SIZE;
    assertOption('sweepBatchSize', this.sweepBatchSize, 1);
    const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
    assertOption('sweepIntervalMs', interval, 0);
    if (interval > 0) {
      this.timer = setInterval(
        () => this.sweep(this.sweepBatchSize, SWEEP_TICK_BUDGET_MS),
        interval,
      );
      // Housekeeping alone must not keep the process alive.
      this.timer.unref();
    }
  }

  reserve(request: ReserveRequest): Promise<ReserveResult> {
    return runSync(() => this.reserveSync(request));
  }

  settle(reservationId: string, actualTokens: number): Promise<SettleResult> {
    return runSync(() => this.settleSync(reservationId, actualTokens));
  }

  getBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    return runSync(() => {
      const key = scopeKey(scope);
      const resolved = this.policyOf(scope.type, key);
      const state = refill(this.buckets.get(key), resolved.limits, this.clock.nowMs());
      return snapshot(scope, resolved, state);
    });
  }

  getPolicy(scope: ScopeRef): Promise<BucketPolicy> {
    return runSync(() => this.policyOf(scope.type, scopeKey(scope)).policy);
  }

  setPolicy(scope: ScopeRef, patch: PolicyPatch): Promise<BucketSnapshot> {
    return runSync(() => this.setPolicySync(scope, patch));
  }

  lowerLevel(scope: ScopeRef, tokens: number): Promise<BucketSnapshot> {
    return runSync(() => {
      const key = scopeKey(scope);
      assertLevel(tokens);
      const resolved = this.policyOf(scope.type, key);
      const state = refill(this.buckets.get(key), resolved.limits, this.clock.nowMs());
      const level = lowerTo(state.level, toMilli(tokens));
      if (level === state.level) return snapshot(scope, resolved, state);
      const after: BucketLevel = { level, updatedAt: state.updatedAt };
      this.write(key, resolved, after);
      return snapshot(scope, resolved, after);
    });
  }

  getOverride(scope: ScopeRef): Promise<PolicyPatch | null> {
    return runSync(() => this.overrides.get(scopeKey(scope))?.patch ?? null);
  }

  listPolicies(query?: ListPoliciesQuery): Promise<PolicyPage> {
    return runSync(() => {
      const listing = policyListing(query);
      const byMember = new Map<string, { scope: ScopeRef; override: Override }>();
      for (const [key, override] of this.overrides) {
        const scope = key === GLOBAL_SCOPE_ID ? GLOBAL : scopeOfMember(key);
        if (scope !== undefined) byMember.set(policyMember(scope), { scope, override });
      }
      const page = pageOfMembers(byMember.keys(), listing);
      return {
        overrides: page.members.map((member) => {
          const { scope, override } = byMember.get(member)!;
          return {
            scope: copyScope(scope),
            override: override.patch,
            policy: override.resolved.policy,
          };
        }),
        next: page.next,
      };
    });
  }

  deletePolicy(scope: ScopeRef): Promise<DeletePolicyResult> {
    return runSync(() => {
      const key = scopeKey(scope);
      const override = this.overrides.get(key);
      const now = this.clock.nowMs();
      const state = refill(this.buckets.get(key), this.policyOf(scope.type, key).limits, now);
      if (override === undefined) {
        return { deleted: false, bucket: snapshot(scope, this.defaults[scope.type], state) };
      }
      // As in setPolicy: the level is brought up to now under the old policy, then kept.
      this.overrides.delete(key);
      const resolved = this.defaults[scope.type];
      const after: BucketLevel = {
        level: Math.min(state.level, resolved.limits.capacity),
        updatedAt: state.updatedAt,
      };
      this.write(key, resolved, after);
      return { deleted: true, bucket: snapshot(scope, resolved, after) };
    });
  }

  resetBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    return runSync(() => {
      const key = scopeKey(scope);
      // Absent reads full.
      this.buckets.delete(key);
      const resolved = this.policyOf(scope.type, key);
      return snapshot(scope, resolved, refill(undefined, resolved.limits, this.clock.nowMs()));
    });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    return Promise.resolve();
  }

  stats(): MemoryBucketStoreStats {
    return {
      buckets: this.buckets.size,
      reservations: this.reservations.size,
      overrides: this.overrides.size,
    };
  }

  /**
   * One bounded step of housekeeping: drop expired reservations from the front of their map,
   * then look at up to `maxEntries` buckets, resuming where the previous step stopped, and
   * delete those that read full. Stops early after `budgetMs` of work. The timer calls this;
   * tests may call it directly.
   */
  sweep(maxEntries: number = this.sweepBatchSize, budgetMs = Infinity): SweepReport {
    const deadline = performance.now() + budgetMs;
    const now = this.clock.nowMs();

    let expiredReservations = 0;
    for (const [id, reservation] of this.reservations) {
      if (expiredReservations >= maxEntries || reservation.expiresAt > now) break;
      this.reservations.delete(id);
      expiredReservations++;
    }

    const scan = this.buckets.scan(maxEntries, (bucket) => bucket.fullAt <= now, deadline);
    return {
      examined: scan.examined,
      evictedBuckets: scan.deleted,
      expiredReservations,
      passComplete: scan.passComplete,
    };
  }

  private reserveSync(request: ReserveRequest): ReserveResult {
    const { reservationId, scopes, tokens } = request;
    if (!isArray(scopes)) {
      throw new TypeError('reserve needs { reservationId, scopes: ScopeRef[], tokens }');
    }
    assertReservationId(reservationId);
    assertWholeTokens('tokens', tokens);
    scopes.forEach(assertScopeRef);
    const fixedCharges = assertFixedCharges(request.fixedCharges);
    const now = this.clock.nowMs();

    const open = this.reservations.get(reservationId);
    if (open !== undefined) {
      if (open.expiresAt > now) throw new DuplicateReservationError(reservationId);
      this.reservations.delete(reservationId);
    }

    // A scope listed twice is charged once: the check is per bucket, so charging it twice
    // could take it below zero without a check.
    const charges = new Map<string, Charge>();
    const add = (scope: ScopeRef, fixed: number | null) => {
      const key = scopeKey(scope);
      const resolved = this.policyOf(scope.type, key);
      const state = refill(this.buckets.get(key), resolved.limits, now);
      charges.set(key, { scope, key, resolved, state, fixed });
    };
    for (const scope of scopes) {
      if (!charges.has(scopeKey(scope))) add(scope, null);
    }
    for (const { scope, amount } of fixedCharges) {
      if (charges.has(scopeKey(scope))) throw fixedTwice(scope);
      add(scope, amount);
    }
    const listed = fixedCharges.length === 0 ? scopes : allScopes(scopes, fixedCharges);
    const unique = [...charges.values()];
    const need = toMilli(tokens);
    const needs =
      fixedCharges.length === 0
        ? need
        : unique.map((c) => (c.fixed === null ? need : toMilli(c.fixed)));
    const decision = decideReserve(
      unique.map((c): BucketView => ({ ...c.resolved.limits, level: c.state.level })),
      needs,
    );

    if (!decision.admitted) {
      // Nothing is written: refill depends only on time, so skipping the write loses nothing.
      return {
        admitted: false,
        reason: decision.reason,
        scope: copyScope(unique[decision.index].scope),
        retryAfterMs: decision.retryAfterMs,
        buckets: listed.map((s) => {
          const c = charges.get(scopeKey(s))!;
          return snapshot(s, c.resolved, c.state);
        }),
      };
    }

    const after = new Map<string, BucketLevel>();
    for (const c of unique) {
      const charge = c.fixed === null ? need : toMilli(c.fixed);
      const state: BucketLevel = { level: c.state.level - charge, updatedAt: c.state.updatedAt };
      this.write(c.key, c.resolved, state);
      after.set(c.key, state);
    }
    this.reservations.set(reservationId, {
      scopes: unique.map((c) => copyScope(c.scope)),
      keys: unique.map((c) => c.key),
      tokens,
      fixed: fixedCharges.length === 0 ? null : unique.map((c) => c.fixed),
      expiresAt: now + this.reservationTtlMs,
    });
    return {
      admitted: true,
      reservationId,
      buckets: listed.map((s) => {
        const key = scopeKey(s);
        return snapshot(s, charges.get(key)!.resolved, after.get(key)!);
      }),
    };
  }

  private settleSync(reservationId: string, actualTokens: number): SettleResult {
    assertReservationId(reservationId);
    assertWholeTokens('actualTokens', actualTokens);
    const reservation = this.reservations.get(reservationId);
    if (reservation === undefined) return NOT_APPLIED;
    this.reservations.delete(reservationId);
    const now = this.clock.nowMs();
    // An expired reservation stays charged: its request is presumed lost.
    if (reservation.expiresAt <= now) return NOT_APPLIED;

    const refunded = reservation.tokens - actualTokens;
    const delta = toMilli(refunded);
    const { fixed } = reservation;
    reservation.scopes.forEach((scope, i) => {
      const units = fixed === null ? null : fixed[i];
      // A fixed charge (a request counted) comes back only with a full refund.
      const change = units === null ? delta : actualTokens === 0 ? toMilli(units) : 0;
      if (change === 0) return;
      const key = reservation.keys[i];
      const resolved = this.policyOf(scope.type, key);
      const state = refill(this.buckets.get(key), resolved.limits, now);
      const level = applyDelta(state.level, change, resolved.limits.capacity);
      this.write(key, resolved, { level, updatedAt: state.updatedAt });
    });
    return { applied: true, refunded };
  }

  private setPolicySync(scope: ScopeRef, patch: PolicyPatch): BucketSnapshot {
    const key = scopeKey(scope);
    assertPolicyPatch(patch);
    const now = this.clock.nowMs();
    const before = this.policyOf(scope.type, key);
    // Bring the level up to now under the old rate before the new one applies.
    const state = refill(this.buckets.get(key), before.limits, now);

    const merged: { capacity?: number; refillPerSec?: number } = {
      ...this.overrides.get(key)?.patch,
    };
    if (patch.capacity !== undefined) merged.capacity = patch.capacity;
    if (patch.refillPerSec !== undefined) merged.refillPerSec = patch.refillPerSec;
    const resolved = resolve({ ...this.defaults[scope.type].policy, ...merged });
    if (merged.capacity !== undefined || merged.refillPerSec !== undefined) {
      this.overrides.set(key, { patch: Object.freeze(merged), resolved });
    }

    // The level is kept; a lowered capacity clamps it. Writing also refreshes fullAt,
    // which depends on the policy.
    const after: BucketLevel = {
      level: Math.min(state.level, resolved.limits.capacity),
      updatedAt: state.updatedAt,
    };
    this.write(key, resolved, after);
    return snapshot(scope, resolved, after);
  }

  private policyOf(type: ScopeType, key: string): ResolvedPolicy {
    return this.overrides.get(key)?.resolved ?? this.defaults[type];
  }

  private write(key: string, resolved: ResolvedPolicy, state: BucketLevel): void {
    if (state.level >= resolved.limits.capacity) {
      // Full reads the same as absent; dropping it now saves the sweep the work.
      this.buckets.delete(key);
      return;
    }
    const at = fullAt(state, resolved.limits);
    const stored = this.buckets.get(key);
    if (stored === undefined) {
      this.buckets.set({ key, level: state.level, updatedAt: state.updatedAt, fullAt: at });
    } else {
      stored.level = state.level;
      stored.updatedAt = state.updatedAt;
      stored.fullAt = at;
    }
  }
}

/**
 * Run the synchronous body at once (it is the critical section) and hand back its result or
 * its error as a promise, as the async interface expects.
 */
function runSync<T>(body: () => T): Promise<T> {
  return new Promise<T>((resolve) => resolve(body()));
}

// Array.isArray narrows a readonly array to any[]; this keeps the element type.
function isArray<T>(value: readonly T[]): boolean {
  return Array.isArray(value);
}

/** The scopes of a request as its result lists them: `scopes`, then the fixed-charge scopes. */
function allScopes(
  scopes: readonly ScopeRef[],
  fixedCharges: readonly { readonly scope: ScopeRef }[],
): ScopeRef[] {
  return [...scopes, ...fixedCharges.map((c) => c.scope)];
}

function copyScope(scope: ScopeRef): ScopeRef {
  return { type: scope.type, id: scope.id };
}

function snapshot(scope: ScopeRef, resolved: ResolvedPolicy, state: BucketLevel): BucketSnapshot {
  return {
    scope: copyScope(scope),
    tokens: fromMilli(state.level),
    capacity: resolved.policy.capacity,
    refillPerSec: resolved.policy.refillPerSec,
    msUntilFull: msUntil(state.level, resolved.limits.capacity, resolved.limits.rate),
  };
}
