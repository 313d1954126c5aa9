import type { RedisClient } from './redis-client';

/**
 * The store's own Redis connection and namespace, for other shared records that belong next to
 * the budgets (API keys): one connection per instance, keys under the same hash tag. Null when
 * the store is in memory.
 */
export interface RedisConnection {
  readonly client: RedisClient;
  readonly namespace: string;
}

/** Injection token: `RedisConnection | null`. The store module closes the client at shutdown. */
export const REDIS_CONNECTION = Symbol('REDIS_CONNECTION');
