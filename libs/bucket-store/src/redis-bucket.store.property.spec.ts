import fc from 'fast-check';
import { Redis } from 'ioredis';
import { DuplicateReservationError } from './bucket-store.errors';
import {
  BucketPolicy,
  BucketStore,
  GLOBAL_SCOPE_ID,
  ScopeRef,
  BudgetScopeType,
} from './bucket-store.interface';
import { MemoryBucketStore } from './memory-bucket.store';
import { RedisBucketStore } from './redis-bucket.store';
import { createRedisClient, waitForRedisReady } from './redis-client';
import { FakeClock } from './testing/fake-clock';
import { describeWithRedis, probeRedisSync, testRedisUrl } from './testing/redis-availability';
import { deleteNamespace, uniqueNamespace } from './testing/redis-test-store';

/**
 * Properties of RedisBucketStore, on a real Redis. Every run is I/O, so runs are few.
 *
 * 1. Differential: at refill 0 time plays no part, so the Redis store must give exactly the
 *    answers of MemoryBucketStore to any sequence of reserves, settles (repeated ones
 *    included), capacity changes and reads.
 * 2. With refill, on Redis's clock: admissions never exceed capacity + refill × elapsed (net
 *    of settlements), levels never exceed capacity and stay whole milli-tokens, a repeated
 *    settle is never applied.
 */

const SCOPES: readonly ScopeRef[] = [
  { type: 'global', id: GLOBAL_SCOPE_ID },
  { type: 'team', id: 'red' },
  { type: 'user', id: 'alice' },
];
const scopesOf = (mask: number) => SCOPES.filter((_, i) => (mask & (1 << i)) !== 0);

function defaultsFor(policies: readonly BucketPolicy[]): Record<BudgetScopeType, BucketPolicy> {
  const base: BucketPolicy = { capacity: 1, refillPerSec: 0 };
  return { global: policies[0], team: policies[1], rolegroup: base, role: base, user: policies[2] };
}

// Round values often, so that requests hit levels and capacities exactly.
const ROUND = [0, 1, 10, 100, 500, 1_000];
const capacityArb = fc.oneof(
  fc.constantFrom(...ROUND),
  fc.integer({ min: 0, max: 5_000 }),
  fc.integer({ min: 0, max: 5_000_000 }).map((m) => m / 1_000),
);
const tokensArb = fc.oneof(fc.constantFrom(...ROUND), fc.integer({ min: 0, max: 3_000 }));

type Op =
  | {
      readonly kind: 'reserve';
      readonly tokens: number;
      readonly mask: number;
      readonly reuse: number | null;
    }
  | { readonly kind: 'settle'; readonly pick: number; readonly actual: number }
  | { readonly kind: 'capacity'; readonly scope: number; readonly capacity: number }
  | { readonly kind: 'read'; readonly scope: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .record({
        tokens: tokensArb,
        mask: fc.integer({ min: 0, max: 7 }),
        // Now and then reuse an earlier id, open or not.
        reuse: fc.option(fc.nat(), { freq: 4 }),
      })
      .map((r): Op => ({ kind: 'reserve', ...r })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ pick: fc.nat(), actual: fc.oneof(tokensArb, fc.integer({ min: 0, max: 4_000 })) })
      .map((r): Op => ({ kind: 'settle', ...r })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ scope: fc.integer({ min: 0, max: 2 }), capacity: capacityArb })
      .map((r): Op => ({ kind: 'capacity', ...r })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 2 }).map((scope): Op => ({ kind: 'read', scope })),
  },
);

/** The outcome of a call, comparable across stores: its value, or its error's class. */
async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await call() };
  } catch (err) {
    return { error: err instanceof DuplicateReservationError ? 'duplicate' : String(err) };
  }
}

const url = testRedisUrl();

describeWithRedis('RedisBucketStore properties', probeRedisSync(url), () => {
  let client: Redis;

  beforeAll(async () => {
    client = createRedisClient({ url, db: 4 }) as Redis;
    client.on('error', () => undefined);
    await waitForRedisReady(client);
  });

  afterAll(async () => {
    await client.quit();
  });

  async function withStores<T>(
    defaults: Record<BudgetScopeType, BucketPolicy>,
    body: (redis: RedisBucketStore, memory: MemoryBucketStore) => Promise<T>,
  ): Promise<T> {
    const namespace = uniqueNamespace('prop');
    const redis = new RedisBucketStore({ client, namespace, defaults, closeClient: false });
    const memory = new MemoryBucketStore({ defaults, clock: new FakeClock(0), sweepIntervalMs: 0 });
    try {
      return await body(redis, memory);
    } finally {
      await deleteNamespace(client, namespace);
      await redis.close();
      await memory.close();
    }
  }

  it('answers exactly like MemoryBucketStore when nothing refills', async () => {
    const policyArb = capacityArb.map((capacity): BucketPolicy => ({ capacity, refillPerSec: 0 }));
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 3, maxLength: 3 }),
        fc.array(opArb, { minLength: 10, maxLength: 50, size: 'max' }),
        (policies, ops) =>
          withStores(defaultsFor(policies), async (redis, memory) => {
            const stores: BucketStore[] = [redis, memory];
            const issued: string[] = [];
            for (const op of ops) {
              let call: (s: BucketStore) => Promise<unknown>;
              if (op.kind === 'reserve') {
                const id =
                  op.reuse !== null && issued.length > 0
                    ? issued[op.reuse % issued.length]
                    : `r${issued.length}`;
                if (!issued.includes(id)) issued.push(id);
                const request = { reservationId: id, scopes: scopesOf(op.mask), tokens: op.tokens };
                call = (s) => s.reserve(request);
              } else if (op.kind === 'settle') {
                if (issued.length === 0) continue;
                const id = issued[op.pick % issued.length];
                call = (s) => s.settle(id, op.actual);
              } else if (op.kind === 'capacity') {
                call = (s) => s.setPolicy(SCOPES[op.scope], { capacity: op.capacity });
              } else {
                call = (s) => s.getBucket(SCOPES[op.scope]);
              }
              const [fromRedis, fromMemory] = await Promise.all(
                stores.map((s) => outcome(() => call(s))),
              );
              expect(fromRedis).toEqual(fromMemory);
            }
            for (const scope of SCOPES) {
              expect(await redis.getPolicy(scope)).toEqual(await memory.getPolicy(scope));
            }
          }),
      ),
      { numRuns: 40 },
    );
  }, 60_000);

  it('keeps the bucket invariants with refill on the Redis clock', async () => {
    const policyArb: fc.Arbitrary<BucketPolicy> = fc.record({
      capacity: capacityArb,
      refillPerSec: fc.oneof(
        fc.constant(0),
        fc.double({ min: 0, max: 50, noNaN: true }),
        // Fast enough that the waits below matter against the capacities above.
        fc.constantFrom(100, 1_000, 5_000),
      ),
    });
    const stepArb = fc.oneof(
      opArb.filter((op) => op.kind !== 'capacity'),
      fc.integer({ min: 0, max: 15 }).map((ms) => ({ kind: 'wait' as const, ms })),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(policyArb, { minLength: 3, maxLength: 3 }),
        fc.array(stepArb, { minLength: 5, maxLength: 30, size: 'max' }),
        (policies, steps) =>
          withStores(defaultsFor(policies), async (store) => {
            const start = Date.now();
            const net = [0, 0, 0];
            const open: { id: string; mask: number }[] = [];
            const settled: string[] = [];
            let n = 0;
            for (const step of steps) {
              if (step.kind === 'wait') {
                await new Promise((resolve) => setTimeout(resolve, step.ms));
              } else if (step.kind === 'reserve') {
                const id = `r${n++}`;
                const result = await store.reserve({
                  reservationId: id,
                  scopes: scopesOf(step.mask),
                  tokens: step.tokens,
                });
                if (!result.admitted) continue;
                open.push({ id, mask: step.mask });
                // Redis time between the buckets' first use and this reserve is at most the
                // time measured here around all of it.
                const elapsed = Date.now() - start;
                SCOPES.forEach((_, i) => {
                  if ((step.mask & (1 << i)) === 0) return;
                  net[i] += step.tokens;
                  const { capacity, refillPerSec } = policies[i];
                  const bound = capacity + (refillPerSec * elapsed) / 1_000 + steps.length / 1_000;
                  expect(net[i]).toBeLessThanOrEqual(bound);
                });
              } else if (step.kind === 'settle') {
                if (open.length > 0) {
                  const { id, mask } = open.splice(step.pick % open.length, 1)[0];
                  const { refunded } = await store.settle(id, step.actual);
                  SCOPES.forEach((_, i) => {
                    if (mask & (1 << i)) net[i] -= refunded;
                  });
                  settled.push(id);
                } else if (settled.length > 0) {
                  const again = await store.settle(settled[step.pick % settled.length], 0);
                  expect(again).toEqual({ applied: false, refunded: 0 });
                }
              }
              for (const scope of SCOPES) {
                const bucket = await store.getBucket(scope);
                expect(bucket.tokens).toBeLessThanOrEqual(bucket.capacity);
                const milli = bucket.tokens * 1_000;
                expect(Math.abs(milli - Math.round(milli))).toBeLessThan(1e-6);
                if (bucket.tokens >= bucket.capacity) expect(bucket.msUntilFull).toBe(0);
              }
            }
          }),
      ),
      { numRuns: 20 },
    );
  }, 60_000);
});
