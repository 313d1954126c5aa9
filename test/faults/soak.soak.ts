import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type CallResult, type CallSpec, type Identity, readBucket } from './support/client';
import type { Memory } from './support/gateway-process';
import { checkInvariants, print } from './support/invariants';
import { type Budgets, Rig } from './support/rig';

/**
 * The soak (npm run test:soak): two gateway instances on one Redis, mixed streaming and JSON
 * traffic from many users and teams, random client aborts, upstream errors and cut streams, and
 * one Redis blip (killed, restarted empty), for SOAK_SECONDS; then the fault suite's invariants
 * and a report, printed and written to SOAK_REPORT (default test/artifacts/soak/last-soak.json).
 */
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const REPORT = process.env.SOAK_REPORT ?? join(__dirname, '../artifacts/soak/last-soak.json');
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 24);
/** The run, plus the quiet period and the checks after it. */
const TIMEOUT_MS = (SECONDS + 180) * 1000;
const USERS = 120;
const TEAMS = 8;

/**
 * The global bucket, shared by both instances, is what the traffic runs into first; the heavy
 * users run into their own; one team has a tighter budget of its own (set through the admin
 * API, kept in Redis, remembered by the instances for their local buckets).
 */
const SOAK_BUDGETS: Budgets = {
  global: { capacity: 20_000, refillPerSec: 4_000 },
  team: { capacity: 8_000, refillPerSec: 1_500 },
  rolegroup: { capacity: 12_000, refillPerSec: 2_500 },
  role: { capacity: 8_000, refillPerSec: 1_500 },
  user: { capacity: 600, refillPerSec: 150 },
};
const OVERRIDE = { scope: 'team:soak-t0', policy: { capacity: 2_000, refillPerSec: 300 } };

const identityOf = (user: number): Identity => ({
  user: `soak-u${user}`,
  team: `soak-t${user % TEAMS}`,
  rolegroup: `soak-rg${user % 3}`,
  role: `soak-r${user % 6}`,
});

const random = (n: number) => Math.floor(Math.random() * n);

/** One call, with its fault drawn at random. */
function nextCall(worker: number, n: number): CallSpec {
  const stream = Math.random() < 0.5;
  const spec: CallSpec = {
    id: `soak-${worker}-${n}`,
    // A few heavy users, a long tail of light ones.
    identity: identityOf(Math.random() < 0.3 ? random(10) : random(USERS)),
    stream,
    includeUsage: stream && Math.random() < 0.5,
    maxTokens: 16 + random(48),
  };
  const dice = Math.random();
  if (dice < 0.08)
    return {
      ...spec,
      abortAfterEvents: stream ? 1 + random(30) : undefined,
      abortAfterMs: stream ? undefined : random(40),
    };
  if (dice < 0.12) return { ...spec, mock: { status: 500 } };
  if (dice < 0.15) return { ...spec, mock: { failMidStreamAfterChunks: 1 + random(20) } };
  if (dice < 0.18) return { ...spec, stream: true, mock: { chunkDelayMs: 20 } };
  if (dice < 0.2) return { ...spec, stream: false, mock: { latencyMs: 300 }, abortAfterMs: 100 };
  return spec;
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

describe('soak: two gateways, one Redis, mixed traffic and faults', () => {
  let rig: Rig;
  let memory: Memory[];

  beforeAll(async () => {
    rig = await Rig.start({
      redis: true,
      gateways: 2,
      globalScope: true,
      budgets: SOAK_BUDGETS,
      env: { STORE_FAILURE_MODE: 'local', CIRCUIT_BREAKER_RECOVERY_TIMEOUT: '2' },
    });
    await rig.setBudget(OVERRIDE.scope, OVERRIDE.policy);
    memory = await rig.warmUp('soakwarm');
  });
  afterAll(() => rig?.close());

  it(
    `holds every invariant for ${SECONDS} s`,
    async () => {
      const blipAt = Math.round(SECONDS * 400);
      const started = Date.now();
      const results: CallResult[] = await rig.drive({
        durationMs: SECONDS * 1000,
        concurrency: CONCURRENCY,
        next: nextCall,
        // Back off on a 429 like an SDK client (its retry-after-ms), at least 50 ms: the global
        // bucket's waits are a few ms, and a tight retry loop would make the run mostly 429s.
        thinkMs: (last) =>
          last.status === 429
            ? Math.min(Math.max(last.retryAfterMs ?? 100, 50), 250)
            : 5 + Math.random() * 20,
        faults: [
          { atMs: blipAt, run: () => rig.redis!.kill() },
          { atMs: blipAt + 2000, run: () => rig.redis!.resume() },
        ],
      });
      const report = await checkInvariants(rig, results, {
        allowed: [
          '502 upstream_error',
          '502 upstream_unavailable',
          '503 upstream_unavailable',
          '504 upstream_timeout',
          'stream_cut:upstream_stream_error',
        ],
        memory,
        storeResets: 1,
      });
      print('soak', report);

      const { ledger } = report;
      const lines = results.map((r) =>
        rig.gateways.find((g) => g.name === r.gateway)!.lines.get(r.id),
      );
      const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
      /** Per scope type: how close its tightest scope came to what its budget allows. */
      const perType = (type: string) => {
        const scopes = ledger.scopes.filter((s) => s.scope.startsWith(`${type}:`));
        const tightest = [...scopes].sort(
          (a, b) => b.shared / b.allowedShared - a.shared / a.allowedShared,
        )[0];
        return {
          scopes: scopes.length,
          tightest: tightest.scope,
          admitted: tightest.shared,
          allowed: tightest.allowedShared,
          used: `${Math.round((100 * tightest.shared) / tightest.allowedShared)}%`,
          allWithinBudget: scopes.every((s) => s.ok),
        };
      };
      const outcomes: Record<string, number> = {};
      for (const line of lines) {
        const key = line?.outcome ?? 'no_line';
        outcomes[key] = (outcomes[key] ?? 0) + 1;
      }
      const global = ledger.scopes.find((s) => s.scope === 'global:global')!;
      const json = results
        .filter((r) => !r.stream && r.status === 200)
        .map((r) => r.endedAt - r.startedAt);
      const kinds = Object.entries(report.kinds);
      const soak = {
        command: `SOAK_SECONDS=${SECONDS} npm run test:soak`,
        finishedAt: new Date().toISOString(),
        seconds: Math.round((Date.now() - started) / 100) / 10,
        gateways: rig.gateways.length,
        concurrency: CONCURRENCY,
        users: USERS,
        teams: TEAMS,
        faults: {
          redisBlip: `killed at ${blipAt / 1000} s, restarted empty 2 s later (STORE_FAILURE_MODE=local)`,
          perCall:
            'client abort 8%, upstream 500 4%, mid-stream reset 3%, slow stream 3%, JSON hang-up 2%',
        },
        requests: results.length,
        streamed: results.filter((r) => r.stream).length,
        answers: report.kinds,
        admissions: {
          counted: outcomes.admitted ?? 0,
          localDuringOutage: outcomes.degraded_local ?? 0,
          uncounted: outcomes.degraded_open ?? 0,
        },
        rejections: Object.fromEntries(kinds.filter(([kind]) => kind.startsWith('429'))),
        errors: Object.fromEntries(
          kinds.filter(
            ([kind]) => !kind.startsWith('429') && kind !== 'ok' && kind !== 'client_abort',
          ),
        ),
        clientAborts: report.kinds.client_abort ?? 0,
        tokens: {
          // Every call is charged to the global bucket: its figures are the run's totals.
          admittedShared: global.shared,
          allowedShared: global.allowedShared,
          admittedLocalDuringOutage: sum(Object.values(global.local)),
          allowedLocal: sum(Object.values(global.allowedLocal)),
          chargedAboveReservation: ledger.overshoot,
          perScopeType: Object.fromEntries(
            ['global', 'team', 'rolegroup', 'role', 'user'].map((type) => [type, perType(type)]),
          ),
        },
        jsonLatencyMs: { p50: percentile(json, 50), p99: percentile(json, 99) },
        storeOutages: report.outages,
        overrideAfterRedisRestart: 'lost: the type default applies until the budget is set again',
        afterQuietPeriod: {
          bucketsNotFull: report.quiet.notFull.length,
          reservationsInFlight: report.quiet.reservationsInFlight,
          streamsInFlight: report.quiet.streamsInFlight,
          reservationRecordsInRedis: report.quiet.openReservations.length,
        },
        memory: report.memoryMb,
        scopes: ledger.scopes,
      };
      mkdirSync(dirname(REPORT), { recursive: true });
      writeFileSync(REPORT, `${JSON.stringify(soak, null, 2)}\n`);
      const { scopes: _all, ...headline } = soak;
      process.stdout.write(`\nsoak report (${REPORT}):\n${JSON.stringify(headline, null, 2)}\n`);

      // Budgets set through the admin API live in Redis: one restarted empty has forgotten them,
      // and the type default applies (run Redis with persistence; see the README).
      const after = await readBucket(rig.gateways[1].url, OVERRIDE.scope);
      expect(after.capacity).toBe(SOAK_BUDGETS.team.capacity);

      expect(ledger.overshoot).toBe(0);
      expect(outcomes.degraded_local ?? 0).toBeGreaterThan(0);
      expect(report.outages).toEqual({ gw0: 1, gw1: 1 });
    },
    TIMEOUT_MS,
  );
});
