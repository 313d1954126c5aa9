import type { GatewayMetrics, StoreOperation } from '@tokenguard/metrics';
import type {
  BucketPolicy,
  BucketSnapshot,
  BucketStore,
  DeletePolicyResult,
  ListPoliciesQuery,
  PolicyPage,
  PolicyPatch,
  ReserveRequest,
  ReserveResult,
  ScopeRef,
  SettleResult,
  StoreDefaults,
} from './bucket-store.interface';
import { isUpstreamScopeType } from './bucket-store.validation';

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
    private readonly defaults: StoreDefaults,
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
      // Upstream buckets have gauges of their own (upstream_limit_*), set by the limit sync.
      if (!isUpstreamScopeType(scope.type)) this.metrics.bucketSeen(scope.type, scope.id);
      return result;
    } catch (error) {
      this.done('set_policy', false, startedAt);
      throw error;
    }
  }

  getOverride(scope: ScopeRef): Promise<PolicyPatch | null> {
    return this.timed('get_override', () => this.store.getOverride(scope));
  }

  listPolicies(query?: ListPoliciesQuery): Promise<PolicyPage> {
    return this.timed('list_policies', () => this.store.listPolicies(query));
  }

  deletePolicy(scope: ScopeRef): Promise<DeletePolicyResult> {
    return this.timed('delete_policy', () => this.store.deletePolicy(scope));
  }

  resetBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    return this.timed('reset_bucket', () => this.store.resetBucket(scope));
  }

  lowerLevel(scope: ScopeRef, tokens: number): Promise<BucketSnapshot> {
    return this.timed('lower_level', () => this.store.lowerLevel(scope, tokens));
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
      if (isUpstreamScopeType(scope.type)) continue;
      const fallback = this.defaults[scope.type];
      if (capacity !== fallback.capacity || refillPerSec !== fallback.refillPerSec) {
        this.metrics.bucketSeen(scope.type, scope.id);
      }
    }
  }

  /** For the rare admin operations; the hot ones above avoid the extra closure. */
  private async timed<T>(operation: StoreOperation, call: () => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    try {
      const result = await call();
      this.done(operation, true, startedAt);
      return result;
    } catch (error) {
      this.done(operation, false, startedAt);
      throw error;
    }
  }

  private done(operation: StoreOperation, ok: boolean, startedAt: number): void {
    this.metrics.storeOperation(operation, ok, performance.now() - startedAt);
  }
}
