import type { FastifyRequest } from 'fastify';
import type { ScopeRef } from '@tokenguard/bucket-store';
import { resolveScopes } from './scope-resolver';

/**
 * Who a request is charged to. LimiterGuard asks this before anything is reserved; the app
 * provides one globally (see libs/auth: trusted headers or API keys, by AUTH_MODE).
 */
export abstract class IdentityResolver {
  /**
   * The scopes to charge, outermost first (global when enforced, then team, rolegroup, role,
   * user). Throws an OpenAIException to refuse: 400 for bad identity headers, 401 for a bad
   * key. Must not touch any bucket.
   */
  abstract resolve(request: FastifyRequest): ScopeRef[] | Promise<ScopeRef[]>;
}

/** AUTH_MODE=headers: the x-user-id / x-team-id / x-llm-rolegroup / x-role headers, trusted. */
export class HeaderIdentityResolver extends IdentityResolver {
  constructor(private readonly enforceGlobalScope: boolean) {
    super();
  }

  resolve(request: FastifyRequest): ScopeRef[] {
    return resolveScopes(request.headers, this.enforceGlobalScope);
  }
}
