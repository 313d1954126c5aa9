import { describeBucketStoreContract, memoryStoreFactory } from '@tokenguard/bucket-store/testing';

// The Redis runs of the same contract live in redis-*-store-contract.spec.ts.
describeBucketStoreContract('MemoryBucketStore', memoryStoreFactory, { reservationTtl: true });
