import { Cluster } from 'ioredis';
import { fromMilli, msUntil, toMilli } from './bucket-math';
import { DuplicateReservationError } from './bucket-store.errors';
import {
  BucketPolicy,
  BucketSnapshot,
  BucketStore,
  PolicyPatch,
  ReserveRequest,
  ReserveResult,
  SCOPE_TYPES,
  ScopeRef,
  ScopeType,
  SettleResult,
} from './bucket-store.interface';
import {
  assertPolicy,
  assertPolicyPatch,
  assertReservationId,
  assertScopeRef,
  assertWholeTokens,
} from './bucket-store.validation';
import type { RedisClient } from './redis-client';
import { DEFAULT_NAMESPACE, RedisKeys, redisKeys, scopeMember } from './redis-keys';
import {
  GET_BUCKET_SCRIPT,
  RESERVE_SCRIPT,
  SETTLE_SCRIPT,
  SET_POLICY_SCRIPT,
} from './redis-scripts';
import { BucketStoreUnavailableError } from './store-unavailable.error';

export interface RedisBucketStoreOptions {
  /** The connection (see `createRedisClient`), or a function that makes one. */
  readonly client: RedisClient | (() => RedisClient);
  /**
   * Keys live under `tg:{<namespace>}:`. Stores sharing a namespace share budgets; that is
   * how several gateway instances enforce one budget. Default `tokenguard`.
   */
  readonly namespace?: string;
  /** Policy of every scope instance without an override. */
  readonly defaults: Readonly<Record<ScopeType, BucketPolicy>>;
  /** How long an unsettled reservation can still be settled. Default 10 minutes. */
  readonly reservationTtlMs?: number;
  /**
   * A bucket key expires this long after the moment it would read full again (it reads full
   * from then on, with or without the key). Default 1000 ms.
   */
  readonly idleTtlMarginMs?: number;
  /**
   * Deadline of every store call, enforced by the store on top of the client's own
   * `commandTimeout`. Default: none (rely on the client).
   */
  readonly commandTimeoutMs?: number;
  /** Whether close() also closes the client. Default true. */
  readonly closeClient?: boolean;
}

const DEFAULT_RESERVATION_TTL_MS = 10 * 60_000;
const DEFAULT_IDLE_TTL_MARGIN_MS = 1_000;

const NOT_APPLIED: SettleResult = Object.freeze({ applied: false, refunded: 0 });

/** Names under which the scripts are defined on the client (EVALSHA, NOSCRIPT reload). */
const COMMANDS = {
  reserve: { name: 'tokenguardReserve', lua: RESERVE_SCRIPT, readOnly: false },
  settle: { name: 'tokenguardSettle', lua: SETTLE_SCRIPT, readOnly: false },
  getBucket: { name: 'tokenguardGetBucket', lua: GET_BUCKET_SCRIPT, readOnly: true },
  setPolicy: { name: 'tokenguardSetPolicy', lua: SET_POLICY_SCRIPT, readOnly: false },
} as const;

type CommandKey = keyof typeof COMMANDS;
type ScriptFn = (numKeys: number, ...keysAndArgs: string[]) => Promise<unknown>;
type Reply = readonly (number | string | null)[];

interface ResolvedDefault {
  readonly policy: BucketPolicy;
  /** Script arguments: capacity in milli-tokens, refill in tokens/s. */
  readonly capMilli: string;
  readonly rate: string;
}

function assertOption(name: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/**
 * BucketStore on Redis, shared by every gateway instance that uses the same namespace.
 *
 * Each operation is one Lua script, so it is atomic and costs one round trip: reserve reads
 * and refills every scope of the request, decides, and either charges all of them and records
 * the reservation or writes nothing; settle applies the difference to every scope of the
 * record and deletes it. The clock is Redis `TIME`. The arithmetic mirrors `bucket-math.ts`,
 * so the answers are those of MemoryBucketStore.
 *
 * Idle state disappears by itself: a bucket that reads full is deleted, and every other
 * bucket key expires `idleTtlMarginMs` after the moment it would be full again (recomputed on
 * each write). A bucket below capacity that never refills (rate 0, or in debt at rate 0) holds
 * real state and keeps no TTL, like in MemoryBucketStore. Policy overrides are permanent.
 * Reservation records expire after `reservationTtlMs`; an expired reservation stays charged.
 *
 * Type defaults travel with each call (script arguments) and overrides live in Redis, so
 * instances sharing a namespace must be configured with the same defaults; otherwise a scope
 * without an override follows whichever instance touches it.
 *
 * Failures of Redis surface as BucketStoreUnavailableError.
 */
export class RedisBucketStore implements BucketStore {
  readonly backend = 'redis';
  readonly namespace: string;
  readonly client: RedisClient;

  private readonly keys: RedisKeys;
  private readonly defaults: Readonly<Record<ScopeType, ResolvedDefault>>;
  /** Settle's trailing arguments: type, capacity (milli), rate for each scope type. */
  private readonly defaultsArgs: readonly string[];
  private readonly reservationTtlArg: string;
  private readonly marginArg: string;
  private readonly commandTimeoutMs: number | undefined;
  private readonly closeClient: boolean;
  private readonly scripts: Readonly<Record<CommandKey, ScriptFn>>;
  /** Parsed override JSON by its text: the same few overrides come back on every reserve. */
  private readonly overrideCache = new Map<string, PolicyPatch>();
  private closed = false;

  constructor(options: RedisBucketStoreOptions) {
    const defaults = {} as Record<ScopeType, ResolvedDefault>;
    const defaultsArgs: string[] = [];
    for (const type of SCOPE_TYPES) {
      const policy = options.defaults?.[type];
      assertPolicy(policy, `defaults.${type}`);
      const resolved: ResolvedDefault = {
        policy: Object.freeze({ capacity: policy.capacity, refillPerSec: policy.refillPerSec }),
        capMilli: String(toMilli(policy.capacity)),
        rate: String(policy.refillPerSec),
      };
      defaults[type] = resolved;
      defaultsArgs.push(type, resolved.capMilli, resolved.rate);
    }
    this.defaults = defaults;
    this.defaultsArgs = defaultsArgs;

    const reservationTtlMs = options.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    assertOption('reservationTtlMs', reservationTtlMs, 1);
    this.reservationTtlArg = String(Math.ceil(reservationTtlMs));
    const margin = options.idleTtlMarginMs ?? DEFAULT_IDLE_TTL_MARGIN_MS;
    assertOption('idleTtlMarginMs', margin, 0);
    this.marginArg = String(margin);
    if (options.commandTimeoutMs !== undefined) {
      assertOption('commandTimeoutMs', options.commandTimeoutMs, 1);
    }
    this.commandTimeoutMs = options.commandTimeoutMs;

    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.keys = redisKeys(this.namespace);
    this.closeClient = options.closeClient ?? true;

    const client = typeof options.client === 'function' ? options.client() : options.client;
    if (client === null || typeof client !== 'object') {
      throw new TypeError('client must be an ioredis Redis or Cluster, or a function making one');
    }
    // ioredis would prefix KEYS but not the keys settle derives from its record.
    if (hasKeyPrefix(client)) {
      throw new RangeError('the Redis client must not have a keyPrefix; use namespace instead');
    }
    this.client = client;
    const scripts = {} as Record<CommandKey, ScriptFn>;
    for (const key of Object.keys(COMMANDS) as CommandKey[]) {
      const { name, lua, readOnly } = COMMANDS[key];
      client.defineCommand(name, { lua, readOnly });
      const fn = (client as unknown as Record<string, ScriptFn>)[name];
      scripts[key] = (numKeys, ...rest) => fn.call(client, numKeys, ...rest);
    }
    this.scripts = scripts;
  }

  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { reservationId, scopes, tokens } = request;
    if (!isArray(scopes)) {
      throw new TypeError('reserve needs { reservationId, scopes: ScopeRef[], tokens }');
    }
    assertReservationId(reservationId);
    assertWholeTokens('tokens', tokens);
    scopes.forEach(assertScopeRef);

    // A scope listed twice is charged once.
    const unique: ScopeRef[] = [];
    const positionOf = new Map<string, number>();
    const positions: number[] = [];
    for (const scope of scopes) {
      const member = scopeMember(scope);
      let position = positionOf.get(member);
      if (position === undefined) {
        position = unique.length;
        positionOf.set(member, position);
        unique.push(scope);
      }
      positions.push(position);
    }

    const n = unique.length;
    const keys: string[] = new Array<string>(2 * n + 1);
    const args: string[] = new Array<string>(2 * n + 5);
    keys[0] = this.keys.reservation(reservationId);
    args[0] = String(toMilli(tokens));
    args[1] = this.reservationTtlArg;
    args[2] = this.marginArg;
    args[3] = String(tokens);
    args[4] = this.keys.prefix;
    for (let i = 0; i < n; i++) {
      const scope = unique[i];
      keys[1 + i] = this.keys.bucket(scope);
      keys[1 + n + i] = this.keys.policy(scope);
      const d = this.defaults[scope.type];
      args[5 + 2 * i] = d.capMilli;
      args[6 + 2 * i] = d.rate;
    }

    const reply = await this.run('reserve', keys, args);
    const status = reply[0];
    if (status === -1) throw new DuplicateReservationError(reservationId);

    const snapshots = unique.map((scope, i) =>
      this.snapshot(scope, reply[2 * i + 3], reply[2 * i + 4]),
    );
    const buckets = positions.map((p, i) => ({ ...snapshots[p], scope: copyScope(scopes[i]) }));
    if (status === 1) return { admitted: true, reservationId, buckets };
    const wait = reply[2];
    return {
      admitted: false,
      reason: status === 2 ? 'too_large' : 'insufficient',
      scope: copyScope(unique[Number(reply[1]) - 1]),
      retryAfterMs: wait === null ? null : Number(wait),
      buckets,
    };
  }

  async settle(reservationId: string, actualTokens: number): Promise<SettleResult> {
    assertReservationId(reservationId);
    assertWholeTokens('actualTokens', actualTokens);
    const reply = await this.run(
      'settle',
      [this.keys.reservation(reservationId)],
      [String(actualTokens), this.keys.prefix, this.marginArg, ...this.defaultsArgs],
    );
    if (reply[0] !== 1) return NOT_APPLIED;
    return { applied: true, refunded: Number(reply[1]) };
  }

  async getBucket(scope: ScopeRef): Promise<BucketSnapshot> {
    assertScopeRef(scope);
    const d = this.defaults[scope.type];
    const reply = await this.run(
      'getBucket',
      [this.keys.bucket(scope), this.keys.policy(scope)],
      [d.capMilli, d.rate],
    );
    return this.snapshot(scope, reply[0], reply[1]);
  }

  async getPolicy(scope: ScopeRef): Promise<BucketPolicy> {
    assertScopeRef(scope);
    const raw = await this.guard('getPolicy', () => this.client.get(this.keys.policy(scope)));
    return this.policyOf(scope.type, raw);
  }

  async setPolicy(scope: ScopeRef, patch: PolicyPatch): Promise<BucketSnapshot> {
    assertScopeRef(scope);
    assertPolicyPatch(patch);
    const d = this.defaults[scope.type];
    const capacity = patch.capacity;
    const rate = patch.refillPerSec;
    const reply = await this.run(
      'setPolicy',
      [this.keys.bucket(scope), this.keys.policy(scope)],
      [
        d.capMilli,
        d.rate,
        this.marginArg,
        capacity === undefined ? '' : String(capacity),
        capacity === undefined ? '' : String(toMilli(capacity)),
        rate === undefined ? '' : String(rate),
      ],
    );
    return this.snapshot(scope, reply[0], reply[1]);
  }

  /**
   * Round trip to the Redis node that holds this namespace (on a cluster, the master of its
   * slot; a plain PING could be answered by any node).
   */
  async ping(): Promise<void> {
    await this.guard('ping', async () => {
      if (this.client instanceof Cluster) await this.client.exists(`${this.keys.prefix}ping`);
      else await this.client.ping();
    });
  }

  /** Quit the client (unless `closeClient: false`) and resolve once it has closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.closeClient) return;
    const client = this.client;
    if (client.status === 'end') return;
    if (client.status === 'wait') {
      // Never connected (lazy): QUIT would open a connection only to close it.
      client.disconnect();
      return;
    }
    const ended = new Promise<void>((resolve) => {
      const timer = setTimeout(done, 2_000);
      function done() {
        clearTimeout(timer);
        client.off('end', done);
        resolve();
      }
      client.on('end', done);
    });
    try {
      await client.quit();
    } catch {
      // Not connected (no offline queue to carry QUIT): drop the socket instead.
      client.disconnect();
    }
    await ended;
  }

  private async run(command: CommandKey, keys: string[], args: string[]): Promise<Reply> {
    const reply = await this.guard(command, () =>
      this.scripts[command](keys.length, ...keys, ...args),
    );
    if (!Array.isArray(reply)) {
      throw new BucketStoreUnavailableError(this.backend, command, 'unexpected script reply');
    }
    return reply as Reply;
  }

  /** Run one call against Redis under the deadline; any failure becomes Unavailable. */
  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await this.withDeadline(call());
    } catch (err) {
      throw new BucketStoreUnavailableError(this.backend, operation, err);
    }
  }

  private withDeadline<T>(promise: Promise<T>): Promise<T> {
    const ms = this.commandTimeoutMs;
    if (ms === undefined) return promise;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no reply within ${ms} ms`)), ms);
    });
    return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
  }

  /** The effective policy from an override's JSON (or none) and the type default. */
  private policyOf(type: ScopeType, raw: unknown): BucketPolicy {
    const d = this.defaults[type].policy;
    if (typeof raw !== 'string') return d;
    let fields = this.overrideCache.get(raw);
    if (fields === undefined) {
      fields = parseOverride(raw);
      // Overrides are few; the cap only guards against unbounded growth.
      if (this.overrideCache.size >= OVERRIDE_CACHE_SIZE) this.overrideCache.clear();
      this.overrideCache.set(raw, fields);
    }
    if (fields.capacity === undefined && fields.refillPerSec === undefined) return d;
    return {
      capacity: fields.capacity ?? d.capacity,
      refillPerSec: fields.refillPerSec ?? d.refillPerSec,
    };
  }

  private snapshot(scope: ScopeRef, level: unknown, policyJson: unknown): BucketSnapshot {
    const policy = this.policyOf(scope.type, policyJson);
    const milli = Number(level);
    return {
      scope: copyScope(scope),
      tokens: fromMilli(milli),
      capacity: policy.capacity,
      refillPerSec: policy.refillPerSec,
      msUntilFull: msUntil(milli, toMilli(policy.capacity), policy.refillPerSec),
    };
  }
}

// Array.isArray narrows a readonly array to any[]; this keeps the element type.
function isArray<T>(value: readonly T[]): boolean {
  return Array.isArray(value);
}

const OVERRIDE_CACHE_SIZE = 10_000;

/** `{"c": "5000", "cm": "5000000", "r": "2.5"}` (fields optional) as a policy patch. */
function parseOverride(raw: string): PolicyPatch {
  const o = JSON.parse(raw) as { c?: unknown; r?: unknown };
  const capacity = typeof o.c === 'string' ? Number(o.c) : undefined;
  const refillPerSec = typeof o.r === 'string' ? Number(o.r) : undefined;
  return Object.freeze({ capacity, refillPerSec });
}

function copyScope(scope: ScopeRef): ScopeRef {
  return { type: scope.type, id: scope.id };
}

function hasKeyPrefix(client: RedisClient): boolean {
  const options = client.options as {
    keyPrefix?: string;
    redisOptions?: { keyPrefix?: string };
  };
  return Boolean(options.keyPrefix) || Boolean(options.redisOptions?.keyPrefix);
}
