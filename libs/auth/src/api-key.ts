import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/**
 * Key format: `tg-<id>_<secret>`.
 *
 * - `<id>`: 12 characters of `[0-9a-z]`, 9 of them the creation time in base 36 (so ids sort
 *   by creation) and 3 random. Not secret: it names the key in the admin API and logs, and
 *   the store finds the key by it, so a lookup never depends on the secret.
 * - `<secret>`: 32 random bytes, base64url (43 characters, 256 bits).
 *
 * Only the SHA-256 of the whole key is stored. A slow password hash buys nothing for 256
 * random bits; a fast one keeps verification off the request path's budget.
 */
export const API_KEY_PREFIX = 'tg-';
const KEY_PATTERN = /^tg-([0-9a-z]{12})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_ID_PATTERN = /^[0-9a-z]{12}$/;
const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

export interface NewApiKey {
  readonly id: string;
  /** The whole key, shown to its creator once. */
  readonly key: string;
  /** SHA-256 of the key, hex: all the store keeps. */
  readonly hash: string;
}

export function generateApiKey(nowMs: number = Date.now()): NewApiKey {
  let id = Math.floor(nowMs).toString(36).padStart(9, '0').slice(-9);
  for (let i = 0; i < 3; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  const key = `${API_KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  return { id, key, hash: hashApiKey(key).toString('hex') };
}

/** The id of a well-formed key; undefined for anything else. */
export function apiKeyId(presented: string): string | undefined {
  return KEY_PATTERN.exec(presented)?.[1];
}

export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Constant-time comparison of a presented key with a stored hash (hex). */
export function apiKeyMatches(presented: string, storedHash: string): boolean {
  const expected = Buffer.from(storedHash, 'hex');
  const actual = hashApiKey(presented);
  // Both are SHA-256 digests; a corrupt stored hash of another length simply fails.
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/** `tg-<id>_…`: how listings show a key without showing it. */
export function maskedApiKey(id: string): string {
  return `${API_KEY_PREFIX}${id}_…`;
}
