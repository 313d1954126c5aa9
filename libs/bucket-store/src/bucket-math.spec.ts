import fc from 'fast-check';
import {
  BucketLevel,
  MAX_TOKENS,
  MIN_LEVEL_MILLI,
  applyDelta,
  decideReserve,
  fromMilli,
  fullAt,
  msUntil,
  refill,
  toMilli,
} from './bucket-math';

const limits = (capacityTokens: number, tokensPerSec: number) => ({
  capacity: toMilli(capacityTokens),
  rate: tokensPerSec,
});

describe('bucket-math', () => {
  describe('units', () => {
    it('converts tokens to integer milli-tokens and back', () => {
      expect(toMilli(1)).toBe(1_000);
      expect(toMilli(0.001)).toBe(1);
      expect(toMilli(0.1 + 0.2)).toBe(300);
      expect(fromMilli(1_500)).toBe(1.5);
    });

    it('keeps the largest capacity exact', () => {
      const max = toMilli(MAX_TOKENS);
      expect(Number.isSafeInteger(max)).toBe(true);
      expect(Number.isSafeInteger(max - 1)).toBe(true);
      expect(max - 1 + 1).toBe(max);
      expect(Number.isSafeInteger(MIN_LEVEL_MILLI)).toBe(true);
    });
  });

  describe('refill', () => {
    it('reads a missing bucket as full, stamped now', () => {
      expect(refill(undefined, limits(10, 1), 1234)).toEqual({ level: 10_000, updatedAt: 1234 });
    });

    it('adds rate × elapsed milli-tokens (tokens/s equals milli-tokens/ms)', () => {
      const state = { level: 0, updatedAt: 1_000 };
      expect(refill(state, limits(10, 2), 2_500)).toEqual({ level: 3_000, updatedAt: 2_500 });
    });

    it('refills a bucket in debt the same way', () => {
      const state = { level: -5_000, updatedAt: 0 };
      expect(refill(state, limits(10, 2), 1_000)).toEqual({ level: -3_000, updatedAt: 1_000 });
    });

    it('caps at capacity and stamps now', () => {
      const state = { level: 9_000, updatedAt: 0 };
      expect(refill(state, limits(10, 2), 60_000)).toEqual({ level: 10_000, updatedAt: 60_000 });
    });

    it('treats a clock that went back as zero elapsed, then counts from the new time', () => {
      const state = { level: 4_000, updatedAt: 10_000 };
      const back = refill(state, limits(10, 2), 7_000);
      expect(back).toEqual({ level: 4_000, updatedAt: 7_000 });
      expect(refill(back, limits(10, 2), 7_500).level).toBe(5_000);
    });

    it('never refills at rate 0', () => {
      const state = { level: 1, updatedAt: 0 };
      expect(refill(state, limits(10, 0), 1e9)).toEqual({ level: 1, updatedAt: 1e9 });
    });

    it('keeps the fractional remainder: many small steps equal one big one', () => {
      // 0.3 tokens/s = 0.3 milli-tokens per ms: each 1 ms step credits nothing on its own.
      let state: BucketLevel = { level: 0, updatedAt: 0 };
      for (let now = 1; now <= 10_000; now++) state = refill(state, limits(100, 0.3), now);
      expect(state.level).toBe(3_000);
      expect(refill({ level: 0, updatedAt: 0 }, limits(100, 0.3), 10_000).level).toBe(3_000);
    });

    it('credits whole milli-tokens only and leaves the rest for later', () => {
      const once = refill({ level: 0, updatedAt: 0 }, limits(100, 0.3), 5);
      expect(once.level).toBe(1);
      expect(once.updatedAt).toBeCloseTo(10 / 3, 9);
      expect(refill(once, limits(100, 0.3), 10).level).toBe(3);
    });

    it('property: stepping in any pieces gives within one milli-token of one step', () => {
      fc.assert(
        fc.property(
          fc.double({ min: 0.001, max: 1_000, noNaN: true }),
          fc.array(fc.double({ min: 0, max: 5_000, noNaN: true }), { minLength: 1, maxLength: 60 }),
          (rate, steps) => {
            const l = { capacity: toMilli(1e9), rate };
            let state: BucketLevel = { level: 0, updatedAt: 0 };
            let now = 0;
            for (const step of steps) {
              now += step;
              state = refill(state, l, now);
              expect(Number.isInteger(state.level)).toBe(true);
              expect(state.updatedAt).toBeLessThanOrEqual(now);
            }
            const direct = refill({ level: 0, updatedAt: 0 }, l, now).level;
            expect(Math.abs(state.level - direct)).toBeLessThanOrEqual(1);
          },
        ),
      );
    });
  });

  describe('msUntil', () => {
    it('is 0 when the target is already met, null when there is no refill', () => {
      expect(msUntil(5_000, 5_000, 1)).toBe(0);
      expect(msUntil(6_000, 5_000, 0)).toBe(0);
      expect(msUntil(4_999, 5_000, 0)).toBeNull();
    });

    it('rounds the wait up to whole milliseconds', () => {
      expect(msUntil(0, 10_000, 3)).toBe(3_334);
      expect(msUntil(0, 1_000, 0.3)).toBe(3_334);
      expect(msUntil(-2_000, 1_000, 1)).toBe(3_000);
    });
  });

  describe('applyDelta', () => {
    it('refunds up to capacity and charges below zero down to the debt floor', () => {
      expect(applyDelta(900, 500, 1_000)).toBe(1_000);
      expect(applyDelta(100, 300, 1_000)).toBe(400);
      expect(applyDelta(100, -300, 1_000)).toBe(-200);
      expect(applyDelta(MIN_LEVEL_MILLI + 5, -10, 1_000)).toBe(MIN_LEVEL_MILLI);
    });
  });

  describe('fullAt', () => {
    it('is the instant the level reaches capacity', () => {
      expect(fullAt({ level: 4_000, updatedAt: 100 }, limits(10, 2))).toBe(3_100);
      expect(fullAt({ level: 10_000, updatedAt: 100 }, limits(10, 2))).toBe(100);
      expect(fullAt({ level: 0, updatedAt: 100 }, limits(10, 0))).toBe(Infinity);
    });
  });

  describe('decideReserve', () => {
    const view = (level: number, capacity: number, rate: number) => ({ level, capacity, rate });

    it('admits when every bucket holds enough', () => {
      expect(decideReserve([view(500, 1_000, 0), view(500, 600, 1)], 500)).toEqual({
        admitted: true,
      });
      expect(decideReserve([], 10)).toEqual({ admitted: true });
    });

    it('calls a request above any capacity too_large, before looking at levels', () => {
      const decision = decideReserve([view(0, 10_000, 0), view(900, 900, 1)], 1_000);
      expect(decision).toEqual({
        admitted: false,
        reason: 'too_large',
        index: 1,
        retryAfterMs: null,
      });
    });

    it('names the failing bucket with the longest wait', () => {
      const decision = decideReserve(
        [view(0, 10_000, 10), view(9_000, 10_000, 1), view(0, 10_000, 1)],
        2_000,
      );
      expect(decision).toEqual({
        admitted: false,
        reason: 'insufficient',
        index: 2,
        retryAfterMs: 2_000,
      });
    });

    it('prefers a bucket that never refills, and the first of equal waits', () => {
      expect(decideReserve([view(0, 10_000, 1), view(0, 10_000, 0)], 10)).toMatchObject({
        index: 1,
        retryAfterMs: null,
      });
      expect(decideReserve([view(0, 10_000, 1), view(0, 10_000, 1)], 10)).toMatchObject({
        index: 0,
        retryAfterMs: 10,
      });
    });
  });
});
