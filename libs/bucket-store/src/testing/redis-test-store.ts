import { Cluster, type Redis } from 'ioredis';
import { RedisBucketStore, type RedisBucketStoreOptions } from '../redis-bucket.store';
import { type RedisClient, waitForRedisReady } from '../redis-client';
import { redisKeys } from '../redis-keys';
import type { BucketStoreFactory, BucketStoreUnderTest } from './bucket-store.contract';

let namespaceSequence = 0;

/** A namespace no other test, worker or earlier run uses. */
export function uniqueNamespace(label: string): string {
  namespaceSequence += 1;
  const run = `${process.pid}-${Date.now().toString(36)}`;
  return `test-${label}-${run}-${namespaceSequence}`;
}

/** The connections that hold keys: the client itself, or every master of a cluster. */
function dataNodes(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Keys matching a SCAN pattern (expired keys are not returned). */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of dataNodes(client)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
      found.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

/** Delete every key of a store namespace. */
export async function deleteNamespace(client: RedisClient, namespace: string): Promise<void> {
  const keys = await scanKeys(client, redisKeys(namespace).matchAll);
  // All keys of a namespace share one hash slot, so a multi-key DEL is legal on a cluster.
  for (let i = 0; i < keys.length; i += 500) await client.del(...keys.slice(i, i + 500));
}

export interface RedisStoreFactoryOptions {
  /** Makes a new connection for each store (e.g. `() => createRedisClient({ url })`). */
  readonly connect: () => RedisClient;
  /** Names the namespaces, for finding leftovers. */
  readonly label: string;
  /** Shorter than the production default so the idle-bucket tests stay quick. */
  readonly idleTtlMarginMs?: number;
  /** Other store options. */
  readonly store?: Partial<Omit<RedisBucketStoreOptions, 'client' | 'defaults' | 'namespace'>>;
}

/** A contract handle: the store, a fresh namespace, the key count probe and a cleanup. */
export async function openRedisTestStore(
  options: RedisStoreFactoryOptions,
  storeOptions: Partial<RedisBucketStoreOptions> & Pick<RedisBucketStoreOptions, 'defaults'>,
): Promise<BucketStoreUnderTest & { readonly store: RedisBucketStore }> {
  const client = options.connect();
  // Errors also reach the callers of commands; this only keeps ioredis from logging them.
  client.on('error', () => undefined);
  await waitForRedisReady(client);
  const namespace = uniqueNamespace(options.label);
  const margin = options.idleTtlMarginMs ?? 150;
  const store = new RedisBucketStore({
    idleTtlMarginMs: margin,
    ...options.store,
    ...storeOptions,
    client,
    namespace,
  });
  const keys = redisKeys(namespace);
  return {
    store,
    storedBuckets: async () => (await scanKeys(client, `${keys.prefix}b:*`)).length,
    // Redis drops a key at its TTL on the first access after it; SCAN skips it from then on.
    idleGraceMs: margin,
    cleanup: async () => {
      try {
        await deleteNamespace(client, namespace);
      } finally {
        await store.close();
      }
    },
  };
}

/** Contract factory: one connection and one fresh namespace per store. */
export function redisStoreFactory(options: RedisStoreFactoryOptions): BucketStoreFactory {
  return (defaults, contractOptions = {}) => {
    const { reservationTtlMs } = contractOptions;
    return openRedisTestStore(
      options,
      reservationTtlMs === undefined ? { defaults } : { defaults, reservationTtlMs },
    );
  };
}
