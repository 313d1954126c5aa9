/** Point-in-time view of one limit, as reported in the `x-ratelimit-*` headers. */
export interface RateLimitSnapshot {
  limit: number;
  remaining: number;
  /** Milliseconds until the allowance is full again. */
  resetMs: number;
}

const MINUTE_MS = 60_000;

/**
 * A per-minute allowance that refills continuously (limit/60s per second), which is how
 * OpenAI's limits behave: `reset` is the time until the allowance is full again, not the
 * end of a fixed window. Usage never exceeds the limit, so a benchmark that ignores the
 * limits sees `remaining: 0` and a reset of at most one minute, not an ever-growing debt.
 */
export class RateLimitCounter {
  private used = 0;
  private updatedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.updatedAt = now();
  }

  /** Milliseconds until `amount` more would fit under `limit`; 0 if it fits now. */
  waitFor(amount: number, limit: number): number {
    this.refill(limit);
    const excess = this.used + amount - limit;
    return excess > 0 ? Math.ceil((excess * MINUTE_MS) / limit) : 0;
  }

  consume(amount: number, limit: number): void {
    this.refill(limit);
    this.used = Math.min(limit, this.used + amount);
  }

  snapshot(limit: number): RateLimitSnapshot {
    this.refill(limit);
    return {
      limit,
      remaining: Math.max(0, Math.floor(limit - this.used)),
      resetMs: this.used > 0 ? Math.ceil((this.used * MINUTE_MS) / limit) : 0,
    };
  }

  reset(): void {
    this.used = 0;
    this.updatedAt = this.now();
  }

  private refill(limit: number): void {
    const now = this.now();
    const elapsed = now - this.updatedAt;
    this.updatedAt = now;
    if (elapsed > 0 && this.used > 0) {
      this.used = Math.max(0, this.used - (elapsed * limit) / MINUTE_MS);
    }
    // A lowered limit (runtime knob) must not leave usage above it.
    if (this.used > limit) this.used = limit;
  }
}
