import { Module } from '@nestjs/common';
import { AppConfig } from '@tokenguard/config';
import { EstimatorModule } from '@tokenguard/estimator';
import { LimiterGuard } from './limiter.guard';
import { SettlementService } from './settlement.service';

/**
 * The charging pipeline. Needs `AppConfig` and `BUCKET_STORE` from global modules; the app
 * registers the guard globally (APP_GUARD), and charged handlers run their upstream call
 * through `SettlementService.settleAfter`.
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
  providers: [LimiterGuard, SettlementService],
  exports: [LimiterGuard, SettlementService],
})
export class LimiterModule {}
