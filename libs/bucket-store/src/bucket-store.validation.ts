import { MAX_TOKENS } from './bucket-math';
import {
  BucketPolicy,
  GLOBAL_SCOPE_ID,
  PolicyPatch,
  SCOPE_TYPES,
  ScopeRef,
  ScopeType,
} from './bucket-store.interface';

/**
 * Input checks shared by every store. They throw RangeError (or TypeError for a wrong
 * shape) before any state is read, so a bad call never changes a bucket.
 */

const scopeTypes: ReadonlySet<string> = new Set(SCOPE_TYPES);

export function isScopeType(value: unknown): value is ScopeType {
  return typeof value === 'string' && scopeTypes.has(value);
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
