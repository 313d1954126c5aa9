/**
 * Memory per idle bucket in the memory store, and that idle buckets go away: one million
 * distinct users each make one reservation (user + global scopes) and settle it; the heap grown
 * by it, after a full GC, divided by the buckets held, is the figure. Then the clock moves past
 * the refill time and the sweep evicts them; the heap must come back down.
 *
 * `node --expose-gc bucket-memory.js [users]` (run.ts runs it). Prints one JSON line.
 */
import { MemoryBucketStore } from '../../libs/bucket-store/src/memory-bucket.store';
import { FakeClock } from '../../libs/bucket-store/src/testing/fake-clock';

const USERS = Number(process.argv[2] ?? 1_000_000);

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<void> {
  const clock = new FakeClock(0);
  const store = new MemoryBucketStore({
    defaults: {
      global: { capacity: 1e12, refillPerSec: 1e9 },
      team: { capacity: 5_000, refillPerSec: 25 },
      rolegroup: { capacity: 5_000, refillPerSec: 25 },
      role: { capacity: 5_000, refillPerSec: 25 },
      user: { capacity: 1_000, refillPerSec: 5 },
    },
    clock,
    sweepIntervalMs: 0,
  });
  const before = heapAfterGc();
  for (let i = 0; i < USERS; i++) {
    const reservationId = `r${i}`;
    await store.reserve({
      reservationId,
      scopes: [
        { type: 'global', id: 'global' },
        { type: 'user', id: `user-${i}` },
      ],
      tokens: 10,
    });
    await store.settle(reservationId, 10);
  }
  const held = store.stats().buckets;
  const full = heapAfterGc();
  // Refilled (10 tokens at 5/s) and idle: the sweep may drop them.
  clock.advance(60_000);
  while (!store.sweep(undefined, 1_000).passComplete) {
    /* one full pass */
  }
  const left = store.stats().buckets;
  const after = heapAfterGc();
  await store.close();
  process.stdout.write(
    `${JSON.stringify({
      users: USERS,
      bucketsHeld: held,
      bytesPerIdleBucket: Math.round((full - before) / held),
      bucketsAfterSweep: left,
      heapMbBefore: +(before / 2 ** 20).toFixed(1),
      heapMbFull: +(full / 2 ** 20).toFixed(1),
      heapMbAfterSweep: +(after / 2 ** 20).toFixed(1),
    })}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
