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
  ScopeType,
  SettleResult,
  StoreDefaults,
} from './bucket-store.interface';
import { resolveDefaults, scopeKey } from './bucket-store.validation';
import { MemoryBucketStore } from './memory-bucket.store';
import { BucketStoreUnavailableError } from './store-unavailable.error';

/**
 * - `closed`: refuse (every call throws BucketStoreUnavailableError; the gateway answers 503).
 * - `open`: admit without counting anything.
 * - `local`: charge this instance's own in-memory buckets, with the same policies.
 */
export type StoreFailureMode = 'closed' | 'open' | 'local';

export interface FailoverBucketStoreOptions {
  readonly primary: BucketStore;
  readonly mode: StoreFailureMode;
  /** Type defaults, for the local buckets used in `local` mode. */
  readonly defaults: StoreDefaults;
  readonly reservationTtlMs?: number;
  /** How often the primary is pinged while it is down. Default 1000 ms. */
  readonly probeIntervalMs?: number;
  /** Per-id policies remembered for `local` mode. Default 10 000. */
  readonly policyMemory?: number;
  /** Told about every transition, for logs (and metrics later). */
  readonly onTransition?: (event: StoreTransition) => void;
}

export type StoreTransition =
  | { readonly healthy: false; readonly mode: StoreFailureMode; readonly error: Error }
  | { readonly healthy: true; readonly downForMs: number };

export interface StoreState {
  readonly backend: string;
  readonly healthy: boolean;
  readonly mode: StoreFailureMode;
  /** When the primary was last seen failing (ms since epoch), while unhealthy. */
  readonly downSince: number | undefined;
}

/**
 * Puts an explicit failure mode in front of the shared store. The first unavailability error
 * marks the primary down for the whole instance (so requests stop waiting on timeouts), a
 * background ping brings it back within about `probeIntervalMs` of Redis answering again, and
 * the state is always readable (`state`) for health checks, headers and logs.
 */
export class FailoverBucketStore implements BucketStore {
  readonly backend: string;
  private healthy = true;
  private downSince: number | undefined;
  private probe: NodeJS.Timeout | undefined;
  private local: MemoryBucketStore | undefined;
  /** Reservations charged to a local store, which settles them even after recovery. */
  private readonly localReservations = new Map<string, MemoryBucketStore>();
  /** Non-default policies seen on the primary, so local buckets enforce the same budgets. */
  private readonly knownPolicies = new Map<string, { scope: ScopeRef; policy: BucketPolicy }>();
  /** Told about every transition after `onTransition` (see watchTransitions). */
  private readonly transitionListeners = new Set<(event: StoreTransition) => void>();
  private readonly probeIntervalMs: number;
  private readonly policyMemory: number;
  private readonly defaults: Readonly<Record<ScopeType, BucketPolicy>>;

  constructor(private readonly options: FailoverBucketStoreOptions) {
    this.backend = options.primary.backend;
    this.probeIntervalMs = options.probeIntervalMs ?? 1000;
    this.policyMemory = options.policyMemory ?? 10_000;
    this.defaults = resolveDefaults(options.defaults);
  }

  get state(): StoreState {
    return {
      backend: this.backend,
      healthy: this.healthy,
      mode: this.options.mode,
      downSince: this.downSince,
    };
  }

  /**
   * Calls `listener` on every transition from now on (down, and back up once the primary
   * answers again), e.g. to check on recovery whether Redis came back without its data.
   * Returns a function that stops the calls.
   */
  watchTransitions(listener: (event: StoreTransition) => void): () => void {
    this.transitionListeners.add(listener);
    return () => this.transitionListeners.delete(listener);
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    if (this.healthy) {
      try {
        const result = await this.options.primary.reserve(request);
        this.rememberPolicies(result.buckets);
        return result;
      } catch (error) {
        this.failIfNotUnavailable(error);
      }
    }
    switch (this.options.mode) {
      case 'closed':
        throw this.unavailable('reserve');
      case 'open':
        return {
          admitted: true,
          reservationId: request.reservationId,
          buckets: [],
          degraded: 'open',
        };
      case 'local': {
        const local = this.localStore();
        const result = await local.reserve(request);
        if (!result.admitted) return result;
        this.localReservations.set(request.reservationId, local);
        return { ...result, degraded: 'local' };
      }
    }
  }

  async settle(reservationId: string, actualTokens: number): Promise<SettleResult> {
    const local = this.localReservations.get(reservationId);
    if (local) {
      this.localReservations.delete(reservationId);
      const result = await local.settle(reservationId, actualTokens);
      if (local !== this.local) await this.closeIfUnused(local);
      return result;
    }
    if (!this.healthy) throw this.unavailable('settle');
    try {
      return await this.options.primary.settle(reservationId, actualTokens);
    } catch (error) {
      this.failIfNotUnavailable(error);
      throw error;
    }
  }

  getBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    return this.read('getBucket', (store) => store.getBucket(scope));
  }

  getPolicy(scope: ScopeRef): Promise<BucketPolicy> {
    return this.read('getPolicy', (store) => store.getPolicy(scope));
  }

  /** Policy changes must reach every instance: they are refused while the primary is down. */
  async setPolicy(scope: ScopeRef, patch: PolicyPatch): Promise<BucketSnapshot> {
    if (!this.healthy) throw this.unavailable('setPolicy');
    try {
      const snapshot = await this.options.primary.setPolicy(scope, patch);
      this.rememberPolicies([snapshot]);
      return snapshot;
    } catch (error) {
      this.failIfNotUnavailable(error);
      throw error;
    }
  }

  /**
   * Overrides are read from the shared store only: the local buckets know just the budgets
   * this instance happened to see, and a partial list would mislead.
   */
  getOverride(scope: ScopeRef): Promise<PolicyPatch | null> {
    return this.primaryOnly('getOverride', (store) => store.getOverride(scope));
  }

  listPolicies(query?: ListPoliciesQuery): Promise<PolicyPage> {
    return this.primaryOnly('listPolicies', (store) => store.listPolicies(query));
  }

  /** Refused while the primary is down, like setPolicy. */
  async deletePolicy(scope: ScopeRef): Promise<DeletePolicyResult> {
    const result = await this.primaryOnly('deletePolicy', (store) => store.deletePolicy(scope));
    this.rememberPolicies([result.bucket]);
    return result;
  }

  resetBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    return this.primaryOnly('resetBucket', (store) => store.resetBucket(scope));
  }

  /** Like a read: the local buckets stand in while the primary is down (mode `local`). */
  lowerLevel(scope: ScopeRef, tokens: number): Promise<BucketSnapshot> {
    return this.read('lowerLevel', (store) => store.lowerLevel(scope, tokens));
  }

  ping(): Promise<void> {
    return this.options.primary.ping();
  }

  /** Pings the primary now and records the outcome (used at boot, before any traffic). */
  async check(): Promise<boolean> {
    try {
      await this.options.primary.ping();
      return true;
    } catch (error) {
      this.failIfNotUnavailable(error);
      return false;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.probe);
    this.probe = undefined;
    const locals = new Set([...this.localReservations.values(), this.local]);
    for (const local of locals) await local?.close();
    await this.options.primary.close();
  }

  private async read<T>(operation: string, fn: (store: BucketStore) => Promise<T>): Promise<T> {
    if (this.healthy) {
      try {
        return await fn(this.options.primary);
      } catch (error) {
        this.failIfNotUnavailable(error);
      }
    }
    if (this.options.mode === 'local') return fn(this.localStore());
    throw this.unavailable(operation);
  }

  private async primaryOnly<T>(
    operation: string,
    fn: (store: BucketStore) => Promise<T>,
  ): Promise<T> {
    if (!this.healthy) throw this.unavailable(operation);
    try {
      return await fn(this.options.primary);
    } catch (error) {
      this.failIfNotUnavailable(error);
      throw error;
    }
  }

  /** Rethrows anything but an outage (bad input, duplicate ids); marks the primary down otherwise. */
  private failIfNotUnavailable(error: unknown): void {
    if (!(error instanceof BucketStoreUnavailableError)) throw error;
    if (!this.healthy) return;
    this.healthy = false;
    this.downSince = Date.now();
    this.announce({ healthy: false, mode: this.options.mode, error });
    this.probe = setInterval(() => void this.tryRecover(), this.probeIntervalMs);
    this.probe.unref();
  }

  private async tryRecover(): Promise<void> {
    try {
      await this.options.primary.ping();
    } catch {
      return;
    }
    if (this.healthy) return;
    clearInterval(this.probe);
    this.probe = undefined;
    const downForMs = Date.now() - (this.downSince ?? Date.now());
    this.healthy = true;
    this.downSince = undefined;
    // Local buckets only bridged the outage; the shared store is the truth again. Local
    // reservations still open settle against their local store, which closes after the last.
    const local = this.local;
    this.local = undefined;
    if (local) await this.closeIfUnused(local);
    this.announce({ healthy: true, downForMs });
  }

  private announce(event: StoreTransition): void {
    this.options.onTransition?.(event);
    for (const listener of this.transitionListeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own: the store's state has changed regardless.
      }
    }
  }

  private async closeIfUnused(store: MemoryBucketStore): Promise<void> {
    for (const open of this.localReservations.values()) if (open === store) return;
    await store.close();
  }

  private localStore(): MemoryBucketStore {
    if (!this.local) {
      this.local = new MemoryBucketStore({
        defaults: this.options.defaults,
        reservationTtlMs: this.options.reservationTtlMs,
      });
      for (const { scope, policy } of this.knownPolicies.values()) {
        // Synchronous underneath; a policy the local store rejects is simply not carried over.
        this.local.setPolicy(scope, policy).catch(() => undefined);
      }
    }
    return this.local;
  }

  private rememberPolicies(buckets: readonly BucketSnapshot[]): void {
    if (this.options.mode !== 'local') return;
    for (const bucket of buckets) {
      const fallback = this.defaults[bucket.scope.type];
      const key = scopeKey(bucket.scope);
      if (bucket.capacity === fallback.capacity && bucket.refillPerSec === fallback.refillPerSec) {
        this.knownPolicies.delete(key);
        continue;
      }
      if (!this.knownPolicies.has(key) && this.knownPolicies.size >= this.policyMemory) {
        // Bounded: forget the oldest remembered override.
        const oldest = this.knownPolicies.keys().next().value;
        if (oldest !== undefined) this.knownPolicies.delete(oldest);
      }
      this.knownPolicies.set(key, {
        scope: bucket.scope,
        policy: { capacity: bucket.capacity, refillPerSec: bucket.refillPerSec },
      });
    }
  }

  private unavailable(operation: string): BucketStoreUnavailableError {
    return new BucketStoreUnavailableError(this.backend, operation, 'the store is marked down');
  }
}
