import { DuplicateReservationError } from '../bucket-store.errors';
import { MemoryBucketStore } from '../memory-bucket.store';
import {
  BucketPolicy,
  BucketStore,
  GLOBAL_SCOPE_ID,
  ReserveAdmitted,
  ReserveRejected,
  ReserveResult,
  SCOPE_TYPES,
  ScopeRef,
  ScopeType,
} from '../bucket-store.interface';

export interface BucketStoreUnderTest {
  readonly store: BucketStore;
  cleanup(): Promise<void>;
  /**
   * How many buckets the store holds state for right now, after whatever housekeeping it
   * would have done on its own by then (Redis: bucket keys not yet expired). Optional for a
   * MemoryBucketStore, where the contract counts through sweep() and stats().
   */
  storedBuckets?(): Promise<number>;
  /**
   * Longest time after a bucket reads full again during which the store may still hold it
   * (Redis: the TTL margin). Default 0.
   */
  readonly idleGraceMs?: number;
}

/** Store settings a few contract tests ask for. */
export interface ContractStoreOptions {
  /** Reservation TTL, in ms (asked for only by the reservation-expiry tests). */
  readonly reservationTtlMs?: number;
}

/** Builds a fresh, empty store with the given type defaults (e.g. a new Redis namespace). */
export type BucketStoreFactory = (
  defaults: Record<ScopeType, BucketPolicy>,
  options?: ContractStoreOptions,
) => Promise<BucketStoreUnderTest>;

/** What a factory supports beyond the defaults; tests needing a missing feature are skipped. */
export interface ContractFeatures {
  /** The factory passes `options.reservationTtlMs` on to the store. */
  readonly reservationTtl?: boolean;
}

/**
 * Behaviour every BucketStore must show. It runs on real time, because a Redis store reads
 * Redis's own clock. Most tests therefore use refill 0, where time has no effect, and the
 * few timing tests use fast refills with generous bounds.
 */
const DEFAULTS: Record<ScopeType, BucketPolicy> = {
  global: { capacity: 1_000_000, refillPerSec: 0 },
  team: { capacity: 10_000, refillPerSec: 0 },
  rolegroup: { capacity: 5_000, refillPerSec: 0 },
  role: { capacity: 2_000, refillPerSec: 0 },
  user: { capacity: 1_000, refillPerSec: 0 },
};

const GLOBAL: ScopeRef = { type: 'global', id: GLOBAL_SCOPE_ID };

let sequence = 0;
// Unique per run as well as per test, in case a store keeps data between factory calls.
const runTag = Date.now().toString(36);
function uid(prefix: string): string {
  sequence += 1;
  return `${prefix}-${runTag}-${sequence}`;
}

const user = (id = uid('u')): ScopeRef => ({ type: 'user', id });
const team = (id = uid('t')): ScopeRef => ({ type: 'team', id });

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function admitted(result: ReserveResult): ReserveAdmitted {
  if (!result.admitted) {
    throw new Error(`expected admission, got ${result.reason} on ${JSON.stringify(result.scope)}`);
  }
  return result;
}

function rejected(result: ReserveResult): ReserveRejected {
  if (result.admitted) throw new Error('expected a rejection, got an admission');
  return result;
}

/** The factory's count of held buckets, or one derived from a MemoryBucketStore's public API. */
function storageProbe(handle: BucketStoreUnderTest): () => Promise<number> {
  if (handle.storedBuckets !== undefined) return () => handle.storedBuckets!();
  const { store } = handle;
  if (store instanceof MemoryBucketStore) {
    return () => {
      store.sweep(Number.MAX_SAFE_INTEGER);
      return Promise.resolve(store.stats().buckets);
    };
  }
  throw new Error(`the factory of a ${store.backend} store must provide storedBuckets()`);
}

export function describeBucketStoreContract(
  name: string,
  factory: BucketStoreFactory,
  features: ContractFeatures = {},
): void {
  describe(`BucketStore contract: ${name}`, () => {
    let handle: BucketStoreUnderTest;
    let store: BucketStore;

    beforeEach(async () => {
      handle = await factory(DEFAULTS);
      store = handle.store;
    });

    afterEach(async () => {
      await handle.cleanup();
    });

    const reserve = (scopes: ScopeRef[], tokens: number, reservationId = uid('r')) =>
      store.reserve({ reservationId, scopes, tokens });

    const levels = (scopes: ScopeRef[]) =>
      Promise.all(scopes.map(async (s) => (await store.getBucket(s)).tokens));

    describe('basics', () => {
      it('names a backend and answers ping', async () => {
        expect(typeof store.backend).toBe('string');
        expect(store.backend.length).toBeGreaterThan(0);
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it.each(SCOPE_TYPES)(
        'a never-used %s bucket reads full at its type default',
        async (type) => {
          const scope = type === 'global' ? GLOBAL : { type, id: uid(type) };
          expect(await store.getPolicy(scope)).toEqual(DEFAULTS[type]);
          expect(await store.getBucket(scope)).toEqual({
            scope,
            tokens: DEFAULTS[type].capacity,
            capacity: DEFAULTS[type].capacity,
            refillPerSec: DEFAULTS[type].refillPerSec,
            msUntilFull: 0,
          });
        },
      );

      it('reading a bucket does not change it', async () => {
        const u = user();
        admitted(await reserve([u], 250));
        expect(await levels([u, u])).toEqual([750, 750]);
      });
    });

    describe('reserve', () => {
      it('takes the tokens from every scope and reports each one in request order', async () => {
        const t = team();
        const u = user();
        const result = admitted(await reserve([GLOBAL, t, u], 100, 'order-check-' + uid('r')));
        expect(result.reservationId).toMatch(/^order-check-/);
        expect(result.buckets.map((b) => [b.scope, b.tokens])).toEqual([
          [GLOBAL, 999_900],
          [t, 9_900],
          [u, 900],
        ]);
        expect(result.buckets[2].msUntilFull).toBeNull();
        expect(await levels([GLOBAL, t, u])).toEqual([999_900, 9_900, 900]);
      });

      it('admits a request that takes exactly the whole level', async () => {
        const u = user();
        admitted(await reserve([u], 1_000));
        expect(await levels([u])).toEqual([0]);
        expect(rejected(await reserve([u], 1)).reason).toBe('insufficient');
      });

      it('admits zero tokens without changing anything', async () => {
        const u = user();
        admitted(await reserve([u], 0));
        expect(await levels([u])).toEqual([1_000]);
      });

      it('is all-or-nothing: a failing scope leaves every other scope untouched', async () => {
        const t = team();
        await store.setPolicy(t, { capacity: 500 });
        admitted(await reserve([GLOBAL, t, user()], 400));

        const other = user();
        const before = await levels([GLOBAL, t, other]);
        expect(before).toEqual([999_600, 100, 1_000]);

        const id = uid('r');
        const result = rejected(await reserve([GLOBAL, t, other], 200, id));
        expect(result.reason).toBe('insufficient');
        expect(result.scope).toEqual(t);
        expect(result.buckets.map((b) => b.tokens)).toEqual(before);
        expect(await levels([GLOBAL, t, other])).toEqual(before);
        // A rejected reservation is not recorded.
        expect(await store.settle(id, 0)).toEqual({ applied: false, refunded: 0 });
        expect(await levels([GLOBAL, t, other])).toEqual(before);
      });

      it('charges a scope listed twice only once', async () => {
        const u = user();
        const result = admitted(await reserve([u, GLOBAL, u], 100));
        expect(result.buckets.map((b) => b.tokens)).toEqual([900, 999_900, 900]);
        expect(await levels([u])).toEqual([900]);
      });

      it('lets a rejected reservation id be used again', async () => {
        const u = user();
        const id = uid('r');
        rejected(await reserve([u], 5_000, id));
        admitted(await reserve([u], 10, id));
      });

      it('refuses a second open reservation under the same id and charges once', async () => {
        const u = user();
        const id = uid('dup');
        admitted(await reserve([u], 100, id));
        await expect(reserve([u], 100, id)).rejects.toBeInstanceOf(DuplicateReservationError);
        expect(await levels([u])).toEqual([900]);
        expect(await store.settle(id, 0)).toEqual({ applied: true, refunded: 100 });
        expect(await levels([u])).toEqual([1_000]);
      });
    });

    describe('rejections', () => {
      it('says too_large, naming the scope, when a request exceeds a capacity', async () => {
        const t = team();
        const u = user();
        const result = rejected(await reserve([GLOBAL, t, u], 1_001));
        expect(result).toMatchObject({ reason: 'too_large', scope: u, retryAfterMs: null });
        expect(result.buckets.map((b) => b.tokens)).toEqual([1_000_000, 10_000, 1_000]);
      });

      it('prefers too_large to insufficient: the request can never pass', async () => {
        const t = team();
        await store.setPolicy(t, { capacity: 5_000 });
        admitted(await reserve([t], 5_000));
        const u = user();
        await store.setPolicy(u, { capacity: 100 });
        const result = rejected(await reserve([t, u], 200));
        expect(result).toMatchObject({ reason: 'too_large', scope: u, retryAfterMs: null });
      });

      it('gives no retry time when the failing scope never refills', async () => {
        const u = user();
        admitted(await reserve([u], 950));
        const result = rejected(await reserve([u], 100));
        expect(result).toMatchObject({ reason: 'insufficient', scope: u, retryAfterMs: null });
      });

      it('names the failing scope with the longest wait and a roughly right retry time', async () => {
        const t = team();
        const u = user();
        await store.setPolicy(t, { capacity: 1_000, refillPerSec: 10 });
        await store.setPolicy(u, { capacity: 1_000, refillPerSec: 100 });
        admitted(await reserve([u, t], 1_000));

        const result = rejected(await reserve([u, t], 50));
        expect(result.reason).toBe('insufficient');
        expect(result.scope).toEqual(t);
        // 50 tokens at 10/s is 5 s, less whatever refilled since the drain.
        expect(result.retryAfterMs).toBeGreaterThan(4_000);
        expect(result.retryAfterMs).toBeLessThanOrEqual(5_000);
      });

      it('names a never-refilling scope over one that only needs time', async () => {
        const t = team();
        const u = user();
        await store.setPolicy(t, { capacity: 1_000, refillPerSec: 1 });
        admitted(await reserve([u, t], 1_000));
        const result = rejected(await reserve([t, u], 10));
        expect(result).toMatchObject({ reason: 'insufficient', scope: u, retryAfterMs: null });
      });

      it('refills over real time, and a request retried after retryAfterMs passes', async () => {
        const u = user();
        // One token per millisecond.
        await store.setPolicy(u, { capacity: 100, refillPerSec: 1_000 });
        admitted(await reserve([u], 100));

        const result = rejected(await reserve([u], 60));
        expect(result.retryAfterMs).toBeGreaterThan(0);
        expect(result.retryAfterMs).toBeLessThanOrEqual(60);
        await sleep((result.retryAfterMs ?? 0) + 20);
        admitted(await reserve([u], 60));

        await sleep(30);
        const bucket = await store.getBucket(u);
        expect(bucket.tokens).toBeGreaterThanOrEqual(25);
        expect(bucket.tokens).toBeLessThanOrEqual(100);
        expect(bucket.msUntilFull).toBeLessThanOrEqual(100 - 25);
      });
    });

    describe('settle', () => {
      it('refunds the unused part to every scope', async () => {
        const t = team();
        const u = user();
        const id = uid('r');
        admitted(await reserve([GLOBAL, t, u], 300, id));
        expect(await store.settle(id, 100)).toEqual({ applied: true, refunded: 200 });
        expect(await levels([GLOBAL, t, u])).toEqual([999_900, 9_900, 900]);
      });

      it('charges the extra, and may leave a bucket in debt', async () => {
        const u = user();
        const first = uid('r');
        admitted(await reserve([u], 300, first));
        expect(await store.settle(first, 500)).toEqual({ applied: true, refunded: -200 });
        expect(await levels([u])).toEqual([500]);

        const second = uid('r');
        admitted(await reserve([u], 500, second));
        expect(await store.settle(second, 1_500)).toEqual({ applied: true, refunded: -1_000 });
        const bucket = await store.getBucket(u);
        expect(bucket.tokens).toBe(-1_000);
        expect(bucket.msUntilFull).toBeNull();
        // A bucket in debt admits nothing, not even an empty request.
        expect(rejected(await reserve([u], 0))).toMatchObject({
          reason: 'insufficient',
          retryAfterMs: null,
        });
      });

      it('caps a refund at capacity', async () => {
        const u = user();
        const id = uid('r');
        admitted(await reserve([u], 600, id));
        await store.setPolicy(u, { capacity: 500 });
        expect(await levels([u])).toEqual([400]);
        expect(await store.settle(id, 0)).toEqual({ applied: true, refunded: 600 });
        expect(await levels([u])).toEqual([500]);
      });

      it('caps a refund at capacity when refill has already filled the bucket', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 1_000, refillPerSec: 1_000_000 });
        const id = uid('r');
        admitted(await reserve([u], 500, id));
        await sleep(10);
        expect(await store.settle(id, 0)).toEqual({ applied: true, refunded: 500 });
        expect(await levels([u])).toEqual([1_000]);
      });

      it('applies once: a second settle of the same id changes nothing', async () => {
        const u = user();
        const id = uid('r');
        admitted(await reserve([u], 300, id));
        expect(await store.settle(id, 100)).toEqual({ applied: true, refunded: 200 });
        expect(await store.settle(id, 100)).toEqual({ applied: false, refunded: 0 });
        expect(await store.settle(id, 0)).toEqual({ applied: false, refunded: 0 });
        expect(await levels([u])).toEqual([900]);
      });

      it('ignores an unknown reservation id', async () => {
        const u = user();
        admitted(await reserve([u], 100));
        expect(await store.settle(uid('never-reserved'), 10)).toEqual({
          applied: false,
          refunded: 0,
        });
        expect(await levels([u])).toEqual([900]);
      });

      it('settles with the exact reservation as a no-op on levels', async () => {
        const u = user();
        const id = uid('r');
        admitted(await reserve([u], 250, id));
        expect(await store.settle(id, 250)).toEqual({ applied: true, refunded: 0 });
        expect(await levels([u])).toEqual([750]);
      });
    });

    describe('policies', () => {
      it('uses the type default until an override is set, per id', async () => {
        const u = user();
        const other = user();
        let snap = await store.setPolicy(u, { capacity: 5_000 });
        // The level is kept when capacity rises.
        expect(snap).toMatchObject({ scope: u, tokens: 1_000, capacity: 5_000, refillPerSec: 0 });
        expect(await store.getPolicy(u)).toEqual({ capacity: 5_000, refillPerSec: 0 });

        snap = await store.setPolicy(u, { refillPerSec: 2 });
        expect(snap).toMatchObject({ capacity: 5_000, refillPerSec: 2 });
        expect(await store.getPolicy(u)).toEqual({ capacity: 5_000, refillPerSec: 2 });

        expect(await store.getPolicy(other)).toEqual(DEFAULTS.user);
        expect(await store.getBucket(other)).toMatchObject({ tokens: 1_000, capacity: 1_000 });
      });

      it('keeps the level but clamps it to a lowered capacity', async () => {
        const u = user();
        admitted(await reserve([u], 300));
        expect((await store.setPolicy(u, { capacity: 800 })).tokens).toBe(700);
        const lowered = await store.setPolicy(u, { capacity: 500 });
        expect(lowered).toMatchObject({ tokens: 500, capacity: 500, msUntilFull: 0 });
        expect((await store.setPolicy(u, { capacity: 2_000 })).tokens).toBe(500);
        expect(await levels([u])).toEqual([500]);
      });

      it('overrides the global bucket too', async () => {
        await store.setPolicy(GLOBAL, { capacity: 50 });
        expect(await store.getPolicy(GLOBAL)).toEqual({ capacity: 50, refillPerSec: 0 });
        const result = rejected(await reserve([GLOBAL, user()], 60));
        expect(result).toMatchObject({ reason: 'too_large', scope: GLOBAL });
      });

      it('an empty patch changes nothing', async () => {
        const u = user();
        expect(await store.setPolicy(u, {})).toMatchObject({ tokens: 1_000, capacity: 1_000 });
        expect(await store.getPolicy(u)).toEqual(DEFAULTS.user);
      });
    });

    describe('scope identity', () => {
      it('keeps scopes with the same id but different types apart', async () => {
        const id = uid('same');
        const scopes: ScopeRef[] = (['team', 'rolegroup', 'role', 'user'] as const).map((type) => ({
          type,
          id,
        }));
        admitted(await reserve([scopes[3]], 100));
        expect(await levels(scopes)).toEqual([10_000, 5_000, 2_000, 900]);

        await store.setPolicy(scopes[0], { capacity: 7 });
        expect(await store.getPolicy(scopes[0])).toEqual({ capacity: 7, refillPerSec: 0 });
        expect(await store.getPolicy(scopes[1])).toEqual(DEFAULTS.rolegroup);
        expect(await store.getPolicy(scopes[2])).toEqual(DEFAULTS.role);
        expect(await store.getPolicy(scopes[3])).toEqual(DEFAULTS.user);
      });

      it('keeps ids that differ only after a colon apart', async () => {
        const base = uid('c');
        admitted(await reserve([user(`${base}:a`)], 100));
        expect(await levels([user(`${base}:b`), user(base)])).toEqual([1_000, 1_000]);
      });
    });

    describe('input validation', () => {
      it.each([
        ['negative capacity', { capacity: -1 }],
        ['NaN capacity', { capacity: Number.NaN }],
        ['infinite capacity', { capacity: Number.POSITIVE_INFINITY }],
        ['capacity above 1e12', { capacity: 2e12 }],
        ['negative refill', { refillPerSec: -0.5 }],
        ['infinite refill', { refillPerSec: Number.POSITIVE_INFINITY }],
      ])('setPolicy rejects %s with a RangeError', async (_label, patch) => {
        const u = user();
        await expect(store.setPolicy(u, patch)).rejects.toBeInstanceOf(RangeError);
        expect(await store.getPolicy(u)).toEqual(DEFAULTS.user);
      });

      it.each([
        ['negative', -1],
        ['fractional', 1.5],
        ['NaN', Number.NaN],
      ])('reserve rejects a %s token count with a RangeError', async (_label, tokens) => {
        const u = user();
        await expect(reserve([u], tokens)).rejects.toBeInstanceOf(RangeError);
        expect(await levels([u])).toEqual([1_000]);
      });

      it('settle rejects a negative actual count and leaves the reservation open', async () => {
        const u = user();
        const id = uid('r');
        admitted(await reserve([u], 100, id));
        await expect(store.settle(id, -5)).rejects.toBeInstanceOf(RangeError);
        expect(await store.settle(id, 100)).toEqual({ applied: true, refunded: 0 });
      });

      it('rejects a global scope with another id and an unknown scope type', async () => {
        await expect(store.getBucket({ type: 'global', id: 'other' })).rejects.toBeInstanceOf(
          RangeError,
        );
        const bogus = { type: 'planet', id: 'earth' } as unknown as ScopeRef;
        await expect(store.getBucket(bogus)).rejects.toBeInstanceOf(RangeError);
        await expect(reserve([GLOBAL, bogus], 1)).rejects.toBeInstanceOf(RangeError);
        expect(await levels([GLOBAL])).toEqual([1_000_000]);
      });
    });

    describe('refill over time', () => {
      it('refills at refillPerSec from the moment of the charge, and reports msUntilFull', async () => {
        const u = user();
        // One token per millisecond.
        await store.setPolicy(u, { capacity: 200, refillPerSec: 1_000 });
        const start = Date.now();
        admitted(await reserve([u], 200));
        await sleep(60);
        const bucket = await store.getBucket(u);
        const elapsed = Date.now() - start;
        expect(bucket.tokens).toBeGreaterThanOrEqual(50);
        expect(bucket.tokens).toBeLessThanOrEqual(Math.min(200, elapsed + 1));
        // Whole milli-tokens, and the wait to full follows from the level exactly.
        const milli = Math.round(bucket.tokens * 1_000);
        expect(Math.abs(bucket.tokens * 1_000 - milli)).toBeLessThan(1e-6);
        expect(bucket.msUntilFull).toBe(Math.ceil((200_000 - milli) / 1_000));
      });

      it('stops at capacity, and a full bucket reports msUntilFull 0', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 100, refillPerSec: 1_000 });
        admitted(await reserve([u], 80));
        await sleep(150);
        expect(await store.getBucket(u)).toMatchObject({ tokens: 100, msUntilFull: 0 });
        // Never more than capacity, however long it waited.
        admitted(await reserve([u], 100));
        expect(rejected(await reserve([u], 100)).reason).toBe('insufficient');
      });

      it('pays back debt by refill', async () => {
        const u = user();
        // One token per 10 ms: the debt of 50 takes 500 ms to pay back.
        await store.setPolicy(u, { capacity: 100, refillPerSec: 100 });
        const id = uid('r');
        admitted(await reserve([u], 100, id));
        expect(await store.settle(id, 150)).toEqual({ applied: true, refunded: -50 });
        const inDebt = await store.getBucket(u);
        expect(inDebt.tokens).toBeLessThan(0);
        expect(inDebt.msUntilFull).toBeGreaterThan(1_000);
        await sleep(100);
        const later = (await store.getBucket(u)).tokens;
        expect(later).toBeGreaterThanOrEqual(inDebt.tokens + 9);
        expect(later).toBeLessThanOrEqual(100);
      });
    });

    describe('capacity and rate changes', () => {
      it('a raised capacity keeps the level, then refills up to the new capacity', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 100, refillPerSec: 1_000 });
        const start = Date.now();
        admitted(await reserve([u], 100));
        const raised = await store.setPolicy(u, { capacity: 300 });
        const elapsed = Date.now() - start;
        expect(raised.capacity).toBe(300);
        // What refilled since the drain, not the new capacity.
        expect(raised.tokens).toBeLessThanOrEqual(Math.min(100, elapsed + 1));
        expect(raised.msUntilFull).toBe(Math.ceil(300 - raised.tokens));
        await sleep(350);
        expect(await store.getBucket(u)).toMatchObject({ tokens: 300, msUntilFull: 0 });
      });

      it('a lowered capacity clamps the level; raising it again refills from there', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 1_000, refillPerSec: 1_000 });
        const lowered = await store.setPolicy(u, { capacity: 100 });
        expect(lowered).toMatchObject({ tokens: 100, capacity: 100, msUntilFull: 0 });
        expect(rejected(await reserve([u], 101)).reason).toBe('too_large');

        const start = Date.now();
        const raised = await store.setPolicy(u, { capacity: 400 });
        expect(raised.tokens).toBe(100);
        expect(raised.msUntilFull).toBe(300);
        await sleep(20);
        const refilling = await store.getBucket(u);
        const elapsed = Date.now() - start;
        expect(refilling.tokens).toBeGreaterThan(100);
        expect(refilling.tokens).toBeLessThanOrEqual(Math.min(400, 100 + elapsed + 1));
      });

      it('a new rate applies from now; tokens earned at the old rate are kept', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 1_000, refillPerSec: 1_000 });
        const start = Date.now();
        admitted(await reserve([u], 1_000));
        await sleep(60);
        const stopped = await store.setPolicy(u, { refillPerSec: 0 });
        expect(stopped.tokens).toBeGreaterThanOrEqual(50);
        expect(stopped.tokens).toBeLessThanOrEqual(Math.min(1_000, Date.now() - start + 1));
        expect(stopped.msUntilFull).toBeNull();
        await sleep(40);
        expect((await store.getBucket(u)).tokens).toBe(stopped.tokens);

        await store.setPolicy(u, { refillPerSec: 1_000 });
        await sleep(40);
        expect((await store.getBucket(u)).tokens).toBeGreaterThanOrEqual(stopped.tokens + 30);
        expect(await store.getPolicy(u)).toEqual({ capacity: 1_000, refillPerSec: 1_000 });
      });
    });

    describe('idle buckets', () => {
      let stored: () => Promise<number>;
      let grace: number;

      beforeEach(() => {
        stored = storageProbe(handle);
        grace = handle.idleGraceMs ?? 0;
      });

      it('holds nothing for a bucket that was only read, charged nothing or is full', async () => {
        const [a, b, c] = [user(), user(), team()];
        await store.getBucket(a);
        admitted(await reserve([b], 0));
        await store.setPolicy(c, { capacity: 5, refillPerSec: 1 });
        expect(await stored()).toBe(0);
        expect(await store.getPolicy(c)).toEqual({ capacity: 5, refillPerSec: 1 });
      });

      it('drops a bucket as soon as a refund or a lowered capacity fills it', async () => {
        const u = user();
        const id = uid('r');
        admitted(await reserve([u], 100, id));
        expect(await stored()).toBe(1);
        await store.settle(id, 0);
        expect(await stored()).toBe(0);

        admitted(await reserve([u], 300));
        expect(await stored()).toBe(1);
        await store.setPolicy(u, { capacity: 500 });
        expect(await stored()).toBe(0);
        expect(await store.getBucket(u)).toMatchObject({ tokens: 500, msUntilFull: 0 });
      });

      it('forgets an idle bucket once it has refilled, and it still reads full', async () => {
        const u = user();
        // Full again 400 ms after the drain.
        await store.setPolicy(u, { capacity: 100, refillPerSec: 250 });
        admitted(await reserve([GLOBAL, u], 100));
        // The global bucket never refills (rate 0) and stays, the user bucket goes.
        expect(await stored()).toBe(2);
        await sleep(400 + grace + 100);
        expect(await stored()).toBe(1);
        expect(await store.getBucket(u)).toMatchObject({ tokens: 100, msUntilFull: 0 });
        expect(await store.getPolicy(u)).toEqual({ capacity: 100, refillPerSec: 250 });
      });

      it('keeps a bucket that never refills, below capacity or in debt', async () => {
        const [a, b] = [user(), user()];
        admitted(await reserve([a], 100));
        const id = uid('r');
        admitted(await reserve([b], 500, id));
        await store.settle(id, 1_500);
        await sleep(grace + 100);
        expect(await stored()).toBe(2);
        expect(await levels([a, b])).toEqual([900, -500]);
      });
    });

    describe('reservation expiry', () => {
      const ttlMs = 400;
      const expiryIt = features.reservationTtl === true ? it : it.skip;
      const skipNote =
        features.reservationTtl === true ? '' : ' (factory ignores reservationTtlMs)';

      expiryIt(`settles before the TTL; after it, settle changes nothing${skipNote}`, async () => {
        const short = await factory(DEFAULTS, { reservationTtlMs: ttlMs });
        try {
          const u = user();
          const early = uid('r');
          const late = uid('r');
          admitted(await short.store.reserve({ reservationId: early, scopes: [u], tokens: 100 }));
          admitted(await short.store.reserve({ reservationId: late, scopes: [u], tokens: 200 }));
          expect(await short.store.settle(early, 40)).toEqual({ applied: true, refunded: 60 });

          await sleep(ttlMs + 100);
          // Expired: the request is presumed lost and its tokens stay charged.
          expect(await short.store.settle(late, 0)).toEqual({ applied: false, refunded: 0 });
          expect((await short.store.getBucket(u)).tokens).toBe(1_000 - 40 - 200);
          // The id is free again.
          const again = await short.store.reserve({ reservationId: late, scopes: [u], tokens: 10 });
          expect(again.admitted).toBe(true);
          expect((await short.store.getBucket(u)).tokens).toBe(1_000 - 40 - 200 - 10);
        } finally {
          await short.cleanup();
        }
      });
    });

    describe('concurrency', () => {
      it('never admits more than capacity under 500 concurrent reserves', async () => {
        const t = team();
        await store.setPolicy(t, { capacity: 1_000 });
        const users = Array.from({ length: 500 }, () => user());
        const ids = users.map(() => uid('r'));
        const results = await Promise.all(users.map((u, i) => reserve([GLOBAL, t, u], 3, ids[i])));

        const wins = results.filter((r) => r.admitted);
        expect(wins).toHaveLength(333);
        expect(await levels([t, GLOBAL])).toEqual([1, 1_000_000 - 999]);
        for (const r of results) {
          if (!r.admitted) expect(r).toMatchObject({ reason: 'insufficient', scope: t });
        }

        // Every admitted id settled twice at once: each applies exactly once.
        const winIds = ids.filter((_, i) => results[i].admitted);
        const settles = await Promise.all([...winIds, ...winIds].map((id) => store.settle(id, 0)));
        expect(settles.filter((s) => s.applied)).toHaveLength(333);
        expect(await levels([t, GLOBAL])).toEqual([1_000, 1_000_000]);
      });

      it('admits at most one of many concurrent reserves under the same id', async () => {
        const u = user();
        const id = uid('same');
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, () => reserve([u], 10, id)),
        );
        const fulfilled = outcomes.filter((o) => o.status === 'fulfilled');
        expect(fulfilled).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(DuplicateReservationError);
        }
        expect(await levels([u])).toEqual([990]);
      });
    });
  });
}
