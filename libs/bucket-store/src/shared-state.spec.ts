import { createRedisClient, waitForRedisReady, type RedisClient } from './redis-client';
import { redisKeys } from './redis-keys';
import { MemorySharedState, RedisSharedState, type SharedState } from './shared-state';
import { BucketStoreUnavailableError } from './store-unavailable.error';
import { describeWithRedis, probeRedisSync, testRedisUrl } from './testing/redis-availability';
import { deleteNamespace, uniqueNamespace } from './testing/redis-test-store';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What both implementations must do; leases run on real time (Redis expires them itself). */
function describeSharedState(name: string, open: () => Promise<SharedState>): void {
  describe(name, () => {
    let state: SharedState;

    beforeEach(async () => {
      state = await open();
    });

    it('gives a lease to one holder at a time; the holder renews it; it lapses after its TTL', async () => {
      expect(await state.acquireLease('job', 'a', 150)).toBe(true);
      expect(await state.acquireLease('job', 'b', 150)).toBe(false);
      expect(await state.acquireLease('job', 'a', 150)).toBe(true);
      expect(await state.acquireLease('other-job', 'b', 150)).toBe(true);
      await sleep(200);
      expect(await state.acquireLease('job', 'b', 150)).toBe(true);
      expect(await state.acquireLease('job', 'a', 150)).toBe(false);
    });

    it('refuses a lease without a holder or with a bad TTL', async () => {
      await expect(state.acquireLease('job', '', 100)).rejects.toBeInstanceOf(RangeError);
      await expect(state.acquireLease('job', 'a', 0)).rejects.toBeInstanceOf(RangeError);
      await expect(state.acquireLease('job', 'a', 1.5)).rejects.toBeInstanceOf(RangeError);
    });

    it('keeps records per collection, overwrites by field and deletes them', async () => {
      expect(await state.readRecords('limits')).toEqual(new Map());
      await state.writeRecord('limits', 'ft:gpt-4o-mini:org::x', '{"a":1}');
      await state.writeRecord('limits', 'gpt-4o', 'one');
      await state.writeRecord('limits', 'gpt-4o', 'two');
      await state.writeRecord('status', 'lastSuccessAt', '5');
      expect(await state.readRecords('limits')).toEqual(
        new Map([
          ['ft:gpt-4o-mini:org::x', '{"a":1}'],
          ['gpt-4o', 'two'],
        ]),
      );
      await state.deleteRecords('limits', ['gpt-4o', 'never-there']);
      await state.deleteRecords('limits', []);
      expect([...(await state.readRecords('limits')).keys()]).toEqual(['ft:gpt-4o-mini:org::x']);
      expect(await state.readRecords('status')).toEqual(new Map([['lastSuccessAt', '5']]));
    });
  });
}

describeSharedState('MemorySharedState', () => Promise.resolve(new MemorySharedState()));

const URL = testRedisUrl();

describeWithRedis('RedisSharedState', probeRedisSync(URL), () => {
  let client: RedisClient;
  const namespaces: string[] = [];

  beforeAll(async () => {
    client = createRedisClient({ url: URL, db: 2 });
    await waitForRedisReady(client);
  });

  afterAll(async () => {
    for (const namespace of namespaces) await deleteNamespace(client, namespace);
    await client.quit();
  });

  describeSharedState('on a single Redis', () => {
    const namespace = uniqueNamespace('shared');
    namespaces.push(namespace);
    return Promise.resolve(new RedisSharedState(client, namespace));
  });

  it('keeps its keys under the namespace hash tag', async () => {
    const namespace = uniqueNamespace('shared-keys');
    namespaces.push(namespace);
    const state = new RedisSharedState(client, namespace);
    await state.acquireLease('job', 'a', 60_000);
    await state.writeRecord('limits', 'gpt-4o', 'x');
    const keys = redisKeys(namespace);
    expect(await client.get(keys.lease('job'))).toBe('a');
    expect(await client.pttl(keys.lease('job'))).toBeGreaterThan(59_000);
    expect(await client.hget(keys.shared('limits'), 'gpt-4o')).toBe('x');
    expect(keys.lease('job').startsWith(`tg:{${namespace}}:`)).toBe(true);
  });

  it('reports an unreachable Redis as BucketStoreUnavailableError', async () => {
    const down = createRedisClient({ url: 'redis://127.0.0.1:1', db: 0 });
    down.on('error', () => undefined);
    const state = new RedisSharedState(down, 'down');
    try {
      await expect(state.readRecords('limits')).rejects.toBeInstanceOf(BucketStoreUnavailableError);
      await expect(state.acquireLease('job', 'a', 100)).rejects.toBeInstanceOf(
        BucketStoreUnavailableError,
      );
    } finally {
      down.disconnect();
    }
  });
});
