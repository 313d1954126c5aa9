import { Inject, Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { BUCKET_STORE, type BucketStore, FailoverBucketStore } from '@tokenguard/bucket-store';

/**
 * The budget store as readiness sees it. While Redis is down the instance stays ready under
 * `local` and `open` (it still serves, visibly degraded) and is unready under `closed`
 * (it refuses every charged request, so a load balancer should know).
 */
@Injectable()
export class StoreHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
  ) {}

  async check(key = 'store'): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check(key);
    if (this.store instanceof FailoverBucketStore) {
      const { backend, healthy, mode, downSince } = this.store.state;
      if (healthy) return indicator.up({ backend, failureMode: mode });
      const details = {
        backend,
        failureMode: mode,
        degraded: true,
        downSince: new Date(downSince ?? Date.now()).toISOString(),
      };
      return mode === 'closed' ? indicator.down(details) : indicator.up(details);
    }
    try {
      await this.store.ping();
      return indicator.up({ backend: this.store.backend });
    } catch (error) {
      return indicator.down({ backend: this.store.backend, message: String(error) });
    }
  }
}
