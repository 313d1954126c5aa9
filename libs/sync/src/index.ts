export * from './learned-limits';
export * from './limit-sync.job';
export * from './rate-limit-headers';
export * from './sync.module';
export * from './upstream-limits.service';
