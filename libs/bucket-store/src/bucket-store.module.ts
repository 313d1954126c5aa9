import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@tokenguard/config';
import { GatewayMetrics } from '@tokenguard/metrics';
import { BUCKET_STORE, type BucketStore } from './bucket-store.interface';
import { FailoverBucketStore, type StoreTransition } from './failover-bucket.store';
import { MemoryBucketStore } from './memory-bucket.store';
import { MeteredBucketStore } from './metered-bucket.store';
import { RedisBucketStore } from './redis-bucket.store';
import { createRedisClient, waitForRedisReady } from './redis-client';
import { REDIS_CONNECTION, type RedisConnection } from './redis-connection';
import {
  MemorySharedState,
  RedisSharedState,
  SHARED_STATE,
  type SharedState,
} from './shared-state';

const logger = new Logger('BucketStore');

/** How long boot waits for Redis before starting in the configured failure mode. */
const BOOT_WAIT_MS = 3000;

/** The store and the shared state kept by the same engine (one Redis connection for both). */
interface StoreEngine {
  readonly store: BucketStore;
  readonly shared: SharedState;
  readonly redis?: RedisConnection;
}

const STORE_ENGINE = Symbol('STORE_ENGINE');

async function createBucketStore(config: AppConfig, metrics: GatewayMetrics): Promise<StoreEngine> {
  // With metrics off the engine is used as is: not even a wrapper on the request path.
  const { redis, failureMode } = config.store;
  const { defaults, reservationTtlMs } = config.limits;
  const metered = (store: BucketStore): BucketStore =>
    metrics.enabled ? new MeteredBucketStore(store, metrics, defaults) : store;
  if (!redis) {
    const store = metered(new MemoryBucketStore({ defaults, reservationTtlMs }));
    metrics.watchBuckets(store);
    return { store, shared: new MemorySharedState() };
  }

  const client = createRedisClient({
    url: redis.url,
    clusterNodes: redis.clusterNodes.length > 0 ? redis.clusterNodes : undefined,
    commandTimeoutMs: redis.commandTimeoutMs,
    connectionName: 'tokenguard',
  });
  // Outages are reported once per transition by the failover store; ioredis would otherwise
  // print every reconnection attempt.
  client.on('error', () => undefined);
  // The failover store stays outermost: health checks read its state through BUCKET_STORE.
  const store = new FailoverBucketStore({
    primary: metered(
      new RedisBucketStore({
        client,
        namespace: redis.namespace,
        defaults,
        reservationTtlMs,
      }),
    ),
    mode: failureMode,
    defaults,
    reservationTtlMs,
    onTransition: (event) => {
      logTransition(event);
      metrics.storeAvailability(event.healthy);
    },
  });
  // Gauges read through the failover store, so that a scrape never waits on a Redis that is
  // known to be down and shows the local buckets in STORE_FAILURE_MODE=local.
  metrics.watchBuckets(store);
  // A gateway that boots while Redis is down still starts (probes and traffic see the mode).
  await waitForRedisReady(client, BOOT_WAIT_MS).catch(() => undefined);
  await store.check();
  return {
    store,
    shared: new RedisSharedState(client, redis.namespace),
    redis: { client, namespace: redis.namespace },
  };
}

function logTransition(event: StoreTransition): void {
  if (event.healthy) {
    logger.log(`Redis is reachable again after ${event.downForMs} ms; shared budgets are back.`);
    return;
  }
  const consequence = {
    closed: 'charged requests are refused with 503 store_unavailable',
    open: 'requests are admitted WITHOUT counting (x-tokenguard-degraded: store)',
    local: 'requests are charged to this instance only (x-tokenguard-degraded: store)',
  }[event.mode];
  logger.error(
    `Redis is unreachable (${event.error.message}); STORE_FAILURE_MODE=${event.mode}: ${consequence}.`,
  );
}

/**
 * Provides `BUCKET_STORE` to the whole app (Redis behind a failure mode, or in-memory), and
 * `SHARED_STATE` from the same engine.
 */
@Global()
@Module({
  providers: [
    { provide: STORE_ENGINE, inject: [AppConfig, GatewayMetrics], useFactory: createBucketStore },
    { provide: BUCKET_STORE, inject: [STORE_ENGINE], useFactory: (e: StoreEngine) => e.store },
    { provide: SHARED_STATE, inject: [STORE_ENGINE], useFactory: (e: StoreEngine) => e.shared },
    {
      provide: REDIS_CONNECTION,
      inject: [STORE_ENGINE],
      useFactory: (e: StoreEngine) => e.redis ?? null,
    },
  ],
  exports: [BUCKET_STORE, SHARED_STATE, REDIS_CONNECTION],
})
export class BucketStoreModule implements OnApplicationShutdown {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
