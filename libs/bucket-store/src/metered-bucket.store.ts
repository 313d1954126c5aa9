import type { GatewayMetrics, StoreOperation } from '@tokenguard/metrics';
import type {
  BucketPolicy,
  BucketSnapshot,
  BucketStore,
  PolicyPatch,
  ReserveRequest,
  ReserveResult,
  ScopeRef,
  ScopeType,
  SettleResult,
} from './bucket-store.interface';

/**
 * Times and counts every operation of the store it wraps (`store_operations_total`,
 * `store_operation_duration_seconds`) and tells the bucket gauges about per-id budgets: those
 * set through this instance, and those a charged request turns out to have (a policy other
 * than its type's default, possibly set through another instance). An id without a budget of
 * its own (any id a client sends) never gets a series. Wraps the engine itself (memory, or
 * Redis under the failover store), so the figures are the engine's; nothing here changes
 * what the store does or returns.
 */
export class MeteredBucketStore implements BucketStore {
  readonly backend: string;

  constructor(
    private readonly store: BucketStore,
    private readonly metrics: GatewayMetrics,
    /** The scope types' default policies, to tell a per-id budget from the default. */
    private readonly defaults: Readonly<Record<ScopeType, BucketPolicy>>,
  ) {
    this.backend = store.backend;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const startedAt = performance.now();
    try {
      const result = await this.store.reserve(request);
      this.done('reserve', true, startedAt);
      this.noteBudgets(result.buckets);
      return result;
    } catch (error) {
      this.done('reserve', false, startedAt);
      throw error;
    }
  }

  async settle(reservationId: string, actualTokens: number): Promise<SettleResult> {
    const startedAt = performance.now();
    try {
      const result = await this.store.settle(reservationId, actualTokens);
      this.done('settle', true, startedAt);
      return result;
    } catch (error) {
      this.done('settle', false, startedAt);
      throw error;
    }
  }

  async getBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    const startedAt = performance.now();
    try {
      const result = await this.store.getBucket(scope);
      this.done('get_bucket', true, startedAt);
      return result;
    } catch (error) {
      this.done('get_bucket', false, startedAt);
      throw error;
    }
  }

  async getPolicy(scope: ScopeRef): Promise<BucketPolicy> {
    const startedAt = performance.now();
    try {
      const result = await this.store.getPolicy(scope);
      this.done('get_policy', true, startedAt);
      return result;
    } catch (error) {
      this.done('get_policy', false, startedAt);
      throw error;
    }
  }

  async setPolicy(scope: ScopeRef, patch: PolicyPatch): Promise<BucketSnapshot> {
    const startedAt = performance.now();
    try {
      const result = await this.store.setPolicy(scope, patch);
      this.done('set_policy', true, startedAt);
      this.metrics.bucketSeen(scope.type, scope.id);
      return result;
    } catch (error) {
      this.done('set_policy', false, startedAt);
      throw error;
    }
  }

  async ping(): Promise<void> {
    const startedAt = performance.now();
    try {
      await this.store.ping();
      this.done('ping', true, startedAt);
    } catch (error) {
      this.done('ping', false, startedAt);
      throw error;
    }
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private noteBudgets(buckets: readonly BucketSnapshot[]): void {
    for (const { scope, capacity, refillPerSec } of buckets) {
      const fallback = this.defaults[scope.type];
      if (capacity !== fallback.capacity || refillPerSec !== fallback.refillPerSec) {
        this.metrics.bucketSeen(scope.type, scope.id);
      }
    }
  }

  private done(operation: StoreOperation, ok: boolean, startedAt: number): void {
    this.metrics.storeOperation(operation, ok, performance.now() - startedAt);
  }
}
