import { Controller, Get, HttpStatus, Res, ServiceUnavailableException } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorFunction,
  type HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { StoreHealthIndicator, UpstreamHealthIndicator } from '@tokenguard/health';
import { ShutdownService } from '../lifecycle/shutdown.service';

@ApiTags('status')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly storeHealth: StoreHealthIndicator,
    private readonly upstreamHealth: UpstreamHealthIndicator,
    private readonly shutdown: ShutdownService,
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
    const lifecycle = () => this.lifecycle('lifecycle');
    // An instance on its way out is unready whatever else holds: nothing else is probed.
    const checks: HealthIndicatorFunction[] = this.shutdown.draining
      ? [lifecycle]
      : [
          lifecycle,
          () => this.storeHealth.check('store'),
          () => this.upstreamHealth.checkUpstream('upstream'),
          () => this.upstreamHealth.checkCircuit('circuit'),
        ];
    try {
      return await this.health.check(checks);
    } catch (error) {
      // Keep Terminus' report (which check failed, and why) rather than a generic error body.
      if (!(error instanceof ServiceUnavailableException)) throw error;
      void reply.status(HttpStatus.SERVICE_UNAVAILABLE);
      return error.getResponse() as HealthCheckResult;
    }
  }

  /** Serving, or draining after SIGTERM/SIGINT (see lifecycle/shutdown.service.ts). */
  private lifecycle(key: string): HealthIndicatorResult {
    const indicator = this.indicators.check(key);
    const since = this.shutdown.drainingSinceMs;
    if (since === undefined) return indicator.up({ state: 'serving' });
    return indicator.down({
      state: 'draining',
      reason: 'shutting down',
      since: new Date(since).toISOString(),
    });
  }
}
