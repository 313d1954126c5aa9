import {
  BucketStoreUnavailableError,
  type RedisClient,
  type RedisConnection,
  redisKeys,
} from '@tokenguard/bucket-store';

/** The identity a key stands for; every request made with the key is charged to it. */
export interface ApiKeyIdentity {
  readonly user: string;
  readonly team?: string;
  readonly rolegroup?: string;
  readonly role?: string;
}

/** A key as stored: everything but the key itself. Times are ms since the epoch. */
export interface ApiKeyRecord {
  readonly id: string;
  /** SHA-256 of the key, hex. */
  readonly hash: string;
  readonly name: string | null;
  readonly identity: ApiKeyIdentity;
  readonly createdAt: number;
  /** Fingerprint of the admin token that created it. */
  readonly createdBy: string;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

export interface ApiKeyPage {
  readonly records: readonly ApiKeyRecord[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

/**
 * Where keys live: Redis (shared by every instance, beside the budgets) or this process.
 * Keys are never deleted, only revoked or expired, so that the admin API can still say what
 * happened to one. Failures of Redis surface as BucketStoreUnavailableError (a 503).
 */
export interface ApiKeyStore {
  /** Adds a new key; false when the id is taken (the caller makes a new one). */
  insert(record: ApiKeyRecord): Promise<boolean>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** Keys in id (= creation) order, after `after`. */
  list(after: string | undefined, limit: number): Promise<ApiKeyPage>;
  /** Marks a key revoked at `at`, unless it already is (the first revocation stands). */
  revoke(id: string, at: number): Promise<ApiKeyRecord | undefined>;
  /** Sets or clears (null) the expiry. */
  setExpiry(id: string, expiresAt: number | null): Promise<ApiKeyRecord | undefined>;
}

export const API_KEY_STORE = Symbol('API_KEY_STORE');

/** One process: a map. */
export class MemoryApiKeyStore implements ApiKeyStore {
  private readonly records = new Map<string, ApiKeyRecord>();

  insert(record: ApiKeyRecord): Promise<boolean> {
    if (this.records.has(record.id)) return Promise.resolve(false);
    this.records.set(record.id, record);
    return Promise.resolve(true);
  }

  get(id: string): Promise<ApiKeyRecord | undefined> {
    return Promise.resolve(this.records.get(id));
  }

  list(after: string | undefined, limit: number): Promise<ApiKeyPage> {
    const ids = [...this.records.keys()].filter((id) => after === undefined || id > after).sort();
    const page = ids.slice(0, limit).map((id) => this.records.get(id)!);
    const next = ids.length > limit ? page[page.length - 1].id : null;
    return Promise.resolve({ records: page, next });
  }

  revoke(id: string, at: number): Promise<ApiKeyRecord | undefined> {
    const record = this.records.get(id);
    if (record === undefined || record.revokedAt !== null) return Promise.resolve(record);
    return Promise.resolve(this.replace({ ...record, revokedAt: at }));
  }

  setExpiry(id: string, expiresAt: number | null): Promise<ApiKeyRecord | undefined> {
    const record = this.records.get(id);
    return Promise.resolve(record && this.replace({ ...record, expiresAt }));
  }

  private replace(record: ApiKeyRecord): ApiKeyRecord {
    this.records.set(record.id, record);
    return record;
  }
}

/**
 * Redis, under the store's namespace and hash tag (so a cluster keeps them in the budgets'
 * slot): `tg:{<ns>}:k:<id>` a hash of the record's fields, `tg:{<ns>}:ki` a sorted set of
 * every id (score 0, read by lexical range) for listing. Fields are written one by one
 * (HSET, HSETNX), never read-modified-written, so concurrent revocations and expiry changes
 * cannot undo each other.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  private readonly client: RedisClient;
  private readonly prefix: string;
  private readonly index: string;

  constructor(connection: RedisConnection) {
    this.client = connection.client;
    this.prefix = `${redisKeys(connection.namespace).prefix}k:`;
    this.index = `${redisKeys(connection.namespace).prefix}ki`;
  }

  async insert(record: ApiKeyRecord): Promise<boolean> {
    const key = this.prefix + record.id;
    return this.guard('insert', async () => {
      // HSETNX on the hash field first: a taken id is left alone.
      const claimed = await this.client.hsetnx(key, 'hash', record.hash);
      if (claimed === 0) return false;
      await this.client.multi().hset(key, toFields(record)).zadd(this.index, 0, record.id).exec();
      return true;
    });
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    const fields = await this.guard('get', () => this.client.hgetall(this.prefix + id));
    return fromFields(id, fields);
  }

  async list(after: string | undefined, limit: number): Promise<ApiKeyPage> {
    const ids = await this.guard('list', () =>
      this.client.zrangebylex(
        this.index,
        after === undefined ? '-' : `(${after}`,
        '+',
        'LIMIT',
        0,
        limit + 1,
      ),
    );
    const pageIds = ids.slice(0, limit);
    const replies = await this.guard('list', async () => {
      const pipeline = this.client.pipeline();
      for (const id of pageIds) pipeline.hgetall(this.prefix + id);
      return (await pipeline.exec()) ?? [];
    });
    const records: ApiKeyRecord[] = [];
    pageIds.forEach((id, i) => {
      const [error, fields] = replies[i] ?? [null, {}];
      const record = error ? undefined : fromFields(id, fields as Record<string, string>);
      if (record) records.push(record);
    });
    return { records, next: ids.length > limit ? pageIds[pageIds.length - 1] : null };
  }

  async revoke(id: string, at: number): Promise<ApiKeyRecord | undefined> {
    const key = this.prefix + id;
    await this.guard('revoke', async () => {
      if ((await this.client.exists(key)) === 1) await this.client.hsetnx(key, 'revokedAt', at);
    });
    return this.get(id);
  }

  async setExpiry(id: string, expiresAt: number | null): Promise<ApiKeyRecord | undefined> {
    const key = this.prefix + id;
    await this.guard('setExpiry', async () => {
      if ((await this.client.exists(key)) === 0) return;
      if (expiresAt === null) await this.client.hdel(key, 'expiresAt');
      else await this.client.hset(key, 'expiresAt', expiresAt);
    });
    return this.get(id);
  }

  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw new BucketStoreUnavailableError('redis', `apiKeys.${operation}`, error);
    }
  }
}

function toFields(record: ApiKeyRecord): Record<string, string> {
  const fields: Record<string, string> = {
    hash: record.hash,
    user: record.identity.user,
    createdAt: String(record.createdAt),
    createdBy: record.createdBy,
  };
  const { team, rolegroup, role } = record.identity;
  if (team !== undefined) fields.team = team;
  if (rolegroup !== undefined) fields.rolegroup = rolegroup;
  if (role !== undefined) fields.role = role;
  if (record.name !== null) fields.name = record.name;
  if (record.expiresAt !== null) fields.expiresAt = String(record.expiresAt);
  if (record.revokedAt !== null) fields.revokedAt = String(record.revokedAt);
  return fields;
}

function fromFields(id: string, fields: Record<string, string>): ApiKeyRecord | undefined {
  // A hash without its key fields is not a key (a half-written insert): unknown.
  if (fields.hash === undefined || fields.user === undefined || fields.createdAt === undefined) {
    return undefined;
  }
  const time = (value: string | undefined) => (value === undefined ? null : Number(value));
  return {
    id,
    hash: fields.hash,
    name: fields.name ?? null,
    identity: {
      user: fields.user,
      ...(fields.team === undefined ? {} : { team: fields.team }),
      ...(fields.rolegroup === undefined ? {} : { rolegroup: fields.rolegroup }),
      ...(fields.role === undefined ? {} : { role: fields.role }),
    },
    createdAt: Number(fields.createdAt),
    createdBy: fields.createdBy ?? 'unknown',
    expiresAt: time(fields.expiresAt),
    revokedAt: time(fields.revokedAt),
  };
}
