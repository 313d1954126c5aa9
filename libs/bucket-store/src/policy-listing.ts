import {
  DEFAULT_POLICY_PAGE,
  type ListPoliciesQuery,
  MAX_POLICY_PAGE,
  type ScopeRef,
  type ScopeType,
} from './bucket-store.interface';
import { isScopeType } from './bucket-store.validation';

/** A listing query with its defaults filled in. */
export interface PolicyListing {
  /** Undefined: every type. */
  readonly types: ReadonlySet<ScopeType> | undefined;
  readonly after: string;
  readonly limit: number;
}

/** Checks a listing query (RangeError on a bad one) and fills in the defaults. */
export function policyListing(query: ListPoliciesQuery = {}): PolicyListing {
  if (typeof query !== 'object' || query === null) {
    throw new TypeError('listPolicies takes { types?, after?, limit? }');
  }
  const { types, after = '', limit = DEFAULT_POLICY_PAGE } = query;
  if (types !== undefined) {
    if (!Array.isArray(types)) throw new TypeError('types must be an array');
    const unknown = (types as readonly unknown[]).find((type) => !isScopeType(type));
    if (unknown !== undefined) {
      throw new RangeError(`unknown scope type ${JSON.stringify(unknown)}`);
    }
  }
  if (typeof after !== 'string') throw new RangeError('after must be a string');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_POLICY_PAGE) {
    throw new RangeError(`limit must be a whole number from 1 to ${MAX_POLICY_PAGE}`);
  }
  return { types: types === undefined ? undefined : new Set(types), after, limit };
}

/** `<type>:<id>`, the order overrides are listed in (the global scope is `global:global`). */
export function policyMember(scope: ScopeRef): string {
  return `${scope.type}:${scope.id}`;
}

/** The scope of a `<type>:<id>` member, or undefined for a type this version does not know. */
export function scopeOfMember(member: string): ScopeRef | undefined {
  const colon = member.indexOf(':');
  const type = member.slice(0, colon);
  if (colon <= 0 || colon === member.length - 1 || !isScopeType(type)) return undefined;
  return { type, id: member.slice(colon + 1) };
}

/**
 * The members of one page, from every member there is: those of the type asked for, after
 * the cursor, in code-unit order, at most `limit`; `next` is set when more follow.
 */
export function pageOfMembers(
  members: Iterable<string>,
  listing: PolicyListing,
): { readonly members: string[]; readonly next: string | null } {
  const { types } = listing;
  const selected: string[] = [];
  for (const member of members) {
    if (member <= listing.after) continue;
    if (types !== undefined && !types.has(member.slice(0, member.indexOf(':')) as ScopeType)) {
      continue;
    }
    selected.push(member);
  }
  // Code-unit order, not locale order: the same on every instance and in every store.
  selected.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const page = selected.slice(0, listing.limit);
  const next = selected.length > listing.limit ? page[page.length - 1] : null;
  return { members: page, next };
}
