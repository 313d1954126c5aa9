import { DuplicateReservationError } from '../bucket-store.errors';
import { MemoryBucketStore } from '../memory-bucket.store';
import {
  BUDGET_SCOPE_TYPES,
  BucketPolicy,
  BucketStore,
  BudgetScopeType,
  GLOBAL_SCOPE_ID,
  ReserveAdmitted,
  ReserveRejected,
  ReserveResult,
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
  defaults: Record<BudgetScopeType, BucketPolicy>,
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
const DEFAULTS: Record<BudgetScopeType, BucketPolicy> = {
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

      it.each(BUDGET_SCOPE_TYPES)(
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

    describe('budget administration', () => {
      const role = (id = uid('r')): ScopeRef => ({ type: 'role', id });
      const rolegroup = (id = uid('g')): ScopeRef => ({ type: 'rolegroup', id });

      it('reads an override as only the fields set, and null without one', async () => {
        const u = user();
        expect(await store.getOverride(u)).toBeNull();
        await store.setPolicy(u, { refillPerSec: 2 });
        expect(await store.getOverride(u)).toEqual({ refillPerSec: 2 });
        await store.setPolicy(u, { capacity: 300 });
        expect(await store.getOverride(u)).toEqual({ capacity: 300, refillPerSec: 2 });
        expect(await store.getOverride(GLOBAL)).toBeNull();
      });

      it('lists overrides in <type>:<id> order with their effective policy', async () => {
        const [t, u] = [team('t-b'), user('u-a')];
        await store.setPolicy(u, { capacity: 10 });
        await store.setPolicy(GLOBAL, { capacity: 5, refillPerSec: 1 });
        await store.setPolicy(t, { refillPerSec: 3 });
        // Read-only and charged buckets are not overrides.
        await store.getBucket(user());
        admitted(await reserve([user()], 5));

        const page = await store.listPolicies();
        expect(page).toEqual({
          overrides: [
            {
              scope: GLOBAL,
              override: { capacity: 5, refillPerSec: 1 },
              policy: { capacity: 5, refillPerSec: 1 },
            },
            {
              scope: t,
              override: { refillPerSec: 3 },
              policy: { capacity: 10_000, refillPerSec: 3 },
            },
            { scope: u, override: { capacity: 10 }, policy: { capacity: 10, refillPerSec: 0 } },
          ],
          next: null,
        });
      });

      it('filters by scope type without mixing role and rolegroup', async () => {
        const [r, g] = [role(), rolegroup()];
        await store.setPolicy(r, { capacity: 1 });
        await store.setPolicy(g, { capacity: 2 });
        await store.setPolicy(user(), { capacity: 3 });
        const roles = await store.listPolicies({ types: ['role'] });
        expect(roles.overrides.map((o) => o.scope)).toEqual([r]);
        const groups = await store.listPolicies({ types: ['rolegroup'] });
        expect(groups.overrides.map((o) => o.scope)).toEqual([g]);
        expect((await store.listPolicies({ types: ['team'] })).overrides).toEqual([]);
        const both = await store.listPolicies({ types: ['role', 'rolegroup'] });
        expect(both.overrides.map((o) => o.scope)).toEqual([r, g]);
      });

      it('pages through every override exactly once', async () => {
        const ids = Array.from({ length: 7 }, (_, i) => `page-${i}`);
        for (const id of ids) await store.setPolicy(user(id), { capacity: 100 });
        await store.setPolicy(team(), { capacity: 100 });
        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await store.listPolicies({ types: ['user'], limit: 3, after });
          expect(page.overrides.length).toBeLessThanOrEqual(3);
          seen.push(...page.overrides.map((o) => o.scope.id));
          after = page.next ?? undefined;
          pages += 1;
        } while (after !== undefined);
        expect(seen).toEqual(ids);
        expect(pages).toBe(3);
      });

      it('rejects a bad listing query', async () => {
        await expect(store.listPolicies({ limit: 0 })).rejects.toBeInstanceOf(RangeError);
        await expect(store.listPolicies({ limit: 1.5 })).rejects.toBeInstanceOf(RangeError);
        await expect(store.listPolicies({ types: ['planet' as ScopeType] })).rejects.toBeInstanceOf(
          RangeError,
        );
      });

      it('deletes an override: back to the default, level kept and clamped', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 3_000 });
        // A raised capacity keeps the level; the reset fills the bucket to the new one.
        await store.resetBucket(u);
        admitted(await reserve([u], 500));
        const result = await store.deletePolicy(u);
        expect(result.deleted).toBe(true);
        expect(result.bucket).toMatchObject({ scope: u, tokens: 1_000, capacity: 1_000 });
        expect(await store.getPolicy(u)).toEqual(DEFAULTS.user);
        expect(await store.getOverride(u)).toBeNull();
        expect((await store.listPolicies()).overrides).toEqual([]);

        const v = user();
        await store.setPolicy(v, { capacity: 300 });
        admitted(await reserve([v], 100));
        expect((await store.deletePolicy(v)).bucket).toMatchObject({
          tokens: 200,
          capacity: 1_000,
        });
        expect(await levels([v])).toEqual([200]);
      });

      it('deleting an override follows the default rate from then on', async () => {
        const u = user();
        await store.setPolicy(u, { refillPerSec: 5_000 });
        admitted(await reserve([u], 1_000));
        const { bucket } = await store.deletePolicy(u);
        expect(bucket.refillPerSec).toBe(0);
        expect(bucket.msUntilFull).toBeNull();
        await sleep(50);
        expect(await levels([u])).toEqual([bucket.tokens]);
      });

      it('deleting where there is no override changes nothing', async () => {
        const u = user();
        admitted(await reserve([u], 100));
        expect(await store.deletePolicy(u)).toMatchObject({
          deleted: false,
          bucket: { scope: u, tokens: 900, capacity: 1_000 },
        });
        expect(await store.deletePolicy(GLOBAL)).toMatchObject({ deleted: false });
        expect(await levels([u])).toEqual([900]);
      });

      it('resets a bucket to full, the global one too, and keeps its policy', async () => {
        const [t, u] = [team(), user()];
        await store.setPolicy(t, { capacity: 700 });
        const id = uid('r');
        admitted(await reserve([GLOBAL, t, u], 600, id));
        expect(await store.resetBucket(t)).toMatchObject({
          scope: t,
          tokens: 700,
          capacity: 700,
          msUntilFull: 0,
        });
        expect(await store.resetBucket(GLOBAL)).toMatchObject({ tokens: 1_000_000 });
        expect(await levels([GLOBAL, t, u])).toEqual([1_000_000, 700, 400]);
        // A later refund is capped at capacity, as always.
        expect(await store.settle(id, 0)).toEqual({ applied: true, refunded: 600 });
        expect(await levels([GLOBAL, t, u])).toEqual([1_000_000, 700, 1_000]);
        // Debt is forgiven too.
        const debt = uid('r');
        admitted(await reserve([u], 1_000, debt));
        await store.settle(debt, 1_500);
        expect((await store.resetBucket(u)).tokens).toBe(1_000);
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

    describe('fixed charges (a request counter)', () => {
      const model = () => uid('gpt-4o-2024-08-06');
      const requestsOf = (id: string): ScopeRef => ({ type: 'upstream_requests', id });
      const tokensOf = (id: string): ScopeRef => ({ type: 'upstream', id });

      it('takes its own amount, lists the scope after the others, and is all-or-nothing', async () => {
        const m = model();
        const counter = requestsOf(m);
        await store.setPolicy(counter, { capacity: 2, refillPerSec: 0 });
        const u = user();
        const fixedCharges = [{ scope: counter, amount: 1 }];
        const first = admitted(
          await store.reserve({ reservationId: uid('r'), scopes: [u], tokens: 300, fixedCharges }),
        );
        expect(first.buckets.map((b) => [b.scope, b.tokens])).toEqual([
          [u, 700],
          [counter, 1],
        ]);
        admitted(
          await store.reserve({ reservationId: uid('r'), scopes: [u], tokens: 300, fixedCharges }),
        );
        const third = rejected(
          await store.reserve({ reservationId: uid('r'), scopes: [u], tokens: 300, fixedCharges }),
        );
        expect(third).toMatchObject({ reason: 'insufficient', scope: counter, retryAfterMs: null });
        expect(third.buckets.map((b) => b.tokens)).toEqual([400, 0]);
        expect(await levels([u, counter])).toEqual([400, 0]);
      });

      it('says too_large when the amount exceeds the capacity, and names the wait of a refilling counter', async () => {
        const m = model();
        const counter = requestsOf(m);
        await store.setPolicy(counter, { capacity: 1, refillPerSec: 10 });
        const tooLarge = rejected(
          await store.reserve({
            reservationId: uid('r'),
            scopes: [user()],
            tokens: 1,
            fixedCharges: [{ scope: counter, amount: 2 }],
          }),
        );
        expect(tooLarge).toMatchObject({ reason: 'too_large', scope: counter });
        admitted(
          await store.reserve({
            reservationId: uid('r'),
            scopes: [],
            tokens: 0,
            fixedCharges: [{ scope: counter, amount: 1 }],
          }),
        );
        const waiting = rejected(
          await store.reserve({
            reservationId: uid('r'),
            scopes: [user()],
            tokens: 5,
            fixedCharges: [{ scope: counter, amount: 1 }],
          }),
        );
        expect(waiting).toMatchObject({ reason: 'insufficient', scope: counter });
        // One request at 10 per second: at most 100 ms.
        expect(waiting.retryAfterMs).toBeGreaterThan(0);
        expect(waiting.retryAfterMs).toBeLessThanOrEqual(100);
      });

      it('settles the tokens only; a full refund (0 actual tokens) gives the fixed charge back too', async () => {
        const m = model();
        const counter = requestsOf(m);
        const tokens = tokensOf(m);
        await store.setPolicy(counter, { capacity: 10, refillPerSec: 0 });
        await store.setPolicy(tokens, { capacity: 5_000, refillPerSec: 0 });
        const u = user();
        const used = uid('r');
        const refunded = uid('r');
        for (const reservationId of [used, refunded]) {
          admitted(
            await store.reserve({
              reservationId,
              scopes: [u, tokens],
              tokens: 200,
              fixedCharges: [{ scope: counter, amount: 1 }],
            }),
          );
        }
        expect(await levels([u, tokens, counter])).toEqual([600, 4_600, 8]);
        expect(await store.settle(used, 50)).toEqual({ applied: true, refunded: 150 });
        expect(await levels([u, tokens, counter])).toEqual([750, 4_750, 8]);
        expect(await store.settle(refunded, 0)).toEqual({ applied: true, refunded: 200 });
        expect(await levels([u, tokens, counter])).toEqual([950, 4_950, 9]);
        // Once only, like any settlement.
        expect(await store.settle(refunded, 0)).toEqual({ applied: false, refunded: 0 });
        expect(await levels([counter])).toEqual([9]);
      });

      it('charges extra tokens to the token scopes only', async () => {
        const counter = requestsOf(model());
        await store.setPolicy(counter, { capacity: 10, refillPerSec: 0 });
        const u = user();
        const id = uid('r');
        admitted(
          await store.reserve({
            reservationId: id,
            scopes: [u],
            tokens: 100,
            fixedCharges: [{ scope: counter, amount: 3 }],
          }),
        );
        expect(await store.settle(id, 400)).toEqual({ applied: true, refunded: -300 });
        expect(await levels([u, counter])).toEqual([600, 7]);
      });

      it('refuses a scope charged twice and bad amounts, changing nothing', async () => {
        const counter = requestsOf(model());
        const u = user();
        for (const fixedCharges of [
          [{ scope: u, amount: 1 }],
          [
            { scope: counter, amount: 1 },
            { scope: counter, amount: 1 },
          ],
          [{ scope: counter, amount: -1 }],
          [{ scope: counter, amount: 1.5 }],
          [{ scope: { type: 'upstream_requests', id: 'has space' } as ScopeRef, amount: 1 }],
        ]) {
          await expect(
            store.reserve({ reservationId: uid('r'), scopes: [u], tokens: 10, fixedCharges }),
          ).rejects.toBeInstanceOf(RangeError);
        }
        expect(await levels([u])).toEqual([1_000]);
      });
    });

    describe('lowerLevel', () => {
      it('lowers a level, never raises one, and refills from the lowered level', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 1_000, refillPerSec: 0 });
        expect(await store.lowerLevel(u, 600)).toMatchObject({ scope: u, tokens: 600 });
        expect(await store.lowerLevel(u, 800)).toMatchObject({ tokens: 600 });
        admitted(await reserve([u], 100));
        expect(await store.lowerLevel(u, 700)).toMatchObject({ tokens: 500 });
        expect(await levels([u])).toEqual([500]);
        expect(rejected(await reserve([u], 501)).reason).toBe('insufficient');

        const t = team();
        // One token per millisecond: the lowered level refills toward capacity.
        await store.setPolicy(t, { capacity: 200, refillPerSec: 1_000 });
        const lowered = await store.lowerLevel(t, 0);
        expect(lowered.tokens).toBe(0);
        expect(lowered.msUntilFull).toBe(200);
        await sleep(50);
        const later = (await store.getBucket(t)).tokens;
        expect(later).toBeGreaterThanOrEqual(40);
        expect(later).toBeLessThanOrEqual(200);
      });

      it('may set a debt, which is paid back by refill like any other', async () => {
        const u = user();
        await store.setPolicy(u, { capacity: 100, refillPerSec: 1_000 });
        const lowered = await store.lowerLevel(u, -50);
        expect(lowered.tokens).toBe(-50);
        expect(lowered.msUntilFull).toBe(150);
        expect(rejected(await reserve([u], 1)).retryAfterMs).toBeLessThanOrEqual(51);
        await sleep(80);
        admitted(await reserve([u], 1));
      });

      it('keeps a fractional target to the milli-token and rejects a target that is not a finite number', async () => {
        const u = user();
        expect((await store.lowerLevel(u, 12.3456)).tokens).toBe(12.346);
        for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 2e12]) {
          await expect(store.lowerLevel(u, bad)).rejects.toBeInstanceOf(RangeError);
        }
        expect(await levels([u])).toEqual([12.346]);
      });
    });

    describe('upstream scopes', () => {
      it('read unlimited until a policy is set, and key model names with colons and dates apart', async () => {
        const base = uid('ft:gpt-4o-mini-2024-07-18:org');
        const a: ScopeRef = { type: 'upstream', id: `${base}:a` };
        const b: ScopeRef = { type: 'upstream', id: `${base}:b` };
        const sameIdOtherType: ScopeRef = { type: 'upstream_requests', id: a.id };
        expect(await store.getBucket(a)).toMatchObject({ tokens: 1e12, capacity: 1e12 });
        await store.setPolicy(a, { capacity: 600, refillPerSec: 10 });
        await store.setPolicy(sameIdOtherType, { capacity: 5, refillPerSec: 0 });
        admitted(
          await store.reserve({
            reservationId: uid('r'),
            scopes: [a],
            tokens: 100,
            fixedCharges: [{ scope: sameIdOtherType, amount: 1 }],
          }),
        );
        expect((await store.getBucket(a)).tokens).toBeLessThanOrEqual(510);
        expect((await store.getBucket(b)).tokens).toBe(1e12);
        expect(await levels([sameIdOtherType, user(a.id.replace(/:/g, '.'))])).toEqual([4, 1_000]);
        expect(await store.getPolicy(b)).toEqual({ capacity: 1e12, refillPerSec: 1e12 });
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
