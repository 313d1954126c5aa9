import type { BucketPolicy, BucketStore, BudgetScopeType } from './bucket-store.interface';
import { DuplicateReservationError } from './bucket-store.errors';
import { FailoverBucketStore, type StoreTransition } from './failover-bucket.store';
import { MemoryBucketStore } from './memory-bucket.store';
import { BucketStoreUnavailableError } from './store-unavailable.error';

const defaults: Record<BudgetScopeType, BucketPolicy> = {
  global: { capacity: 10_000, refillPerSec: 0 },
  team: { capacity: 5_000, refillPerSec: 0 },
  rolegroup: { capacity: 4_000, refillPerSec: 0 },
  role: { capacity: 2_000, refillPerSec: 0 },
  user: { capacity: 1_000, refillPerSec: 0 },
};
const alice = { type: 'user', id: 'alice' } as const;

/** A memory store that can be switched "down": every call then fails like an outage. */
class FlakyStore implements BucketStore {
  readonly backend = 'redis';
  down = false;
  readonly inner = new MemoryBucketStore({ defaults, sweepIntervalMs: 0 });

  private gate<T>(fn: () => Promise<T>, operation: string): Promise<T> {
    return this.down
      ? Promise.reject(new BucketStoreUnavailableError('redis', operation, 'ECONNREFUSED'))
      : fn();
  }
  reserve: BucketStore['reserve'] = (r) => this.gate(() => this.inner.reserve(r), 'reserve');
  settle: BucketStore['settle'] = (id, n) => this.gate(() => this.inner.settle(id, n), 'settle');
  getBucket: BucketStore['getBucket'] = (s) => this.gate(() => this.inner.getBucket(s), 'get');
  getPolicy: BucketStore['getPolicy'] = (s) => this.gate(() => this.inner.getPolicy(s), 'get');
  setPolicy: BucketStore['setPolicy'] = (s, p) =>
    this.gate(() => this.inner.setPolicy(s, p), 'set');
  getOverride: BucketStore['getOverride'] = (s) =>
    this.gate(() => this.inner.getOverride(s), 'getOverride');
  listPolicies: BucketStore['listPolicies'] = (q) =>
    this.gate(() => this.inner.listPolicies(q), 'listPolicies');
  deletePolicy: BucketStore['deletePolicy'] = (s) =>
    this.gate(() => this.inner.deletePolicy(s), 'deletePolicy');
  resetBucket: BucketStore['resetBucket'] = (s) =>
    this.gate(() => this.inner.resetBucket(s), 'resetBucket');
  lowerLevel: BucketStore['lowerLevel'] = (s, n) =>
    this.gate(() => this.inner.lowerLevel(s, n), 'lowerLevel');
  ping = () => this.gate(() => Promise.resolve(), 'ping');
  close = () => this.inner.close();
}

function setup(mode: 'closed' | 'open' | 'local') {
  const primary = new FlakyStore();
  const transitions: StoreTransition[] = [];
  const store = new FailoverBucketStore({
    primary,
    mode,
    defaults,
    probeIntervalMs: 10,
    onTransition: (t) => transitions.push(t),
  });
  return { primary, store, transitions };
}

const until = async (predicate: () => boolean) => {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(predicate()).toBe(true);
};

describe('FailoverBucketStore', () => {
  it('passes everything through while the primary is healthy', async () => {
    const { primary, store } = setup('closed');
    const result = await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 100 });
    expect(result).toMatchObject({ admitted: true });
    expect(result.admitted && result.degraded).toBeUndefined();
    expect((await primary.inner.getBucket(alice)).tokens).toBe(900);
    expect(store.state).toMatchObject({ healthy: true, mode: 'closed', backend: 'redis' });
    await store.close();
  });

  it('closed: refuses while down, reports once, recovers by itself', async () => {
    const { primary, store, transitions } = setup('closed');
    primary.down = true;
    await expect(
      store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 1 }),
    ).rejects.toBeInstanceOf(BucketStoreUnavailableError);
    await expect(store.getBucket(alice)).rejects.toBeInstanceOf(BucketStoreUnavailableError);
    expect(store.state.healthy).toBe(false);
    expect(transitions).toHaveLength(1);

    primary.down = false;
    await until(() => store.state.healthy);
    expect(transitions[1]).toMatchObject({ healthy: true });
    await expect(
      store.reserve({ reservationId: 'r2', scopes: [alice], tokens: 1 }),
    ).resolves.toMatchObject({
      admitted: true,
    });
    await store.close();
  });

  it('tells every watcher about each transition, until it stops watching', async () => {
    const { primary, store } = setup('local');
    const seen: boolean[] = [];
    const stop = store.watchTransitions((t) => seen.push(t.healthy));
    // A failing watcher neither stops the others nor the recovery.
    store.watchTransitions(() => {
      throw new Error('watcher bug');
    });
    primary.down = true;
    await store.getBucket(alice);
    primary.down = false;
    await until(() => store.state.healthy);
    expect(seen).toEqual([false, true]);

    stop();
    primary.down = true;
    await store.getBucket(alice);
    primary.down = false;
    await until(() => store.state.healthy);
    expect(seen).toEqual([false, true]);
    await store.close();
  });

  it('open: admits without counting while down', async () => {
    const { primary, store } = setup('open');
    primary.down = true;
    const result = await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 5000 });
    expect(result).toEqual({ admitted: true, reservationId: 'r1', buckets: [], degraded: 'open' });
    await store.close();
  });

  it('local: charges local buckets with the policies seen on the primary', async () => {
    const { primary, store } = setup('local');
    await store.setPolicy(alice, { capacity: 300 });
    primary.down = true;
    const first = await store.reserve({ reservationId: 'r1', scopes: [alice], tokens: 200 });
    expect(first).toMatchObject({ admitted: true, degraded: 'local' });
    expect(first.buckets[0]).toMatchObject({ capacity: 300, tokens: 100 });
    expect(
      await store.reserve({ reservationId: 'r2', scopes: [alice], tokens: 200 }),
    ).toMatchObject({ admitted: false, reason: 'insufficient' });
    // Policy changes must reach every instance, so they wait for the primary.
    await expect(store.setPolicy(alice, { capacity: 1 })).rejects.toBeInstanceOf(
      BucketStoreUnavailableError,
    );
    // A local reservation settles locally, even after the primary is back.
    primary.down = false;
    await until(() => store.state.healthy);
    await expect(store.settle('r1', 50)).resolves.toEqual({ applied: true, refunded: 150 });
    await expect(store.settle('r1', 50)).resolves.toEqual({ applied: false, refunded: 0 });
    await store.close();
  });

  it('local: budget listings, deletions and resets wait for the primary', async () => {
    const { primary, store } = setup('local');
    await store.setPolicy(alice, { capacity: 300 });
    await expect(store.getOverride(alice)).resolves.toEqual({ capacity: 300 });
    await expect(store.listPolicies()).resolves.toMatchObject({ overrides: [{ scope: alice }] });
    primary.down = true;
    // Marks the primary down like any other call.
    await expect(store.listPolicies()).rejects.toBeInstanceOf(BucketStoreUnavailableError);
    for (const call of [
      () => store.getOverride(alice),
      () => store.deletePolicy(alice),
      () => store.resetBucket(alice),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(BucketStoreUnavailableError);
    }
    primary.down = false;
    await until(() => store.state.healthy);
    await expect(store.deletePolicy(alice)).resolves.toMatchObject({
      deleted: true,
      bucket: { capacity: 1_000 },
    });
    // The local buckets of a later outage no longer carry the deleted override.
    primary.down = true;
    const local = await store.reserve({ reservationId: 'r3', scopes: [alice], tokens: 1 });
    expect(local.buckets[0]).toMatchObject({ capacity: 1_000 });
    await store.close();
  });

  it('rethrows errors that are not outages without changing state', async () => {
    const { store } = setup('local');
    await store.reserve({ reservationId: 'dup', scopes: [alice], tokens: 1 });
    await expect(
      store.reserve({ reservationId: 'dup', scopes: [alice], tokens: 1 }),
    ).rejects.toBeInstanceOf(DuplicateReservationError);
    expect(store.state.healthy).toBe(true);
    await store.close();
  });

  it('check() marks the store down at boot when the primary does not answer', async () => {
    const { primary, store } = setup('closed');
    primary.down = true;
    await expect(store.check()).resolves.toBe(false);
    expect(store.state.healthy).toBe(false);
    await store.close();
  });
});
