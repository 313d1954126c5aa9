import { createRedisClient } from '@tokenguard/bucket-store';
import {
  describeBucketStoreContract,
  describeWithRedis,
  probeRedisSync,
  redisStoreFactory,
  testRedisUrl,
} from '@tokenguard/bucket-store/testing';

// Single Redis (TEST_REDIS_URL, default 127.0.0.1:6379), database 2, a fresh namespace per
// test whose keys are deleted afterwards.
const url = testRedisUrl();

describeWithRedis('RedisBucketStore on a single Redis', probeRedisSync(url), () => {
  describeBucketStoreContract(
    'RedisBucketStore (single Redis)',
    redisStoreFactory({
      label: 'contract',
      connect: () => createRedisClient({ url, db: 2, connectionName: 'tokenguard-contract' }),
    }),
    { reservationTtl: true },
  );
});
