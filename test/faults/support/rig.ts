import { Redis } from 'ioredis';
import {
  type MockBehaviour,
  type MockOpenAIServer,
  startMockOpenAI,
} from '../../../apps/mock-openai/src';
import { type RedisServerHandle, startRedisServer } from '@tokenguard/bucket-store/testing';
import { sleep } from '../../../libs/bucket-store/src/testing/redis-process';
import {
  type CallResult,
  type CallSpec,
  GatewayClient,
  readBucket,
  type ScopeKey,
  setBudget,
  splitScope,
} from './client';
import { type GatewayProcess, type Memory, spawnGateway } from './gateway-process';
import { type Ledger, type Policy, buildLedger, countKinds } from './ledger';

export const UPSTREAM_KEY = 'sk-fault-suite-upstream-key';

export type Budgets = Readonly<Record<'global' | 'team' | 'rolegroup' | 'role' | 'user', Policy>>;

/**
 * Small buckets that refill in a few seconds: the traffic saturates them, and a quiet period
 * refills them.
 */
export const FAULT_BUDGETS: Budgets = {
  global: { capacity: 20_000, refillPerSec: 5_000 },
  team: { capacity: 1_500, refillPerSec: 400 },
  rolegroup: { capacity: 1_200, refillPerSec: 300 },
  role: { capacity: 1_000, refillPerSec: 250 },
  user: { capacity: 400, refillPerSec: 100 },
};

export function budgetEnv(budgets: Budgets): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [type, policy] of Object.entries(budgets)) {
    env[`CAP_${type.toUpperCase()}`] = String(policy.capacity);
    env[`RATE_${type.toUpperCase()}`] = String(policy.refillPerSec);
  }
  return env;
}

export interface RigOptions {
  /** A private redis-server for the gateways (else each uses its in-memory store). */
  readonly redis: boolean;
  readonly gateways: number;
  /** Extra gateway environment (STORE_FAILURE_MODE, timeouts, breaker…). */
  readonly env?: Record<string, string>;
  /** Environment of gateway `index` only, over `env`. */
  readonly envFor?: (index: number) => Record<string, string>;
  readonly budgets?: Budgets;
  readonly globalScope?: boolean;
  readonly mock?: Partial<MockBehaviour>;
}

export interface DriveOptions {
  readonly durationMs: number;
  /** Calls in flight at once. */
  readonly concurrency: number;
  /** The next call for worker `worker`; undefined: that worker stops. */
  readonly next: (worker: number, n: number) => CallSpec | undefined;
  /** Pause after a worker's call, ms (default: 2-10, random). */
  readonly thinkMs?: (last: CallResult) => number;
  /** Fault injections at given times after the start, run alongside the traffic. */
  readonly faults?: readonly { readonly atMs: number; readonly run: () => Promise<unknown> }[];
}

export interface QuietReport {
  /** Buckets not back to full, with their level. */
  readonly notFull: readonly string[];
  readonly reservationsInFlight: number;
  readonly streamsInFlight: number;
  /** Reservation records left in Redis for these scopes: reservations nobody settled. */
  readonly openReservations: readonly string[];
}

/**
 * What every fault scenario runs against: a private Redis (optional), apps/mock-openai in this
 * process (its knobs at hand), and built gateways as child processes wired to both.
 */
export class Rig {
  private constructor(
    readonly options: RigOptions,
    readonly redis: RedisServerHandle | undefined,
    public mock: MockOpenAIServer,
    readonly gateways: GatewayProcess[],
    readonly clients: GatewayClient[],
    readonly namespace: string,
    readonly budgets: Budgets,
  ) {}

  static async start(options: RigOptions): Promise<Rig> {
    const budgets = options.budgets ?? FAULT_BUDGETS;
    const redis = options.redis ? await startRedisServer() : undefined;
    const mock = await startMockOpenAI({
      apiKey: UPSTREAM_KEY,
      record: false,
      recordLimit: 50_000,
      behaviour: options.mock,
      // Encodings loaded now: a first call that loads them takes about a second.
      warmUp: true,
    });
    const namespace = `faults-${process.pid}-${Date.now()}`;
    const gateways: GatewayProcess[] = [];
    try {
      const started = await Promise.all(
        Array.from({ length: options.gateways }, (_, i) =>
          spawnGateway(`gw${i}`, {
            OPENAI_BASE_URL: `${mock.url}/v1`,
            OPENAI_API_KEY: UPSTREAM_KEY,
            ...(redis ? { REDIS_URL: redis.url, REDIS_NAMESPACE: namespace } : {}),
            ENFORCE_GLOBAL_SCOPE: String(options.globalScope ?? false),
            ...budgetEnv(budgets),
            ...options.env,
            ...options.envFor?.(i),
          }),
        ),
      );
      gateways.push(...started);
    } catch (error) {
      await Promise.all(gateways.map((g) => g.stop()));
      await mock.close();
      await redis?.stop();
      throw error;
    }
    const clients = gateways.map((g) => new GatewayClient(g.name, g.url, options.globalScope));
    return new Rig(options, redis, mock, gateways, clients, namespace, budgets);
  }

  /** Per-id budgets set through the admin API (see setBudget). */
  private readonly overrides = new Map<ScopeKey, Policy>();

  /** The budget of a scope: its override, else its type's default. */
  policyOf = (scope: ScopeKey): Policy => {
    const [type] = splitScope(scope);
    return this.overrides.get(scope) ?? this.budgets[type as keyof Budgets];
  };

  /** Gives one scope a budget of its own through the first gateway's admin API. */
  async setBudget(scope: ScopeKey, policy: Policy): Promise<void> {
    await setBudget(this.gateways[0].url, scope, policy.capacity, policy.refillPerSec);
    this.overrides.set(scope, policy);
  }

  /** Drives calls from `concurrency` workers for `durationMs`, running the faults on schedule. */
  async drive(options: DriveOptions): Promise<CallResult[]> {
    const results: CallResult[] = [];
    const started = Date.now();
    const until = started + options.durationMs;
    const think = options.thinkMs ?? (() => 2 + Math.random() * 8);
    const faultErrors: unknown[] = [];
    const faults = (options.faults ?? []).map(async (fault) => {
      await sleep(Math.max(0, started + fault.atMs - Date.now()));
      await fault.run().catch((error: unknown) => faultErrors.push(error));
    });
    const workers = Array.from({ length: options.concurrency }, async (_, worker) => {
      // Worker w always calls gateway w % n.
      const client = this.clients[worker % this.clients.length];
      for (let n = 0; Date.now() < until; n++) {
        const spec = options.next(worker, n);
        if (!spec) return;
        const result = await client.chat(spec);
        results.push(result);
        await sleep(think(result));
      }
    });
    await Promise.all([...workers, ...faults]);
    if (faultErrors.length > 0) throw faultErrors[0];
    return results;
  }

  /** Runs a little of every kind of traffic so that the memory baseline is a warm process's. */
  async warmUp(prefix: string): Promise<Memory[]> {
    const results = await this.drive({
      durationMs: 2000,
      concurrency: 12,
      next: (w, n) => ({
        id: `${prefix}-warm-${w}-${n}`,
        identity: { user: `${prefix}-warm-${w}`, team: `${prefix}-warm` },
        stream: n % 2 === 0,
        maxTokens: 20,
        includeUsage: n % 4 === 0,
      }),
    });
    // A warm-up that failed (an upstream still loading, a breaker opened) would skew the run.
    const failed = results.filter((r) => r.status !== 200 && r.status !== 429);
    if (failed.length > 0) throw new Error(`warm-up failed: ${JSON.stringify(countKinds(failed))}`);
    await sleep(500);
    return Promise.all(this.gateways.map((g) => g.memory()));
  }

  /** Store outages each gateway has been through (`store_transitions_total{to="down"}`). */
  async outages(): Promise<Record<string, number>> {
    const entries = await Promise.all(
      this.gateways.map(async (g) => {
        const scrape = await g.scrape();
        return [g.name, scrape.value('tokenguard_store_transitions_total', { to: 'down' })];
      }),
    );
    return Object.fromEntries(entries) as Record<string, number>;
  }

  ledger(results: readonly CallResult[], storeResets = 0, outages = {}): Promise<Ledger> {
    return buildLedger(results, {
      gateways: this.gateways,
      policyOf: this.policyOf,
      // An emptied Redis has forgotten the per-id budgets set through the admin API.
      policyAfterReset: (scope) => this.budgets[splitScope(scope)[0] as keyof Budgets],
      storeResets,
      outages,
    });
  }

  /**
   * After the traffic: waits (up to the slowest bucket's time to refill, plus `extraMs`) for
   * every bucket the run touched to read full on every gateway, then reports what is left:
   * buckets below capacity, reservations or streams still open, reservation records in Redis.
   */
  async quiet(scopes: readonly ScopeKey[], extraMs = 4000): Promise<QuietReport> {
    const slowest = Math.max(
      0,
      ...scopes.map((s) => {
        const p = this.policyOf(s);
        return p.refillPerSec > 0 ? (p.capacity / p.refillPerSec) * 1000 : 0;
      }),
    );
    const deadline = Date.now() + slowest + extraMs;
    let notFull: string[] = [];
    for (;;) {
      notFull = [];
      for (const gateway of this.gateways) {
        for (const scope of scopes) {
          const bucket = await readBucket(gateway.url, scope).catch((e: Error) => e);
          if (bucket instanceof Error) notFull.push(`${gateway.name} ${scope}: ${bucket.message}`);
          else if (bucket.tokens < bucket.capacity) {
            notFull.push(`${gateway.name} ${scope}: ${bucket.tokens}/${bucket.capacity}`);
          }
        }
      }
      if (notFull.length === 0 || Date.now() > deadline) break;
      await sleep(250);
    }
    let reservationsInFlight = 0;
    let streamsInFlight = 0;
    for (const gateway of this.gateways) {
      const scrape = await gateway.scrape();
      reservationsInFlight += scrape.value('tokenguard_reservations_in_flight');
      streamsInFlight += scrape.value('tokenguard_streams_in_flight');
    }
    return {
      notFull,
      reservationsInFlight,
      streamsInFlight,
      openReservations: (await this.openReservations()).filter((record) =>
        scopes.some((scope) => ` ${record} `.includes(` ${scope} `)),
      ),
    };
  }

  /**
   * The reservation records in this rig's namespace (none without Redis): `<tokens> <bytes>
   * <type>:<id> …`, see libs/bucket-store/src/redis-keys.ts.
   */
  async openReservations(): Promise<string[]> {
    if (!this.redis) return [];
    return this.withRedis(async (redis) => {
      let cursor = '0';
      const keys: string[] = [];
      do {
        const [next, found] = await redis.scan(
          cursor,
          'MATCH',
          `tg:{${this.namespace}}:r:*`,
          'COUNT',
          1000,
        );
        keys.push(...found);
        cursor = next;
      } while (cursor !== '0');
      if (keys.length === 0) return [];
      const values = await redis.mget(keys);
      return values.filter((v): v is string => v !== null);
    });
  }

  /** A short-lived connection to the rig's Redis. */
  async withRedis<T>(body: (redis: Redis) => Promise<T>): Promise<T> {
    if (!this.redis) throw new Error('this rig has no Redis');
    const redis = new Redis(this.redis.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      return await body(redis);
    } finally {
      redis.disconnect();
    }
  }

  /** Stops the mock (connections refused from now on) until `restartMock()`. */
  async stopMock(): Promise<void> {
    await this.mock.close();
  }

  async restartMock(): Promise<void> {
    this.mock = await startMockOpenAI({
      apiKey: UPSTREAM_KEY,
      record: false,
      recordLimit: 50_000,
      behaviour: this.options.mock,
      warmUp: true,
      port: this.mock.port,
    });
  }

  /** Every gateway still runs and answers its liveness probe. */
  async allAlive(): Promise<string[]> {
    const dead: string[] = [];
    for (const gateway of this.gateways) {
      if (!(await gateway.alive())) {
        dead.push(`${gateway.name} (exit ${gateway.exitCode()}):\n${gateway.tail()}`);
      }
    }
    return dead;
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
    await Promise.all(this.gateways.map((g) => g.stop()));
    await this.mock.close();
    await this.redis?.stop();
  }
}
