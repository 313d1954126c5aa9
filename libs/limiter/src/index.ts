export * from './charge-profile';
export * from './limiter.guard';
export * from './limiter.module';
export * from './rate-limit-context';
export * from './rate-limit-headers';
export * from './scope-resolver';
export * from './settlement.interceptor';
export * from './settlement.service';
