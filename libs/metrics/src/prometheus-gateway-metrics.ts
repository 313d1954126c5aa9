import { Gauge, Registry } from 'prom-client';
import type { RequestTelemetry } from '@tokenguard/common';
import type { BudgetScopeType } from '@tokenguard/config';
import { BucketSeries } from './bucket-series';
import {
  CounterFamily,
  GaugeFamily,
  type HistogramCell,
  HistogramFamily,
  type ValueCell,
} from './cells';
import {
  type BucketSource,
  type ConsumedTokens,
  GatewayMetrics,
  type UpstreamLimits,
} from './gateway-metrics';
import { Children1, Children2, Children3 } from './label-children';
import {
  ADMIN_ACTIONS,
  type AdminAction,
  CHARGED_ROUTES,
  type CircuitStateLabel,
  type DegradedModeLabel,
  type HttpOutcome,
  type RejectionReason,
  type RejectionScope,
  type RouteLabel,
  type SettlementLabel,
  statusClass,
  type StoreOperation,
  RATE_LIMIT_HEADERS,
  type RateLimitHeader,
  type SyncResult,
  type UpstreamErrorKind,
} from './labels';
import { modelLabel, OTHER_MODEL } from './model-label';
import { METRIC_PREFIX, processMetricsRegistry } from './process-metrics';

export interface PrometheusGatewayMetricsOptions {
  /** Scope types whose per-id buckets get gauges (global always does). */
  readonly bucketScopes: readonly BudgetScopeType[];
  readonly maxBucketSeries: number;
  /** For `build_info`. */
  readonly version: string;
}

// Bucket boundaries, in seconds unless said otherwise.
/** Whole requests and upstream calls: LLM answers take from milliseconds to minutes. */
const CALL_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Time to the upstream's first byte. */
const TTFB_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** The gateway's own work: well under a millisecond when all is well. */
const OVERHEAD_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
const ESTIMATOR_SECONDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
];
const STORE_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
/** actual / estimate: dense around 1, where a good estimate lands. */
const RATIO_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5];

const CIRCUIT_VALUES: Readonly<Record<CircuitStateLabel, number>> = {
  closed: 0,
  half_open: 1,
  open: 2,
};

const SETTLEMENTS: readonly SettlementLabel[] = [
  'complete',
  'aborted',
  'upstream_error',
  'refund',
  'unmetered',
];
const BUDGET_SCOPES: readonly BudgetScopeType[] = ['global', 'team', 'rolegroup', 'role', 'user'];
const UPSTREAM_ERRORS: readonly UpstreamErrorKind[] = [
  'timeout',
  'connection',
  'server_error',
  'circuit_open',
  'stream_error',
  'stream_idle',
];
const STORE_OPERATIONS: readonly StoreOperation[] = [
  'reserve',
  'settle',
  'get_bucket',
  'get_policy',
  'set_policy',
  'ping',
  'get_override',
  'list_policies',
  'delete_policy',
  'reset_bucket',
  'lower_level',
];
const STREAMING_ROUTES: readonly RouteLabel[] = ['chat.completions', 'completions', 'responses'];

const seconds = (ms: number): number => ms / 1000;

/**
 * The prom-client implementation. Every family is registered once, in this instance's own
 * registry (tests run several gateways in one process, each counting only its own traffic);
 * `GET /metrics` serves it merged with the process-wide Node metrics. The request path only
 * adds to cells found through label maps (see cells.ts, label-children.ts): about 2 µs of
 * recording per charged request instead of about 12 µs through prom-client's children.
 *
 * Counters whose label values are known up front start at 0, so that `rate()` and alerts see
 * them before the first event.
 */
export class PrometheusGatewayMetrics extends GatewayMetrics {
  readonly enabled = true;
  readonly registry: Registry;

  private readonly requests: Children3<ValueCell>;
  private readonly requestSeconds: Children2<HistogramCell>;
  private readonly overheadSeconds: Children1<HistogramCell>;
  private readonly rejections: Children2<ValueCell>;
  private readonly tokensEstimated: Children2<ValueCell>;
  private readonly tokensReserved: Children2<ValueCell>;
  private readonly tokensConsumed: Children3<ValueCell>;
  private readonly tokensRefunded: Children2<ValueCell>;
  private readonly estimationError: Children2<HistogramCell>;
  private readonly estimatesBounded: Children1<ValueCell>;
  private readonly reservationsInFlight: ValueCell;
  private readonly streamsInFlight: Children1<ValueCell>;
  private readonly settlements: Children2<ValueCell>;
  private readonly estimatorSeconds: Children1<HistogramCell>;
  private readonly upstreamRequests: Children2<ValueCell>;
  private readonly upstreamSeconds: Children1<HistogramCell>;
  private readonly upstreamTtfb: Children2<HistogramCell>;
  private readonly upstreamErrors: Children1<ValueCell>;
  private readonly circuitState: Gauge;
  private readonly circuitTransitions: Children1<ValueCell>;
  private readonly storeOperations: Children2<ValueCell>;
  private readonly storeSeconds: Children1<HistogramCell>;
  private readonly storeDegraded: Gauge;
  private readonly storeTransitions: Children1<ValueCell>;
  private readonly degradedAdmissions: Children1<ValueCell>;
  private readonly syncRuns: Children1<ValueCell>;
  private readonly syncMalformedHeaders: Children1<ValueCell>;
  private readonly syncLastSuccess: Gauge;
  private readonly upstreamLimitTokens: Children1<ValueCell>;
  private readonly upstreamRemainingTokens: Children1<ValueCell>;
  private readonly upstreamRemainingRequests: Children1<ValueCell>;
  private readonly adminChanges: Children1<ValueCell>;
  private readonly shadowRejections: Children2<ValueCell>;
  private readonly buckets: BucketSeries;
  private backend = 'unknown';

  constructor(options: PrometheusGatewayMetricsOptions) {
    super();
    const own = new Registry();
    const registers = [own];
    const counter = (name: string, help: string, labelNames: string[]) =>
      new CounterFamily({ name: METRIC_PREFIX + name, help, labelNames, registers });
    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      new GaugeFamily({ name: METRIC_PREFIX + name, help, labelNames, registers });
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
      new HistogramFamily({ name: METRIC_PREFIX + name, help, labelNames, registers }, buckets);
    // Gauges that change a few times a day: prom-client's own is cheap enough.
    const plainGauge = (name: string, help: string) =>
      new Gauge({ name: METRIC_PREFIX + name, help, registers });

    const requests = counter(
      'http_requests_total',
      'Requests answered, by route, what the gateway decided (outcome) and status class.',
      ['route', 'outcome', 'status_class'],
    );
    this.requests = new Children3((route, outcome, cls) =>
      requests.cell({ route, outcome, status_class: cls }),
    );
    const requestSeconds = histogram(
      'http_request_duration_seconds',
      'Request duration from arrival to the response closing (the whole stream for streams).',
      ['route', 'outcome'],
      CALL_SECONDS,
    );
    this.requestSeconds = new Children2((route, outcome) =>
      requestSeconds.cell({ route, outcome }),
    );
    const overheadSeconds = histogram(
      'gateway_overhead_seconds',
      'Request duration minus the time spent waiting on the upstream: what the gateway adds.',
      ['route'],
      OVERHEAD_SECONDS,
    );
    this.overheadSeconds = new Children1((route) => overheadSeconds.cell({ route }));

    const rejections = counter(
      'rejections_total',
      'Charged requests refused, by the scope type that refused them (store, upstream for the ' +
        'store being down or a provider 429) and reason.',
      ['scope_type', 'reason'],
    );
    this.rejections = new Children2((scope, reason) =>
      rejections.cell({ scope_type: scope, reason }),
    );
    for (const scope of BUDGET_SCOPES) {
      this.rejections.get(scope, 'insufficient').inc(0);
      this.rejections.get(scope, 'too_large').inc(0);
    }
    this.rejections.get('store', 'store_unavailable').inc(0);
    this.rejections.get('upstream', 'upstream_rate_limit').inc(0);

    const tokensEstimated = counter(
      'tokens_estimated_total',
      'Tokens estimated for charged requests (prompt plus output allowance), by route and model.',
      ['route', 'model'],
    );
    this.tokensEstimated = new Children2((route, model) => tokensEstimated.cell({ route, model }));
    const tokensReserved = counter(
      'tokens_reserved_total',
      'Tokens reserved in the buckets for admitted requests (not when admitted uncounted).',
      ['route', 'model'],
    );
    this.tokensReserved = new Children2((route, model) => tokensReserved.cell({ route, model }));
    const tokensConsumed = counter(
      'tokens_consumed_total',
      'Tokens the provider reported used (kind prompt or completion); for a stream cut short, ' +
        'the prompt plus the tokens streamed.',
      ['route', 'model', 'kind'],
    );
    this.tokensConsumed = new Children3((route, model, kind) =>
      tokensConsumed.cell({ route, model, kind }),
    );
    const tokensRefunded = counter(
      'tokens_refunded_total',
      'Tokens given back to the buckets at settlement (reserved minus charged).',
      ['route', 'model'],
    );
    this.tokensRefunded = new Children2((route, model) => tokensRefunded.cell({ route, model }));
    const estimationError = histogram(
      'estimation_error_ratio',
      'Actual tokens / estimated tokens of requests settled to reported usage.',
      ['route', 'model'],
      RATIO_BUCKETS,
    );
    this.estimationError = new Children2((route, model) => estimationError.cell({ route, model }));
    const estimatesBounded = counter(
      'estimates_bounded_total',
      'Estimates that counted part of the input by its UTF-8 length (tokenizer work bound hit).',
      ['route'],
    );
    this.estimatesBounded = new Children1((route) => estimatesBounded.cell({ route }));

    this.reservationsInFlight = gauge(
      'reservations_in_flight',
      'Reservations taken and not yet settled.',
    ).cell({});
    const streamsInFlight = gauge('streams_in_flight', 'Streams being relayed now.', ['route']);
    this.streamsInFlight = new Children1((route) => streamsInFlight.cell({ route }));
    for (const route of STREAMING_ROUTES) this.streamsInFlight.get(route).set(0);

    const settlements = counter(
      'settlements_total',
      'Reservations settled, by how the request ended (complete, aborted by the client, ' +
        'upstream_error, refund, unmetered: served without a usage figure).',
      ['route', 'outcome'],
    );
    this.settlements = new Children2((route, outcome) => settlements.cell({ route, outcome }));
    for (const route of CHARGED_ROUTES) {
      for (const outcome of SETTLEMENTS) this.settlements.get(route, outcome).inc(0);
    }
    const estimatorSeconds = histogram(
      'estimator_duration_seconds',
      'Time spent estimating a request (tokenizer work included).',
      ['route'],
      ESTIMATOR_SECONDS,
    );
    this.estimatorSeconds = new Children1((route) => estimatorSeconds.cell({ route }));

    const upstreamRequests = counter(
      'upstream_requests_total',
      'Upstream calls that got a response, by route and the upstream status class.',
      ['route', 'status_class'],
    );
    this.upstreamRequests = new Children2((route, cls) =>
      upstreamRequests.cell({ route, status_class: cls }),
    );
    const upstreamSeconds = histogram(
      'upstream_duration_seconds',
      'Upstream calls from sending to the end of the response (the whole stream for streams).',
      ['route'],
      CALL_SECONDS,
    );
    this.upstreamSeconds = new Children1((route) => upstreamSeconds.cell({ route }));
    const upstreamTtfb = histogram(
      'upstream_ttfb_seconds',
      "Upstream calls from sending to the response's headers.",
      ['route', 'streamed'],
      TTFB_SECONDS,
    );
    this.upstreamTtfb = new Children2((route, streamed) => upstreamTtfb.cell({ route, streamed }));
    const upstreamErrors = counter(
      'upstream_errors_total',
      'Upstream failures by kind (circuit_open: refused without calling the upstream).',
      ['kind'],
    );
    this.upstreamErrors = new Children1((kind) => upstreamErrors.cell({ kind }));
    for (const kind of UPSTREAM_ERRORS) this.upstreamErrors.get(kind).inc(0);

    this.circuitState = plainGauge(
      'circuit_state',
      'Upstream circuit breaker: 0 closed, 1 half-open, 2 open.',
    );
    this.circuitState.set(0);
    const circuitTransitions = counter(
      'circuit_transitions_total',
      'Circuit breaker state changes, by the state entered.',
      ['to'],
    );
    this.circuitTransitions = new Children1((to) => circuitTransitions.cell({ to }));
    for (const to of Object.keys(CIRCUIT_VALUES)) this.circuitTransitions.get(to).inc(0);

    const storeOperations = counter(
      'store_operations_total',
      'Bucket store operations, by operation and result (error: the call threw).',
      ['operation', 'result'],
    );
    this.storeOperations = new Children2((op, result) =>
      storeOperations.cell({ operation: op, result }),
    );
    for (const op of STORE_OPERATIONS) {
      this.storeOperations.get(op, 'ok').inc(0);
      this.storeOperations.get(op, 'error').inc(0);
    }
    const storeSeconds = histogram(
      'store_operation_duration_seconds',
      'Bucket store operation latency.',
      ['operation'],
      STORE_SECONDS,
    );
    this.storeSeconds = new Children1((op) => storeSeconds.cell({ operation: op }));
    this.storeDegraded = plainGauge(
      'store_degraded',
      '1 while the shared store (Redis) is unreachable and STORE_FAILURE_MODE applies.',
    );
    this.storeDegraded.set(0);
    const storeTransitions = counter(
      'store_transitions_total',
      'Shared store availability changes, by the state entered (down, up).',
      ['to'],
    );
    this.storeTransitions = new Children1((to) => storeTransitions.cell({ to }));
    this.storeTransitions.get('down').inc(0);
    this.storeTransitions.get('up').inc(0);
    const degradedAdmissions = counter(
      'degraded_admissions_total',
      'Requests admitted while the store was down, by STORE_FAILURE_MODE (open: uncounted, ' +
        "local: charged to this instance's own buckets).",
      ['mode'],
    );
    this.degradedAdmissions = new Children1((mode) => degradedAdmissions.cell({ mode }));
    this.degradedAdmissions.get('open').inc(0);
    this.degradedAdmissions.get('local').inc(0);

    const syncRuns = counter('sync_runs_total', 'Upstream limit sync runs, by result.', ['result']);
    this.syncRuns = new Children1((result) => syncRuns.cell({ result }));
    for (const result of ['ok', 'error', 'skipped']) this.syncRuns.get(result).inc(0);
    const malformed = counter(
      'sync_malformed_headers_total',
      'Upstream rate-limit header values that did not parse and were ignored, by header.',
      ['header'],
    );
    this.syncMalformedHeaders = new Children1((header) => malformed.cell({ header }));
    for (const header of RATE_LIMIT_HEADERS) this.syncMalformedHeaders.get(header).inc(0);
    this.syncLastSuccess = plainGauge(
      'sync_last_success_timestamp_seconds',
      'When upstream limit sync last succeeded (Unix seconds; 0: never).',
    );
    this.syncLastSuccess.set(0);
    const limitTokens = gauge(
      'upstream_limit_tokens',
      "The provider's token limit per minute for a model, as last reported.",
      ['model'],
    );
    this.upstreamLimitTokens = new Children1((model) => limitTokens.cell({ model }));
    const remainingTokens = gauge(
      'upstream_limit_remaining_tokens',
      "Tokens left in the provider's limit for a model, as last reported.",
      ['model'],
    );
    this.upstreamRemainingTokens = new Children1((model) => remainingTokens.cell({ model }));
    const remainingRequests = gauge(
      'upstream_limit_remaining_requests',
      "Requests left in the provider's limit for a model, as last reported.",
      ['model'],
    );
    this.upstreamRemainingRequests = new Children1((model) => remainingRequests.cell({ model }));

    const adminChanges = counter(
      'admin_changes_total',
      'Changes to budgets, buckets and API keys through the admin API or the policy file.',
      ['action'],
    );
    this.adminChanges = new Children1((action) => adminChanges.cell({ action }));
    for (const action of ADMIN_ACTIONS) this.adminChanges.get(action).inc(0);
    const shadowRejections = counter(
      'shadow_rejections_total',
      'LIMITER_MODE=shadow: requests a budget would have refused, let through uncounted, by ' +
        'scope type and reason.',
      ['scope_type', 'reason'],
    );
    this.shadowRejections = new Children2((scope, reason) =>
      shadowRejections.cell({ scope_type: scope, reason }),
    );
    for (const scope of BUDGET_SCOPES) {
      this.shadowRejections.get(scope, 'insufficient').inc(0);
      this.shadowRejections.get(scope, 'too_large').inc(0);
    }
    this.shadowRejections.get('store', 'store_unavailable').inc(0);

    this.buckets = new BucketSeries(own, options.bucketScopes, options.maxBucketSeries);

    const buildInfo = new Gauge({
      name: `${METRIC_PREFIX}build_info`,
      help: 'Always 1; the labels say which gateway version, Node.js version and store backend run.',
      labelNames: ['version', 'node_version', 'backend'],
      registers,
      // The backend is known only once the store exists: read it at scrape time.
      collect: () => {
        buildInfo.reset();
        buildInfo.labels(options.version, process.version, this.backend).set(1);
      },
    });

    this.registry = Registry.merge([processMetricsRegistry(), own]);
  }

  requestCompleted(telemetry: RequestTelemetry, status: number, durationMs: number): void {
    const route = telemetry.route;
    const outcome = (telemetry.outcome ?? 'unlimited') as HttpOutcome;
    this.requests.get(route, outcome, statusClass(status)).inc();
    this.requestSeconds.get(route, outcome).observe(seconds(durationMs));
    const overheadMs = durationMs - telemetry.upstreamMs;
    this.overheadSeconds.get(route).observe(seconds(overheadMs > 0 ? overheadMs : 0));
  }

  estimated(telemetry: RequestTelemetry, tokens: number, exact: boolean, durationMs: number): void {
    const route = telemetry.route;
    this.tokensEstimated.get(route, telemetry.model ?? OTHER_MODEL).inc(tokens);
    this.estimatorSeconds.get(route).observe(seconds(durationMs));
    if (!exact) this.estimatesBounded.get(route).inc();
  }

  rejected(scope: RejectionScope, reason: RejectionReason): void {
    this.rejections.get(scope, reason).inc();
  }

  admitted(
    telemetry: RequestTelemetry,
    tokens: number,
    degraded: DegradedModeLabel | undefined,
  ): void {
    if (degraded !== undefined) this.degradedAdmissions.get(degraded).inc();
    // Admitted uncounted: nothing was reserved, and nothing will be settled.
    if (degraded === 'open') return;
    this.tokensReserved.get(telemetry.route, telemetry.model ?? OTHER_MODEL).inc(tokens);
    this.reservationsInFlight.inc();
  }

  settled(
    telemetry: RequestTelemetry,
    estimatedTokens: number,
    consumed: ConsumedTokens | undefined,
    heldReservation: boolean,
  ): void {
    const route = telemetry.route;
    const model = telemetry.model ?? OTHER_MODEL;
    const outcome = telemetry.settlement ?? 'refund';
    if (heldReservation) this.reservationsInFlight.dec();
    this.settlements.get(route, outcome).inc();
    if (consumed === undefined) return;
    this.tokensConsumed.get(route, model, 'prompt').inc(consumed.promptTokens);
    this.tokensConsumed.get(route, model, 'completion').inc(consumed.completionTokens);
    // Only a complete answer says how good the estimate was; a cut stream says nothing.
    if (outcome === 'complete' && estimatedTokens > 0) {
      this.estimationError.get(route, model).observe(consumed.totalTokens / estimatedTokens);
    }
  }

  refunded(telemetry: RequestTelemetry, tokens: number): void {
    if (tokens > 0) {
      this.tokensRefunded.get(telemetry.route, telemetry.model ?? OTHER_MODEL).inc(tokens);
    }
  }

  upstreamAnswered(route: RouteLabel, status: number, ttfbMs: number, streamed: boolean): void {
    this.upstreamRequests.get(route, statusClass(status)).inc();
    this.upstreamTtfb.get(route, streamed ? 'true' : 'false').observe(seconds(ttfbMs));
  }

  upstreamCompleted(route: RouteLabel, durationMs: number): void {
    this.upstreamSeconds.get(route).observe(seconds(durationMs));
  }

  upstreamFailed(kind: UpstreamErrorKind): void {
    this.upstreamErrors.get(kind).inc();
  }

  streamOpened(route: RouteLabel): void {
    this.streamsInFlight.get(route).inc();
  }

  streamClosed(route: RouteLabel): void {
    this.streamsInFlight.get(route).dec();
  }

  circuitChanged(state: CircuitStateLabel): void {
    this.circuitState.set(CIRCUIT_VALUES[state]);
    this.circuitTransitions.get(state).inc();
  }

  storeOperation(operation: StoreOperation, ok: boolean, durationMs: number): void {
    this.storeOperations.get(operation, ok ? 'ok' : 'error').inc();
    this.storeSeconds.get(operation).observe(seconds(durationMs));
  }

  storeAvailability(healthy: boolean): void {
    this.storeDegraded.set(healthy ? 0 : 1);
    this.storeTransitions.get(healthy ? 'up' : 'down').inc();
  }

  watchBuckets(source: BucketSource): void {
    this.backend = source.backend;
    this.buckets.watch(source);
  }

  bucketSeen(type: BudgetScopeType, id: string): void {
    this.buckets.note(type, id);
  }

  syncRun(result: SyncResult): void {
    this.syncRuns.get(result).inc();
  }

  syncSucceeded(atMs: number): void {
    this.syncLastSuccess.set(Math.floor(atMs / 1000));
  }

  adminChange(action: AdminAction): void {
    this.adminChanges.get(action).inc();
  }

  shadowRejected(scope: RejectionScope, reason: RejectionReason): void {
    this.shadowRejections.get(scope, reason).inc();
  }

  upstreamHeaderMalformed(header: RateLimitHeader): void {
    this.syncMalformedHeaders.get(header).inc();
  }

  upstreamLimits(model: string, limits: UpstreamLimits): void {
    model = modelLabel(model);
    if (limits.limitTokens !== undefined) {
      this.upstreamLimitTokens.get(model).set(limits.limitTokens);
    }
    if (limits.remainingTokens !== undefined) {
      this.upstreamRemainingTokens.get(model).set(limits.remainingTokens);
    }
    if (limits.remainingRequests !== undefined) {
      this.upstreamRemainingRequests.get(model).set(limits.remainingRequests);
    }
  }
}
