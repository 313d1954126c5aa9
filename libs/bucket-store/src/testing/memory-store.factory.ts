import { MemoryBucketStore } from '../memory-bucket.store';
import type { BucketStoreFactory } from './bucket-store.contract';

/**
 * Contract factory for MemoryBucketStore that honours every contract option. Run it with
 * `describeBucketStoreContract(name, memoryStoreFactory, { reservationTtl: true })`.
 */
export const memoryStoreFactory: BucketStoreFactory = (defaults, options = {}) => {
  // No timer: the contract's storage probe sweeps explicitly.
  const store = new MemoryBucketStore({
    defaults,
    reservationTtlMs: options.reservationTtlMs,
    sweepIntervalMs: 0,
  });
  return Promise.resolve({
    store,
    cleanup: () => store.close(),
    storedBuckets: () => {
      store.sweep(Number.MAX_SAFE_INTEGER);
      return Promise.resolve(store.stats().buckets);
    },
    idleGraceMs: 0,
  });
};
