import { readText, readYaml } from './project';

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'start',
  'end',
  'inf',
  'nan',
]);

/** A PromQL expression with Grafana's variables replaced by values Prometheus accepts. */
export const withGrafanaVariables = (expr: string): string =>
  expr
    .replace(/\$__rate_interval|\$__interval|\$__range/g, '1m')
    .replace(/\$\{?instance\}?/g, '.*');

/** Metric names an expression selects, and the label names it mentions. */
export function promqlNames(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let rest = expr
    // string literals (label values, regexes)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    // range and subquery selectors
    .replace(/\[[^\]]*\]/g, ' ');
  // label matchers: {a="", b=~""}
  rest = rest.replace(/\{([^}]*)\}/g, (_, body: string) => {
    for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return ' ';
  });
  // grouping and matching clauses: by (a, b), on (a), group_left (a)
  rest = rest.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_, _kw: string, list: string) => {
      for (const name of list.split(',').map((s) => s.trim())) if (name) labels.add(name);
      return ' ';
    },
  );
  for (const m of rest.matchAll(
    /(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g,
  )) {
    const [, number, identifier, call] = m;
    if (number !== undefined || identifier === undefined) continue;
    if (call !== undefined || KEYWORDS.has(identifier.toLowerCase())) continue;
    metrics.add(identifier);
  }
  if (labels.has('__name__')) {
    throw new Error(`selecting by __name__ hides the metric name from this check: ${expr}`);
  }
  return { metrics, labels };
}

export interface QuerySource {
  /** Where the expression is: dashboard panel title or alert name. */
  readonly where: string;
  readonly expr: string;
}

interface DashboardPanel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { type?: string; uid?: string } }[];
  panels?: DashboardPanel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: DashboardPanel[];
  templating?: {
    list?: {
      name: string;
      type: string;
      datasource?: { uid?: string };
      definition?: string;
      query?: string | { query?: string };
    }[];
  };
}

export const DASHBOARD_PATH = 'monitoring/grafana/dashboards/tokenguard.json';
export const ALERTS_PATH = 'monitoring/alerts.yml';

export const readDashboard = (): Dashboard => JSON.parse(readText(DASHBOARD_PATH)) as Dashboard;

/** Every panel, rows' nested panels included. */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** Each target of each panel, and each query variable (as the selector inside label_values). */
export function dashboardQueries(dashboard: Dashboard): QuerySource[] {
  const queries: QuerySource[] = [];
  for (const panel of dashboardPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (target.expr) queries.push({ where: `panel "${panel.title}"`, expr: target.expr });
    }
  }
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const text =
      typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
    for (const candidate of new Set([text, variable.definition ?? ''])) {
      if (!candidate) continue;
      const labelValues = /^label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(
        candidate,
      );
      queries.push({
        where: `variable $${variable.name}`,
        expr: labelValues ? labelValues[1] : candidate,
      });
    }
  }
  return queries;
}

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export const readAlertRules = (): AlertRule[] =>
  readYaml<{ groups: { name: string; rules: AlertRule[] }[] }>(ALERTS_PATH).groups.flatMap(
    (group) => group.rules,
  );

export const alertQueries = (): QuerySource[] =>
  readAlertRules().map((rule) => ({
    where: `alert ${rule.alert ?? rule.record}`,
    expr: rule.expr,
  }));
