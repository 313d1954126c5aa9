import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { REDIS_CONNECTION, type RedisConnection } from '@tokenguard/bucket-store';
import { AppConfig } from '@tokenguard/config';
import { HeaderIdentityResolver, IdentityResolver } from '@tokenguard/limiter';
import { ApiKeyService } from './api-key.service';
import { API_KEY_STORE, MemoryApiKeyStore, RedisApiKeyStore } from './api-key.store';
import { ClientAuthGuard } from './client-auth.guard';
import { ApiKeyIdentityResolver } from './key-identity.resolver';

/**
 * Who a client is (AUTH_MODE): the `IdentityResolver` the limiter charges by, API keys and
 * their store (Redis through the bucket store's connection when there is one, else memory),
 * and the guard that puts every client route behind a key in `keys` mode. Needs AppConfig and
 * REDIS_CONNECTION from the global modules.
 */
@Global()
@Module({
  providers: [
    {
      provide: API_KEY_STORE,
      inject: [REDIS_CONNECTION],
      useFactory: (redis: RedisConnection | null) =>
        redis === null ? new MemoryApiKeyStore() : new RedisApiKeyStore(redis),
    },
    ApiKeyService,
    {
      provide: IdentityResolver,
      inject: [AppConfig, ApiKeyService],
      useFactory: (config: AppConfig, keys: ApiKeyService): IdentityResolver => {
        const global = config.limits.enforceGlobalScope;
        return config.security.authMode === 'keys'
          ? new ApiKeyIdentityResolver(keys, global)
          : new HeaderIdentityResolver(global);
      },
    },
    { provide: APP_GUARD, useClass: ClientAuthGuard },
  ],
  exports: [IdentityResolver, ApiKeyService],
})
export class AuthModule {}
