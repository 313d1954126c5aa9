import type { Clock } from './bucket-store.interface';
import type { RedisClient } from './redis-client';
import { redisKeys, type RedisKeys } from './redis-keys';
import { BucketStoreUnavailableError } from './store-unavailable.error';

/**
 * Small records the gateway instances share besides their buckets (the upstream limits the
 * sync learned), and leases that let one instance run a periodic job. Kept by the store's
 * engine, so the instances that share budgets share these too: in memory for one instance,
 * in Redis (same namespace, same hash tag) for many.
 */
export interface SharedState {
  /**
   * Take the lease `name` for `holder` for `ttlMs` unless another holder has it; a holder
   * renews its own. True when `holder` holds it now.
   */
  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Every record of a collection, by field. */
  readRecords(collection: string): Promise<Map<string, string>>;
  writeRecord(collection: string, field: string, value: string): Promise<void>;
  deleteRecords(collection: string, fields: readonly string[]): Promise<void>;
}

/** Injection token for the SharedState of the active store. */
export const SHARED_STATE = Symbol('SHARED_STATE');

const wallClock: Clock = { nowMs: () => Date.now() };

function assertLease(name: string, holder: string, ttlMs: number): void {
  if (name.length === 0 || holder.length === 0) {
    throw new RangeError('a lease needs a name and a holder');
  }
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new RangeError(`a lease TTL must be a whole number of ms >= 1, got ${ttlMs}`);
  }
}

/** SharedState of one process. */
export class MemorySharedState implements SharedState {
  private readonly leases = new Map<string, { holder: string; until: number }>();
  private readonly collections = new Map<string, Map<string, string>>();

  constructor(private readonly clock: Clock = wallClock) {}

  acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    // Bad input comes back as a rejected promise, as from the Redis implementation.
    return new Promise((resolve) => {
      assertLease(name, holder, ttlMs);
      const now = this.clock.nowMs();
      const lease = this.leases.get(name);
      if (lease !== undefined && lease.until > now && lease.holder !== holder) {
        resolve(false);
        return;
      }
      this.leases.set(name, { holder, until: now + ttlMs });
      resolve(true);
    });
  }

  readRecords(collection: string): Promise<Map<string, string>> {
    return Promise.resolve(new Map(this.collections.get(collection)));
  }

  writeRecord(collection: string, field: string, value: string): Promise<void> {
    let records = this.collections.get(collection);
    if (records === undefined) {
      records = new Map();
      this.collections.set(collection, records);
    }
    records.set(field, value);
    return Promise.resolve();
  }

  deleteRecords(collection: string, fields: readonly string[]): Promise<void> {
    const records = this.collections.get(collection);
    for (const field of fields) records?.delete(field);
    return Promise.resolve();
  }
}

/**
 * SET NX PX, or renew when the holder already has it: an instance that keeps running the job
 * keeps the lease across timer jitter, and another takes over only once it has lapsed.
 */
const LEASE_SCRIPT = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;
const LEASE_COMMAND = 'tokenguardLease';

type LeaseFn = (key: string, holder: string, ttlMs: string) => Promise<unknown>;

/**
 * SharedState in Redis, under the store's namespace (`tg:{<ns>}:s:<collection>` hashes and
 * `tg:{<ns>}:l:<lease>` keys, so on a cluster they sit in the namespace's slot). Plain
 * commands: these are called a few times a minute, not per request. Failures surface as
 * BucketStoreUnavailableError, like the store's.
 */
export class RedisSharedState implements SharedState {
  private readonly keys: RedisKeys;
  private readonly lease: LeaseFn;

  constructor(
    private readonly client: RedisClient,
    namespace: string,
  ) {
    this.keys = redisKeys(namespace);
    client.defineCommand(LEASE_COMMAND, { numberOfKeys: 1, lua: LEASE_SCRIPT });
    const fn = (client as unknown as Record<string, LeaseFn>)[LEASE_COMMAND];
    this.lease = (key, holder, ttlMs) => fn.call(client, key, holder, ttlMs);
  }

  async acquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    assertLease(name, holder, ttlMs);
    const reply = await this.guard('acquireLease', () =>
      this.lease(this.keys.lease(name), holder, String(ttlMs)),
    );
    return reply === 1;
  }

  async readRecords(collection: string): Promise<Map<string, string>> {
    const all = await this.guard('readRecords', () =>
      this.client.hgetall(this.keys.shared(collection)),
    );
    return new Map(Object.entries(all));
  }

  async writeRecord(collection: string, field: string, value: string): Promise<void> {
    await this.guard('writeRecord', () =>
      this.client.hset(this.keys.shared(collection), field, value),
    );
  }

  async deleteRecords(collection: string, fields: readonly string[]): Promise<void> {
    if (fields.length === 0) return;
    await this.guard('deleteRecords', () =>
      this.client.hdel(this.keys.shared(collection), ...fields),
    );
  }

  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw new BucketStoreUnavailableError('redis', operation, err);
    }
  }
}
