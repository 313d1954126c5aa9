/**
 * Every metric the Grafana dashboard and the alert rules query is one the running gateway
 * exports (after a little traffic), with the labels the queries group and filter by.
 */
import { startHarness, type Harness } from '../support/gateway-harness';
import { parseExposition, selectableNames, type Exposition } from './support/exposition';
import {
  alertQueries,
  dashboardPanels,
  dashboardQueries,
  promqlNames,
  type QuerySource,
  readAlertRules,
  readDashboard,
} from './support/promql';
import { readYaml } from './support/project';
import { sendTraffic, TRAFFIC_TEAM, TRAFFIC_USER } from './support/traffic';

/** Labels Prometheus adds at scrape time (and `le` of histogram buckets). */
const TARGET_LABELS = new Set(['job', 'instance', 'le', 'service']);

const dashboard = readDashboard();
const queries: QuerySource[] = [...dashboardQueries(dashboard), ...alertQueries()];

describe('dashboard and alert rules', () => {
  it('query only tokenguard_ metrics', () => {
    const foreign = queries.flatMap(({ where, expr }) =>
      [...promqlNames(expr).metrics]
        .filter((name) => !name.startsWith('tokenguard_'))
        .map((name) => `${where}: ${name}`),
    );
    expect(foreign).toEqual([]);
    expect(queries.length).toBeGreaterThan(20);
  });

  it('cover what the dashboard is for', () => {
    const titles = dashboardPanels(dashboard).map((p) => p.title ?? '');
    const all = queries.map((q) => q.expr).join('\n');
    for (const expected of [
      /tokenguard_http_requests_total/,
      /tokenguard_tokens_consumed_total/,
      /tokenguard_rejections_total/,
      /histogram_quantile\(.*tokenguard_gateway_overhead_seconds_bucket/,
      /histogram_quantile\(.*tokenguard_upstream_duration_seconds_bucket/,
      /tokenguard_circuit_state/,
      /tokenguard_store_degraded/,
      /tokenguard_upstream_limit_remaining_tokens/,
      /tokenguard_estimation_error_ratio/,
    ]) {
      expect(all).toMatch(expected);
    }
    expect(new Set(titles).size).toBe(titles.length);
    const ids = dashboardPanels(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboardPanels(dashboard)) {
      const pos = panel.gridPos;
      expect(pos && pos.x >= 0 && pos.w > 0 && pos.x + pos.w <= 24).toBe(true);
      if (panel.type !== 'row') expect(panel.targets?.length).toBeGreaterThan(0);
    }
  });

  it('are alerts with a duration, a severity and a summary and description', () => {
    const rules = readAlertRules();
    const names = rules.map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'TokenGuardRejectionRatioHigh',
        'TokenGuardCircuitOpen',
        'TokenGuardStoreDegraded',
        'TokenGuardUpstreamErrorRatioHigh',
        'TokenGuardEstimatesBelowUsage',
        'TokenGuardSyncStale',
      ]),
    );
    for (const rule of rules) {
      expect(rule.for).toMatch(/^\d+[smh]$/);
      expect(['info', 'warning', 'critical']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
    }
    // The same file Prometheus loads.
    expect(readYaml<{ rule_files: string[] }>('monitoring/prometheus.yml').rule_files).toEqual([
      'alerts.yml',
    ]);
  });
});

describe('metrics the dashboard and alerts query, against a running gateway', () => {
  let harness: Harness;
  let text: string;
  let exposition: Exposition;

  beforeAll(async () => {
    harness = await startHarness();
    const statuses = await sendTraffic(harness.url);
    expect(statuses).toMatchObject({ chat: 200, chatStream: 200, embeddings: 200, tooLarge: 429 });
    const response = await fetch(`${harness.url}/metrics`);
    text = response.ok ? await response.text() : '';
    exposition = parseExposition(text);
  });
  afterAll(async () => {
    await harness?.close();
  });

  it('exports every metric name the dashboard and the alert rules use', () => {
    const exported = selectableNames(exposition);
    const missing = new Map<string, string[]>();
    for (const { where, expr } of queries) {
      for (const name of promqlNames(expr).metrics) {
        if (exported.has(name)) continue;
        missing.set(name, [...(missing.get(name) ?? []), where]);
      }
    }
    const report = [...missing].map(
      ([name, where]) => `${name} (${[...new Set(where)].join(', ')})`,
    );
    expect(report).toEqual([]);
  });

  it('has the labels the queries filter and group by, where samples exist', () => {
    const exported = selectableNames(exposition);
    const problems: string[] = [];
    for (const { where, expr } of queries) {
      const { metrics, labels } = promqlNames(expr);
      const families = [...metrics].filter((m) => exported.has(m));
      // Labelled series appear only once recorded; judge only when every metric has samples.
      const sampled = families.map((m) => exposition.samples.get(m));
      if (families.length !== metrics.size || sampled.some((s) => s === undefined)) continue;
      const known = new Set(sampled.flatMap((s) => [...(s ?? [])]));
      for (const label of labels) {
        if (!known.has(label) && !TARGET_LABELS.has(label)) problems.push(`${where}: ${label}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('never carries a user or team id', () => {
    expect(text).toContain('tokenguard_');
    expect(text).not.toContain(TRAFFIC_USER);
    expect(text).not.toContain(TRAFFIC_TEAM);
  });
});
