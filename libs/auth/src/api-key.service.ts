import { HttpStatus, Inject, Injectable, Optional } from '@nestjs/common';
import { BucketStoreUnavailableError } from '@tokenguard/bucket-store';
import { OpenAIException } from '@tokenguard/common';
import { apiKeyId, apiKeyMatches, generateApiKey } from './api-key';
import {
  API_KEY_STORE,
  type ApiKeyIdentity,
  type ApiKeyPage,
  type ApiKeyRecord,
  type ApiKeyStore,
} from './api-key.store';

export type ApiKeyStatus = 'active' | 'revoked' | 'expired';

export interface CreateApiKey {
  readonly identity: ApiKeyIdentity;
  readonly name?: string;
  readonly expiresAt?: number | null;
  /** Who asks (the admin token's fingerprint). */
  readonly createdBy: string;
}

/** Time and cache bounds, overridable by tests. */
export interface ApiKeyServiceOptions {
  readonly now?: () => number;
  /** How long a key read from the store is trusted without reading it again. */
  readonly freshMs?: number;
  /** How long a known key keeps working while the store cannot be read. */
  readonly staleMs?: number;
  readonly cacheSize?: number;
}

export const API_KEY_SERVICE_OPTIONS = Symbol('API_KEY_SERVICE_OPTIONS');

/**
 * A revocation or expiry made on another instance takes effect here within this long; one
 * made through this instance at once.
 */
export const KEY_FRESH_MS = 5_000;
/** Keys seen lately keep working this long into a Redis outage (STORE_FAILURE_MODE applies). */
export const KEY_STALE_MS = 5 * 60_000;
const CACHE_SIZE = 10_000;

interface CachedKey {
  readonly record: ApiKeyRecord;
  readonly readAt: number;
}

const KEY_CARRIER = Symbol('tokenguard:api-key');

/**
 * API keys: creation (the key is returned once; only its SHA-256 is stored), listing, revocation,
 * expiry, and verification of the key a client presents.
 *
 * Verification looks a key up by its id (the non-secret part) and compares SHA-256 digests in
 * constant time, so neither the lookup nor the comparison depends on the secret. Records read
 * from the store are kept for KEY_FRESH_MS, which keeps the store off most requests.
 */
@Injectable()
export class ApiKeyService {
  private readonly cache = new Map<string, CachedKey>();
  private readonly now: () => number;
  private readonly freshMs: number;
  private readonly staleMs: number;
  private readonly cacheSize: number;

  constructor(
    @Inject(API_KEY_STORE) private readonly store: ApiKeyStore,
    @Optional() @Inject(API_KEY_SERVICE_OPTIONS) options: ApiKeyServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.freshMs = options.freshMs ?? KEY_FRESH_MS;
    this.staleMs = options.staleMs ?? KEY_STALE_MS;
    this.cacheSize = options.cacheSize ?? CACHE_SIZE;
  }

  async create(request: CreateApiKey): Promise<{ record: ApiKeyRecord; key: string }> {
    // Ids carry 3 random characters after the millisecond: a clash is rare, and retried.
    for (let attempt = 0; attempt < 5; attempt++) {
      const createdAt = this.now();
      const fresh = generateApiKey(createdAt);
      const record: ApiKeyRecord = {
        id: fresh.id,
        hash: fresh.hash,
        name: request.name ?? null,
        identity: request.identity,
        createdAt,
        createdBy: request.createdBy,
        expiresAt: request.expiresAt ?? null,
        revokedAt: null,
      };
      if (await this.store.insert(record)) return { record, key: fresh.key };
    }
    throw new Error('could not find a free API key id');
  }

  get(id: string): Promise<ApiKeyRecord | undefined> {
    return this.store.get(id);
  }

  list(after: string | undefined, limit: number): Promise<ApiKeyPage> {
    return this.store.list(after, limit);
  }

  async revoke(id: string): Promise<ApiKeyRecord | undefined> {
    const record = await this.store.revoke(id, this.now());
    this.cache.delete(id);
    return record;
  }

  async setExpiry(id: string, expiresAt: number | null): Promise<ApiKeyRecord | undefined> {
    const record = await this.store.setExpiry(id, expiresAt);
    this.cache.delete(id);
    return record;
  }

  status(record: ApiKeyRecord): ApiKeyStatus {
    if (record.revokedAt !== null) return 'revoked';
    if (record.expiresAt !== null && record.expiresAt <= this.now()) return 'expired';
    return 'active';
  }

  /**
   * The record of the key in `Authorization: Bearer <key>`, or a 401 in the OpenAI shape.
   * Remembered on the request, so that the guards that ask share one verification.
   */
  async authenticate(request: object, authorization: string | undefined): Promise<ApiKeyRecord> {
    const carrier = request as { [KEY_CARRIER]?: Promise<ApiKeyRecord> };
    carrier[KEY_CARRIER] ??= this.verify(authorization);
    return carrier[KEY_CARRIER];
  }

  private async verify(authorization: string | undefined): Promise<ApiKeyRecord> {
    const presented = bearerToken(authorization);
    if (presented === undefined) {
      throw unauthorized(
        'missing_api_key',
        'This gateway needs an API key: send Authorization: Bearer tg-...',
      );
    }
    const id = apiKeyId(presented);
    const record = id === undefined ? undefined : await this.lookup(id);
    // One answer for unknown, wrong, revoked and expired keys: the caller learns nothing more.
    if (
      record === undefined ||
      !apiKeyMatches(presented, record.hash) ||
      this.status(record) !== 'active'
    ) {
      throw unauthorized(
        'invalid_api_key',
        'The API key is not valid (unknown, revoked or expired). Ask an administrator for a new one.',
      );
    }
    return record;
  }

  private async lookup(id: string): Promise<ApiKeyRecord | undefined> {
    const now = this.now();
    const cached = this.cache.get(id);
    if (cached !== undefined && now - cached.readAt < this.freshMs) return cached.record;
    let record: ApiKeyRecord | undefined;
    try {
      record = await this.store.get(id);
    } catch (error) {
      // Keys seen lately keep working through an outage; anything else waits for the store.
      if (
        error instanceof BucketStoreUnavailableError &&
        cached !== undefined &&
        now - cached.readAt < this.staleMs
      ) {
        return cached.record;
      }
      throw error;
    }
    this.cache.delete(id);
    if (record !== undefined) {
      if (this.cache.size >= this.cacheSize) {
        // Oldest entry first: Map iteration follows insertion.
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      this.cache.set(id, { record, readAt: now });
    }
    return record;
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function unauthorized(code: string, message: string): OpenAIException {
  return new OpenAIException(HttpStatus.UNAUTHORIZED, {
    message,
    type: 'authentication_error',
    code,
    headers: { 'www-authenticate': 'Bearer realm="tokenguard"' },
  });
}
