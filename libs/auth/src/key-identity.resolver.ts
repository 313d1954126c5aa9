import type { FastifyRequest } from 'fastify';
import { GLOBAL_SCOPE_ID, type ScopeRef } from '@tokenguard/bucket-store';
import { IdentityResolver } from '@tokenguard/limiter';
import type { ApiKeyService } from './api-key.service';
import type { ApiKeyIdentity } from './api-key.store';

/**
 * AUTH_MODE=keys: the scopes come from the key's stored identity. Identity headers are
 * ignored, so a client cannot charge (or spend) anyone else's budget by setting them.
 */
export class ApiKeyIdentityResolver extends IdentityResolver {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly enforceGlobalScope: boolean,
  ) {
    super();
  }

  async resolve(request: FastifyRequest): Promise<ScopeRef[]> {
    const record = await this.keys.authenticate(request, request.headers.authorization);
    return scopesOf(record.identity, this.enforceGlobalScope);
  }
}

/** The same order as the header resolver: global, team, rolegroup, role, user. */
export function scopesOf(identity: ApiKeyIdentity, enforceGlobalScope: boolean): ScopeRef[] {
  const scopes: ScopeRef[] = enforceGlobalScope ? [{ type: 'global', id: GLOBAL_SCOPE_ID }] : [];
  if (identity.team !== undefined) scopes.push({ type: 'team', id: identity.team });
  if (identity.rolegroup !== undefined) scopes.push({ type: 'rolegroup', id: identity.rolegroup });
  if (identity.role !== undefined) scopes.push({ type: 'role', id: identity.role });
  scopes.push({ type: 'user', id: identity.user });
  return scopes;
}
