import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig } from './app-config';
import { loadAppConfig } from './env.validation';

const CONFIG_KEY = 'tokenguard';

export interface AppConfigModuleOptions {
  /**
   * Use exactly these variables instead of the process environment and `.env`
   * (tests start many gateways with different settings in one process).
   */
  readonly env?: Record<string, string | undefined>;
}

/**
 * The only place that reads the environment. `@nestjs/config` loads `.env` and the process
 * environment; `loadAppConfig` validates them once at boot and the frozen result is injected
 * as `AppConfig`. Invalid values reject the module, so the process never starts half-configured.
 */
@Module({})
export class AppConfigModule {
  static async forRoot(options: AppConfigModuleOptions = {}): Promise<DynamicModule> {
    const injected = options.env;
    const configModule = await ConfigModule.forRoot({
      ignoreEnvFile: injected !== undefined,
      validatePredefined: injected === undefined,
      // Returning only our typed object keeps ConfigModule from copying values into process.env.
      validate: (raw) => ({ [CONFIG_KEY]: loadAppConfig(injected ?? raw) }),
    });
    return {
      module: AppConfigModule,
      global: true,
      imports: [configModule],
      providers: [
        {
          provide: AppConfig,
          inject: [ConfigService],
          useFactory: (configService: ConfigService) =>
            configService.getOrThrow<AppConfig>(CONFIG_KEY),
        },
      ],
      exports: [AppConfig],
    };
  }
}
