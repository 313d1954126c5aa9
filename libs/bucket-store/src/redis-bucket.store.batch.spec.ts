import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { DuplicateReservationError } from './bucket-store.errors';
import { BucketStore, GLOBAL_SCOPE_ID, ScopeRef, StoreDefaults } from './bucket-store.interface';
import { MemoryBucketStore } from './memory-bucket.store';
import { RedisBucketStore } from './redis-bucket.store';
import { createRedisClient, waitForRedisReady, type RedisClient } from './redis-client';
import { redisKeys } from './redis-keys';
import { batchScript } from './redis-scripts';
import { BucketStoreUnavailableError } from './store-unavailable.error';
import { FakeClock } from './testing/fake-clock';
import { describeWithRedis, probeRedisSync, testRedisUrl } from './testing/redis-availability';
import { deleteNamespace, uniqueNamespace } from './testing/redis-test-store';
import { startSilentRedis } from './testing/silent-redis';

/**
 * How RedisBucketStore coalesces the reserves and settles made in one event-loop turn into
 * one script call: each request keeps its own answer and its own errors, requests take effect
 * in the order they were made, and the answers stay those of MemoryBucketStore.
 */

const URL = testRedisUrl();
const DB = 6;

// Nothing refills: answers do not depend on time, so they can be compared with MemoryBucketStore.
const DEFAULTS: StoreDefaults = {
  global: { capacity: 1_000_000, refillPerSec: 0 },
  team: { capacity: 10_000, refillPerSec: 0 },
  rolegroup: { capacity: 5_000, refillPerSec: 0 },
  role: { capacity: 2_000, refillPerSec: 0 },
  user: { capacity: 1_000, refillPerSec: 0 },
  upstream_requests: { capacity: 10, refillPerSec: 0 },
};

const GLOBAL: ScopeRef = { type: 'global', id: GLOBAL_SCOPE_ID };
const user = (id: string): ScopeRef => ({ type: 'user', id });
const team = (id: string): ScopeRef => ({ type: 'team', id });
const alice = user('alice');
const bob = user('bob');
const red = team('red');

/** The outcome of a call, comparable across stores: its value, or its error's class. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call };
  } catch (err) {
    return { error: err instanceof Error ? err.name : String(err) };
  }
}

function connect(): RedisClient {
  const client = createRedisClient({ url: URL, db: DB });
  client.on('error', () => undefined);
  return client;
}

describe('RedisBucketStore batching options', () => {
  it('rejects a maxBatchSize that is not a whole number >= 1', () => {
    for (const maxBatchSize of [0, -3, 2.5]) {
      expect(
        () =>
          new RedisBucketStore({
            client: new Redis({ lazyConnect: true }),
            defaults: DEFAULTS,
            maxBatchSize,
          }),
      ).toThrow(RangeError);
    }
  });
});

describeWithRedis('RedisBucketStore batches', probeRedisSync(URL), () => {
  let admin: Redis;
  let namespace: string;
  let keys: ReturnType<typeof redisKeys>;
  const opened: RedisBucketStore[] = [];

  async function open(options: { maxBatchSize?: number; reservationTtlMs?: number } = {}) {
    const store = new RedisBucketStore({
      client: connect(),
      namespace,
      defaults: DEFAULTS,
      ...options,
    });
    opened.push(store);
    await waitForRedisReady(store.client);
    return store;
  }

  /**
   * Counts the batch script calls a store with default TTLs sends (EVALSHA, or EVAL on a new
   * connection).
   */
  function countBatches(store: RedisBucketStore): () => number {
    const lua = batchScript(keys.prefix, 600_000, 1_000, DEFAULTS);
    const sha = createHash('sha1').update(lua).digest('hex');
    const spy = jest.spyOn(store.client as Redis, 'sendCommand');
    return () =>
      spy.mock.calls.filter(([command]) => {
        const first: unknown = command.args[0];
        return first === sha || first === lua;
      }).length;
  }

  const levels = (store: BucketStore, scopes: ScopeRef[]) =>
    Promise.all(scopes.map(async (s) => (await store.getBucket(s)).tokens));

  beforeAll(async () => {
    admin = connect() as Redis;
    await waitForRedisReady(admin);
  });

  afterAll(async () => {
    await admin.quit();
  });

  beforeEach(() => {
    namespace = uniqueNamespace('batch');
    keys = redisKeys(namespace);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await deleteNamespace(admin, namespace);
    for (const store of opened.splice(0)) await store.close();
  });

  it('sends the calls of one turn in one or two script calls, each with its own answer', async () => {
    const store = await open();
    const batches = countBatches(store);
    const users = Array.from({ length: 20 }, (_, i) => user(`u${i}`));
    const results = await Promise.all(
      users.map((u, i) =>
        store.reserve({ reservationId: `r${i}`, scopes: [GLOBAL, u], tokens: i }),
      ),
    );
    // Idle, the store splits a turn in two so that Redis and Node work at the same time.
    expect(batches()).toBeLessThanOrEqual(2);
    results.forEach((result, i) => {
      expect(result).toMatchObject({ admitted: true, reservationId: `r${i}` });
      expect(result.buckets.map((b) => b.tokens)).toEqual([
        1_000_000 - (i * (i + 1)) / 2,
        1_000 - i,
      ]);
    });

    const settles = await Promise.all(users.map((_, i) => store.settle(`r${i}`, 0)));
    expect(settles).toEqual(users.map((_, i) => ({ applied: true, refunded: i })));
    expect(batches()).toBeLessThanOrEqual(4);
    expect(await levels(store, [GLOBAL, ...users.slice(0, 3)])).toEqual([
      1_000_000, 1_000, 1_000, 1_000,
    ]);
  });

  it('fails only the request whose id is open, not the others of its batch', async () => {
    const store = await open();
    await store.reserve({ reservationId: 'taken', scopes: [alice], tokens: 100 });
    const batches = countBatches(store);
    const outcomes = await Promise.allSettled([
      store.reserve({ reservationId: 'a', scopes: [alice], tokens: 10 }),
      store.reserve({ reservationId: 'taken', scopes: [alice], tokens: 10 }),
      store.reserve({ reservationId: 'b', scopes: [alice], tokens: 10 }),
      // The same new id twice in one turn: the first opens it, the second is refused.
      store.reserve({ reservationId: 'twice', scopes: [alice], tokens: 10 }),
      store.reserve({ reservationId: 'twice', scopes: [bob], tokens: 10 }),
    ]);
    expect(batches()).toBeLessThanOrEqual(2);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateReservationError);
    expect((outcomes[4] as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateReservationError);
    // The refused ones charged nothing.
    expect(await levels(store, [alice, bob])).toEqual([870, 1_000]);
  });

  it('draws the buckets down in call order when admitted and rejected requests share a batch', async () => {
    const store = await open({ maxBatchSize: 100 });
    const batches = countBatches(store);
    const tokens = [600, 600, 300, 200, 100];
    const results = await Promise.all(
      tokens.map((t, i) =>
        store.reserve({ reservationId: `r${i}`, scopes: [GLOBAL, red, alice], tokens: t }),
      ),
    );
    expect(batches()).toBeLessThanOrEqual(2);
    expect(results.map((r) => r.admitted)).toEqual([true, false, true, false, true]);
    expect(results.map((r) => r.buckets[2].tokens)).toEqual([400, 400, 100, 100, 0]);
    expect(results[1]).toMatchObject({ reason: 'insufficient', scope: alice, retryAfterMs: null });
    expect(await levels(store, [GLOBAL, red, alice])).toEqual([999_000, 9_000, 0]);
  });

  it('applies a settle and a new reserve of the same id in call order within one turn', async () => {
    const store = await open();
    await store.reserve({ reservationId: 'x', scopes: [alice], tokens: 300 });
    const [settled, again, settledAgain, late] = await Promise.allSettled([
      store.settle('x', 100),
      store.reserve({ reservationId: 'x', scopes: [bob], tokens: 50 }),
      store.settle('x', 0),
      store.settle('x', 0),
    ]);
    expect(settled).toEqual({ status: 'fulfilled', value: { applied: true, refunded: 200 } });
    expect(again).toMatchObject({ status: 'fulfilled', value: { admitted: true } });
    expect(settledAgain).toEqual({ status: 'fulfilled', value: { applied: true, refunded: 50 } });
    expect(late).toEqual({ status: 'fulfilled', value: { applied: false, refunded: 0 } });
    expect(await levels(store, [alice, bob])).toEqual([900, 1_000]);
    expect(await admin.exists(keys.reservation('x'))).toBe(0);
  });

  it('fails every request of a batch with BucketStoreUnavailableError when Redis does not answer', async () => {
    const server = await startSilentRedis();
    const client = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const hung = new RedisBucketStore({ client, defaults: DEFAULTS, commandTimeoutMs: 150 });
    try {
      await waitForRedisReady(client);
      const outcomes = await Promise.allSettled([
        hung.reserve({ reservationId: 'a', scopes: [alice], tokens: 1 }),
        hung.settle('b', 1),
        hung.reserve({ reservationId: 'c', scopes: [bob], tokens: 1 }),
      ]);
      for (const [i, o] of outcomes.entries()) {
        expect(o.status).toBe('rejected');
        const reason = (o as PromiseRejectedResult).reason as Error;
        expect(reason).toBeInstanceOf(BucketStoreUnavailableError);
        expect(reason.message).toContain(i === 1 ? 'during settle' : 'during reserve');
      }
    } finally {
      client.disconnect();
      await server.stop();
    }
  });

  it('fails only the requests that read an unreadable value', async () => {
    const store = await open();
    await store.reserve({ reservationId: 'kept', scopes: [bob], tokens: 100 });
    await admin.set(keys.bucket(user('broken')), 'not a bucket');
    await admin.set(keys.reservation('garbled'), 'not a reservation');
    const outcomes = await Promise.allSettled([
      store.reserve({ reservationId: 'a', scopes: [GLOBAL, user('broken')], tokens: 10 }),
      store.reserve({ reservationId: 'b', scopes: [GLOBAL, alice], tokens: 10 }),
      store.settle('garbled', 0),
      store.settle('kept', 0),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((outcomes[0] as PromiseRejectedResult).reason).toBeInstanceOf(
      BucketStoreUnavailableError,
    );
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/unreadable reservation/);
    expect(outcomes[3]).toEqual({ status: 'fulfilled', value: { applied: true, refunded: 100 } });
    expect(await levels(store, [GLOBAL, alice, bob])).toEqual([999_990, 990, 1_000]);
    // Nothing was written for the failed requests.
    expect(await admin.get(keys.bucket(user('broken')))).toBe('not a bucket');
    expect(await admin.get(keys.reservation('garbled'))).toBe('not a reservation');
  });

  it('sends queued calls before a read or close(), so they take effect first', async () => {
    const store = await open();
    const reserved = store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 250 });
    // Not awaited: the read must still see the charge.
    expect((await store.getBucket(alice)).tokens).toBe(750);
    await reserved;

    const other = await open();
    const pending = other.reserve({ reservationId: 'r2', scopes: [alice], tokens: 50 });
    await other.close();
    await expect(pending).resolves.toMatchObject({ admitted: true });
    expect((await store.getBucket(alice)).tokens).toBe(700);
  });

  it('settles reservations made by another instance, or remade there after this one made it', async () => {
    const a = await open();
    const b = await open();
    await a.reserve({ reservationId: 'x', scopes: [GLOBAL, alice], tokens: 100 });
    expect(await b.settle('x', 40)).toEqual({ applied: true, refunded: 60 });
    // Remade on b with other scopes: a's memory of 'x' is stale and must not be trusted.
    await b.reserve({ reservationId: 'x', scopes: [red, bob], tokens: 200 });
    expect(await a.settle('x', 0)).toEqual({ applied: true, refunded: 200 });
    expect(await levels(a, [GLOBAL, alice, red, bob])).toEqual([999_960, 960, 10_000, 1_000]);
  });

  it('reads a reservation and a bucket state as written by the previous version', async () => {
    const store = await open();
    const [seconds, micros] = await admin.time();
    const now = Number(seconds) * 1e6 + Number(micros);
    await admin.set(keys.bucket(alice), `700000 ${now}`);
    await admin.set(keys.reservation('old'), JSON.stringify(['300', 'user:alice']), 'PX', 60_000);
    expect(await store.settle('old', 100)).toEqual({ applied: true, refunded: 200 });
    expect(await levels(store, [alice])).toEqual([900]);
    expect(await admin.exists(keys.reservation('old'))).toBe(0);
  });

  it('stores fixed charges in the reservation record, so that any instance settles them', async () => {
    const a = await open();
    const b = await open();
    const counter: ScopeRef = { type: 'upstream_requests', id: 'ft:gpt-4o-mini:org::x1' };
    await a.setPolicy(counter, { capacity: 10, refillPerSec: 0 });
    const fixedCharges = [{ scope: counter, amount: 2 }];
    await a.reserve({ reservationId: 'f1', scopes: [GLOBAL, alice], tokens: 100, fixedCharges });
    await a.reserve({ reservationId: 'f2', scopes: [alice], tokens: 50, fixedCharges });
    expect(await admin.get(keys.reservation('f1'))).toBe(
      '100 13 global:global 10 user:alice *2 40 upstream_requests:ft:gpt-4o-mini:org::x1',
    );
    expect(await levels(a, [GLOBAL, alice, counter])).toEqual([999_900, 850, 6]);
    // b did not make them: it parses the records.
    expect(await b.settle('f1', 30)).toEqual({ applied: true, refunded: 70 });
    expect(await levels(a, [GLOBAL, alice, counter])).toEqual([999_970, 920, 6]);
    expect(await b.settle('f2', 0)).toEqual({ applied: true, refunded: 50 });
    expect(await levels(a, [GLOBAL, alice, counter])).toEqual([999_970, 970, 8]);
  });

  it('mixes requests with and without fixed charges in one batch, each settled its own way', async () => {
    const store = await open();
    const counter: ScopeRef = { type: 'upstream_requests', id: 'gpt-4o' };
    await store.setPolicy(counter, { capacity: 3, refillPerSec: 0 });
    const fixedCharges = [{ scope: counter, amount: 1 }];
    const results = await Promise.all([
      store.reserve({ reservationId: 'm1', scopes: [alice], tokens: 10, fixedCharges }),
      store.reserve({ reservationId: 'm2', scopes: [alice], tokens: 10 }),
      store.reserve({ reservationId: 'm3', scopes: [bob], tokens: 10, fixedCharges }),
      store.settle('m1', 0),
      store.reserve({ reservationId: 'm4', scopes: [bob], tokens: 10, fixedCharges }),
      store.reserve({ reservationId: 'm5', scopes: [bob], tokens: 10, fixedCharges }),
      store.reserve({ reservationId: 'm6', scopes: [bob], tokens: 10, fixedCharges }),
    ]);
    expect(results.map((r) => ('admitted' in r ? r.admitted : r.applied))).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(await levels(store, [alice, bob, counter])).toEqual([990, 970, 0]);
    await Promise.all([store.settle('m3', 5), store.settle('m4', 0), store.settle('m2', 10)]);
    expect(await levels(store, [alice, bob, counter])).toEqual([990, 985, 1]);
  });

  it('lowers a level in one script call, never raising it', async () => {
    const store = await open();
    await store.reserve({ reservationId: 'l1', scopes: [alice], tokens: 100 });
    expect((await store.lowerLevel(alice, 950)).tokens).toBe(900);
    expect((await store.lowerLevel(alice, 250.5)).tokens).toBe(250.5);
    expect((await store.lowerLevel(red, -20)).tokens).toBe(-20);
    expect(await levels(store, [alice, red])).toEqual([250.5, -20]);
  });

  it('handles a batch naming more scopes than one position character can count', async () => {
    const store = await open({ maxBatchSize: 500 });
    const users = Array.from({ length: 150 }, (_, i) => user(`many-${i}`));
    const results = await Promise.all(
      users.map((u, i) =>
        store.reserve({ reservationId: `m${i}`, scopes: [GLOBAL, u, red], tokens: 2 }),
      ),
    );
    expect(results.every((r) => r.admitted)).toBe(true);
    expect(results[149].buckets.map((b) => b.tokens)).toEqual([1_000_000 - 300, 998, 10_000 - 300]);
    const settles = await Promise.all(users.map((_, i) => store.settle(`m${i}`, 1)));
    expect(settles.every((s) => s.applied && s.refunded === 1)).toBe(true);
    expect(await levels(store, [GLOBAL, users[0], red])).toEqual([1_000_000 - 150, 999, 9_850]);
  });

  it('never admits more than capacity under 500 concurrent reserves in small batches', async () => {
    const store = await open({ maxBatchSize: 7 });
    await store.setPolicy(red, { capacity: 1_000 });
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        store.reserve({ reservationId: `c${i}`, scopes: [GLOBAL, red, user(`c${i}`)], tokens: 3 }),
      ),
    );
    expect(results.filter((r) => r.admitted)).toHaveLength(333);
    expect(await levels(store, [red])).toEqual([1]);
    // The first 333 calls win: calls take effect in the order they were made.
    expect(results.findIndex((r) => !r.admitted)).toBe(333);
  });

  describe('against MemoryBucketStore', () => {
    const COUNTER: ScopeRef = { type: 'upstream_requests', id: 'gpt-4o-mini' };
    // The counter is only ever charged as a fixed charge, never as a token scope.
    const SCOPES: readonly ScopeRef[] = [GLOBAL, red, alice, bob, COUNTER];
    type Call =
      | { kind: 'reserve'; id: number; mask: number; tokens: number; fixed: number | null }
      | { kind: 'settle'; id: number; actual: number }
      | { kind: 'capacity'; scope: number; capacity: number }
      | { kind: 'read'; scope: number };
    const callArb: fc.Arbitrary<Call> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('reserve' as const),
          id: fc.nat({ max: 6 }),
          mask: fc.integer({ min: 0, max: 15 }),
          tokens: fc.oneof(fc.constantFrom(0, 1, 100, 1_000), fc.integer({ min: 0, max: 1_500 })),
          fixed: fc.option(fc.integer({ min: 0, max: 3 })),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('settle' as const),
          id: fc.nat({ max: 6 }),
          actual: fc.integer({ min: 0, max: 2_000 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('capacity' as const),
          scope: fc.nat({ max: 4 }),
          capacity: fc.integer({ min: 0, max: 3_000 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('read' as const), scope: fc.nat({ max: 4 }) }),
      },
    );

    function run(store: BucketStore, call: Call): Promise<unknown> {
      switch (call.kind) {
        case 'reserve':
          return store.reserve({
            reservationId: `p${call.id}`,
            scopes: SCOPES.filter((_, i) => (call.mask & (1 << i)) !== 0),
            tokens: call.tokens,
            ...(call.fixed === null
              ? {}
              : { fixedCharges: [{ scope: COUNTER, amount: call.fixed }] }),
          });
        case 'settle':
          return store.settle(`p${call.id}`, call.actual);
        case 'capacity':
          return store.setPolicy(SCOPES[call.scope], { capacity: call.capacity });
        case 'read':
          return store.getBucket(SCOPES[call.scope]);
      }
    }

    it('gives the same answers when calls are made many at a time', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(callArb, { minLength: 1, maxLength: 12 }), {
            minLength: 1,
            maxLength: 8,
          }),
          fc.integer({ min: 1, max: 5 }),
          async (turns, maxBatchSize) => {
            namespace = uniqueNamespace('batch-prop');
            keys = redisKeys(namespace);
            const redis = await open({ maxBatchSize });
            const memory = new MemoryBucketStore({
              defaults: DEFAULTS,
              clock: new FakeClock(0),
              sweepIntervalMs: 0,
            });
            try {
              for (const calls of turns) {
                // All calls of a turn are made before any is awaited.
                const fromRedis = await Promise.all(calls.map((c) => outcome(run(redis, c))));
                const fromMemory = await Promise.all(calls.map((c) => outcome(run(memory, c))));
                expect(fromRedis).toEqual(fromMemory);
              }
            } finally {
              await deleteNamespace(admin, namespace);
              await memory.close();
            }
          },
        ),
        { numRuns: 30 },
      );
    }, 60_000);
  });
});
