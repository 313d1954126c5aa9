import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { msUntil } from './bucket-math';
import { DuplicateReservationError } from './bucket-store.errors';
import { BucketPolicy, GLOBAL_SCOPE_ID, ScopeRef, BudgetScopeType } from './bucket-store.interface';
import { RedisBucketStore } from './redis-bucket.store';
import { createRedisClient, waitForRedisReady, type RedisClient } from './redis-client';
import { redisKeys } from './redis-keys';
import { GET_BUCKET_SCRIPT, SET_POLICY_SCRIPT, batchScript } from './redis-scripts';
import { BucketStoreUnavailableError } from './store-unavailable.error';
import {
  describeWithRedis,
  probeRedisBinariesSync,
  probeRedisSync,
  testRedisUrl,
} from './testing/redis-availability';
import { startRedisServer } from './testing/redis-server';
import { deleteNamespace, uniqueNamespace } from './testing/redis-test-store';
import { startSilentRedis } from './testing/silent-redis';

/** Redis-specific behaviour; the shared contract runs in test/redis-*-contract.spec.ts. */

const DEFAULTS: Record<BudgetScopeType, BucketPolicy> = {
  global: { capacity: 1_000_000, refillPerSec: 0 },
  team: { capacity: 10_000, refillPerSec: 0 },
  rolegroup: { capacity: 5_000, refillPerSec: 0 },
  role: { capacity: 2_000, refillPerSec: 0 },
  // 100 tokens take 10 s to refill.
  user: { capacity: 1_000, refillPerSec: 10 },
};

const GLOBAL: ScopeRef = { type: 'global', id: GLOBAL_SCOPE_ID };
const red: ScopeRef = { type: 'team', id: 'red' };
const alice: ScopeRef = { type: 'user', id: 'alice' };

const MARGIN_MS = 1_000;
const RESERVATION_TTL_MS = 60_000;
const URL = testRedisUrl();
const DB = 3;

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function connect(url = URL, db: number | undefined = DB): RedisClient {
  const client = createRedisClient({ url, db });
  client.on('error', () => undefined);
  return client;
}

describe('RedisBucketStore construction', () => {
  const lazy = () => new Redis({ lazyConnect: true });

  it('validates its options before using the client', () => {
    const bad = { ...DEFAULTS, team: { capacity: Number.NaN, refillPerSec: 0 } };
    expect(() => new RedisBucketStore({ client: lazy(), defaults: bad })).toThrow(/defaults\.team/);
    expect(
      () => new RedisBucketStore({ client: lazy(), defaults: DEFAULTS, namespace: 'a{b}' }),
    ).toThrow(RangeError);
    expect(
      () => new RedisBucketStore({ client: lazy(), defaults: DEFAULTS, reservationTtlMs: 0 }),
    ).toThrow(RangeError);
    expect(
      () => new RedisBucketStore({ client: lazy(), defaults: DEFAULTS, idleTtlMarginMs: -1 }),
    ).toThrow(RangeError);
  });

  it('refuses a client with a keyPrefix, which the settle script could not follow', () => {
    const client = new Redis({ lazyConnect: true, keyPrefix: 'x:' });
    expect(() => new RedisBucketStore({ client, defaults: DEFAULTS })).toThrow(/keyPrefix/);
  });

  it('takes a client or a function making one, and reports the redis backend', () => {
    const store = new RedisBucketStore({ client: lazy, defaults: DEFAULTS });
    expect(store.backend).toBe('redis');
    expect(store.namespace).toBe('tokenguard');
    expect(store.client).toBeInstanceOf(Redis);
    store.client.disconnect();
  });
});

describeWithRedis('RedisBucketStore on Redis', probeRedisSync(URL), () => {
  let admin: Redis;
  let namespace: string;
  let store: RedisBucketStore;
  let keys: ReturnType<typeof redisKeys>;
  const extra: RedisBucketStore[] = [];

  /** A store on its own connection, ready: with no offline queue, an unready client fails. */
  async function open(
    options: {
      namespace?: string;
      client?: RedisClient;
      defaults?: Record<BudgetScopeType, BucketPolicy>;
    } = {},
  ) {
    const s = new RedisBucketStore({
      client: options.client ?? connect(),
      namespace: options.namespace ?? namespace,
      defaults: options.defaults ?? DEFAULTS,
      reservationTtlMs: RESERVATION_TTL_MS,
      idleTtlMarginMs: MARGIN_MS,
    });
    extra.push(s);
    await waitForRedisReady(s.client);
    return s;
  }

  /** A bucket key's value: a tag byte 1, then level and at as little-endian doubles. */
  async function storedState(key: string): Promise<{ level: number; at: number }> {
    const raw = await admin.getBuffer(key);
    if (raw === null) throw new Error(`no state at ${key}`);
    expect(raw).toHaveLength(17);
    expect(raw[0]).toBe(1);
    return { level: raw.readDoubleLE(1), at: raw.readDoubleLE(9) };
  }

  async function redisNowUs(): Promise<number> {
    const [s, us] = await admin.time();
    return Number(s) * 1e6 + Number(us);
  }

  beforeAll(async () => {
    admin = connect() as Redis;
    await waitForRedisReady(admin);
  });

  afterAll(async () => {
    await admin.quit();
  });

  beforeEach(async () => {
    namespace = uniqueNamespace('store');
    keys = redisKeys(namespace);
    store = await open();
  });

  afterEach(async () => {
    await deleteNamespace(admin, namespace);
    for (const s of extra.splice(0)) await s.close();
  });

  describe('key schema', () => {
    it('keeps state, policies and reservations under the documented keys', async () => {
      await store.setPolicy(red, { capacity: 5_000, refillPerSec: 2.5 });
      await store.reserve({ reservationId: 'req-1', scopes: [GLOBAL, red, alice], tokens: 100 });

      expect((await admin.keys(`${keys.prefix}*`)).sort()).toEqual(
        [
          `tg:{${namespace}}:b:global:global`,
          `tg:{${namespace}}:b:team:red`,
          `tg:{${namespace}}:b:user:alice`,
          `tg:{${namespace}}:p:team:red`,
          `tg:{${namespace}}:r:req-1`,
        ].sort(),
      );
      expect(JSON.parse((await admin.get(keys.policy(red)))!)).toEqual({
        c: '5000',
        cm: '5000000',
        r: '2.5',
      });
      const { level, at } = await storedState(keys.bucket(alice));
      expect(level).toBe(900_000);
      // Microseconds on the Redis clock.
      expect(Math.abs(at - (await redisNowUs()))).toBeLessThan(5_000_000);
      // Tokens, then each scope as "<length> <type>:<id>".
      expect(await admin.get(keys.reservation('req-1'))).toBe(
        '100 13 global:global 8 team:red 10 user:alice',
      );

      await store.settle('req-1', 100);
      expect(await admin.exists(keys.reservation('req-1'))).toBe(0);
    });
  });

  describe('expiry', () => {
    it('expires a bucket about when it would be full again, plus the margin', async () => {
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 100 });
      // 100 tokens at 10/s: full in 10 s.
      const ttl = await admin.pttl(keys.bucket(alice));
      expect(ttl).toBeGreaterThan(10_000 + MARGIN_MS - 1_000);
      expect(ttl).toBeLessThanOrEqual(10_000 + MARGIN_MS);
      const record = await admin.pttl(keys.reservation('r1'));
      expect(record).toBeGreaterThan(RESERVATION_TTL_MS - 1_000);
      expect(record).toBeLessThanOrEqual(RESERVATION_TTL_MS);
    });

    it('keeps no TTL on a bucket that never refills, and follows rate changes', async () => {
      await store.reserve({ reservationId: 'r1', scopes: [red], tokens: 1_000 });
      expect(await admin.pttl(keys.bucket(red))).toBe(-1);

      // 1 000 missing at 100/s: 10 s.
      await store.setPolicy(red, { refillPerSec: 100 });
      const ttl = await admin.pttl(keys.bucket(red));
      expect(ttl).toBeGreaterThan(10_000 + MARGIN_MS - 1_000);
      expect(ttl).toBeLessThanOrEqual(10_000 + MARGIN_MS);

      await store.setPolicy(red, { refillPerSec: 0 });
      expect(await admin.pttl(keys.bucket(red))).toBe(-1);
    });

    it('keeps a bucket in debt until refill has paid it back and filled it', async () => {
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1_000 });
      await store.settle('r1', 1_500);
      const tokens = (await store.getBucket(alice)).tokens;
      expect(tokens).toBeGreaterThanOrEqual(-500);
      expect(tokens).toBeLessThan(-499);
      // 1 500 missing at 10/s: 150 s.
      const ttl = await admin.pttl(keys.bucket(alice));
      expect(ttl).toBeGreaterThan(150_000 + MARGIN_MS - 1_000);
      expect(ttl).toBeLessThanOrEqual(150_000 + MARGIN_MS);
    });

    it('never sets a TTL beyond the cap on very slow refill', async () => {
      // 1 token at 1e-10 tokens/s: 1e13 ms, beyond the 2^40 ms cap.
      await store.setPolicy(alice, { refillPerSec: 1e-10 });
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1 });
      expect(await admin.pttl(keys.bucket(alice))).toBe(-1);
    });
  });

  describe('clock', () => {
    it('refills from the stored timestamp on the Redis clock', async () => {
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1_000 });
      // Rewind the stored timestamp by 2 s of Redis time: 20 tokens at 10/s.
      await admin.set(keys.bucket(alice), `0 ${(await redisNowUs()) - 2e6}`);
      const tokens = (await store.getBucket(alice)).tokens;
      expect(tokens).toBeGreaterThanOrEqual(20);
      expect(tokens).toBeLessThan(21);
    });

    it('treats a timestamp in the future (a clock that stepped back) as no time passed', async () => {
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1_000 });
      await admin.set(keys.bucket(alice), `5000 ${(await redisNowUs()) + 60e6}`);
      expect((await store.getBucket(alice)).tokens).toBe(5);
      // The next write restarts the count from now instead of waiting a minute.
      await store.reserve({ reservationId: 'r2', scopes: [alice], tokens: 0 });
      const t = (await storedState(keys.bucket(alice))).at;
      expect(t).toBeLessThanOrEqual(await redisNowUs());
      await sleep(250);
      expect((await store.getBucket(alice)).tokens).toBeGreaterThanOrEqual(7);
    });
  });

  describe('scripts', () => {
    it('reloads its scripts after SCRIPT FLUSH (NOSCRIPT), all three of them', async () => {
      const batch = batchScript(keys.prefix, RESERVATION_TTL_MS, MARGIN_MS, DEFAULTS);
      const shas = [batch, GET_BUCKET_SCRIPT, SET_POLICY_SCRIPT].map(sha1);
      await store.reserve({ reservationId: 'warm', scopes: [alice], tokens: 1 });
      await store.settle('warm', 1);
      await store.getBucket(alice);
      await store.setPolicy(alice, {});

      await admin.script('FLUSH');
      expect(await admin.script('EXISTS', ...shas)).toEqual([0, 0, 0]);

      const result = await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 10 });
      expect(result.admitted).toBe(true);
      expect(await store.settle('r1', 4)).toEqual({ applied: true, refunded: 6 });
      expect((await store.setPolicy(alice, { capacity: 2_000 })).capacity).toBe(2_000);
      expect((await store.getBucket(alice)).tokens).toBeGreaterThanOrEqual(993);
      expect(await admin.script('EXISTS', ...shas)).toEqual([1, 1, 1]);
    });
  });

  describe('numbers', () => {
    it('keeps the largest capacity exact to the milli-token, and the debt floor', async () => {
      const huge = await open({
        defaults: { ...DEFAULTS, team: { capacity: 1e12, refillPerSec: 0 } },
      });
      const big: ScopeRef = { type: 'team', id: 'big' };
      await huge.reserve({ reservationId: 'r1', scopes: [big], tokens: 1 });
      expect((await huge.getBucket(big)).tokens).toBe(999_999_999_999);
      expect((await storedState(keys.bucket(big))).level).toBe(999_999_999_999_000);
      expect(await huge.settle('r1', 5e12)).toEqual({ applied: true, refunded: 1 - 5e12 });
      expect((await huge.getBucket(big)).tokens).toBe(-1e12);
    });

    it('returns fractional policies exactly as set', async () => {
      const snap = await store.setPolicy(alice, { capacity: 0.5, refillPerSec: 0.3 });
      expect(snap).toMatchObject({ tokens: 0.5, capacity: 0.5, refillPerSec: 0.3 });
      expect(await store.getPolicy(alice)).toEqual({ capacity: 0.5, refillPerSec: 0.3 });
    });

    it('gives the exact retry time even for a wait beyond 2^53 ms', async () => {
      await store.setPolicy(alice, { refillPerSec: 1e-14 });
      await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1_000 });
      const result = await store.reserve({ reservationId: 'r2', scopes: [alice], tokens: 1 });
      expect(result).toMatchObject({ admitted: false, reason: 'insufficient' });
      // 1 000 milli-tokens at 1e-14 per ms, as bucket-math computes it.
      expect(!result.admitted && result.retryAfterMs).toBe(msUntil(0, 1_000, 1e-14));
      expect(msUntil(0, 1_000, 1e-14)).toBeGreaterThan(2 ** 53);
    });
  });

  describe('several instances', () => {
    it('share budgets, policies and reservations through one namespace', async () => {
      const other = await open();
      await store.setPolicy(red, { capacity: 300 });
      expect(await other.getPolicy(red)).toEqual({ capacity: 300, refillPerSec: 0 });

      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? store : other).reserve({
            reservationId: `c${i}`,
            scopes: [GLOBAL, red],
            tokens: 10,
          }),
        ),
      );
      expect(results.filter((r) => r.admitted)).toHaveLength(30);
      expect((await other.getBucket(red)).tokens).toBe(0);

      // Reserved on one instance, settled on the other, exactly once.
      expect(await other.settle('c0', 0)).toEqual({ applied: true, refunded: 10 });
      expect(await store.settle('c0', 0)).toEqual({ applied: false, refunded: 0 });
      await expect(
        other.reserve({ reservationId: 'c2', scopes: [red], tokens: 1 }),
      ).rejects.toBeInstanceOf(DuplicateReservationError);
      expect((await store.getBucket(red)).tokens).toBe(10);
    });

    it('keeps namespaces apart', async () => {
      const elsewhere = await open({ namespace: uniqueNamespace('other') });
      await store.reserve({ reservationId: 'r1', scopes: [red], tokens: 100 });
      expect((await elsewhere.getBucket(red)).tokens).toBe(10_000);
      expect(await elsewhere.settle('r1', 0)).toEqual({ applied: false, refunded: 0 });
      await deleteNamespace(admin, elsewhere.namespace);
    });
  });

  describe('failures', () => {
    it('wraps a hung server in BucketStoreUnavailableError after commandTimeoutMs', async () => {
      const server = await startSilentRedis();
      // A client without a command timeout of its own: the store's deadline applies.
      const client = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      const hung = new RedisBucketStore({ client, defaults: DEFAULTS, commandTimeoutMs: 150 });
      try {
        await waitForRedisReady(client);
        const started = Date.now();
        const error = await hung
          .reserve({ reservationId: 'r', scopes: [alice], tokens: 1 })
          .catch((err: unknown) => err);
        expect(error).toBeInstanceOf(BucketStoreUnavailableError);
        expect((error as Error).message).toMatch(/during reserve: no reply within 150 ms/);
        expect(Date.now() - started).toBeLessThan(1_000);
        await expect(hung.ping()).rejects.toBeInstanceOf(BucketStoreUnavailableError);
        // Bad input is still refused as such, without a round trip.
        await expect(hung.getBucket({ type: 'user', id: '' })).rejects.toBeInstanceOf(RangeError);
      } finally {
        client.disconnect();
        await server.stop();
      }
    });

    it('close() quits the client once; later calls fail as unavailable', async () => {
      const own = await open();
      await own.close();
      await own.close();
      expect(own.client.status).toBe('end');
      await expect(own.getBucket(alice)).rejects.toBeInstanceOf(BucketStoreUnavailableError);

      const client = connect();
      const borrowed = await open({ client });
      const lent = new RedisBucketStore({
        client,
        namespace,
        defaults: DEFAULTS,
        closeClient: false,
      });
      await lent.close();
      expect(client.status).toBe('ready');
      await borrowed.ping();
    });
  });

  describeWithRedis('outage and recovery', probeRedisBinariesSync(), () => {
    it('fails fast while Redis is down and recovers by itself when it is back', async () => {
      const server = await startRedisServer();
      const client = createRedisClient({ url: server.url, commandTimeoutMs: 300 });
      client.on('error', () => undefined);
      const own = new RedisBucketStore({ client, defaults: DEFAULTS });
      try {
        await waitForRedisReady(client);
        expect(
          (await own.reserve({ reservationId: 'a', scopes: [alice], tokens: 5 })).admitted,
        ).toBe(true);

        await server.pause();
        for (const call of [
          () => own.reserve({ reservationId: 'b', scopes: [alice], tokens: 5 }),
          () => own.settle('a', 0),
          () => own.getBucket(alice),
          () => own.ping(),
        ]) {
          const started = Date.now();
          await expect(call()).rejects.toBeInstanceOf(BucketStoreUnavailableError);
          expect(Date.now() - started).toBeLessThan(1_000);
        }

        await server.resume();
        const deadline = Date.now() + 5_000;
        let recovered = false;
        while (!recovered && Date.now() < deadline) {
          recovered = await own.ping().then(
            () => true,
            () => false,
          );
          if (!recovered) await sleep(50);
        }
        expect(recovered).toBe(true);
        // A fresh server (no persistence): scripts are loaded again, buckets read full.
        const result = await own.reserve({ reservationId: 'c', scopes: [alice], tokens: 5 });
        expect(result.admitted && result.buckets[0].tokens).toBe(995);
      } finally {
        await own.close();
        await server.stop();
      }
    }, 30_000);

    it('refunds a reserve that timed out but ran once Redis woke up', async () => {
      const server = await startRedisServer();
      const client = createRedisClient({ url: server.url, commandTimeoutMs: 300 });
      client.on('error', () => undefined);
      const own = new RedisBucketStore({ client, defaults: DEFAULTS, namespace: 'doubt' });
      const reservation = redisKeys('doubt').reservation('late');
      const pauser = createRedisClient({ url: server.url });
      try {
        await waitForRedisReady(client);
        await pauser.call('CLIENT', 'PAUSE', '1500', 'ALL');
        // Written to the socket, then given up on: the caller hears "unavailable"...
        await expect(
          own.reserve({ reservationId: 'late', scopes: [alice, red], tokens: 50 }),
        ).rejects.toBeInstanceOf(BucketStoreUnavailableError);
        expect(own.reservesInDoubt).toBe(1);

        // ...but Redis runs it when it wakes up. The first answer after that releases it.
        const deadline = Date.now() + 5_000;
        while (own.reservesInDoubt > 0 && Date.now() < deadline) {
          await own.ping().catch(() => undefined);
          await sleep(50);
        }
        expect(own.reservesInDoubt).toBe(0);
        expect((await own.getBucket(alice)).tokens).toBe(1_000);
        expect((await own.getBucket(red)).tokens).toBe(10_000);
        expect(await own.client.exists(reservation)).toBe(0);
      } finally {
        pauser.disconnect();
        await own.close();
        await server.stop();
      }
    }, 30_000);

    it('lets a doubtful reserve that never reached Redis go without touching anything', async () => {
      const server = await startRedisServer();
      const client = createRedisClient({ url: server.url, commandTimeoutMs: 300 });
      client.on('error', () => undefined);
      const own = new RedisBucketStore({ client, defaults: DEFAULTS, namespace: 'doubt' });
      try {
        await waitForRedisReady(client);
        await server.pause();
        await expect(
          own.reserve({ reservationId: 'lost', scopes: [alice], tokens: 50 }),
        ).rejects.toBeInstanceOf(BucketStoreUnavailableError);
        expect(own.reservesInDoubt).toBe(1);
        await server.resume();
        const deadline = Date.now() + 10_000;
        while (own.reservesInDoubt > 0 && Date.now() < deadline) {
          await own.ping().catch(() => undefined);
          await sleep(50);
        }
        expect(own.reservesInDoubt).toBe(0);
        // The refund found no record: nothing was credited above capacity or created.
        expect((await own.getBucket(alice)).tokens).toBe(1_000);
        expect(await own.client.dbsize()).toBe(0);
      } finally {
        await own.close();
        await server.stop();
      }
    }, 30_000);
  });
});
