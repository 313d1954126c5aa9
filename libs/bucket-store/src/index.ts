export * from './bucket-store.interface';
export { DuplicateReservationError } from './bucket-store.errors';
export {
  isScopeType,
  isUpstreamId,
  isUpstreamScopeType,
  scopeKey,
  UNLIMITED_POLICY,
  UPSTREAM_ID_PATTERN,
} from './bucket-store.validation';
export { MAX_TOKENS, MILLI_PER_TOKEN } from './bucket-math';
export {
  MemoryBucketStore,
  type MemoryBucketStoreOptions,
  type MemoryBucketStoreStats,
  type SweepReport,
} from './memory-bucket.store';
export { BucketStoreModule } from './bucket-store.module';
export { MeteredBucketStore } from './metered-bucket.store';
export { RedisBucketStore, type RedisBucketStoreOptions } from './redis-bucket.store';
export {
  createRedisClient,
  parseRedisUrl,
  waitForRedisReady,
  type RedisClient,
  type RedisClientOptions,
} from './redis-client';
export { DEFAULT_NAMESPACE, redisKeys, type RedisKeys } from './redis-keys';
export { BucketStoreUnavailableError } from './store-unavailable.error';
export {
  FailoverBucketStore,
  type FailoverBucketStoreOptions,
  type StoreFailureMode,
  type StoreState,
  type StoreTransition,
} from './failover-bucket.store';
export {
  MemorySharedState,
  RedisSharedState,
  SHARED_STATE,
  type SharedState,
} from './shared-state';
export { REDIS_CONNECTION, type RedisConnection } from './redis-connection';
