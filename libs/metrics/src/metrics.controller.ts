import { Controller, Get, NotFoundException, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { GatewayMetrics } from './gateway-metrics';

export const METRICS_PATH = '/metrics';

/**
 * `GET /metrics` in Prometheus' text format: this gateway's registry merged with the Node
 * process metrics. PrometheusModule mounts it (and sets its path); the stock controller would
 * serve prom-client's global registry, which several gateways in one process would share.
 */
@ApiTags('status')
@Controller()
export class MetricsController extends PrometheusController {
  constructor(private readonly metrics: GatewayMetrics) {
    super();
  }

  @Get()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format)' })
  @ApiProduces('text/plain')
  override async index(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const registry = this.metrics.registry;
    // ENABLE_METRICS=false: answer exactly as for a route that does not exist.
    if (!registry) throw new NotFoundException(`Cannot GET ${METRICS_PATH}`);
    void reply.header('content-type', registry.contentType);
    return registry.metrics();
  }
}
