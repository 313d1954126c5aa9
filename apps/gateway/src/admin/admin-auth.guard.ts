import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { OpenAIException } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { ADMIN_ROUTE } from './admin-route.decorator';

const sha256 = (value: string) => createHash('sha256').update(value).digest();

/** Who made an admin change, for logs: a fingerprint of the token, never the token. */
export interface AdminPrincipal {
  readonly tokenId: string;
}

const PRINCIPAL = Symbol('tokenguard:admin-principal');

export function adminPrincipalOf(request: object): AdminPrincipal {
  return (request as { [PRINCIPAL]?: AdminPrincipal })[PRINCIPAL] ?? { tokenId: 'open' };
}

/**
 * Protects every admin route with `Authorization: Bearer <ADMIN_TOKEN>` when a token is
 * configured: 401 without credentials, 403 with wrong ones. Both sides are hashed before a
 * constant-time comparison, so neither the length nor the content leaks through timing.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly expected: Buffer | undefined;
  private readonly tokenId: string;

  constructor(
    private readonly reflector: Reflector,
    config: AppConfig,
  ) {
    this.expected = config.adminToken === undefined ? undefined : sha256(config.adminToken);
    this.tokenId = this.expected ? `admin:${this.expected.subarray(0, 4).toString('hex')}` : 'open';
  }

  canActivate(context: ExecutionContext): boolean {
    const isAdmin = this.reflector.getAllAndOverride<boolean | undefined>(ADMIN_ROUTE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!isAdmin || context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    if (this.expected) {
      const presented = bearerToken(request.headers.authorization);
      if (presented === undefined) {
        throw new OpenAIException(HttpStatus.UNAUTHORIZED, {
          message: 'The admin API needs Authorization: Bearer <ADMIN_TOKEN>.',
          code: 'missing_admin_token',
          headers: { 'www-authenticate': 'Bearer realm="tokenguard-admin"' },
        });
      }
      if (!timingSafeEqual(sha256(presented), this.expected)) {
        throw new OpenAIException(HttpStatus.FORBIDDEN, {
          message: 'The admin token is not valid.',
          code: 'invalid_admin_token',
        });
      }
    }
    (request as { [PRINCIPAL]?: AdminPrincipal })[PRINCIPAL] = { tokenId: this.tokenId };
    return true;
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
