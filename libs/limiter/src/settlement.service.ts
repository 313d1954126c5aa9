import { Inject, Injectable, Logger } from '@nestjs/common';
import { BUCKET_STORE, type BucketStore, type SettleResult } from '@tokenguard/bucket-store';
import type { RequestTelemetry, SettlementLabel } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { GatewayMetrics } from '@tokenguard/metrics';
import type { RateLimitContext, SettlementOutcome } from './rate-limit-context';

const NOT_APPLIED: SettleResult = { applied: false, refunded: 0 };

/** Closes reservations: exactly once per request, whichever path gets there first. */
@Injectable()
export class SettlementService {
  private readonly logger = new Logger(SettlementService.name);

  constructor(
    private readonly config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Tokens the request is finally charged, from what the upstream call reported. */
  actualTokens(context: RateLimitContext): number {
    return this.chargeFor(context, context.resolveOutcome());
  }

  settle(context: RateLimitContext): Promise<SettleResult> {
    if (context.settlement !== undefined) return context.settlement;
    const outcome = context.resolveOutcome();
    const actual = this.chargeFor(context, outcome);
    // Admitted uncounted (store down under STORE_FAILURE_MODE=open, or past a budget in
    // shadow mode): there is nothing to close.
    const held = context.holdsReservation;
    // Filled in before the store answers, so that whoever reads the telemetry when the
    // response closes sees the settlement even while the store call is in flight.
    const telemetry = context.telemetry;
    telemetry.settlement = settlementLabel(outcome, telemetry);
    telemetry.chargedTokens = held ? actual : 0;
    this.metrics.settled(
      telemetry,
      context.estimate.totalTokens,
      outcome?.kind === 'usage' ? outcome.usage : undefined,
      held,
    );
    context.settlement = held ? this.apply(context, actual) : Promise.resolve(NOT_APPLIED);
    return context.settlement;
  }

  private chargeFor(context: RateLimitContext, outcome: SettlementOutcome | undefined): number {
    const reserved = context.estimate.totalTokens;
    if (outcome === undefined || outcome.kind === 'refund') return 0;
    if (outcome.kind === 'unmetered') return reserved;
    const actual = outcome.totalTokens;
    // Small differences are left alone when the operator chose to.
    const threshold = this.config.limits.tokenAdjustmentThreshold;
    return threshold > 0 && Math.abs(reserved - actual) <= threshold ? reserved : actual;
  }

  private async apply(context: RateLimitContext, actual: number): Promise<SettleResult> {
    try {
      const result = await this.store.settle(context.reservationId, actual);
      if (result.applied) this.metrics.refunded(context.telemetry, result.refunded);
      return result;
    } catch (error) {
      // The reservation stays charged and expires with its TTL: over-charging is the safe side.
      this.logger.error(`Settling reservation ${context.reservationId} failed: ${String(error)}`);
      return NOT_APPLIED;
    }
  }
}

/**
 * How the request ended, for `settlements_total` and the request log. No recorded outcome
 * means nothing was generated: an upstream failure if the proxy saw one, else a plain refund
 * (never sent, or the gateway itself failed).
 */
export function settlementLabel(
  outcome: SettlementOutcome | undefined,
  telemetry: RequestTelemetry,
): SettlementLabel {
  if (outcome === undefined) {
    return telemetry.upstreamError === undefined ? 'refund' : 'upstream_error';
  }
  switch (outcome.kind) {
    case 'usage':
      return outcome.cut ?? 'complete';
    case 'unmetered':
      return 'unmetered';
    case 'refund':
      return outcome.cut ?? 'refund';
  }
}
