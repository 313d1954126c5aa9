import type {
  BucketSnapshot,
  DegradedMode,
  ScopeRef,
  SettleResult,
} from '@tokenguard/bucket-store';
import { RequestTelemetry } from '@tokenguard/common';
import type { TokenEstimate } from '@tokenguard/estimator';
import type { ConsumedTokens } from '@tokenguard/metrics';

/** How a stream that did not run to its end stopped: the client left, or the upstream failed. */
export type StreamCut = 'aborted' | 'upstream_error';

/** What the upstream call turned out to cost. */
export type SettlementOutcome =
  /**
   * The provider reported usage: settle to it. `usage` splits it into prompt and completion
   * when known; `cut` marks a stream charged for what it produced before it stopped.
   */
  | {
      readonly kind: 'usage';
      readonly totalTokens: number;
      readonly usage?: ConsumedTokens;
      readonly cut?: StreamCut;
    }
  /** Served, but without a usage figure: keep the estimate charged. */
  | { readonly kind: 'unmetered' }
  /** Nothing was generated (never sent, upstream error): give everything back. */
  | { readonly kind: 'refund'; readonly cut?: StreamCut };

/** One admitted request's reservation, carried on the request from guard to settlement. */
export class RateLimitContext {
  outcome: SettlementOutcome | undefined;
  /** For a stream: reads the outcome at settlement time (end of stream or disconnect). */
  streamOutcome: (() => SettlementOutcome) | undefined;
  /** Set by the first settlement; every later attempt awaits the same promise. */
  settlement: Promise<SettleResult> | undefined;
  /**
   * LIMITER_MODE=shadow: a budget refused the request and it went through anyway, with nothing
   * reserved (as it would not have run under enforcement, it must not spend the buckets).
   */
  shadowRejected = false;
  /**
   * The route handler, and so the upstream call, is running. A response that closes meanwhile
   * (the client left) is settled by SettlementService.settleAfter when the handler ends, to what
   * the call cost: the provider generates, and bills, an answer nobody reads.
   */
  inHandler = false;
  /** The response has closed: sent, or the client gone. */
  responseClosed = false;
  /** Waiting for the handler to end (only when someone asked while it ran). */
  private handlerWaiters: (() => void)[] | undefined;

  constructor(
    readonly route: string,
    readonly reservationId: string,
    readonly estimate: TokenEstimate,
    readonly scopes: readonly ScopeRef[],
    readonly buckets: readonly BucketSnapshot[],
    /** Admitted while the shared store was down (see STORE_FAILURE_MODE). */
    readonly degraded?: DegradedMode,
    /** The request's telemetry, which settlement completes (charge, settlement label). */
    readonly telemetry: RequestTelemetry = new RequestTelemetry(),
  ) {}

  recordUsage(totalTokens: number, usage?: ConsumedTokens): void {
    this.outcome = { kind: 'usage', totalTokens, usage };
  }

  recordUnmetered(): void {
    this.outcome = { kind: 'unmetered' };
  }

  recordRefund(): void {
    this.outcome = { kind: 'refund' };
  }

  /**
   * Marks the request as a stream: it is settled when the response closes (normal end or
   * client disconnect), not when the handler returns, from what `outcome` says then.
   */
  recordStream(outcome: () => SettlementOutcome): void {
    this.streamOutcome = outcome;
  }

  /** The handler starts (see `inHandler`). */
  enterHandler(): void {
    this.inHandler = true;
  }

  /** The handler has ended, with a result or an error. */
  leaveHandler(): void {
    this.inHandler = false;
    for (const wake of this.handlerWaiters?.splice(0) ?? []) wake();
  }

  /** Resolves once the handler has ended; at once when it is not running. */
  handlerEnded(): Promise<void> {
    if (!this.inHandler) return Promise.resolve();
    return new Promise((resolve) => (this.handlerWaiters ??= []).push(resolve));
  }

  /** Whether the store holds a reservation to settle (not when admitted uncounted). */
  get holdsReservation(): boolean {
    return this.degraded !== 'open' && !this.shadowRejected;
  }

  get streaming(): boolean {
    return this.streamOutcome !== undefined;
  }

  /** What to settle to, as known now. */
  resolveOutcome(): SettlementOutcome | undefined {
    return this.outcome ?? this.streamOutcome?.();
  }
}

const CONTEXT = Symbol('tokenguard:rate-limit-context');

type Carrier = { [CONTEXT]?: RateLimitContext };

export function attachRateLimitContext(request: object, context: RateLimitContext): void {
  (request as Carrier)[CONTEXT] = context;
}

/** The reservation of a charged request, or undefined on routes that charge nothing. */
export function rateLimitContextOf(request: object): RateLimitContext | undefined {
  return (request as Carrier)[CONTEXT];
}
