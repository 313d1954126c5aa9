import type { CallResult, ScopeKey } from './client';
import { countKinds, type Ledger, unexpectedAnswers } from './ledger';
import type { Memory } from './gateway-process';
import type { QuietReport, Rig } from './rig';

export interface Expectations {
  /** The documented 5xx answers this scenario may produce (`"502 upstream_error"`, …). */
  readonly allowed: readonly string[];
  /** Each gateway's memory after warm-up. */
  readonly memory: readonly Memory[];
  /** Redis restarts (data lost) during the run. */
  readonly storeResets?: number;
  /** Buckets that must read full after the quiet period (default: every scope called). */
  readonly scopes?: readonly ScopeKey[];
}

export interface ScenarioReport {
  readonly kinds: Record<string, number>;
  readonly ledger: Ledger;
  readonly quiet: QuietReport;
  /** Per gateway, MB after a full GC: RSS and heap in use, warm and at the end. */
  readonly memoryMb: readonly string[];
  readonly outages: Record<string, number>;
}

const MB = 1024 * 1024;

/**
 * Compared after a full GC on both sides. RSS may stay somewhat above its warm level (the
 * allocator keeps pages it grew into); the heap in use may not grow by more than noise: a
 * leak per request or per connection would not fit after thousands of them.
 */
export function memoryProblem(name: string, start: Memory, end: Memory): string | undefined {
  const rssLimit = Math.max(start.rss * 1.25, start.rss + 48 * MB);
  const heapLimit = start.heapUsed + 16 * MB;
  if (end.rss <= rssLimit && end.heapUsed <= heapLimit) return undefined;
  return `${name} memory: ${memoryMb(start, end)} (limits RSS ${Math.round(rssLimit / MB)}, heap ${Math.round(heapLimit / MB)})`;
}

export function memoryMb(start: Memory, end: Memory): string {
  const mb = (n: number) => Math.round(n / MB);
  return `RSS ${mb(start.rss)}→${mb(end.rss)} MB, heap ${mb(start.heapUsed)}→${mb(end.heapUsed)} MB`;
}

/**
 * The invariants every scenario ends with: the gateways live; no answer outside the documented
 * set; no scope admitted more than its budget allows (see ledger.ts); after a quiet period every
 * bucket is full again, nothing is in flight and no reservation record is left in Redis; memory
 * is back near its warm level.
 */
export async function checkInvariants(
  rig: Rig,
  results: readonly CallResult[],
  expect: Expectations,
): Promise<ScenarioReport> {
  const problems: string[] = [];
  const dead = await rig.allAlive();
  if (dead.length > 0) problems.push(`gateway down: ${dead.join('\n')}`);
  const unexpected = unexpectedAnswers(results, expect.allowed);
  if (unexpected.length > 0) problems.push(`unexpected answers: ${unexpected.join(', ')}`);

  const outages = await rig.outages();
  const ledger = await rig.ledger(results, expect.storeResets ?? 0, outages);
  if (ledger.missingLines.length > 0) {
    problems.push(`no request log line for ${ledger.missingLines.slice(0, 5).join(', ')}`);
  }
  if (ledger.mismatches.length > 0) {
    problems.push(`charge differs from usage: ${ledger.mismatches.slice(0, 5).join(', ')}`);
  }
  for (const account of ledger.scopes.filter((a) => !a.ok)) {
    problems.push(`over budget: ${JSON.stringify(account)}`);
  }

  const scopes = expect.scopes ?? [...new Set(results.flatMap((r) => r.scopes))];
  const quiet = await rig.quiet(scopes);
  if (quiet.notFull.length > 0) problems.push(`not full: ${quiet.notFull.slice(0, 5).join(', ')}`);
  if (quiet.reservationsInFlight !== 0) {
    problems.push(`reservations in flight: ${quiet.reservationsInFlight}`);
  }
  if (quiet.streamsInFlight !== 0) problems.push(`streams in flight: ${quiet.streamsInFlight}`);
  if (quiet.openReservations.length > 0) {
    problems.push(
      `${quiet.openReservations.length} reservation records left in Redis: ` +
        quiet.openReservations.slice(0, 3).join(' | '),
    );
  }

  const memory: string[] = [];
  for (const [i, gateway] of rig.gateways.entries()) {
    if (gateway.exitCode() !== null) continue;
    const end = await gateway.memory();
    memory.push(`${gateway.name} ${memoryMb(expect.memory[i], end)}`);
    const problem = memoryProblem(gateway.name, expect.memory[i], end);
    if (problem) problems.push(problem);
  }
  const report = { kinds: countKinds(results), ledger, quiet, memoryMb: memory, outages };
  if (problems.length > 0) {
    throw new Error(`${problems.join('\n')}\n\nrun: ${JSON.stringify(summary(report), null, 1)}`);
  }
  return report;
}

/** A few lines for the test output. */
export function summary(report: ScenarioReport): Record<string, unknown> {
  const shared = report.ledger.scopes.reduce((n, s) => n + s.shared, 0);
  const local = report.ledger.scopes.reduce(
    (n, s) => n + Object.values(s.local).reduce((a, b) => a + b, 0),
    0,
  );
  const tightest = [...report.ledger.scopes]
    .sort((a, b) => b.shared / b.allowedShared - a.shared / a.allowedShared)
    .slice(0, 3)
    .map((s) => `${s.scope} ${s.shared}/${s.allowedShared}`);
  return {
    kinds: report.kinds,
    elapsedSec: Math.round(report.ledger.elapsedSec * 10) / 10,
    tokensCharged: { shared, local },
    tightestScopes: tightest,
    outages: report.outages,
    openReservations: report.quiet.openReservations.length,
    memory: report.memoryMb,
  };
}

/** Prints a scenario's figures without Jest's console decoration. */
export function print(title: string, report: ScenarioReport): void {
  process.stdout.write(`\n${title}\n${JSON.stringify(summary(report))}\n`);
}
