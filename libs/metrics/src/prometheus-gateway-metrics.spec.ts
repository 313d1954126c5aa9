import { RequestTelemetry } from '@tokenguard/common';
import type { BudgetScopeType } from '@tokenguard/config';
import type { BucketSource } from './gateway-metrics';
import { PrometheusGatewayMetrics } from './prometheus-gateway-metrics';

type Labels = Record<string, string>;

function create(bucketScopes: BudgetScopeType[] = ['global', 'team'], maxBucketSeries = 100) {
  return new PrometheusGatewayMetrics({ bucketScopes, maxBucketSeries, version: '9.9.9' });
}

/** Sum of the samples of `name` whose labels include `labels`, as a scrape would read them. */
async function read(metrics: PrometheusGatewayMetrics, name: string, labels: Labels = {}) {
  let sum = 0;
  for (const family of await metrics.registry.getMetricsAsJSON()) {
    for (const value of family.values) {
      const sample = (value as { metricName?: string }).metricName ?? family.name;
      const own = value.labels as Labels;
      if (sample === name && Object.entries(labels).every(([k, v]) => own[k] === v)) {
        sum += value.value;
      }
    }
  }
  return sum;
}

function telemetry(overrides: Partial<RequestTelemetry> = {}): RequestTelemetry {
  return Object.assign(new RequestTelemetry(), {
    route: 'chat.completions',
    model: 'gpt-4o',
    ...overrides,
  });
}

describe('PrometheusGatewayMetrics', () => {
  it('registers every family once per instance, so gateways can share a process', async () => {
    const a = create();
    const b = create();
    const names = (await a.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.every((name) => name.startsWith('tokenguard_'))).toBe(true);
    expect(names).toEqual(expect.arrayContaining(['tokenguard_process_cpu_seconds_total']));
    a.rejected('user', 'insufficient');
    expect(await read(a, 'tokenguard_rejections_total')).toBe(1);
    expect(await read(b, 'tokenguard_rejections_total')).toBe(0);
  });

  it('counts requests by route, outcome and status class, with their overhead', async () => {
    const m = create();
    m.requestCompleted(telemetry({ outcome: 'admitted', upstreamMs: 150 }), 200, 160);
    m.requestCompleted(telemetry({ outcome: 'rejected' }), 429, 2);
    // The upstream clock and the request clock are read at different moments: never negative.
    m.requestCompleted(telemetry({ outcome: 'admitted', upstreamMs: 50 }), 502, 49.9);
    const labels = { route: 'chat.completions' };
    expect(
      await read(m, 'tokenguard_http_requests_total', {
        ...labels,
        outcome: 'admitted',
        status_class: '2xx',
      }),
    ).toBe(1);
    expect(await read(m, 'tokenguard_http_requests_total', { status_class: '4xx' })).toBe(1);
    expect(await read(m, 'tokenguard_http_requests_total', { status_class: '5xx' })).toBe(1);
    expect(await read(m, 'tokenguard_http_request_duration_seconds_sum', labels)).toBeCloseTo(
      0.2119,
      6,
    );
    expect(await read(m, 'tokenguard_gateway_overhead_seconds_sum', labels)).toBeCloseTo(0.012, 6);
    expect(await read(m, 'tokenguard_gateway_overhead_seconds_count', labels)).toBe(3);
  });

  it('records estimates, reservations and settlements by route and model', async () => {
    const m = create();
    const t = telemetry();
    m.estimated(t, 100, false, 0.5);
    m.admitted(t, 100, undefined);
    expect(await read(m, 'tokenguard_reservations_in_flight')).toBe(1);
    t.settlement = 'complete';
    m.settled(t, 100, { promptTokens: 30, completionTokens: 20, totalTokens: 50 }, true);
    m.refunded(t, 50);
    m.refunded(t, -10); // charged extra: not a refund
    const labels = { route: 'chat.completions', model: 'gpt-4o' };
    expect(await read(m, 'tokenguard_tokens_estimated_total', labels)).toBe(100);
    expect(await read(m, 'tokenguard_estimates_bounded_total')).toBe(1);
    expect(await read(m, 'tokenguard_estimator_duration_seconds_sum')).toBeCloseTo(0.0005, 9);
    expect(await read(m, 'tokenguard_tokens_reserved_total', labels)).toBe(100);
    expect(await read(m, 'tokenguard_tokens_consumed_total', { ...labels, kind: 'prompt' })).toBe(
      30,
    );
    expect(
      await read(m, 'tokenguard_tokens_consumed_total', { ...labels, kind: 'completion' }),
    ).toBe(20);
    expect(await read(m, 'tokenguard_tokens_refunded_total', labels)).toBe(50);
    expect(await read(m, 'tokenguard_estimation_error_ratio_sum', labels)).toBe(0.5);
    expect(
      await read(m, 'tokenguard_settlements_total', {
        route: 'chat.completions',
        outcome: 'complete',
      }),
    ).toBe(1);
    expect(await read(m, 'tokenguard_reservations_in_flight')).toBe(0);
  });

  it('judges the estimate only by complete answers', async () => {
    const m = create();
    const cut = telemetry({ settlement: 'aborted' });
    m.settled(cut, 100, { promptTokens: 30, completionTokens: 2, totalTokens: 32 }, true);
    const refund = telemetry({ settlement: 'upstream_error' });
    m.settled(refund, 100, undefined, true);
    expect(await read(m, 'tokenguard_estimation_error_ratio_count')).toBe(0);
    expect(await read(m, 'tokenguard_tokens_consumed_total')).toBe(32);
    expect(await read(m, 'tokenguard_settlements_total', { outcome: 'aborted' })).toBe(1);
    expect(await read(m, 'tokenguard_settlements_total', { outcome: 'upstream_error' })).toBe(1);
  });

  it('reserves nothing for requests admitted uncounted, and counts degraded admissions', async () => {
    const m = create();
    m.admitted(telemetry(), 100, 'open');
    m.admitted(telemetry(), 100, 'local');
    expect(await read(m, 'tokenguard_degraded_admissions_total', { mode: 'open' })).toBe(1);
    expect(await read(m, 'tokenguard_degraded_admissions_total', { mode: 'local' })).toBe(1);
    expect(await read(m, 'tokenguard_tokens_reserved_total')).toBe(100);
    expect(await read(m, 'tokenguard_reservations_in_flight')).toBe(1);
    m.settled(telemetry({ settlement: 'complete' }), 100, undefined, false);
    expect(await read(m, 'tokenguard_reservations_in_flight')).toBe(1);
  });

  it('records upstream calls, errors, streams and the circuit', async () => {
    const m = create();
    m.upstreamAnswered('embeddings', 200, 12, false);
    m.upstreamAnswered('chat.completions', 503, 40, true);
    m.upstreamCompleted('embeddings', 30);
    m.upstreamFailed('timeout');
    m.streamOpened('responses');
    m.streamOpened('responses');
    m.streamClosed('responses');
    expect(
      await read(m, 'tokenguard_upstream_requests_total', {
        route: 'embeddings',
        status_class: '2xx',
      }),
    ).toBe(1);
    expect(await read(m, 'tokenguard_upstream_requests_total', { status_class: '5xx' })).toBe(1);
    expect(await read(m, 'tokenguard_upstream_ttfb_seconds_count', { streamed: 'true' })).toBe(1);
    expect(await read(m, 'tokenguard_upstream_duration_seconds_sum')).toBeCloseTo(0.03, 9);
    expect(await read(m, 'tokenguard_upstream_errors_total', { kind: 'timeout' })).toBe(1);
    expect(await read(m, 'tokenguard_streams_in_flight', { route: 'responses' })).toBe(1);

    expect(await read(m, 'tokenguard_circuit_state')).toBe(0);
    m.circuitChanged('open');
    expect(await read(m, 'tokenguard_circuit_state')).toBe(2);
    m.circuitChanged('half_open');
    expect(await read(m, 'tokenguard_circuit_state')).toBe(1);
    m.circuitChanged('closed');
    expect(await read(m, 'tokenguard_circuit_state')).toBe(0);
    expect(await read(m, 'tokenguard_circuit_transitions_total')).toBe(3);
  });

  it('records store operations and availability', async () => {
    const m = create();
    m.storeOperation('reserve', true, 0.2);
    m.storeOperation('reserve', false, 500);
    expect(
      await read(m, 'tokenguard_store_operations_total', { operation: 'reserve', result: 'ok' }),
    ).toBe(1);
    expect(await read(m, 'tokenguard_store_operations_total', { result: 'error' })).toBe(1);
    expect(await read(m, 'tokenguard_store_operation_duration_seconds_count')).toBe(2);
    expect(await read(m, 'tokenguard_store_degraded')).toBe(0);
    m.storeAvailability(false);
    expect(await read(m, 'tokenguard_store_degraded')).toBe(1);
    m.storeAvailability(true);
    expect(await read(m, 'tokenguard_store_degraded')).toBe(0);
    expect(await read(m, 'tokenguard_store_transitions_total', { to: 'down' })).toBe(1);
    expect(await read(m, 'tokenguard_store_transitions_total', { to: 'up' })).toBe(1);
  });

  it('records sync results and upstream limits under model families', async () => {
    const m = create();
    expect(await read(m, 'tokenguard_sync_last_success_timestamp_seconds')).toBe(0);
    m.syncRun('ok');
    m.syncSucceeded(1_700_000_000_500);
    m.upstreamLimits('gpt-4o-2024-08-06', { limitTokens: 30_000, remainingTokens: 29_000 });
    m.upstreamLimits('my-private-model', { remainingRequests: 7 });
    expect(await read(m, 'tokenguard_sync_runs_total', { result: 'ok' })).toBe(1);
    expect(await read(m, 'tokenguard_sync_last_success_timestamp_seconds')).toBe(1_700_000_000);
    expect(await read(m, 'tokenguard_upstream_limit_tokens', { model: 'gpt-4o' })).toBe(30_000);
    expect(await read(m, 'tokenguard_upstream_limit_remaining_tokens', { model: 'gpt-4o' })).toBe(
      29_000,
    );
    expect(await read(m, 'tokenguard_upstream_limit_remaining_requests', { model: 'other' })).toBe(
      7,
    );
    m.upstreamHeaderMalformed('x-ratelimit-reset-tokens');
    m.upstreamHeaderMalformed('x-ratelimit-reset-tokens');
    expect(
      await read(m, 'tokenguard_sync_malformed_headers_total', {
        header: 'x-ratelimit-reset-tokens',
      }),
    ).toBe(2);
  });

  it('starts known counters at zero so rates exist before the first event', async () => {
    const m = create();
    const families = await m.registry.getMetricsAsJSON();
    const seriesOf = (name: string) => families.find((f) => f.name === name)?.values.length;
    expect(seriesOf('tokenguard_upstream_errors_total')).toBe(6);
    expect(seriesOf('tokenguard_settlements_total')).toBe(20);
    // 11 operations (the admin ones and lower_level included), ok and error each.
    expect(seriesOf('tokenguard_store_operations_total')).toBe(22);
    expect(seriesOf('tokenguard_sync_runs_total')).toBe(3);
    expect(seriesOf('tokenguard_sync_malformed_headers_total')).toBe(8);
  });

  describe('bucket gauges', () => {
    function store(levels: Record<string, number>, backend = 'memory') {
      const getBucket = jest.fn(({ type, id }: { type: BudgetScopeType; id: string }) => {
        const tokens = levels[`${type}:${id}`];
        return tokens === undefined
          ? Promise.reject(new Error('store down'))
          : Promise.resolve({ tokens, capacity: 1000 });
      });
      const source: BucketSource = { backend, getBucket };
      return { source, getBucket };
    }

    it('reads the global bucket and opted-in budgets at scrape time, once for both gauges', async () => {
      const m = create(['team']);
      const { source, getBucket } = store({ 'global:global': 900, 'team:blue': -20 });
      m.watchBuckets(source);
      m.bucketSeen('team', 'blue');
      m.bucketSeen('user', 'alice-q9'); // users not opted in
      m.bucketSeen('role', 'dev-q9');
      const text = await m.registry.metrics();
      expect(text).toContain('tokenguard_bucket_tokens{scope_type="global",scope="global"} 900');
      expect(text).toContain('tokenguard_bucket_tokens{scope_type="team",scope="team:blue"} -20');
      expect(text).toContain(
        'tokenguard_bucket_capacity_tokens{scope_type="team",scope="team:blue"} 1000',
      );
      expect(text).not.toMatch(/q9/);
      expect(getBucket).toHaveBeenCalledTimes(2);
      expect(text).toContain(
        `tokenguard_build_info{version="9.9.9",node_version="${process.version}",backend="memory"} 1`,
      );
    });

    it('keeps at most METRICS_MAX_BUCKET_SERIES per-id series, the first ones seen', async () => {
      const m = create(['team', 'user'], 3);
      const levels: Record<string, number> = { 'global:global': 1 };
      for (let i = 0; i < 50; i++) {
        levels[`user:u${i}`] = i;
        m.bucketSeen('user', `u${i}`);
        m.bucketSeen('user', `u${i}`);
      }
      m.watchBuckets(store(levels).source);
      const gauges = (await m.registry.getMetricsAsJSON()).find(
        (f) => f.name === 'tokenguard_bucket_tokens',
      );
      expect(gauges?.values.map((v) => v.labels.scope)).toEqual([
        'global',
        'user:u0',
        'user:u1',
        'user:u2',
      ]);
    });

    it('leaves out a bucket it cannot read instead of failing the scrape or going stale', async () => {
      const m = create(['team']);
      const levels: Record<string, number> = { 'global:global': 5, 'team:a': 1, 'team:b': 2 };
      m.watchBuckets(store(levels).source);
      m.bucketSeen('team', 'a');
      m.bucketSeen('team', 'b');
      expect(await read(m, 'tokenguard_bucket_tokens')).toBe(8);
      delete levels['team:a'];
      delete levels['global:global'];
      expect(await read(m, 'tokenguard_bucket_tokens')).toBe(2);
    });

    it('has no series before a store is watched', async () => {
      const m = create();
      expect(await read(m, 'tokenguard_bucket_tokens')).toBe(0);
      expect(await read(m, 'tokenguard_build_info', { backend: 'unknown' })).toBe(1);
    });
  });
});
