import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '@tokenguard/config';
import { BUCKET_STORE, type BucketStore } from './bucket-store.interface';
import { MemoryBucketStore } from './memory-bucket.store';

function createBucketStore(config: AppConfig): BucketStore {
  if (config.redisUrl !== undefined) {
    throw new Error(
      'REDIS_URL is set, but this build has only the in-memory store; unset REDIS_URL to run on it.',
    );
  }
  return new MemoryBucketStore({
    defaults: config.limits.defaults,
    reservationTtlMs: config.limits.reservationTtlMs,
  });
}

/** Provides `BUCKET_STORE` to the whole app, chosen from configuration. */
@Global()
@Module({
  providers: [{ provide: BUCKET_STORE, inject: [AppConfig], useFactory: createBucketStore }],
  exports: [BUCKET_STORE],
})
export class BucketStoreModule implements OnApplicationShutdown {
  constructor(@Inject(BUCKET_STORE) private readonly store: BucketStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
