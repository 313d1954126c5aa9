import { Controller, Get, HttpStatus, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { StoreHealthIndicator, UpstreamHealthIndicator } from '@tokenguard/health';

@ApiTags('status')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly storeHealth: StoreHealthIndicator,
    private readonly upstreamHealth: UpstreamHealthIndicator,
  ) {}

  /** The process is up and serving HTTP; nothing external is checked. */
  @Get('live')
  @HealthCheck()
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  /** Whether this instance should receive traffic. */
  @Get('ready')
  @HealthCheck()
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult> {
    try {
      return await this.health.check([
        () => this.storeHealth.check('store'),
        () => this.upstreamHealth.checkUpstream('upstream'),
        () => this.upstreamHealth.checkCircuit('circuit'),
      ]);
    } catch (error) {
      // Keep Terminus' report (which check failed, and why) rather than a generic error body.
      if (!(error instanceof ServiceUnavailableException)) throw error;
      void reply.status(HttpStatus.SERVICE_UNAVAILABLE);
      return error.getResponse() as HealthCheckResult;
    }
  }
}
