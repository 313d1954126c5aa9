import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { AppConfig } from '@tokenguard/config';
import { LimitSyncJob, type ModelLimitsView } from '@tokenguard/sync';
import { AdminRoute } from './admin-route.decorator';
import { type BucketView, BucketViewDto, toBucketView } from './bucket-view';

class LimitFigures {
  @ApiProperty({ nullable: true, example: 2000000, type: Number })
  tokens!: number | null;

  @ApiProperty({ nullable: true, example: 10000, type: Number })
  requests!: number | null;
}

class ResetFigures {
  @ApiProperty({ nullable: true, example: 6, type: Number, description: 'Milliseconds.' })
  tokensMs!: number | null;

  @ApiProperty({ nullable: true, example: 120, type: Number, description: 'Milliseconds.' })
  requestsMs!: number | null;
}

class ModelBuckets {
  @ApiProperty({ type: BucketViewDto, nullable: true })
  tokens!: BucketView | null;

  @ApiProperty({ type: BucketViewDto, nullable: true })
  requests!: BucketView | null;
}

class ModelLimitsDto {
  @ApiProperty({ example: 'gpt-4o-mini' })
  model!: string;

  @ApiProperty({ type: LimitFigures, description: "The provider's limits per minute." })
  limits!: LimitFigures;

  @ApiProperty({ type: LimitFigures, description: 'What the provider last reported left.' })
  remaining!: LimitFigures;

  @ApiProperty({ type: ResetFigures })
  reset!: ResetFigures;

  @ApiProperty({ example: '2025-01-01T12:00:00.000Z', description: 'When last reported.' })
  seenAt!: string;

  @ApiProperty({ nullable: true, type: String, description: 'A provider 429 paused it until.' })
  pausedUntil!: string | null;

  @ApiProperty({ description: "Part of every request's reservation now." })
  enforced!: boolean;

  @ApiProperty({ type: ModelBuckets, description: 'The upstream buckets the limits made.' })
  buckets!: ModelBuckets;
}

class ProbeDto {
  @ApiProperty({ example: 'gpt-4o-mini' })
  model!: string;

  @ApiProperty({ description: 'A paid one-token completion was sent.' })
  sent!: boolean;

  @ApiProperty({ required: false, example: 200 })
  status?: number;

  @ApiProperty({ required: false })
  error?: string;
}

class SyncReportDto {
  @ApiProperty({ example: '2025-01-01T12:00:00.000Z' })
  ranAt!: string;

  @ApiProperty({ description: 'ENFORCE_UPSTREAM_LIMITS' })
  enforce!: boolean;

  @ApiProperty({ description: 'ENABLE_BACKGROUND_SYNC' })
  backgroundSync!: boolean;

  @ApiProperty({ example: 300 })
  intervalSeconds!: number;

  @ApiProperty({ example: 900 })
  staleAfterSeconds!: number;

  @ApiProperty({ type: [String], description: 'Models dropped by this run (not seen lately).' })
  expired!: string[];

  @ApiProperty({ type: ProbeDto, nullable: true })
  probe!: ProbeDto | null;

  @ApiProperty({ type: [ModelLimitsDto] })
  models!: ModelLimitsDto[];
}

@ApiTags('admin')
@AdminRoute()
@Controller('sync')
export class SyncController {
  constructor(
    private readonly job: LimitSyncJob,
    private readonly config: AppConfig,
  ) {}

  @Get('openai-limits')
  @ApiOperation({
    summary: 'Run the upstream limit sync now and show what it learned',
    description:
      "Per model: the provider's limits and remaining values from its x-ratelimit-* headers, " +
      'when they were seen, and the upstream buckets they produced. With SYNC_PROBE_MODEL set ' +
      'and no traffic for that model during the last interval, the run sends one paid ' +
      'completion (max_tokens 1).',
  })
  @ApiOkResponse({ type: SyncReportDto })
  async limits(): Promise<SyncReportDto> {
    const report = await this.job.run();
    const sync = this.config.sync;
    return {
      ranAt: new Date(report.ranAt).toISOString(),
      enforce: sync.enforceUpstreamLimits,
      backgroundSync: sync.backgroundSync,
      intervalSeconds: sync.intervalMs / 1000,
      staleAfterSeconds: sync.staleAfterMs / 1000,
      expired: [...report.expired],
      probe: report.probe ?? null,
      models: report.models.map(modelView),
    };
  }
}

function modelView({ limits, enforced, buckets }: ModelLimitsView): ModelLimitsDto {
  return {
    model: limits.model,
    limits: { tokens: limits.limitTokens ?? null, requests: limits.limitRequests ?? null },
    remaining: {
      tokens: limits.remainingTokens ?? null,
      requests: limits.remainingRequests ?? null,
    },
    reset: { tokensMs: limits.resetTokensMs ?? null, requestsMs: limits.resetRequestsMs ?? null },
    seenAt: new Date(limits.seenAt).toISOString(),
    pausedUntil:
      limits.pausedUntil === undefined ? null : new Date(limits.pausedUntil).toISOString(),
    enforced,
    buckets: {
      tokens: buckets.tokens === null ? null : toBucketView(buckets.tokens),
      requests: buckets.requests === null ? null : toBucketView(buckets.requests),
    },
  };
}
