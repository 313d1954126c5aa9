import { HttpException, Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BUCKET_STORE, type BucketStore, type SettleResult } from '@tokenguard/bucket-store';
import type { RequestTelemetry, SettlementLabel } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { GatewayMetrics } from '@tokenguard/metrics';
import {
  type RateLimitContext,
  rateLimitContextOf,
  type SettlementOutcome,
} from './rate-limit-context';
import { rateLimitHeaders, tightestBucket } from './rate-limit-headers';

const NOT_APPLIED: SettleResult = { applied: false, refunded: 0 };

/** Closes reservations: exactly once per request, whichever path gets there first. */
@Injectable()
export class SettlementService {
  private readonly logger = new Logger(SettlementService.name);
  /** Reservations being taken or held and not yet settled: what a shutdown waits for. */
  private readonly open = new Set<string>();
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly config: AppConfig,
    @Inject(BUCKET_STORE) private readonly store: BucketStore,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Tokens the request is finally charged, from what the upstream call reported. */
  actualTokens(context: RateLimitContext): number {
    return this.chargeFor(context, context.resolveOutcome());
  }

  /** The guard is about to reserve under this id: open until it is settled or abandoned. */
  opened(reservationId: string): void {
    this.open.add(reservationId);
  }

  /** Nothing is held under this id after all (refused, or the store failed). */
  abandoned(reservationId: string): void {
    this.release(reservationId);
  }

  /** Reservations being taken or held that are not settled yet. */
  get openReservations(): number {
    return this.open.size;
  }

  /**
   * Resolves once no reservation is open (taken and not yet settled in the store), or after
   * `timeoutMs`; answers how many are still open.
   */
  async whenSettled(timeoutMs: number): Promise<number> {
    if (this.open.size === 0) return 0;
    let wake: () => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      wake = resolve;
      this.waiters.add(wake);
      timer = setTimeout(resolve, timeoutMs);
    });
    this.waiters.delete(wake);
    clearTimeout(timer);
    return this.open.size;
  }

  /**
   * Runs a charged route's work (the upstream call) and settles the request once it has its
   * result: to the recorded usage on success, in full refund on error. The settle is handed to
   * the store before the body is sent, without waiting for its answer (a Redis round trip the
   * client would wait for): the store runs calls in the order they were made, so any later
   * request or bucket read through this instance already sees the real cost, and the
   * remaining-tokens header (rewritten here) counts the refund the settle applies. A stream
   * still running settles when its response closes (see LimiterGuard).
   *
   * Every charged handler calls it, rather than a global Nest interceptor doing the same: Nest
   * runs each interceptor through rxjs and `AsyncResource.bind`, which on Node 20 builds two
   * deprecation wrappers per call; together about 15% of the gateway's CPU per request
   * (test/bench, profiled). A handler that forgot would still be settled, when its response
   * closes, by the guard's safety net.
   */
  async settleAfter<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    work: () => Promise<T>,
  ): Promise<T> {
    const rateLimit = rateLimitContextOf(request);
    if (!rateLimit) return work();
    // A client that leaves from here on does not settle the request (see LimiterGuard): the
    // upstream call goes on, so it is settled below, to what it cost, once it has ended.
    rateLimit.enterHandler();
    let result: T;
    try {
      result = await work();
    } catch (error) {
      rateLimit.leaveHandler();
      // Admitted, then failed (upstream down, a bug): the request log and metrics say so. No
      // recorded outcome means nothing was consumed upstream: settle() refunds in full.
      if (!(error instanceof HttpException) || error.getStatus() >= 500) {
        rateLimit.telemetry.outcome = 'error';
      }
      this.settleAndReport(rateLimit, reply);
      throw error;
    }
    rateLimit.leaveHandler();
    // A stream still running settles when the response closes; one whose client has left
    // already, now.
    if (!rateLimit.streaming || rateLimit.responseClosed) {
      this.settleAndReport(rateLimit, reply);
    }
    return result;
  }

  /**
   * Settles (not awaited: the settlement never rejects, and a shutdown waits for it through
   * `open`) and rewrites the headers with the refund it applies: the reserved estimate minus
   * the actual charge. Only a settle the store finds nothing to apply to (a reservation
   * expired) refunds less; that header then reads high until the next request.
   */
  private settleAndReport(rateLimit: RateLimitContext, reply: FastifyReply): void {
    void this.settle(rateLimit);
    const tightest = tightestBucket(rateLimit.buckets);
    if (tightest === undefined || reply.sent) return;
    const refunded = rateLimit.holdsReservation
      ? rateLimit.estimate.totalTokens - (rateLimit.telemetry.chargedTokens ?? 0)
      : 0;
    void reply.headers(rateLimitHeaders(tightest, refunded));
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
    const settlement = held ? this.apply(context, actual) : Promise.resolve(NOT_APPLIED);
    // apply() never rejects: the reservation is closed whether or not the store took it.
    context.settlement = settlement.finally(() => this.release(context.reservationId));
    return context.settlement;
  }

  private release(reservationId: string): void {
    if (!this.open.delete(reservationId) || this.open.size > 0) return;
    for (const wake of this.waiters) wake();
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
