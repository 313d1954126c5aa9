import { MAX_TOKENS } from './bucket-math';
import {
  BucketPolicy,
  FixedCharge,
  GLOBAL_SCOPE_ID,
  PolicyPatch,
  SCOPE_TYPES,
  ScopeRef,
  ScopeType,
  StoreDefaults,
  UPSTREAM_SCOPE_TYPES,
  UpstreamScopeType,
} from './bucket-store.interface';

/**
 * Input checks shared by every store. They throw RangeError (or TypeError for a wrong
 * shape) before any state is read, so a bad call never changes a bucket.
 */

const scopeTypes: ReadonlySet<string> = new Set(SCOPE_TYPES);

export function isScopeType(value: unknown): value is ScopeType {
  return typeof value === 'string' && scopeTypes.has(value);
}

const upstreamTypes: ReadonlySet<string> = new Set(UPSTREAM_SCOPE_TYPES);

export function isUpstreamScopeType(value: unknown): value is UpstreamScopeType {
  return typeof value === 'string' && upstreamTypes.has(value);
}

/**
 * Ids of upstream scopes are model names, which clients choose and which may hold colons
 * (`ft:gpt-4o-mini:org::id`) or dates (`gpt-4o-2024-08-06`): any printable ASCII but the space,
 * up to 256 characters. Colons are safe in keys (the type before the first colon decides), and
 * Redis reservation records prefix each scope with its length.
 */
export const UPSTREAM_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;

export function isUpstreamId(value: unknown): value is string {
  return typeof value === 'string' && UPSTREAM_ID_PATTERN.test(value);
}

/** The default policy of a type that has none configured: no limit at all. */
export const UNLIMITED_POLICY: BucketPolicy = Object.freeze({
  capacity: MAX_TOKENS,
  refillPerSec: MAX_TOKENS,
});

/** A policy per scope type: the configured ones, and UNLIMITED_POLICY for upstream types left out. */
export function resolveDefaults(defaults: StoreDefaults): Record<ScopeType, BucketPolicy> {
  if (typeof defaults !== 'object' || defaults === null) {
    throw new TypeError('defaults must be an object of policies by scope type');
  }
  const all = {} as Record<ScopeType, BucketPolicy>;
  for (const type of SCOPE_TYPES) {
    const policy = (defaults as Partial<Record<ScopeType, BucketPolicy>>)[type];
    all[type] = policy === undefined && isUpstreamScopeType(type) ? UNLIMITED_POLICY : policy!;
  }
  return all;
}

export function assertScopeRef(scope: ScopeRef): void {
  if (typeof scope !== 'object' || scope === null) {
    throw new TypeError('scope must be an object { type, id }');
  }
  if (!isScopeType(scope.type)) {
    throw new RangeError(`unknown scope type ${JSON.stringify(scope.type)}`);
  }
  if (typeof scope.id !== 'string' || scope.id.length === 0) {
    throw new RangeError(`scope ${scope.type} needs a non-empty string id`);
  }
  if (scope.type === 'global' && scope.id !== GLOBAL_SCOPE_ID) {
    throw new RangeError(`the global scope's id must be "${GLOBAL_SCOPE_ID}"`);
  }
  if (isUpstreamScopeType(scope.type) && !UPSTREAM_ID_PATTERN.test(scope.id)) {
    throw new RangeError(
      `scope ${scope.type} needs a model name of 1-256 printable ASCII characters without spaces`,
    );
  }
}

/**
 * Store key of a scope: `global`, or `<type>:<id>`. The type has no colon and comes first,
 * so two different scopes never share a key even when an id contains a colon.
 */
export function scopeKey(scope: ScopeRef): string {
  assertScopeRef(scope);
  return scope.type === 'global' ? GLOBAL_SCOPE_ID : `${scope.type}:${scope.id}`;
}

function assertPolicyNumber(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_TOKENS) {
    throw new RangeError(
      `${name} must be a finite number between 0 and ${MAX_TOKENS}, got ${String(value)}`,
    );
  }
}

export function assertPolicyPatch(patch: PolicyPatch): void {
  if (typeof patch !== 'object' || patch === null) {
    throw new TypeError('policy patch must be an object');
  }
  if (patch.capacity !== undefined) assertPolicyNumber('capacity', patch.capacity);
  if (patch.refillPerSec !== undefined) assertPolicyNumber('refillPerSec', patch.refillPerSec);
}

export function assertPolicy(policy: BucketPolicy, label = 'policy'): void {
  if (typeof policy !== 'object' || policy === null) {
    throw new TypeError(`${label} must be an object { capacity, refillPerSec }`);
  }
  assertPolicyNumber(`${label}.capacity`, policy.capacity);
  assertPolicyNumber(`${label}.refillPerSec`, policy.refillPerSec);
}

/** Token counts in requests are whole, non-negative and exact. */
export function assertWholeTokens(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative whole number, got ${String(value)}`);
  }
}

export function assertReservationId(id: unknown): void {
  if (typeof id !== 'string' || id.length === 0) {
    throw new RangeError('reservationId must be a non-empty string');
  }
}

/** The fixed charges of a reserve request, checked (none: an empty list). */
export function assertFixedCharges(charges: unknown): readonly FixedCharge[] {
  if (charges === undefined) return [];
  if (!Array.isArray(charges)) {
    throw new TypeError('fixedCharges must be an array of { scope, amount }');
  }
  for (const charge of charges as unknown[]) {
    if (typeof charge !== 'object' || charge === null) {
      throw new TypeError('a fixed charge must be an object { scope, amount }');
    }
    const { scope, amount } = charge as FixedCharge;
    assertScopeRef(scope);
    assertWholeTokens('fixed charge amount', amount);
  }
  return charges as readonly FixedCharge[];
}

/** A fixed-charge scope that is also charged tokens, or fixed twice, in one reservation. */
export function fixedTwice(scope: ScopeRef): RangeError {
  return new RangeError(`scope ${scopeKey(scope)} is listed twice in one reservation`);
}

/** A target level for lowerLevel: finite, within the range levels may take. */
export function assertLevel(tokens: unknown): void {
  if (typeof tokens !== 'number' || !Number.isFinite(tokens) || Math.abs(tokens) > MAX_TOKENS) {
    throw new RangeError(`a level must be a finite number of tokens, got ${String(tokens)}`);
  }
}
