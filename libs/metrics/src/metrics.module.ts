import { type DynamicModule, Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { GATEWAY_VERSION } from '@tokenguard/common';
import { AppConfig } from '@tokenguard/config';
import { GatewayMetrics, NoopGatewayMetrics } from './gateway-metrics';
import { MetricsController, METRICS_PATH } from './metrics.controller';
import { PrometheusGatewayMetrics } from './prometheus-gateway-metrics';

/**
 * Provides `GatewayMetrics` to the whole app (global: the limiter, proxy and store record
 * through it) and mounts `GET /metrics`. Needs `AppConfig` from the global config module.
 */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(): DynamicModule {
    return {
      module: MetricsModule,
      imports: [
        PrometheusModule.register({
          controller: MetricsController,
          path: METRICS_PATH,
          // Node process metrics are collected once per process (see process-metrics.ts),
          // not once per registration as the module would.
          defaultMetrics: { enabled: false },
        }),
      ],
      providers: [
        {
          provide: GatewayMetrics,
          inject: [AppConfig],
          useFactory: (config: AppConfig): GatewayMetrics =>
            config.metrics.enabled
              ? new PrometheusGatewayMetrics({
                  bucketScopes: config.metrics.bucketScopes,
                  maxBucketSeries: config.metrics.maxBucketSeries,
                  version: GATEWAY_VERSION,
                })
              : new NoopGatewayMetrics(),
        },
      ],
      exports: [GatewayMetrics],
    };
  }
}
