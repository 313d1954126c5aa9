import { DuplicateReservationError } from './bucket-store.errors';
import {
  BucketPolicy,
  GLOBAL_SCOPE_ID,
  ReserveResult,
  ScopeRef,
  BudgetScopeType,
} from './bucket-store.interface';
import { MemoryBucketStore, MemoryBucketStoreOptions } from './memory-bucket.store';
import { FakeClock } from './testing/fake-clock';

const DEFAULTS: Record<BudgetScopeType, BucketPolicy> = {
  global: { capacity: 100_000, refillPerSec: 100 },
  team: { capacity: 10_000, refillPerSec: 10 },
  rolegroup: { capacity: 5_000, refillPerSec: 5 },
  role: { capacity: 2_000, refillPerSec: 2 },
  user: { capacity: 1_000, refillPerSec: 1 },
};

const GLOBAL: ScopeRef = { type: 'global', id: GLOBAL_SCOPE_ID };
const alice: ScopeRef = { type: 'user', id: 'alice' };
const bob: ScopeRef = { type: 'user', id: 'bob' };
const red: ScopeRef = { type: 'team', id: 'red' };

function retryOf(result: ReserveResult): number | null {
  if (result.admitted) throw new Error('expected a rejection');
  return result.retryAfterMs;
}

describe('MemoryBucketStore', () => {
  let clock: FakeClock;
  let store: MemoryBucketStore;
  let seq = 0;

  function make(options: Partial<MemoryBucketStoreOptions> = {}): MemoryBucketStore {
    return new MemoryBucketStore({ defaults: DEFAULTS, clock, sweepIntervalMs: 0, ...options });
  }

  const reserve = (scopes: ScopeRef[], tokens: number, reservationId = `r${++seq}`) =>
    store.reserve({ reservationId, scopes, tokens });
  const tokensOf = async (scope: ScopeRef) => (await store.getBucket(scope)).tokens;

  beforeEach(() => {
    clock = new FakeClock(1_000_000);
    store = make();
  });

  afterEach(async () => {
    await store.close();
  });

  describe('construction', () => {
    it('reports the memory backend and answers ping', async () => {
      expect(store.backend).toBe('memory');
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('rejects invalid defaults and options with a RangeError', () => {
      const bad = { ...DEFAULTS, role: { capacity: -1, refillPerSec: 1 } };
      expect(() => make({ defaults: bad })).toThrow(RangeError);
      expect(() => make({ defaults: bad })).toThrow(/defaults\.role\.capacity/);
      const missing = { ...DEFAULTS } as Partial<Record<BudgetScopeType, BucketPolicy>>;
      delete missing.user;
      expect(() => make({ defaults: missing as Record<BudgetScopeType, BucketPolicy> })).toThrow(
        /defaults\.user/,
      );
      expect(() => make({ reservationTtlMs: 0 })).toThrow(RangeError);
      expect(() => make({ sweepIntervalMs: -1 })).toThrow(RangeError);
      expect(() => make({ sweepBatchSize: Number.NaN })).toThrow(RangeError);
    });

    it('copies the policies it is given', async () => {
      const defaults = structuredClone(DEFAULTS);
      const own = make({ defaults });
      (defaults.user as { capacity: number }).capacity = 1;
      expect(await own.getPolicy(alice)).toEqual(DEFAULTS.user);
      await own.close();
    });
  });

  describe('bucket maths on an injected clock', () => {
    it('refills at refillPerSec and caps at capacity', async () => {
      await reserve([alice], 1_000);
      expect(await tokensOf(alice)).toBe(0);
      clock.advance(250);
      expect(await tokensOf(alice)).toBe(0.25);
      clock.advance(250_000);
      expect(await tokensOf(alice)).toBe(250.25);
      clock.advance(10_000_000);
      expect(await store.getBucket(alice)).toMatchObject({ tokens: 1_000, msUntilFull: 0 });
    });

    it('reports msUntilFull exactly', async () => {
      await reserve([alice], 10);
      expect((await store.getBucket(alice)).msUntilFull).toBe(10_000);
      clock.advance(2_500);
      expect((await store.getBucket(alice)).msUntilFull).toBe(7_500);
    });

    it('computes retryAfterMs as ceil((n - level) / rate) and honours it to the millisecond', async () => {
      await store.setPolicy(alice, { refillPerSec: 3 });
      await reserve([alice], 1_000);
      const retry = retryOf(await reserve([alice], 10));
      expect(retry).toBe(3_334); // 10 000 milli-tokens at 3 per ms
      clock.advance(3_333);
      expect(retryOf(await reserve([alice], 10))).toBe(1);
      clock.advance(1);
      expect((await reserve([alice], 10)).admitted).toBe(true);
    });

    it('does not refill, nor go wrong, when the clock steps back', async () => {
      await reserve([alice], 500);
      clock.advance(-60_000);
      expect(await tokensOf(alice)).toBe(500);
      expect((await reserve([alice], 100)).admitted).toBe(true);
      clock.advance(1_000);
      expect(await tokensOf(alice)).toBe(401);
    });

    it('stays exact in milli-tokens with a fractional rate and frequent calls', async () => {
      await store.setPolicy(alice, { capacity: 1_000, refillPerSec: 0.3 });
      await reserve([alice], 1_000);
      // A zero-token reserve writes the bucket back every millisecond.
      for (let i = 0; i < 10_000; i++) {
        clock.advance(1);
        await reserve([alice], 0);
      }
      expect(await tokensOf(alice)).toBe(3);

      await store.setPolicy(bob, { capacity: 1_000, refillPerSec: 1 / 3 });
      await reserve([bob], 1_000);
      for (let i = 0; i < 3_000; i++) {
        clock.advance(7);
        await reserve([bob], 0);
      }
      expect(await tokensOf(bob)).toBe(7);
    });

    it('reports a fractional capacity without float residue', async () => {
      await store.setPolicy(alice, { capacity: 0.7, refillPerSec: 0.1 });
      expect(await tokensOf(alice)).toBe(0.7);
      clock.advance(1);
      expect(await tokensOf(alice)).toBe(0.7);
    });
  });

  describe('reserve and settle bookkeeping', () => {
    it('records a reservation per admitted request and forgets it on settle', async () => {
      await reserve([GLOBAL, red, alice], 100, 'a');
      expect(store.stats()).toEqual({ buckets: 3, reservations: 1, overrides: 0 });
      expect(await store.settle('a', 100)).toEqual({ applied: true, refunded: 0 });
      expect(store.stats().reservations).toBe(0);
    });

    it('lets an id be used again once its reservation is settled', async () => {
      await reserve([alice], 100, 'a');
      await store.settle('a', 100);
      expect((await reserve([alice], 50, 'a')).admitted).toBe(true);
      expect(await store.settle('a', 0)).toEqual({ applied: true, refunded: 50 });
      expect(await tokensOf(alice)).toBe(900);
    });

    it('throws DuplicateReservationError for an open id, and the first stays settleable', async () => {
      await reserve([alice], 100, 'a');
      await expect(reserve([bob], 100, 'a')).rejects.toThrow(DuplicateReservationError);
      expect(await tokensOf(bob)).toBe(1_000);
      expect(await store.settle('a', 40)).toEqual({ applied: true, refunded: 60 });
    });

    it('settles against the policy in force at settle time', async () => {
      await reserve([alice], 800, 'a');
      await store.setPolicy(alice, { capacity: 100 });
      expect(await store.settle('a', 0)).toEqual({ applied: true, refunded: 800 });
      expect(await tokensOf(alice)).toBe(100);
    });

    it('charges extra into a bucket that was dropped as full', async () => {
      await reserve([alice], 10, 'a');
      clock.advance(10_000);
      store.sweep();
      expect(store.stats().buckets).toBe(0);
      await store.settle('a', 60);
      expect(await tokensOf(alice)).toBe(950);
    });
  });

  describe('reservation expiry', () => {
    beforeEach(async () => {
      await store.close();
      store = make({ reservationTtlMs: 1_000 });
    });

    it('can be settled until the TTL, and after it stays charged', async () => {
      await store.setPolicy(alice, { refillPerSec: 0 });
      await reserve([alice], 100, 'early');
      await reserve([alice], 100, 'late');
      clock.advance(999);
      expect(await store.settle('early', 0)).toEqual({ applied: true, refunded: 100 });
      clock.advance(1);
      expect(await store.settle('late', 0)).toEqual({ applied: false, refunded: 0 });
      expect(await tokensOf(alice)).toBe(900);
      expect(store.stats().reservations).toBe(0);
    });

    it('frees an expired id for a new reservation', async () => {
      await reserve([alice], 100, 'a');
      clock.advance(1_000);
      expect((await reserve([alice], 100, 'a')).admitted).toBe(true);
      expect(await store.settle('a', 0)).toEqual({ applied: true, refunded: 100 });
    });

    it('drops expired reservations in the sweep, oldest first and within the batch', async () => {
      for (let i = 0; i < 50; i++) await reserve([alice], 1, `old${i}`);
      clock.advance(500);
      for (let i = 0; i < 10; i++) await reserve([alice], 1, `new${i}`);
      clock.advance(500);
      expect(store.sweep(20).expiredReservations).toBe(20);
      expect(store.sweep().expiredReservations).toBe(30);
      expect(store.stats().reservations).toBe(10);
      expect(await store.settle('new0', 1)).toEqual({ applied: true, refunded: 0 });
    });
  });

  describe('eviction', () => {
    it('keeps no bucket that a write left full', async () => {
      await reserve([GLOBAL, red, alice], 100, 'a');
      expect(store.stats().buckets).toBe(3);
      await store.settle('a', 0);
      expect(store.stats().buckets).toBe(0);
    });

    it('never stores a bucket for reads, rejections or zero-token reserves', async () => {
      await store.getBucket(alice);
      await reserve([alice], 5_000);
      await reserve([alice, red], 0);
      expect(store.stats().buckets).toBe(0);
    });

    it('sweeps a bucket once it has refilled, not before', async () => {
      await reserve([alice], 10);
      clock.advance(9_999);
      expect(store.sweep().evictedBuckets).toBe(0);
      clock.advance(1);
      expect(store.sweep()).toMatchObject({ evictedBuckets: 1, passComplete: true });
      expect(store.stats().buckets).toBe(0);
      expect(await tokensOf(alice)).toBe(1_000);
    });

    it('keeps a bucket that never refills, and one whose new capacity is above its level', async () => {
      await store.setPolicy(alice, { refillPerSec: 0 });
      await reserve([alice], 1);
      await store.setPolicy(bob, { capacity: 2_000, refillPerSec: 1 });
      // Bob was kept at level 1 000 under capacity 2 000: full after 1 000 s at 1 token/s.
      clock.advance(999_999);
      store.sweep();
      expect(store.stats().buckets).toBe(2);
      clock.advance(1);
      store.sweep();
      expect(store.stats().buckets).toBe(1);
      expect(await tokensOf(alice)).toBe(999);
      expect(await tokensOf(bob)).toBe(2_000);
    });

    it('recomputes when to drop a bucket after a policy change', async () => {
      await reserve([alice], 500);
      await store.setPolicy(alice, { refillPerSec: 0 });
      clock.advance(10_000_000);
      store.sweep();
      expect(store.stats().buckets).toBe(1);
      await store.setPolicy(alice, { refillPerSec: 1_000 });
      clock.advance(500);
      store.sweep();
      expect(store.stats().buckets).toBe(0);
    });

    it('looks at no more than the batch per sweep and resumes where it stopped', async () => {
      for (let i = 0; i < 25; i++) await reserve([{ type: 'user', id: `u${i}` }], 1);
      clock.advance(1_000);
      expect(store.sweep(10)).toEqual({
        examined: 10,
        evictedBuckets: 10,
        expiredReservations: 0,
        passComplete: false,
      });
      expect(store.sweep(10)).toMatchObject({ examined: 10, passComplete: false });
      expect(store.sweep(10)).toMatchObject({ examined: 5, passComplete: true });
      expect(store.stats().buckets).toBe(0);
    });

    it('sees buckets added during a pass, and revisits the passed ones on the next pass', async () => {
      await reserve([alice], 1);
      await reserve([bob], 1);
      store.sweep(1); // alice looked at, not full yet
      await reserve([red], 1);
      clock.advance(100_000);
      expect(store.sweep()).toMatchObject({ evictedBuckets: 2, passComplete: true });
      expect(store.stats().buckets).toBe(1);
      expect(store.sweep()).toMatchObject({ evictedBuckets: 1, passComplete: true });
      expect(store.stats().buckets).toBe(0);
    });

    describe('background timer', () => {
      beforeEach(() => {
        jest.useFakeTimers();
      });
      afterEach(() => {
        jest.useRealTimers();
      });

      it('sweeps on its own and stops on close', async () => {
        const timed = make({ sweepIntervalMs: 100, reservationTtlMs: 5_000 });
        await timed.reserve({ reservationId: 'x', scopes: [alice], tokens: 1 });
        clock.advance(1_000);
        jest.advanceTimersByTime(100);
        // The bucket has refilled and goes; the reservation is still open.
        expect(timed.stats()).toMatchObject({ buckets: 0, reservations: 1 });
        clock.advance(4_000);
        jest.advanceTimersByTime(100);
        expect(timed.stats()).toMatchObject({ buckets: 0, reservations: 0 });
        expect(jest.getTimerCount()).toBe(1);
        await timed.close();
        expect(jest.getTimerCount()).toBe(0);
        await timed.close();
      });
    });
  });
});
