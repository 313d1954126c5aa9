export {
  type BucketStoreFactory,
  type BucketStoreUnderTest,
  type ContractFeatures,
  type ContractStoreOptions,
  describeBucketStoreContract,
} from './bucket-store.contract';
export { FakeClock } from './fake-clock';
export { memoryStoreFactory } from './memory-store.factory';
export {
  type RedisRequirement,
  describeWithRedis,
  probeRedisBinariesSync,
  probeRedisSync,
  probeThrowawayRedisSync,
  testRedisUrl,
} from './redis-availability';
export {
  type RedisClusterHandle,
  type StartRedisClusterOptions,
  startRedisCluster,
} from './redis-cluster';
export { type RedisServerHandle, startRedisServer } from './redis-server';
export {
  type RedisStoreFactoryOptions,
  deleteNamespace,
  openRedisTestStore,
  redisStoreFactory,
  scanKeys,
  uniqueNamespace,
} from './redis-test-store';
export { type SilentRedisHandle, readRespCommand, startSilentRedis } from './silent-redis';
