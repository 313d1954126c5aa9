import { Gauge, type Registry } from 'prom-client';
import type { BudgetScopeType } from '@tokenguard/config';
import type { BucketSource } from './gateway-metrics';
import { METRIC_PREFIX } from './process-metrics';

interface Scope {
  readonly type: BudgetScopeType;
  readonly id: string;
}

const GLOBAL: Scope = { type: 'global', id: 'global' };

/**
 * `bucket_tokens` and `bucket_capacity_tokens`, read from the store when Prometheus scrapes
 * (never on the request path). The global bucket always has a series; other scope types only
 * when the operator opted them in (METRICS_BUCKET_SCOPES), one series per per-id budget this
 * instance has been told about (`note`), at most `maxSeries` of them: the first ones keep their
 * series and later ones get none, so the scrape cannot grow without bound.
 */
export class BucketSeries {
  private readonly tracked = new Map<BudgetScopeType, Set<string>>();
  private count = 0;
  private source: BucketSource | undefined;
  /** One store read serves both gauges of a scrape. */
  private reading: Promise<void> | undefined;
  private readonly tokens: Gauge;
  private readonly capacity: Gauge;

  constructor(
    registry: Registry,
    scopeTypes: readonly BudgetScopeType[],
    private readonly maxSeries: number,
  ) {
    for (const type of scopeTypes) if (type !== 'global') this.tracked.set(type, new Set());
    const collect = () => this.refresh();
    const labelNames = ['scope_type', 'scope'];
    this.tokens = new Gauge({
      name: `${METRIC_PREFIX}bucket_tokens`,
      help: 'Tokens left in a bucket at scrape time (negative: debt). Global always; other scope types when opted in.',
      labelNames,
      registers: [registry],
      collect,
    });
    this.capacity = new Gauge({
      name: `${METRIC_PREFIX}bucket_capacity_tokens`,
      help: 'Capacity of a bucket at scrape time, for the same buckets as tokenguard_bucket_tokens.',
      labelNames,
      registers: [registry],
      collect,
    });
  }

  watch(source: BucketSource): void {
    this.source = source;
  }

  /** Cheap for scope types nobody opted in: one map lookup. */
  note(type: BudgetScopeType, id: string): void {
    const ids = this.tracked.get(type);
    if (ids === undefined || ids.has(id) || this.count >= this.maxSeries) return;
    ids.add(id);
    this.count += 1;
  }

  private refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    const source = this.source;
    if (!source) return;
    const scopes: Scope[] = [GLOBAL];
    for (const [type, ids] of this.tracked) for (const id of ids) scopes.push({ type, id });
    // A bucket that cannot be read (store down under STORE_FAILURE_MODE=closed) has no
    // series in this scrape rather than a stale value or a failed scrape.
    const snapshots = await Promise.all(
      scopes.map((scope) => source.getBucket(scope).catch(() => undefined)),
    );
    this.tokens.reset();
    this.capacity.reset();
    scopes.forEach((scope, i) => {
      const snapshot = snapshots[i];
      if (!snapshot) return;
      const key = scope.type === 'global' ? 'global' : `${scope.type}:${scope.id}`;
      this.tokens.labels(scope.type, key).set(snapshot.tokens);
      this.capacity.labels(scope.type, key).set(snapshot.capacity);
    });
  }
}
