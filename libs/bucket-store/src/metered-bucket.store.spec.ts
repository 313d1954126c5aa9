import { PrometheusGatewayMetrics } from '@tokenguard/metrics';
import type { BucketPolicy, BucketStore, BudgetScopeType } from './bucket-store.interface';
import { BucketStoreUnavailableError } from './store-unavailable.error';
import { MemoryBucketStore } from './memory-bucket.store';
import { MeteredBucketStore } from './metered-bucket.store';
import { describeBucketStoreContract, memoryStoreFactory } from './testing';

const DEFAULTS: Record<BudgetScopeType, BucketPolicy> = {
  global: { capacity: 10_000, refillPerSec: 0 },
  team: { capacity: 5000, refillPerSec: 0 },
  rolegroup: { capacity: 4000, refillPerSec: 0 },
  role: { capacity: 2000, refillPerSec: 0 },
  user: { capacity: 1000, refillPerSec: 0 },
};

function metrics() {
  return new PrometheusGatewayMetrics({
    bucketScopes: ['global', 'team', 'user'],
    maxBucketSeries: 100,
    version: 'test',
  });
}

async function read(m: PrometheusGatewayMetrics, name: string, labels: Record<string, string>) {
  let sum = 0;
  for (const family of await m.registry.getMetricsAsJSON()) {
    for (const value of family.values) {
      const sample = (value as { metricName?: string }).metricName ?? family.name;
      const own = value.labels as Record<string, string>;
      if (sample === name && Object.entries(labels).every(([k, v]) => own[k] === v)) {
        sum += value.value;
      }
    }
  }
  return sum;
}

// Metering must not change what the store does.
describeBucketStoreContract(
  'MeteredBucketStore over MemoryBucketStore',
  async (defaults, options) => {
    const inner = await memoryStoreFactory(defaults, options);
    return {
      ...inner,
      store: new MeteredBucketStore(inner.store, metrics(), defaults),
    };
  },
  { reservationTtl: true },
);

describe('MeteredBucketStore', () => {
  it('counts and times every operation by result', async () => {
    const m = metrics();
    const memory = new MemoryBucketStore({ defaults: DEFAULTS, sweepIntervalMs: 0 });
    const store = new MeteredBucketStore(memory, m, DEFAULTS);
    const scopes = [{ type: 'user' as const, id: 'alice' }];
    await store.reserve({ reservationId: 'r1', scopes, tokens: 10 });
    await store.settle('r1', 5);
    await store.getBucket(scopes[0]);
    await store.getPolicy(scopes[0]);
    await store.ping();
    await expect(store.reserve({ reservationId: 'r2', scopes, tokens: -1 })).rejects.toThrow();
    for (const operation of ['reserve', 'settle', 'get_bucket', 'get_policy', 'ping']) {
      expect(await read(m, 'tokenguard_store_operations_total', { operation, result: 'ok' })).toBe(
        1,
      );
    }
    expect(
      await read(m, 'tokenguard_store_operations_total', { operation: 'reserve', result: 'error' }),
    ).toBe(1);
    expect(await read(m, 'tokenguard_store_operation_duration_seconds_count', {})).toBe(6);
    expect(store.backend).toBe('memory');
    await store.close();
  });

  it('counts an outage as an error and rethrows it unchanged', async () => {
    const m = metrics();
    const outage = new BucketStoreUnavailableError('redis', 'ping', 'connection refused');
    const failing = {
      backend: 'redis',
      ping: () => Promise.reject(outage),
    } as unknown as BucketStore;
    const store = new MeteredBucketStore(failing, m, DEFAULTS);
    await expect(store.ping()).rejects.toBe(outage);
    expect(
      await read(m, 'tokenguard_store_operations_total', { operation: 'ping', result: 'error' }),
    ).toBe(1);
  });

  it('gives bucket series to per-id budgets only: set here, or found on a charged request', async () => {
    const m = metrics();
    const memory = new MemoryBucketStore({ defaults: DEFAULTS, sweepIntervalMs: 0 });
    // Set before metering starts, as another gateway instance would have.
    await memory.setPolicy({ type: 'team', id: 'elsewhere' }, { capacity: 777 });
    const store = new MeteredBucketStore(memory, m, DEFAULTS);
    m.watchBuckets(store);
    await store.setPolicy({ type: 'user', id: 'budgeted' }, { capacity: 300 });
    await store.reserve({
      reservationId: 'r1',
      scopes: [
        { type: 'team', id: 'elsewhere' },
        { type: 'user', id: 'nobody-special' },
      ],
      tokens: 10,
    });
    const text = await m.registry.metrics();
    expect(text).toContain('scope="team:elsewhere"} 767');
    expect(text).toContain('scope="user:budgeted"} 300');
    expect(text).not.toContain('nobody-special');
    await store.close();
  });
});
