import { type BucketSnapshot, scopeKey } from '@tokenguard/bucket-store';

export interface BucketView {
  scope: string;
  bucket: { tokens: number; capacity: number; refillPerSec: number };
}

/** The admin API's bucket shape: `{ scope: "user:alice", bucket: { tokens, capacity, refillPerSec } }`. */
export function toBucketView(snapshot: BucketSnapshot): BucketView {
  return {
    scope: scopeKey(snapshot.scope),
    bucket: {
      // Milli-token precision is all the store keeps.
      tokens: Math.round(snapshot.tokens * 1000) / 1000,
      capacity: snapshot.capacity,
      refillPerSec: snapshot.refillPerSec,
    },
  };
}
