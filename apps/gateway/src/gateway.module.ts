import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { BucketStoreModule } from '@tokenguard/bucket-store';
import { createOpenAIValidationPipe, OpenAIExceptionFilter } from '@tokenguard/common';
import { AppConfigModule, type AppConfigModuleOptions } from '@tokenguard/config';
import { LimiterGuard, LimiterModule, translateStoreErrors } from '@tokenguard/limiter';
import { HealthModule } from '@tokenguard/health';
import { MetricsModule } from '@tokenguard/metrics';
import { OpenAIProxyModule } from '@tokenguard/openai-proxy';
import { SyncModule } from '@tokenguard/sync';
import { AdminAuthGuard } from './admin/admin-auth.guard';
import { AdminModule } from './admin/admin.module';
import { AuthModule } from '@tokenguard/auth';
import { BucketsController } from './admin/buckets.controller';
import { BudgetsController } from './admin/budgets.controller';
import { ErrorReporter } from './error-reporting/error-reporter';
import { HealthController } from './health/health.controller';
import { ShutdownService } from './lifecycle/shutdown.service';
import { LoggingModule, type LoggingOptions } from './logging/logging.module';
import { StatusController } from './status/status.controller';
import { SyncController } from './admin/sync.controller';
import { ChatCompletionsController } from './v1/chat-completions.controller';
import { EmbeddingsController } from './v1/embeddings.controller';
import { ModelsController } from './v1/models.controller';
import { ResponsesController } from './v1/responses.controller';

export interface GatewayModuleOptions extends AppConfigModuleOptions, LoggingOptions {
  /** Extra providers for the gateway module (tests substitute a failing dependency here). */
  readonly providers?: readonly Provider[];
}

@Module({})
export class GatewayModule {
  static forRoot(options: GatewayModuleOptions = {}): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        AppConfigModule.forRoot(options),
        LoggingModule.forRoot(options),
        MetricsModule.forRoot(),
        BucketStoreModule,
        LimiterModule,
        OpenAIProxyModule,
        HealthModule,
        AuthModule,
        AdminModule,
        SyncModule,
      ],
      controllers: [
        HealthController,
        StatusController,
        BudgetsController,
        BucketsController,
        SyncController,
        ChatCompletionsController,
        ResponsesController,
        EmbeddingsController,
        ModelsController,
      ],
      providers: [
        ErrorReporter,
        ShutdownService,
        {
          provide: APP_FILTER,
          inject: [ErrorReporter],
          useFactory: (reporter: ErrorReporter) =>
            new OpenAIExceptionFilter([translateStoreErrors], (error, requestId) =>
              reporter.report(error, requestId),
            ),
        },
        { provide: APP_PIPE, useFactory: createOpenAIValidationPipe },
        ...(options.providers ?? []),
        // Admin authentication first: an unauthenticated admin call never touches a budget.
        { provide: APP_GUARD, useClass: AdminAuthGuard },
        { provide: APP_GUARD, useExisting: LimiterGuard },
      ],
    };
  }
}
