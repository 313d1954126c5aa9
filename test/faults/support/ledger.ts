import { sleep } from '../../../libs/bucket-store/src/testing/redis-process';
import type { CallResult, ScopeKey } from './client';
import type { GatewayProcess, RequestLine } from './gateway-process';

export interface Policy {
  readonly capacity: number;
  readonly refillPerSec: number;
}

export interface LedgerOptions {
  readonly gateways: readonly GatewayProcess[];
  readonly policyOf: (scope: ScopeKey) => Policy;
  /**
   * The policy a scope has after the store lost its data: per-id budgets live in the store,
   * so an emptied Redis is back to the type defaults (default: `policyOf`).
   */
  readonly policyAfterReset?: (scope: ScopeKey) => Policy;
  /**
   * Times the shared store lost its data during the run (a Redis restart without persistence):
   * every bucket reads full afterwards, so each one allows another capacity.
   */
  readonly storeResets: number;
  /**
   * Per gateway, the store outages it went through (`store_transitions_total{to="down"}`): in
   * STORE_FAILURE_MODE=local each starts fresh, full local buckets on that instance.
   */
  readonly outages: Readonly<Record<string, number>>;
}

/** Tokens admitted to one scope against what its budget allows over the run. */
export interface ScopeAccount {
  readonly scope: ScopeKey;
  readonly capacity: number;
  readonly refillPerSec: number;
  /** Final charges of requests counted in the shared store (or the only store). */
  readonly shared: number;
  readonly allowedShared: number;
  /** Final charges of requests admitted against an instance's local buckets, per instance. */
  readonly local: Readonly<Record<string, number>>;
  readonly allowedLocal: Readonly<Record<string, number>>;
  /** Served uncounted (STORE_FAILURE_MODE=open): the documented exception, reported only. */
  readonly uncounted: number;
  readonly requests: number;
  readonly admitted: number;
  readonly ok: boolean;
}

export interface Ledger {
  readonly elapsedSec: number;
  readonly scopes: readonly ScopeAccount[];
  /** Requests that got an HTTP answer but left no `request completed` line. */
  readonly missingLines: readonly string[];
  /** Completed requests whose final charge is not the usage the upstream reported. */
  readonly mismatches: readonly string[];
  /** Charges above the reservation (debt): added to what is allowed, expected 0. */
  readonly overshoot: number;
}

/**
 * Per scope, the tokens finally charged to admitted requests, against the most a token bucket
 * can let through: it starts full at C, every admission needs the level to cover the estimate,
 * settlement only gives back (actual <= estimate) and refill adds at most r per second, so over
 * a run of T seconds Σ charged <= C + r·T, plus C for every time the store lost its data (the
 * type default's C and r from then on, for a scope whose own budget was lost with it). In
 * `local` mode each instance's local buckets are checked apart: C per outage, plus r times the
 * span of its local admissions. `open` mode's uncounted admissions are reported, not counted.
 *
 * The charges come from the gateway's own `request completed` log line, joined to each call by
 * the request id the test chose: exact even for streams cut short (prompt + tokens streamed),
 * which the client cannot know. They are checked against what the client saw: a completed call
 * must be charged exactly the usage the upstream reported to it.
 */
export async function buildLedger(
  results: readonly CallResult[],
  options: LedgerOptions,
): Promise<Ledger> {
  const byName = new Map(options.gateways.map((g) => [g.name, g]));
  const lineOf = (r: CallResult): RequestLine | undefined => byName.get(r.gateway)?.lines.get(r.id);
  // Lines are written when the response has closed and settled: give the last ones a moment.
  const expected = results.filter((r) => r.status !== null);
  for (let i = 0; i < 100 && expected.some((r) => !lineOf(r)); i++) await sleep(100);

  // One second of slack for the store's clock against ours.
  const elapsedSec = results.length === 0 ? 0 : spanMs(results) / 1000 + 1;

  interface Tally {
    shared: number;
    local: Record<string, number>;
    uncounted: number;
    requests: number;
    admitted: number;
  }
  const tallies = new Map<ScopeKey, Tally>();
  const missingLines: string[] = [];
  const mismatches: string[] = [];
  let overshoot = 0;
  for (const r of results) {
    const line = lineOf(r);
    if (!line && r.status !== null) missingLines.push(`${r.gateway}/${r.id} (${r.status})`);
    const charged = line?.chargedTokens ?? 0;
    const outcome = line?.outcome;
    if (line && charged > (line.estimatedTokens ?? Infinity)) {
      overshoot += charged - (line.estimatedTokens ?? 0);
    }
    const counted = outcome === 'admitted' || outcome === 'degraded_local';
    if (counted && r.status === 200 && r.complete && r.usageTotal !== undefined) {
      if (charged !== r.usageTotal) {
        mismatches.push(`${r.id}: charged ${charged}, upstream usage ${r.usageTotal}`);
      }
    }
    for (const scope of r.scopes) {
      let t = tallies.get(scope);
      if (!t) {
        t = { shared: 0, local: {}, uncounted: 0, requests: 0, admitted: 0 };
        tallies.set(scope, t);
      }
      t.requests += 1;
      if (outcome === 'degraded_open') {
        t.uncounted += line?.estimatedTokens ?? 0;
        t.admitted += 1;
      } else if (outcome === 'degraded_local') {
        t.local[r.gateway] = (t.local[r.gateway] ?? 0) + charged;
        t.admitted += 1;
      } else if (charged > 0 || outcome === 'admitted') {
        // Anything else charged (there should be nothing) counts against the shared budget.
        t.shared += charged;
        if (outcome === 'admitted') t.admitted += 1;
      }
    }
  }

  // Per gateway, seconds from its first to its last local admission, plus the second of slack.
  const localSpans = new Map<string, number>();
  for (const gateway of options.gateways) {
    const local = results.filter(
      (r) => r.gateway === gateway.name && gateway.lines.get(r.id)?.outcome === 'degraded_local',
    );
    if (local.length > 0) localSpans.set(gateway.name, spanMs(local) / 1000 + 1);
  }

  const scopes: ScopeAccount[] = [];
  for (const [scope, t] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    const { capacity, refillPerSec } = options.policyOf(scope);
    const refill = refillPerSec * elapsedSec;
    const after = options.policyAfterReset?.(scope) ?? { capacity, refillPerSec };
    const allowedShared =
      options.storeResets === 0
        ? capacity + refill + overshoot
        : capacity +
          options.storeResets * after.capacity +
          Math.max(refillPerSec, after.refillPerSec) * elapsedSec +
          overshoot;
    const allowedLocal: Record<string, number> = {};
    let ok = t.shared <= allowedShared;
    for (const [gateway, tokens] of Object.entries(t.local)) {
      const outages = options.outages[gateway] ?? 0;
      // Local buckets start full at the first local admission and refill until the last.
      const localRefill = refillPerSec * (localSpans.get(gateway) ?? 0);
      allowedLocal[gateway] = outages === 0 ? 0 : outages * capacity + localRefill + overshoot;
      ok &&= tokens <= allowedLocal[gateway];
    }
    scopes.push({
      scope,
      capacity,
      refillPerSec,
      shared: t.shared,
      allowedShared: Math.floor(allowedShared),
      local: t.local,
      allowedLocal,
      uncounted: t.uncounted,
      requests: t.requests,
      admitted: t.admitted,
      ok,
    });
  }
  return { elapsedSec, scopes, missingLines, mismatches, overshoot };
}

/** From the first call's start to the last one's end (a loop: soaks make long lists). */
function spanMs(results: readonly CallResult[]): number {
  let first = Infinity;
  let last = -Infinity;
  for (const r of results) {
    first = Math.min(first, r.startedAt);
    last = Math.max(last, r.endedAt);
  }
  return last - first;
}

/** `status code` of every answer, `network:<error>`, `aborted`, `stream:<code>` for cut streams. */
export function kindOf(r: CallResult): string {
  if (r.aborted) return 'client_abort';
  if (r.networkError) return `network:${r.networkError}`;
  if (r.status === 200)
    return r.code ? `stream_cut:${r.code}` : r.complete ? 'ok' : 'stream_incomplete';
  return `${r.status} ${r.code ?? ''}`.trim();
}

export function countKinds(results: readonly CallResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[kindOf(r)] = (counts[kindOf(r)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([, a], [, b]) => b - a));
}

/**
 * Answers that break the contract: any 5xx not in `allowed` (`"502 upstream_error"`, …), any
 * network failure the client did not cause, any other status not in the usual set.
 */
export function unexpectedAnswers(
  results: readonly CallResult[],
  allowed: readonly string[],
): string[] {
  const usual = new Set(['ok', 'client_abort', '429 rate_limit_exceeded', ...allowed]);
  const bad = new Map<string, number>();
  for (const r of results) {
    const kind = kindOf(r);
    if (usual.has(kind)) continue;
    bad.set(kind, (bad.get(kind) ?? 0) + 1);
  }
  return [...bad].map(([kind, n]) => `${kind} × ${n}`);
}
