import { OpenAIException } from '@tokenguard/common';
import { GLOBAL_SCOPE_ID, type ScopeRef, type ScopeType } from '@tokenguard/bucket-store';

/**
 * Ids end up inside store keys (`tg:{ns}:b:user:<id>`); restricting the alphabet means no id
 * can smuggle a separator and collide with another scope's key.
 */
export const IDENTITY_PATTERN = /^[A-Za-z0-9._@+-]{1,128}$/;

/** Identity headers, outermost scope first; the order is also the charging order. */
export const IDENTITY_HEADERS: ReadonlyArray<{ header: string; type: ScopeType }> = [
  { header: 'x-team-id', type: 'team' },
  { header: 'x-llm-rolegroup', type: 'rolegroup' },
  { header: 'x-role', type: 'role' },
  { header: 'x-user-id', type: 'user' },
];

type HeaderBag = Readonly<Record<string, string | string[] | undefined>>;

/**
 * Turns identity headers into the scopes a request is charged against:
 * global (when enforced) → team → rolegroup → role → user. `x-user-id` is required.
 */
export function resolveScopes(headers: HeaderBag, enforceGlobalScope: boolean): ScopeRef[] {
  const scopes: ScopeRef[] = enforceGlobalScope ? [{ type: 'global', id: GLOBAL_SCOPE_ID }] : [];
  for (const { header, type } of IDENTITY_HEADERS) {
    const id = readIdentity(headers, header, type === 'user');
    if (id !== undefined) scopes.push({ type, id });
  }
  return scopes;
}

function readIdentity(headers: HeaderBag, name: string, required: boolean): string | undefined {
  const raw = headers[name];
  if (Array.isArray(raw)) {
    throw OpenAIException.badRequest(`Send the ${name} header once.`, name, 'invalid_identity');
  }
  if (raw === undefined || raw === '') {
    if (!required) return undefined;
    throw OpenAIException.badRequest(
      `Missing the ${name} header: every request must name its user.`,
      name,
      'missing_identity',
    );
  }
  if (!IDENTITY_PATTERN.test(raw)) {
    throw OpenAIException.badRequest(
      `Invalid ${name} header: use 1 to 128 characters from A-Z a-z 0-9 . _ @ + -.`,
      name,
      'invalid_identity',
    );
  }
  return raw;
}
