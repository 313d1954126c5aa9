import { ApiProperty } from '@nestjs/swagger';
import { type BucketSnapshot, scopeKey } from '@tokenguard/bucket-store';

class BucketLevel {
  @ApiProperty({ example: 812.5, description: 'Tokens available now (negative: debt).' })
  tokens!: number;

  @ApiProperty({ example: 1000 })
  capacity!: number;

  @ApiProperty({ example: 5, description: 'Tokens per second.' })
  refillPerSec!: number;
}

/** A bucket as the admin API shows it (documentation type for BucketView). */
export class BucketViewDto {
  @ApiProperty({ example: 'user:alice' })
  scope!: string;

  @ApiProperty({ type: BucketLevel })
  bucket!: BucketLevel;
}

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
