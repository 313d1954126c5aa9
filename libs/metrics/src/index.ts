export * from './gateway-metrics';
export * from './labels';
export * from './metrics.controller';
export * from './metrics.module';
export * from './model-label';
export * from './prometheus-gateway-metrics';
export * from './request-metrics';
export * from './route-label';
