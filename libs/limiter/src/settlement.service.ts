import { Inject, Injectable, Logger } from '@nestjs/common';
import { BUCKET_STORE, type BucketStore, type SettleResult } from '@tokenguard/bucket-store';
import { AppConfig } from '@tokenguard/config';
import type { RateLimitContext } from './rate-limit-context';

const NOT_APPLIED: SettleResult = { applied: false, refunded: 0 };

/** Closes reservations: exactly once per request, whichever path gets there first. */
@Injectable()
export class SettlementService {
  private readonly logger = new Logger(SettlementService.name);

  constructor(
    private readonly config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
  ) {}

  /** Tokens the request is finally charged, from what the upstream call reported. */
  actualTokens(context: RateLimitContext): number {
    const reserved = context.estimate.totalTokens;
    const outcome = context.resolveOutcome();
    if (outcome === undefined || outcome.kind === 'refund') return 0;
    if (outcome.kind === 'unmetered') return reserved;
    const actual = outcome.totalTokens;
    // Small differences are left alone when the operator chose to.
    const threshold = this.config.limits.tokenAdjustmentThreshold;
    return threshold > 0 && Math.abs(reserved - actual) <= threshold ? reserved : actual;
  }

  settle(context: RateLimitContext): Promise<SettleResult> {
    // Admitted uncounted (store down, STORE_FAILURE_MODE=open): there is nothing to close.
    if (context.degraded === 'open') context.settlement ??= Promise.resolve(NOT_APPLIED);
    context.settlement ??= this.store
      .settle(context.reservationId, this.actualTokens(context))
      .catch((error: unknown) => {
        // The reservation stays charged and expires with its TTL: over-charging is the safe side.
        this.logger.error(`Settling reservation ${context.reservationId} failed: ${String(error)}`);
        return NOT_APPLIED;
      });
    return context.settlement;
  }
}
