import { ScopeRef } from './bucket-store.interface';

/**
 * Key schema of the Redis store. Every key of a namespace carries the namespace as its hash
 * tag (`{...}`), so all of them hash to one Redis Cluster slot and a script may touch any of
 * them in one call.
 *
 *   tg:{<ns>}:b:<type>:<id>   bucket state, 17 bytes: a tag byte 1, then level and at as
 *                             little-endian doubles; level in integer milli-tokens, at = last
 *                             update in microseconds of the Redis clock (may carry a fraction).
 *                             Absent = full. Expires about when it would read full again.
 *                             (Earlier versions wrote the text "<level> <at>"; still read.)
 *   tg:{<ns>}:p:<type>:<id>   policy override, JSON with string fields: c = capacity (tokens),
 *                             cm = capacity (milli-tokens), r = refill (tokens/s); only those an
 *                             operator set. No TTL.
 *   tg:{<ns>}:r:<reservation> open reservation, "<tokens>" then per scope " <bytes> <type>:<id>"
 *                             (e.g. "100 13 global:global 10 user:alice"), a fixed-charge scope
 *                             as " *<amount> <bytes> <type>:<id>", with the reservation TTL.
 *                             (Earlier versions wrote JSON [tokens, "<type>:<id>", ...]; still
 *                             read.)
 *   tg:{<ns>}:s:<name>        shared records of the gateway instances (a hash: the limits the
 *                             upstream sync learned, per model), see RedisSharedState.
 *   tg:{<ns>}:l:<name>        a lease (SET NX PX): which instance runs a periodic job.
 *
 * Strings rather than hashes so that a script reads the keys of a whole batch with MGET and
 * writes a bucket and its TTL with one PSETEX (see redis-scripts.ts for the measurements).
 *
 * The scope type comes first and never contains a colon, so `<type>:<id>` identifies a scope
 * whatever the id holds: `user` + `a:b` and `role` + `a:b` cannot meet. The gateway allows
 * only `[A-Za-z0-9._@+-]` in ids anyway. The namespace is restricted so that it cannot hold a
 * brace (which would move the hash tag) or a colon.
 */

const NAMESPACE_PATTERN = /^[A-Za-z0-9._@+-]{1,64}$/;

export const DEFAULT_NAMESPACE = 'tokenguard';

export function assertNamespace(namespace: unknown): asserts namespace is string {
  if (typeof namespace !== 'string' || !NAMESPACE_PATTERN.test(namespace)) {
    throw new RangeError(
      `namespace must be 1-64 characters of [A-Za-z0-9._@+-], got ${JSON.stringify(namespace)}`,
    );
  }
}

/** `tg:{<ns>}:`, the start of every key of the namespace. */
export function keyPrefix(namespace: string): string {
  assertNamespace(namespace);
  return `tg:{${namespace}}:`;
}

/** `<type>:<id>`: the part of a bucket or policy key after `b:` / `p:`. */
export function scopeMember(scope: ScopeRef): string {
  return `${scope.type}:${scope.id}`;
}

export interface RedisKeys {
  readonly prefix: string;
  bucket(scope: ScopeRef): string;
  policy(scope: ScopeRef): string;
  reservation(reservationId: string): string;
  /** A hash of shared records (see RedisSharedState). */
  shared(name: string): string;
  /** A lease (see RedisSharedState). */
  lease(name: string): string;
  /** SCAN MATCH pattern of every key of the namespace. */
  readonly matchAll: string;
}

export function redisKeys(namespace: string): RedisKeys {
  const prefix = keyPrefix(namespace);
  return {
    prefix,
    bucket: (scope) => `${prefix}b:${scopeMember(scope)}`,
    policy: (scope) => `${prefix}p:${scopeMember(scope)}`,
    reservation: (id) => `${prefix}r:${id}`,
    shared: (name) => `${prefix}s:${name}`,
    lease: (name) => `${prefix}l:${name}`,
    // Glob characters (`*?[]\`) cannot occur in a namespace, so the prefix matches literally.
    matchAll: `${prefix}*`,
  };
}
