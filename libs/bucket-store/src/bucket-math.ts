/**
 * Pure token-bucket arithmetic. Every store uses these rules and the Redis Lua script mirrors
 * them step by step, so they stay free of clocks, maps and I/O.
 *
 * Units: levels in integer milli-tokens, time in milliseconds, rates in milli-tokens per
 * millisecond (numerically the same as tokens per second, so a policy's refillPerSec is used
 * as is).
 */

export const MILLI_PER_TOKEN = 1000;

/** Largest capacity or refill rate accepted: 1e15 milli-tokens is still an exact double. */
export const MAX_TOKENS = 1e12;

/** Debt floor, so that repeated extra charges cannot push a level out of the exact range. */
export const MIN_LEVEL_MILLI = -MAX_TOKENS * MILLI_PER_TOKEN;

/**
 * Added before flooring a refill. Products such as 0.3 × (10 − 10/3) come out as
 * 1.9999999999999998; without the nudge a milli-token already earned would wait for the next
 * call. Over-credit is at most this much per call, and it does not add up over calls because
 * `updatedAt` never passes now.
 */
export const CREDIT_EPSILON = 1e-6;

/** The stored part of a bucket: level (milli-tokens) as of `updatedAt` (ms). */
export interface BucketLevel {
  readonly level: number;
  readonly updatedAt: number;
}

/** A policy in store units. */
export interface BucketLimits {
  /** Capacity in milli-tokens. */
  readonly capacity: number;
  /** Refill in milli-tokens per millisecond. */
  readonly rate: number;
}

export function toMilli(tokens: number): number {
  return Math.round(tokens * MILLI_PER_TOKEN);
}

export function fromMilli(milli: number): number {
  return milli / MILLI_PER_TOKEN;
}

/**
 * The bucket at `now`. A missing bucket is full. Elapsed time below zero counts as zero.
 *
 * Only whole milli-tokens are credited, and `updatedAt` moves forward only by the time
 * those milli-tokens took, so the leftover fraction is credited later and frequent
 * calls with a fractional rate add up to the same total as one long gap.
 */
export function refill(
  state: BucketLevel | undefined,
  limits: BucketLimits,
  now: number,
): BucketLevel {
  if (state === undefined || state.level >= limits.capacity) {
    return { level: limits.capacity, updatedAt: now };
  }
  const elapsed = now - state.updatedAt;
  // A clock that stepped back restarts from now. Waiting for the old timestamp would stall
  // the bucket.
  if (!(elapsed > 0) || limits.rate <= 0) {
    return { level: state.level, updatedAt: now };
  }
  const gained = Math.floor(limits.rate * elapsed + CREDIT_EPSILON);
  const level = state.level + gained;
  if (level >= limits.capacity) {
    return { level: limits.capacity, updatedAt: now };
  }
  return { level, updatedAt: Math.min(now, state.updatedAt + gained / limits.rate) };
}

/** Milliseconds until `level` reaches `target`: 0 if it already has, null if it never will. */
export function msUntil(level: number, target: number, rate: number): number | null {
  if (level >= target) return 0;
  if (rate <= 0) return null;
  return Math.ceil((target - level) / rate);
}

/**
 * Apply a settlement delta (milli-tokens, positive = refund). The result is capped at capacity
 * and floored at the debt limit.
 */
export function applyDelta(level: number, delta: number, capacity: number): number {
  return Math.max(MIN_LEVEL_MILLI, Math.min(capacity, level + delta));
}

/** The level after lowering it to `target` (milli-tokens): never raised, floored at the debt limit. */
export function lowerTo(level: number, target: number): number {
  return Math.min(level, Math.max(MIN_LEVEL_MILLI, target));
}

/**
 * The instant (ms) from which the bucket reads full and can be dropped. Infinity when
 * it never refills. This is the memory counterpart of the Redis key TTL.
 */
export function fullAt(state: BucketLevel, limits: BucketLimits): number {
  const wait = msUntil(state.level, limits.capacity, limits.rate);
  return wait === null ? Infinity : state.updatedAt + wait;
}

export interface BucketView extends BucketLimits {
  /** Level in milli-tokens, already refilled to now. */
  readonly level: number;
}

export type ReserveDecision =
  | { readonly admitted: true }
  | {
      readonly admitted: false;
      readonly reason: 'insufficient' | 'too_large';
      /** Index (into the given buckets) of the scope that decided the rejection. */
      readonly index: number;
      readonly retryAfterMs: number | null;
    };

/**
 * All-or-nothing check of `need` milli-tokens against refilled buckets: one amount for every
 * bucket, or one per bucket (fixed charges). A request larger than any capacity is
 * `too_large`, whatever the levels are. Otherwise the failing scope with the longest wait is
 * named; a scope that never refills counts as the longest. Ties go to the first scope.
 */
export function decideReserve(
  buckets: readonly BucketView[],
  need: number | readonly number[],
): ReserveDecision {
  const needOf = typeof need === 'number' ? () => need : (i: number) => need[i];
  for (let i = 0; i < buckets.length; i++) {
    if (needOf(i) > buckets[i].capacity) {
      return { admitted: false, reason: 'too_large', index: i, retryAfterMs: null };
    }
  }
  let worst = -1;
  let worstWait: number | null = 0;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    const n = needOf(i);
    if (b.level >= n) continue;
    const wait = msUntil(b.level, n, b.rate);
    const longer =
      worst < 0 ||
      (wait === null && worstWait !== null) ||
      (wait !== null && worstWait !== null && wait > worstWait);
    if (longer) {
      worst = i;
      worstWait = wait;
    }
  }
  if (worst < 0) return { admitted: true };
  return { admitted: false, reason: 'insufficient', index: worst, retryAfterMs: worstWait };
}
