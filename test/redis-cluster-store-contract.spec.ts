import { Cluster } from 'ioredis';
import { createRedisClient, redisKeys } from '@tokenguard/bucket-store';
import {
  type RedisClusterHandle,
  describeBucketStoreContract,
  describeWithRedis,
  openRedisTestStore,
  probeRedisBinariesSync,
  redisStoreFactory,
  startRedisCluster,
} from '@tokenguard/bucket-store/testing';

// A real 3-master Redis Cluster on free local ports, started for this file and removed after.
describeWithRedis('RedisBucketStore on a Redis Cluster', probeRedisBinariesSync(), () => {
  let cluster: RedisClusterHandle | undefined;

  const connect = () => {
    if (cluster === undefined) throw new Error('the cluster did not start');
    return createRedisClient({
      clusterNodes: cluster.nodes,
      connectionName: 'tokenguard-cluster-contract',
    });
  };
  const DEFAULT = { capacity: 1_000, refillPerSec: 1 };
  const defaults = {
    global: DEFAULT,
    team: DEFAULT,
    rolegroup: DEFAULT,
    role: DEFAULT,
    user: DEFAULT,
  };

  beforeAll(async () => {
    cluster = await startRedisCluster({ size: 3 });
  }, 60_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 30_000);

  describeBucketStoreContract(
    'RedisBucketStore (3-node Redis Cluster)',
    redisStoreFactory({ label: 'cluster', connect }),
    { reservationTtl: true },
  );

  it('keeps every key of a namespace in one slot, on one master', async () => {
    const handle = await openRedisTestStore({ label: 'slot', connect }, { defaults });
    const { store } = handle;
    try {
      const scopes = [
        { type: 'global', id: 'global' },
        { type: 'team', id: 'red' },
        { type: 'rolegroup', id: 'eng' },
        { type: 'role', id: 'dev' },
        { type: 'user', id: 'alice' },
      ] as const;
      await store.setPolicy(scopes[1], { capacity: 500 });
      await store.reserve({ reservationId: 'open-1', scopes, tokens: 10 });

      const client = store.client as Cluster;
      const keys = redisKeys(store.namespace);
      const perNode = await Promise.all(
        client.nodes('master').map((node) => node.keys(`${keys.prefix}*`)),
      );
      const holding = perNode.filter((found) => found.length > 0);
      expect(holding).toHaveLength(1);
      expect(holding[0]).toHaveLength(7);
      const slots = await Promise.all(
        holding[0].map((key) => client.nodes('master')[0].cluster('KEYSLOT', key)),
      );
      expect(new Set(slots).size).toBe(1);
      // The settle script reaches keys named in the record, not in KEYS: legal in one slot.
      expect(await store.settle('open-1', 4)).toEqual({ applied: true, refunded: 6 });
    } finally {
      await handle.cleanup();
    }
  });
});
