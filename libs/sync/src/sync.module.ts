import { Global, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { UPSTREAM_LIMIT_SOURCE } from '@tokenguard/limiter';
import { OpenAIProxyModule } from '@tokenguard/openai-proxy';
import { LimitSyncJob } from './limit-sync.job';
import { UpstreamLimitsService } from './upstream-limits.service';

/**
 * Upstream limit sync. Global so that the LimiterGuard (in LimiterModule) finds the learned
 * limits under UPSTREAM_LIMIT_SOURCE. Needs AppConfig, BUCKET_STORE, SHARED_STATE and
 * GatewayMetrics from the global modules.
 */
@Global()
@Module({
  imports: [ScheduleModule.forRoot(), OpenAIProxyModule],
  providers: [
    UpstreamLimitsService,
    LimitSyncJob,
    { provide: UPSTREAM_LIMIT_SOURCE, useExisting: UpstreamLimitsService },
  ],
  exports: [UpstreamLimitsService, LimitSyncJob, UPSTREAM_LIMIT_SOURCE],
})
export class SyncModule {}
