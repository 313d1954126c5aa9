import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  SetMetadata,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { AppConfig } from '@tokenguard/config';
import { ApiKeyService } from './api-key.service';

export const CLIENT_ROUTE = Symbol('tokenguard:client-route');

/**
 * Marks a controller of the OpenAI API (`/v1/*`): with AUTH_MODE=keys every one of its routes
 * needs a valid key, the free ones (models) included, since they spend the server's upstream
 * key too.
 */
export const ClientRoute = () => applyDecorators(SetMetadata(CLIENT_ROUTE, true));

/**
 * AUTH_MODE=keys: refuses client routes without a valid key (401). Charged routes are also
 * checked by the limiter's identity resolution; both share one verification per request.
 */
@Injectable()
export class ClientAuthGuard implements CanActivate {
  private readonly enabled: boolean;

  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyService,
    config: AppConfig,
  ) {
    this.enabled = config.security.authMode === 'keys';
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.enabled || context.getType() !== 'http') return true;
    const isClientRoute = this.reflector.getAllAndOverride<boolean | undefined>(CLIENT_ROUTE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!isClientRoute) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    await this.keys.authenticate(request, request.headers.authorization);
    return true;
  }
}
