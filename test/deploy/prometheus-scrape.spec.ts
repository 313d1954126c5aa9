/**
 * Debian's Prometheus (and promtool) against the monitoring files and a gateway running in this
 * process: the config and rules pass promtool, a real server scrapes the gateway, and every
 * dashboard and alert expression evaluates. Without the binaries this suite is skipped with a
 * printed reason; under CI=true it fails instead.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startHarness, type Harness } from '../support/gateway-harness';
import { fromRoot, listFiles, readYaml } from './support/project';
import {
  alertQueries,
  dashboardQueries,
  readDashboard,
  withGrafanaVariables,
} from './support/promql';
import { sendTraffic } from './support/traffic';
import { allOf, describeWithTool, freePort, probeTool, waitFor } from './support/tools';

const PROMETHEUS = process.env.PROMETHEUS_BIN ?? 'prometheus';
const PROMTOOL = process.env.PROMTOOL_BIN ?? 'promtool';

interface ApiAnswer<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[]; labels?: Record<string, string> }[];
  [key: string]: unknown;
}

interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs: ScrapeConfig[];
}

function promtool(...args: string[]): { status: number | null; output: string } {
  const child = spawnSync(PROMTOOL, args, { cwd: fromRoot(), encoding: 'utf8', timeout: 20_000 });
  return { status: child.status, output: `${child.stdout}${child.stderr}` };
}

describeWithTool(
  'Prometheus with the monitoring files, scraping a running gateway',
  allOf(probeTool(PROMETHEUS), probeTool(PROMTOOL)),
  () => {
    let harness: Harness;
    let prometheus: ChildProcess | undefined;
    let exited: Promise<void> | undefined;
    let workDir: string;
    let api: string;
    let log = '';

    async function get<T>(path: string, query: Record<string, string> = {}): Promise<T> {
      const url = new URL(path, api);
      for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
      const response = await fetch(url);
      const answer = (await response.json()) as ApiAnswer<T>;
      if (answer.status !== 'success') {
        throw new Error(`${url.pathname} ${JSON.stringify(query)}: ${answer.error}`);
      }
      return answer.data;
    }

    beforeAll(async () => {
      harness = await startHarness();
      await sendTraffic(harness.url);

      // The repository's prometheus.yml and rules, scraping the in-process gateway every second.
      const config = readYaml<PrometheusConfig>('monitoring/prometheus.yml');
      config.global = {
        ...config.global,
        scrape_interval: '1s',
        scrape_timeout: '1s',
        evaluation_interval: '1s',
      };
      config.rule_files = (config.rule_files ?? []).map((file) => fromRoot('monitoring', file));
      const job = config.scrape_configs.find((c) => c.job_name === 'tokenguard');
      if (!job) throw new Error('monitoring/prometheus.yml has no tokenguard job');
      const target = new URL(harness.url).host;
      job.static_configs = (job.static_configs ?? [{ targets: [] }]).map((c) => ({
        ...c,
        targets: [target],
      }));

      workDir = mkdtempSync(join(tmpdir(), 'tokenguard-prometheus-'));
      const configFile = join(workDir, 'prometheus.yml');
      writeFileSync(configFile, stringify(config));
      const port = await freePort();
      api = `http://127.0.0.1:${port}`;
      const child = spawn(
        PROMETHEUS,
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${join(workDir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      prometheus = child;
      exited = new Promise((resolve) => child.once('exit', () => resolve()));
      const keep = (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      await waitFor(
        'Prometheus to be ready',
        async () => {
          if (child.exitCode !== null) throw new Error(`prometheus exited: ${log}`);
          return (await fetch(`${api}/-/ready`)).ok ? true : undefined;
        },
        15_000,
      );
    });

    afterAll(async () => {
      if (prometheus && prometheus.exitCode === null) {
        prometheus.kill('SIGTERM');
        const timer = setTimeout(() => prometheus?.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      if (workDir) rmSync(workDir, { recursive: true, force: true });
      await harness?.close();
    });

    it('promtool accepts prometheus.yml, the alert rules and their unit tests', () => {
      const checks = [
        promtool('check', 'config', 'monitoring/prometheus.yml'),
        promtool('check', 'rules', 'monitoring/alerts.yml'),
        promtool('test', 'rules', ...listFiles('monitoring/tests')),
      ];
      for (const check of checks) expect(check).toMatchObject({ status: 0 });
    });

    it('scrapes the gateway: the target is up and tokenguard_ series answer queries', async () => {
      interface Targets {
        activeTargets: { labels: Record<string, string>; health: string; scrapeUrl: string }[];
      }
      const target = await waitFor(
        'the tokenguard target to be up',
        async () => {
          const data = await get<Targets>('/api/v1/targets');
          return data.activeTargets.find((t) => t.labels.job === 'tokenguard' && t.health === 'up');
        },
        15_000,
      );
      expect(new URL(target.scrapeUrl).pathname).toBe('/metrics');

      interface Vector {
        result: { metric: Record<string, string>; value: [number, string] }[];
      }
      const series = await waitFor(
        'a tokenguard_ query to return data',
        async () => {
          const data = await get<Vector>('/api/v1/query', {
            query: 'count({job="tokenguard", __name__=~"tokenguard_.+"})',
          });
          return data.result.length > 0 ? Number(data.result[0].value[1]) : undefined;
        },
        10_000,
      );
      expect(series).toBeGreaterThan(0);
      const requests = await get<Vector>('/api/v1/query', {
        query: 'sum(tokenguard_http_requests_total{job="tokenguard"})',
      });
      expect(Number(requests.result[0]?.value[1])).toBeGreaterThan(0);
    });

    it('evaluates every dashboard and alert expression without an error', async () => {
      const failures: string[] = [];
      for (const { where, expr } of [...dashboardQueries(readDashboard()), ...alertQueries()]) {
        try {
          await get('/api/v1/query', { query: withGrafanaVariables(expr) });
        } catch (error) {
          failures.push(`${where}: ${(error as Error).message}`);
        }
      }
      expect(failures).toEqual([]);
    });

    it('loads the alert rules and evaluates them against the scraped data', async () => {
      interface Rules {
        groups: {
          rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
        }[];
      }
      const rules = await waitFor(
        'every rule to be evaluated',
        async () => {
          const all = (await get<Rules>('/api/v1/rules')).groups.flatMap((g) => g.rules);
          return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001-'))
            ? all
            : undefined;
        },
        10_000,
      );
      expect(rules.map((r) => r.name).sort()).toEqual(
        alertQueries()
          .map((q) => q.where.replace(/^alert /, ''))
          .sort(),
      );
      for (const rule of rules) {
        expect({ rule: rule.name, health: rule.health, error: rule.lastError ?? '' }).toEqual({
          rule: rule.name,
          health: 'ok',
          error: '',
        });
      }
    });
  },
);
