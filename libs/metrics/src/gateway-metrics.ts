import type { Registry } from 'prom-client';
import type { RequestTelemetry } from '@tokenguard/common';
import type { BudgetScopeType } from '@tokenguard/config';
import type {
  AdminAction,
  CircuitStateLabel,
  DegradedModeLabel,
  RejectionReason,
  RejectionScope,
  RouteLabel,
  StoreOperation,
  RateLimitHeader,
  SyncResult,
  UpstreamErrorKind,
} from './labels';

/** Token usage as the provider reported it (or as counted for a stream cut short). */
export interface ConsumedTokens {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly totalTokens: number;
}

/** Where the bucket gauges read levels at scrape time: the active bucket store. */
export interface BucketSource {
  /** `memory` or `redis`, for `build_info`. */
  readonly backend: string;
  getBucket(scope: {
    readonly type: BudgetScopeType;
    readonly id: string;
  }): Promise<{ readonly tokens: number; readonly capacity: number }>;
}

/** The provider's own limits for one model, learned from its `x-ratelimit-*` headers. */
export interface UpstreamLimits {
  readonly limitTokens?: number;
  readonly remainingTokens?: number;
  readonly remainingRequests?: number;
}

/**
 * Records what the gateway does, one method per event, so call sites never build label sets.
 * Injected everywhere by this class token. With ENABLE_METRICS=false the implementation is
 * `NoopGatewayMetrics`, whose methods do nothing.
 *
 * Durations are taken in milliseconds from `performance.now()` and exported in seconds.
 * Route and model labels come from the request's telemetry, already normalised.
 */
export abstract class GatewayMetrics {
  abstract readonly enabled: boolean;
  /** What `GET /metrics` serves; undefined when metrics are off. */
  abstract readonly registry: Registry | undefined;

  /** A response has closed (sent, or the client went away). */
  abstract requestCompleted(telemetry: RequestTelemetry, status: number, durationMs: number): void;

  /** A charged request was estimated (`exact` false: part of it counted by its byte length). */
  abstract estimated(
    telemetry: RequestTelemetry,
    tokens: number,
    exact: boolean,
    durationMs: number,
  ): void;

  abstract rejected(scope: RejectionScope, reason: RejectionReason): void;

  /**
   * A charged request was admitted: `tokens` reserved, or — degraded `open` — admitted
   * without reserving anything.
   */
  abstract admitted(
    telemetry: RequestTelemetry,
    tokens: number,
    degraded: DegradedModeLabel | undefined,
  ): void;

  /**
   * A reservation is being settled (once per request), with `telemetry.settlement` already set.
   * `consumed` is what the provider used, when known; `heldReservation` says whether the
   * request held a reservation (not when admitted uncounted).
   */
  abstract settled(
    telemetry: RequestTelemetry,
    estimatedTokens: number,
    consumed: ConsumedTokens | undefined,
    heldReservation: boolean,
  ): void;

  /** The store gave `tokens` back to the request's buckets at settlement. */
  abstract refunded(telemetry: RequestTelemetry, tokens: number): void;

  /** The upstream's response headers arrived. */
  abstract upstreamAnswered(
    route: RouteLabel,
    status: number,
    ttfbMs: number,
    streamed: boolean,
  ): void;

  /** The upstream's response is complete (body read, or stream ended however it ended). */
  abstract upstreamCompleted(route: RouteLabel, durationMs: number): void;

  abstract upstreamFailed(kind: UpstreamErrorKind): void;

  abstract streamOpened(route: RouteLabel): void;

  abstract streamClosed(route: RouteLabel): void;

  abstract circuitChanged(state: CircuitStateLabel): void;

  abstract storeOperation(operation: StoreOperation, ok: boolean, durationMs: number): void;

  /** The shared store went down (false) or came back (true). */
  abstract storeAvailability(healthy: boolean): void;

  /** The store the bucket gauges read at scrape time. */
  abstract watchBuckets(source: BucketSource): void;

  /**
   * A scope has a budget of its own (set through this instance, or found on a charged
   * request); for opted-in scope types it gets a bucket series, within the configured bound.
   */
  abstract bucketSeen(type: BudgetScopeType, id: string): void;

  abstract syncRun(result: SyncResult): void;

  /** Upstream limit sync succeeded at `atMs` (ms since epoch). */
  abstract syncSucceeded(atMs: number): void;

  abstract upstreamLimits(model: string, limits: UpstreamLimits): void;

  /** An upstream response carried a rate-limit header whose value did not parse (ignored). */
  abstract upstreamHeaderMalformed(header: RateLimitHeader): void;

  /** A budget, bucket or API key was changed through the admin API or the policy file. */
  abstract adminChange(action: AdminAction): void;

  /** LIMITER_MODE=shadow: a request a budget would have refused was let through. */
  abstract shadowRejected(scope: RejectionScope, reason: RejectionReason): void;
}

/** ENABLE_METRICS=false: every recording is a call to an empty method. */
export class NoopGatewayMetrics extends GatewayMetrics {
  readonly enabled = false;
  readonly registry = undefined;

  requestCompleted(): void {}
  estimated(): void {}
  rejected(): void {}
  admitted(): void {}
  settled(): void {}
  refunded(): void {}
  upstreamAnswered(): void {}
  upstreamCompleted(): void {}
  upstreamFailed(): void {}
  streamOpened(): void {}
  streamClosed(): void {}
  circuitChanged(): void {}
  storeOperation(): void {}
  storeAvailability(): void {}
  watchBuckets(): void {}
  bucketSeen(): void {}
  syncRun(): void {}
  syncSucceeded(): void {}
  upstreamLimits(): void {}
  upstreamHeaderMalformed(): void {}
  adminChange(): void {}
  shadowRejected(): void {}
}
