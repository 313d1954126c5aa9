import { Module } from '@nestjs/common';
import { AppConfig } from '@tokenguard/config';
import { EstimatorModule } from '@tokenguard/estimator';
import { LimiterGuard } from './limiter.guard';
import { SettlementInterceptor } from './settlement.interceptor';
import { SettlementService } from './settlement.service';

/**
 * The charging pipeline. Needs `AppConfig` and `BUCKET_STORE` from global modules; the app
 * registers the guard and interceptor globally (APP_GUARD / APP_INTERCEPTOR).
 */
@Module({
  imports: [
    EstimatorModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        defaultMaxOutputTokens: config.limits.defaultMaxOutputTokens,
      }),
    }),
  ],
  providers: [LimiterGuard, SettlementInterceptor, SettlementService],
  exports: [LimiterGuard, SettlementInterceptor, SettlementService],
})
export class LimiterModule {}
